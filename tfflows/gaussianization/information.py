"""Information measures of tabular data by Gaussianization, in nats, with a stated bias and
a confidence interval.

Every measure rests on one decomposition (Laparra, Camps-Valls & Malo 2011; Laparra,
Johnson, Camps-Valls, Santos-Rodriguez & Malo 2020, "Information theory measures via
multidimensional Gaussianization", arXiv:1910.03232). Total correlation (multi-information)
is invariant under invertible maps of each feature, so it is measured on the normal scores
u_ij = Phi^-1(rank_ij / (n + 1)), whose marginals are standard normal; then

    TC(x) = sum_i H(u_i) - H(u) = -1/2 log det R  +  J(u)                         (1)

with R the correlation matrix of u (the Gaussian-copula part) and J(u) = KL(p_u || N(0, R))
the non-Gaussian remainder. J is invariant under invertible linear maps, so it is read off
the whitened scores v = R^-1/2 u: J = KL(p_v || N(0, I)) = E[log q(v) - log N(v; 0, I)],
q an `RBIG` flow fitted on v.

- Gaussian part: the plug-in -1/2 log det R_hat of n Gaussian rows has the exact bias
  (Wishart: log det S is a sum of log chi-square variables, and E log S_ii is known)

      b(d, n) = 1/2 sum_{i=1..d} [psi((n - 1)/2) - psi((n - i)/2)]  ~  d (d - 1) / (4 n),

  which is subtracted (0.05 nats at d = 32, n = 5,000; the old estimator had no
  correction). Exact for Gaussian data, and for normal scores of any Gaussian copula up
  to the rank step (checked by simulation within 0.0003 nats at d = 32).
- Remainder: the RBIG flow is cross-fitted (`folds` folds; in each, the depth chosen on a
  `holdout` share of the training rows, as `RBIG.fit_greedy` does). Its held-out mean
  gain J_out is biased low (an out-of-sample log-likelihood), its training gain J_in
  biased high by about as much (first-order over-fitting, as in AIC), so the estimate is
  the midpoint (J_in + J_out) / 2. It is counted only where J_out is significantly
  positive (J_out > `gate` standard errors), i.e. where the flow generalizes better than
  the Gaussian copula; otherwise J = 0, exact for Gaussian copulas. Remaining bias: low,
  by whatever dependence a validated-depth RBIG cannot represent (radial dependence such as
  a multivariate t in many dimensions is the hard case: BENCHMARKS.md, "Information measures").
- Entropy: H(x) = sum_i H(x_i) - TC(x), each marginal entropy by the Kozachenko-Leonenko
  k-nearest-neighbour estimator in one dimension (Kozachenko & Leonenko 1987; Kraskov,
  Stoegbauer & Grassberger 2004, eq. 20): H_i = psi(n) - psi(k) + log 2 + mean_j log eps_ij,
  eps_ij the distance from x_ij to its k-th nearest neighbour in feature i (k from n:
  3 up to ~600 rows, 10 from ~4,800, `information_terms.neighbours`); at n = 5,000, |bias|
  within about 0.005 nats per feature (0.012 on a cubed normal) and s.d. 0.007-0.016
  (0.046 on a cubed normal) on the marginals of benchmarks/bench_marginal_entropy.py.
- Mutual information: I(x; y) is invariant under invertible maps of x and of y separately,
  so the rank-Gaussian scores of each block are whitened and rotated to canonical pairs;
  the Gaussian part is -1/2 log det R + 1/2 log det R_xx + 1/2 log det R_yy (bias
  b(dx + dy, n) - b(dx, n) - b(dy, n) ~ dx dy / (2 n)), and the remainder is a k-NN
  (Kraskov) estimate on the canonical scores, each block with its log-radius appended,
  minus the same estimate on Gaussian samples with the same canonical correlations
  (`information_knn`, eq. (2)). Why not TC(x, y) - TC(x) - TC(y) with RBIG remainders
  (`remainder="flows"`, the estimator before issue 28): on a block near a curve (a swiss
  roll) TC(x) and TC(x, y) are unbounded and their flows' difference is arbitrary (1.8
  nats for 0.41), and in 10 + 10 dimensions the joint flow misses more of a shared scale
  than the block flows do (-0.15 for 0.52); the k-NN remainder needs no density of either
  block, and the appended radius puts neighbours at the same scale together
  (benchmarks/bench_information_families.py).
- KL divergence: KL(p_x || p_y) = -H(x) - E_x[log q_y(x)], H(x) as above and q_y an RBIG
  flow fitted on y (depth chosen on held-out rows of y); its bias is the misfit of q_y
  where x lies, E_x[log p_y(x) - log q_y(x)], of either sign (not part of the issue's target;
  within about 0.02 nats on Gaussians at n = 2,000).

Intervals: `*_with_interval` return an `Estimate` (value, stderr, ci_low, ci_high, ...).
TC, MI and KL are clipped at 0 (value and ci_low; `parts["unclipped"]` keeps the
unbiased value, which can be slightly negative near independence). stderr is the standard
deviation over `n_boot` bootstrap resamples of the rows (multinomial
row weights; the ranks, normal scores and correlation are recomputed for each resample, the
per-row held-out remainder and marginal-entropy terms are reweighted, the flows are not
refitted), and the interval is value +/- z stderr (TC and MI clipped at 0). The analytic
bias correction is applied to every resample. The interval covers sampling variability,
not the remaining bias of the remainder stated above (coverage checked on Gaussians:
BENCHMARKS.md, "Information measures"). `entropy`, `total_correlation`,
`mutual_information` and `kl_divergence` return the value alone (no bootstrap).

Options: `remainder=False` gives the Gaussian-copula estimate alone (numpy only, no flow);
`seed`, `folds`, `holdout`, `gate`; any keyword of `RBIG` (rotation, default here
"max_sliced_wasserstein": on whitened data PCA axes are arbitrary, and these directions gave
the largest remainder on linear mixtures of uniforms and on multivariate t; num_knots,
bandwidth, shrinkage) or of `RBIG.fit_greedy` (max_blocks, patience, tol) goes to the
remainder's flows.
"""

