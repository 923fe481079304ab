"""The terms of the Gaussianization information estimators (`tfflows.gaussianization.
information`): normal scores and their correlation for any bootstrap row weights, the exact
Wishart bias of the Gaussian-copula part, the cross-fitted RBIG remainder, and the
Kozachenko-Leonenko marginal entropies (NumPy; the remainder fits `RBIG` flows)."""

import math
import warnings

import numpy as np
from scipy import special

from tfflows.gaussianization.rbig import RBIG

GREEDY_OPTIONS = ("max_blocks", "patience", "tol")


def neighbours(n):
    """k of the 1-D Kozachenko-Leonenko marginal entropy estimator for n rows:
    round(sqrt(n) / 7) within [3, 10] (3 up to ~600 rows, 10 from ~4,800). A larger k lowers
    the estimator's variance on large samples (at n = 5,000, s.d. 0.010 -> 0.007 nats on a
    uniform, 0.018 -> 0.012 on a normal mixture) while its bias on small ones grows
    (n = 100: -0.16 nats on a cubed normal at k = 10); on the marginals of
    benchmarks/bench_marginal_entropy.py the rule's error is within 2% of the best k's at
    every n from 100 to 20,000 (the cap bounds the 2k neighbour distances kept per value)."""
    return int(min(10, max(3, round(math.sqrt(n) / 7))))


# ----- Gaussian part ------------------------------------------------------------------------
def wishart_bias(d, n):
    """E[-1/2 log det R_hat] + 1/2 log det R for n Gaussian rows of d features (mean
    estimated): 1/2 sum_{i=1..d} [psi((n-1)/2) - psi((n-i)/2)], about d (d - 1) / (4 n)."""
    if d < 2:
        return 0.0
    i = np.arange(1, d + 1)
    return float(0.5 * np.sum(special.digamma((n - 1) / 2) - special.digamma((n - i) / 2)))


class Scores:
    """Normal scores of the columns of x, for the full sample and for bootstrap weights."""

    def __init__(self, x):
        self.n = len(x)
        self.order = np.argsort(x, axis=0, kind="stable")
        xs = np.take_along_axis(x, self.order, axis=0)
        constant = xs[0] == xs[-1]
        if constant.any():
            raise ValueError(
                f"feature(s) {np.flatnonzero(constant).tolist()} are constant: a constant "
                "feature has no density (its entropy is -inf); drop it first."
            )
        ties = (np.diff(xs, axis=0) == 0).any(axis=0)
        if ties.any():
            warnings.warn(
                f"{int(ties.sum())} feature(s) have tied values; the estimators assume continuous "
                "data (dequantize discrete features). Ties are given average ranks.",
                stacklevel=4,
            )
        self.ties = ties
        self.sorted_x = xs if ties.any() else None

    def scores(self, w=None):
        """u_ij = Phi^-1(r_ij / (n + 1)), r the (average) rank of row i among the rows
        repeated w times (w = None: every row once)."""
        n = self.n
        m = np.ones((n, 1)) if w is None else np.asarray(w, "float64")[:, None]
        ms = np.take_along_axis(np.broadcast_to(m, self.order.shape), self.order, axis=0)
        rank = np.cumsum(ms, axis=0) - ms + 0.5 * (ms + 1.0)
        if self.ties.any():  # tied values share their average rank
            for j in np.flatnonzero(self.ties):
                rank[:, j] = _average_over_ties(self.sorted_x[:, j], rank[:, j], ms[:, j])
        u_sorted = special.ndtri(rank / (n + 1.0))
        u = np.empty_like(u_sorted)
        np.put_along_axis(u, self.order, u_sorted, axis=0)
        return u


def _average_over_ties(xs, rank, m):
    """Replace the ranks of each run of equal sorted values by their m-weighted mean."""
    start = np.concatenate([[True], xs[1:] != xs[:-1]])
    run = np.cumsum(start) - 1
    mass = np.bincount(run, weights=m)
    mean_rank = np.bincount(run, weights=m * rank) / np.maximum(mass, 1e-300)
    return np.where(mass[run] > 0, mean_rank[run], rank)  # a run drawn 0 times keeps finite ranks