import numpy as np

from tfflows.gaussianization import information_estimate as est
from tfflows.gaussianization import information_knn as knn
from tfflows.gaussianization import information_terms as terms
from tfflows.gaussianization.information_estimate import Estimate
from tfflows.gaussianization.information_terms import wishart_bias

__all__ = [
    "Estimate",
    "entropy",
    "entropy_with_interval",
    "total_correlation",
    "total_correlation_with_interval",
    "mutual_information",
    "mutual_information_with_interval",
    "kl_divergence",
    "kl_divergence_with_interval",
    "fit_rbig",
    "wishart_bias",
]


# ----- public estimators -------------------------------------------------------------------------
def _all_features_tc(x, options):
    """(rows, the TC terms of all the features as one group, that group, seed, remainder)."""
    x = est.as_rows(x, "x")
    own, rbig_options, greedy = est.split_options(options)
    remainder = own.pop("remainder", True)
    g = tuple(range(x.shape[1]))
    tc = terms.TotalCorrelationTerms(
        x, [g], remainder=remainder, rbig_options=rbig_options, greedy=greedy, **own
    )
    return x, tc, g, own.get("seed", 0), remainder


def total_correlation_with_interval(x, confidence=0.95, n_boot=200, **options):
    """Total correlation TC(x) = sum_i H(x_i) - H(x) (multi-information) in nats, as an
    `Estimate`: value = -1/2 log det R - b(d, n) + J (module docstring, eq. (1))."""
    x, tc, g, seed, remainder = _all_features_tc(x, options)
    value = sum(tc.values()[g])
    reps = terms.bootstrap(lambda w: sum(tc.values(w)[g]), len(x), n_boot, seed) if n_boot else []
    return est.estimate(
        value,
        reps,
        confidence,
        tc.bias[g],
        est.method_name(remainder),
        len(x),
        tc.parts(g),
        est.NOTE_TC,
        True,
    )


def entropy_with_interval(x, confidence=0.95, n_boot=200, **options):
    """Differential entropy H(x) = sum_i H(x_i) - TC(x) in nats, as an `Estimate`; marginal
    entropies by the 1-D Kozachenko-Leonenko estimator (k from the number of rows:
    `information_terms.neighbours`), TC as in `total_correlation_with_interval`."""
    x, tc, g, seed, remainder = _all_features_tc(x, options)
    rows = terms.marginal_entropy_rows(x)
    marginals = rows.mean(axis=0)
    value = float(marginals.sum() - sum(tc.values()[g]))

    def stat(w):
        return float((w @ rows).sum() / len(x) - sum(tc.values(w)[g]))

    reps = terms.bootstrap(stat, len(x), n_boot, seed) if n_boot else []
    parts = {"marginal_entropies": marginals, "total_correlation": tc.parts(g)}
    note = (
        f"Marginal terms: Kozachenko-Leonenko (k = {terms.neighbours(len(x))}), |bias| < "
        "~0.005 nats per feature at n = 5,000 on smooth marginals. " + est.NOTE_TC
    )
    return est.estimate(
        value,
        reps,
        confidence,
        -tc.bias[g],
        "sum of 1-D k-NN marginal entropies - TC [" + est.method_name(remainder) + "]",
        len(x),
        parts,
        note,
        False,
    )


def mutual_information_with_interval(x, y, confidence=0.95, n_boot=200, **options):
    """Mutual information I(x; y) in nats between paired samples x (n, dx) and y (n, dy), as
    an `Estimate`: the Gaussian part -1/2 log det R + 1/2 log det R_xx + 1/2 log det R_yy
    (bias b(dx + dy) - b(dx) - b(dy) removed) plus the non-Gaussian remainder, by default
    the k-NN one of `information_knn` (eq. (2): KSG on the canonical normal scores with
    their log-radius, minus KSG on Gaussian references); `remainder="flows"` gives the
    RBIG remainders J(x, y) - J(x) - J(y) instead (module docstring), `remainder=False`
    the Gaussian part alone; `neighbours` sets k of the k-NN remainder."""
    x, y = est.pair(x, y)
    options = dict(options)
    neighbours = options.pop("neighbours", knn.NEIGHBOURS)
    own, rbig_options, greedy = est.split_options(options)
    remainder = own.pop("remainder", True)
    if remainder not in (True, False, "knn", "flows"):
        raise ValueError(f"remainder must be True, False, 'knn' or 'flows'; got {remainder!r}.")
    seed, gate = own.get("seed", 0), own.get("gate", 2.0)
    dx, dy = x.shape[1], y.shape[1]
    gxy, gx, gy = tuple(range(dx + dy)), tuple(range(dx)), tuple(range(dx, dx + dy))
    tc = terms.TotalCorrelationTerms(
        np.concatenate([x, y], axis=1),
        [gxy, gx, gy],
        remainder=remainder == "flows",
        rbig_options=rbig_options,
        greedy=greedy,
        **own,
    )
    near = (
        knn.KnnRemainder(tc.scores.scores(), dx, k=neighbours, seed=seed)
        if remainder in (True, "knn")
        else None
    )

    def stat(w=None):
        v = tc.values(w)
        gaussian = v[gxy][0] - v[gx][0] - v[gy][0]
        return gaussian + (near.value(w, gate) if near else v[gxy][1] - v[gx][1] - v[gy][1])

    value = stat()
    reps = terms.bootstrap(stat, len(x), n_boot, seed) if n_boot else []
    bias = tc.bias[gxy] - tc.bias[gx] - tc.bias[gy]
    parts = {"tc_xy": tc.parts(gxy), "tc_x": tc.parts(gx), "tc_y": tc.parts(gy)}
    if near is None:
        method = "TC(x, y) - TC(x) - TC(y) [" + est.method_name(remainder) + "]"
        return est.estimate(value, reps, confidence, bias, method, len(x), parts, est.NOTE_TC, True)
    parts.update(_knn_parts(near, value, gate))
    extra = near.ref_se**2 if near.value(gate=gate) else 0.0
    return est.estimate(
        value, reps, confidence, bias, est.METHOD_MI, len(x), parts, est.NOTE_MI, True, extra
    )