def _correlation(u, w=None):
    n = len(u)
    w = np.ones(n) if w is None else np.asarray(w, "float64")
    mean = w @ u / w.sum()
    c = u - mean
    cov = (c * w[:, None]).T @ c / w.sum()
    s = np.sqrt(np.diag(cov))
    return cov / np.outer(s, s)


def _half_logdet(r):
    sign, logdet = np.linalg.slogdet(r)
    return 0.5 * logdet if sign > 0 else -math.inf


# ----- non-Gaussian remainder ------------------------------------------------------------------
def _log_std_normal(v):
    return -0.5 * np.sum(v**2, axis=1) - 0.5 * v.shape[1] * math.log(2 * math.pi)


def _remainder(u, r, seed, folds, holdout, rbig_options, greedy):
    """Cross-fitted RBIG gain on the whitened scores: per-row held-out gains, the training
    gain, and the flow depths."""
    n, d = u.shape
    values, vectors = np.linalg.eigh(r)
    whiten = vectors @ np.diag(np.maximum(values, 1e-12) ** -0.5) @ vectors.T
    v = ((u - u.mean(axis=0)) / u.std(axis=0)) @ whiten
    rng = np.random.default_rng(seed)
    parts = np.array_split(rng.permutation(n), folds)
    held, train_gain, depths = np.empty(n), [], []
    greedy = {"patience": 3, "max_blocks": 100, **greedy}
    # uncapped tails and one shrinkage of 0.4 for every block: the settings the estimators
    # were validated with (bench_information.py), kept when RBIG's own defaults moved
    rbig_options = {
        "rotation": "max_sliced_wasserstein",
        "max_tail_slope": None,
        "shrinkage": 0.4,
        "first_shrinkage": 0.4,
        **rbig_options,
    }
    for k, test in enumerate(parts):
        rows = np.concatenate([p for j, p in enumerate(parts) if j != k])
        n_val = int(holdout * len(rows))
        fit_rows, val_rows = rows[n_val:], rows[:n_val]
        flow = RBIG(d, seed=seed + k, **rbig_options)
        flow.fit_greedy(
            v[fit_rows].astype("float32"),
            validation_data=v[val_rows].astype("float32") if n_val else None,
            verbose=0,
            **greedy,
        )

        def gain(idx):
            log_q = np.asarray(flow.log_prob(v[idx].astype("float32")), dtype="float64")
            return log_q - _log_std_normal(v[idx])

        held[test] = gain(test)
        train_gain.append(float(np.mean(gain(fit_rows))))
        depths.append(int(flow.num_blocks))
    return held, float(np.mean(train_gain)), depths


class TotalCorrelationTerms:
    """TC of column groups of one sample, for the full sample and bootstrap weights."""

    def __init__(
        self,
        x,
        groups,
        remainder=True,
        seed=0,
        folds=2,
        holdout=0.2,
        gate=2.0,
        rbig_options=None,
        greedy=None,
    ):
        self.n, self.groups, self.gate = len(x), groups, float(gate)
        self.scores = Scores(x)
        u = self.scores.scores()
        r = _correlation(u)
        self.bias = {g: wishart_bias(len(g), self.n) for g in groups}
        self.rem = {}
        for g in groups:
            if remainder and len(g) > 1:  # one normal-score column is exactly Gaussian: J = 0
                held, train, depths = _remainder(
                    u[:, g],
                    r[np.ix_(g, g)],
                    seed,
                    folds,
                    holdout,
                    dict(rbig_options or {}),
                    dict(greedy or {}),
                )
                se = held.std() / math.sqrt(self.n)
                self.rem[g] = dict(
                    held=held,
                    held_mean=float(held.mean()),
                    train_mean=train,
                    se=se,
                    depths=depths,
                    midpoint=0.5 * (train + float(held.mean())),
                )

    def _remainder_value(self, g, w):
        rem = self.rem.get(g)
        if rem is None:
            return 0.0
        held_mean = rem["held_mean"] if w is None else float(w @ rem["held"] / self.n)
        if held_mean <= self.gate * rem["se"]:
            return 0.0
        return rem["midpoint"] + held_mean - rem["held_mean"]

    def values(self, w=None):
        """{group: (Gaussian part bias-corrected, remainder)}."""
        u = self.scores.scores(w)
        r = _correlation(u, w)
        return {
            g: (-_half_logdet(r[np.ix_(g, g)]) - self.bias[g], self._remainder_value(g, w))
            for g in self.groups
        }

    def parts(self, g):
        full = self.values()[g]
        out = {"gaussian": full[0], "gaussian_bias": self.bias[g], "non_gaussian": full[1]}
        if g in self.rem:
            rem = self.rem[g]
            out.update(
                non_gaussian_heldout=rem["held_mean"],
                non_gaussian_train=rem["train_mean"],
                non_gaussian_z=rem["held_mean"] / rem["se"] if rem["se"] > 0 else 0.0,
                flow_depths=rem["depths"],
            )
        return out