def _knn_parts(near, value, gate):
    """The parts of a mutual-information estimate with the k-NN remainder `near`."""
    return dict(
        gaussian=value - near.value(gate=gate),
        non_gaussian=near.value(gate=gate),
        non_gaussian_raw=near.raw(),
        non_gaussian_z=near.raw() / near.se,
        reference=near.ref,
        canonical_correlations=near.rho,
        neighbours=near.k,
    )


def kl_divergence_with_interval(x, y, confidence=0.95, n_boot=200, **options):
    """KL(p_x || p_y) = -H(x) - E_x[log q_y(x)] in nats from a sample x of p_x and a sample y
    of p_y (same features), as an `Estimate`; H(x) by `entropy_with_interval`, q_y an RBIG
    flow fitted on y. Biased by the misfit of q_y where x lies (either sign)."""
    x, y = est.as_rows(x, "x"), est.as_rows(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same number of features; got {x.shape[1]} and {y.shape[1]}."
        )
    own, rbig_options, greedy = est.split_options(options)
    remainder = own.pop("remainder", True)
    seed = own.get("seed", 0)
    holdout = own.get("holdout", 0.2)
    g = tuple(range(x.shape[1]))
    tc = terms.TotalCorrelationTerms(
        x, [g], remainder=remainder, rbig_options=rbig_options, greedy=greedy, **own
    )
    rows = terms.marginal_entropy_rows(x)
    cross = -terms.flow_log_prob(
        terms.fit_rbig(y, seed=seed, holdout=holdout, **rbig_options, **greedy), x
    )  # -log q_y(x)

    def stat(w=None):
        m = np.ones(len(x)) if w is None else w
        return float((-(m @ rows).sum() + m @ cross) / len(x) + sum(tc.values(w)[g]))

    value = stat()
    reps = terms.bootstrap(stat, len(x), n_boot, seed) if n_boot else []
    parts = {
        "entropy_x": float(rows.mean(axis=0).sum() - sum(tc.values()[g])),
        "cross_entropy": float(cross.mean()),
    }
    note = (
        "Biased by the misfit E_x[log p_y - log q_y] of the RBIG flow q_y (either sign; not "
        "in the interval); the entropy term as in entropy()."
    )
    return est.estimate(
        value,
        reps,
        confidence,
        tc.bias[g],
        "-H(x) - E_x log q_y(x), q_y = RBIG on y",
        len(x),
        parts,
        note,
        True,
    )


def entropy(x, **options):
    """Differential entropy H(x) in nats (x: (samples, features)); see `entropy_with_interval`."""
    return entropy_with_interval(x, n_boot=0, **options).value


def total_correlation(x, **options):
    """Total correlation sum_i H(x_i) - H(x) in nats; see `total_correlation_with_interval`."""
    return total_correlation_with_interval(x, n_boot=0, **options).value


def mutual_information(x, y, **options):
    """Mutual information I(x; y) in nats between paired samples x (N, dx) and y (N, dy);
    see `mutual_information_with_interval`."""
    return mutual_information_with_interval(x, y, n_boot=0, **options).value


def kl_divergence(x, y, **options):
    """KL(p_x || p_y) in nats from samples of each (same features); see
    `kl_divergence_with_interval`."""
    return kl_divergence_with_interval(x, y, n_boot=0, **options).value


def fit_rbig(x, seed=0, holdout=0.2, **options):
    """An `RBIG` flow fitted on the rows of x, standardized inside: returns (flow, mean,
    std). The depth is chosen on a random `holdout` fraction of the rows; keywords of
    `RBIG` and `RBIG.fit_greedy` pass through."""
    return terms.fit_rbig(est.as_rows(x, "x"), seed=seed, holdout=holdout, **options)