def bootstrap(stat, n, n_boot, seed):
    """Replicates of stat(weights) over multinomial row weights."""
    rng = np.random.default_rng([seed, 7919])
    return np.array(
        [stat(rng.multinomial(n, np.full(n, 1.0 / n)).astype("float64")) for _ in range(n_boot)]
    )


# ----- marginal entropies ----------------------------------------------------------------------
def marginal_entropy_rows(x, k=None):
    """Per-row terms psi(n) - psi(k) + log 2 + log eps_ij of the 1-D Kozachenko-Leonenko
    estimator (their column means are the marginal entropies), in the rows' order; k by
    default `neighbours(n)`."""
    n, d = x.shape
    k = min(neighbours(n) if k is None else int(k), n - 1)
    order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)
    pad = np.full((k, d), np.inf)
    ext = np.concatenate([pad * -1, xs, pad])
    near = np.concatenate(
        [
            np.stack([xs - ext[k - j : k - j + n] for j in range(1, k + 1)]),
            np.stack([ext[k + j : k + j + n] - xs for j in range(1, k + 1)]),
        ]
    )
    eps = np.partition(near, k - 1, axis=0)[k - 1]
    scale = np.maximum(xs[-1] - xs[0], 1e-300)
    eps = np.maximum(eps, 1e-12 * scale)  # tied values (warned about by Scores)
    terms_sorted = special.digamma(n) - special.digamma(k) + math.log(2.0) + np.log(eps)
    terms = np.empty_like(terms_sorted)
    np.put_along_axis(terms, order, terms_sorted, axis=0)
    return terms


# ----- flows --------------------------------------------------------------------------------
def fit_rbig(x, seed=0, holdout=0.2, **options):
    """An `RBIG` flow fitted on the rows of x (standardized inside: returns (flow, mean, std)).

    The depth is chosen on a random `holdout` fraction of the rows; the blocks are fitted on
    the others. Keywords of `RBIG` and of `RBIG.fit_greedy` pass through (defaults here:
    bandwidth=0.5, shrinkage=0 in every block, max_tail_slope=None, patience=3, at most
    100 blocks: the settings the estimators were validated with in
    benchmarks/bench_information.py).
    """
    x = np.asarray(x, dtype="float64")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = ((x - mean) / std).astype("float32")
    options = dict(options)
    greedy = {k: options.pop(k) for k in GREEDY_OPTIONS if k in options}
    options.setdefault("bandwidth", 0.5)
    options.setdefault("shrinkage", 0.0)
    options.setdefault("first_shrinkage", options["shrinkage"])
    options.setdefault("max_tail_slope", None)
    greedy.setdefault("patience", 3)
    greedy.setdefault("max_blocks", 100)
    order = np.random.default_rng(seed).permutation(len(z))
    n_val = int(holdout * len(z)) if holdout and len(z) >= 50 else 0
    train, val = z[order[n_val:]], (z[order[:n_val]] if n_val else None)
    flow = RBIG(z.shape[1], seed=seed, **options)
    flow.fit_greedy(train, validation_data=val, verbose=0, **greedy)
    return flow, mean, std


def flow_log_prob(fitted, x):
    flow, mean, std = fitted
    z = ((x - mean) / std).astype("float32")
    return np.asarray(flow.log_prob(z), dtype="float64") - np.sum(np.log(std))
