"""Data of the density-estimation suite (issue 17): every usable real tabular set that
ships inside an installed package, plus synthetic sets whose density is known exactly.

Every set follows benchmarks/protocol.py: rows shuffled by `seed`, split 60/20/20,
standardized with the training mean and std; NLL is reported in that standardized space.
`load(name, seed)` returns a `Split` (train, val, test float32 arrays, and for synthetic
sets `true_test_nll`, the exact mean NLL of the test rows under the true density mapped
into the standardized space: log p_u(u) = log p_x(mean + std * u) + sum_i log std_i).

Real sets (`REAL`):
- scikit-learn: iris (150x4), wine (178x13), diabetes (442x10, unscaled features),
  breast_cancer (569x30, `tfflows.datasets.breast_cancer`: log1p of shifted features, as
  in BENCHMARKS.md), digits (1797x64, `tfflows.datasets.digits_tabular`: uniform
  dequantization + logit). linnerud is left out: 20 rows (12 training rows).
- statsmodels: star98 (303x12: the 12 base school covariates; the 8 interaction columns
  are exact products of others, a degenerate density, and PCTCHRT / PCTYRRND are left out
  because 88% / 65% of their values are exactly 0, a point mass), fertility (193x11: the
  fertility rate of 193 countries in 1960, 1965, ..., 2010, rows without missing values),
  grunfeld (220x3: invest, value, capital), macro (202x9: quarterly log-growth of realgdp,
  realcons, realinv, realgovt, realdpi, cpi, m1 and changes of tbilrate, unemp; the raw
  levels are trending time series, not draws of one density).
  Left out: anes96, fair, modechoice, randhie, spector, strikes, heart, ccard (mostly
  ordinal / binary / count columns: a dequantized lattice, not a continuous density);
  co2, elec_equip, nile, sunspots, cancer, engel (fewer than 3 continuous columns);
  china_smoking, committee, copper, cpunish, danish_data, elnino, longley, scotland,
  stackloss, statecrime, interest_inflation (fewer than 110 rows).
- Discreteness: a column with repeated values (iris, wine, diabetes, star98, grunfeld,
  fertility) is recorded at a fixed precision (1, 0.1, 0.01, ...: the smallest power of
  ten of which every value is a multiple); such a column gets uniform noise
  U(-step/2, step/2) with step = max(precision, 0.01 std) (the floor covers columns stored
  with spurious digits whose ties are a point mass, e.g. star98's zero percentages), drawn
  from `seed` (dequantization), so the data have a density.

Synthetic sets (`SYNTHETIC`, each at d = 4, 16, 64; 4,000 rows): the parameters of each
density are fixed by d (not by the seed), the rows are drawn from the seed.
- gmm{d}: mixture of 8 Gaussians, means ~ N(0, 1.5^2 I), covariances W W^T / r + 0.3 I
  (W: d x r, r = max(2, d // 4)).
- student{d}: multivariate Student-t with 4 degrees of freedom and a factor correlation.
- copula{d}: Gaussian copula with a factor correlation; marginals alternate between
  log-normal (sigma 0.75) and gamma (shape 2).
"""

import dataclasses
import math

import numpy as np
from scipy import special, stats

REAL = ("iris", "wine", "diabetes", "breast_cancer", "digits", "star98", "fertility", "grunfeld", "macro")
SYNTHETIC = tuple(f"{kind}{d}" for kind in ("gmm", "student", "copula") for d in (4, 16, 64))
# Large real sets (issue 26): pixel patches of photographs that ship inside scikit-image and
# scikit-learn (`patches.py`), 30,000 rows each.
LARGE = ("patches_photos", "patches_textures", "patches_colour")
# Synthetic sets at 100,000 rows: the densities of SYNTHETIC, drawn larger.
LARGE_SYNTHETIC = ("gmm16_100k", "student16_100k", "copula16_100k")
ALL = REAL + SYNTHETIC + LARGE + LARGE_SYNTHETIC
SYNTHETIC_ROWS = 4000
FRACTIONS = (0.6, 0.2, 0.2)


@dataclasses.dataclass
class Split:
    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    true_test_nll: float = math.nan  # synthetic sets only
    true_val_nll: float = math.nan

    @property
    def features(self):
        return self.train.shape[1]


def split_standardize(x, seed):
    """(train, val, test, mean, std): the split of `tfflows.datasets.split_standardize`
    (same permutation and sizes), also returning the training statistics."""
    x = np.asarray(x, dtype="float64")
    order = np.random.default_rng(seed).permutation(len(x))
    n_train, n_val = int(FRACTIONS[0] * len(x)), int(FRACTIONS[1] * len(x))
    parts = np.split(x[order], [n_train, n_train + n_val])
    mean, std = parts[0].mean(axis=0), parts[0].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((p - mean) / std for p in parts) + (mean, std, order[n_train + n_val:], order[n_train:n_train + n_val])


# ----- dequantization --------------------------------------------------------------------
def precision(column):
    """The smallest power of ten (1e-6 .. 1e3) of which every value is a multiple."""
    v = np.asarray(column, dtype="float64")
    for k in range(-3, 7):
        scaled = v * 10.0**k
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 + 1e-12 * np.abs(scaled)):
            return 10.0**-k
    return 0.0


def dequantize(x, seed):
    """Uniform noise of the recorded precision on every column with repeated values."""
    x = np.array(x, dtype="float64")
    rng = np.random.default_rng([seed, 17])
    for j in range(x.shape[1]):
        if len(np.unique(x[:, j])) < len(x):
            step = max(precision(x[:, j]), 1e-2 * x[:, j].std())
            x[:, j] += rng.uniform(-0.5, 0.5, len(x)) * step
    return x


# ----- real sets --------------------------------------------------------------------------
def _raw(name):
    import warnings

    if name in ("iris", "wine", "diabetes"):
        from sklearn import datasets

        kwargs = {"scaled": False} if name == "diabetes" else {}
        return getattr(datasets, f"load_{name}")(**kwargs).data
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "star98":
            cols = ["NABOVE", "NBELOW", "LOWINC", "PERASIAN", "PERBLACK", "PERHISP", "PERMINTE", "AVYRSEXP",
                    "AVSALK", "PERSPENK", "PTRATIO", "PCTAF"]
            return sm.datasets.star98.load_pandas().data[cols].to_numpy(float)
        if name == "fertility":
            cols = [str(y) for y in range(1960, 2011, 5)]
            return sm.datasets.fertility.load_pandas().data[cols].dropna().to_numpy(float)
        if name == "grunfeld":
            return sm.datasets.grunfeld.load_pandas().data[["invest", "value", "capital"]].to_numpy(float)
        if name == "macro":
            df = sm.datasets.macrodata.load_pandas().data
            growth = np.diff(np.log(df[["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1"]]
                                    .to_numpy(float)), axis=0)
            change = np.diff(df[["tbilrate", "unemp"]].to_numpy(float), axis=0)
            return np.concatenate([growth, change], axis=1)
    raise ValueError(name)


def _real(name, seed):
    if name in ("breast_cancer", "digits"):
        import tfflows as tff

        parts = tff.datasets.breast_cancer(seed) if name == "breast_cancer" else tff.datasets.digits_tabular(seed)
        return Split(name, *parts)
    x = _raw(name)
    if name != "macro":
        x = dequantize(x, seed)
    train, val, test = split_standardize(x, seed)[:3]
    return Split(name, *(p.astype("float32") for p in (train, val, test)))


# ----- synthetic sets with a known density ----------------------------------------------------
def _factor_correlation(d, rng):
    w = rng.normal(size=(d, max(2, d // 4)))
    s = w @ w.T / w.shape[1] + np.eye(d)
    inv = 1.0 / np.sqrt(np.diag(s))
    return s * inv[:, None] * inv[None, :]


class Density:
    """A synthetic density: `sample(n, rng)` and exact `log_prob(x)` (float64)."""

    def __init__(self, kind, d):
        rng = np.random.default_rng([d, {"gmm": 1, "student": 2, "copula": 3}[kind]])
        self.kind, self.d = kind, d
        if kind == "gmm":
            k = 8
            self.weights = rng.dirichlet(np.full(k, 5.0))
            self.means = rng.normal(scale=1.5, size=(k, d))
            self.covs = []
            for _ in range(k):
                w = rng.normal(size=(d, max(2, d // 4)))
                self.covs.append(w @ w.T / w.shape[1] + 0.3 * np.eye(d))
            self.chols = [np.linalg.cholesky(c) for c in self.covs]
        elif kind == "student":
            self.df, self.corr = 4.0, _factor_correlation(d, rng)
        elif kind == "copula":
            self.corr = _factor_correlation(d, rng)
            self.marginals = [stats.lognorm(s=0.75) if j % 2 == 0 else stats.gamma(a=2.0) for j in range(d)]
        else:
            raise ValueError(kind)

    def sample(self, n, rng):
        d = self.d
        if self.kind == "gmm":
            comp = rng.choice(len(self.weights), size=n, p=self.weights)
            z = rng.normal(size=(n, d))
            return np.stack([self.means[c] + self.chols[c] @ zi for c, zi in zip(comp, z)])
        if self.kind == "student":
            z = rng.multivariate_normal(np.zeros(d), self.corr, size=n)
            return z / np.sqrt(rng.chisquare(self.df, size=(n, 1)) / self.df)
        z = rng.multivariate_normal(np.zeros(d), self.corr, size=n)
        u = special.ndtr(z)
        return np.stack([m.ppf(u[:, j]) for j, m in enumerate(self.marginals)], axis=1)

    def log_prob(self, x):
        x = np.asarray(x, dtype="float64")
        if self.kind == "gmm":
            parts = [np.log(w) + stats.multivariate_normal(m, c).logpdf(x)
                     for w, m, c in zip(self.weights, self.means, self.covs)]
            return special.logsumexp(np.stack(parts, axis=1), axis=1)
        if self.kind == "student":
            return stats.multivariate_t(np.zeros(self.d), self.corr, df=self.df).logpdf(x)
        log_f = np.stack([m.logpdf(x[:, j]) for j, m in enumerate(self.marginals)], axis=1)
        z = np.stack([special.ndtri(np.clip(m.cdf(x[:, j]), 1e-300, 1 - 1e-16)) for j, m in
                      enumerate(self.marginals)], axis=1)
        copula = stats.multivariate_normal(np.zeros(self.d), self.corr).logpdf(z) - stats.norm.logpdf(z).sum(axis=1)
        return copula + log_f.sum(axis=1)


def _synthetic(name, seed, rows=SYNTHETIC_ROWS):
    label = name
    if name.endswith("_100k"):
        name, rows = name[: -len("_100k")], 100_000
    kind, d = name.rstrip("0123456789"), int(name[len(name.rstrip("0123456789")):])
    density = Density(kind, d)
    x = density.sample(rows, np.random.default_rng([seed, d, 99]))
    train, val, test, mean, std, test_idx, val_idx = split_standardize(x, seed)
    log_jac = float(np.sum(np.log(std)))  # p_u(u) = p_x(mean + std u) * prod std
    true_test = -float(np.mean(density.log_prob(x[test_idx]))) - log_jac
    true_val = -float(np.mean(density.log_prob(x[val_idx]))) - log_jac
    return Split(label, *(p.astype("float32") for p in (train, val, test)), true_test_nll=true_test,
                 true_val_nll=true_val)


def load(name, seed=0, rows=None):
    """The `Split` of a suite set for one seed; a synthetic set may be drawn with another
    number of `rows` in all (default SYNTHETIC_ROWS)."""
    if name in REAL:
        return _real(name, seed)
    if name in SYNTHETIC or name in LARGE_SYNTHETIC:
        return _synthetic(name, seed, rows=rows or SYNTHETIC_ROWS)
    if name in LARGE:
        try:
            from benchmarks import patches
        except ImportError:  # run as a script from benchmarks/
            import patches

        x = patches.patch_rows(name, seed)
        return Split(name, *(p.astype("float32") for p in split_standardize(x, seed)[:3]))
    raise ValueError(f"Unknown suite set {name!r}; choose from {', '.join(ALL)}.")


def parse_sets(text):
    """'real', 'synthetic', 'all' or a comma list of names."""
    groups = {"real": REAL, "synthetic": SYNTHETIC, "large": LARGE + LARGE_SYNTHETIC,
              "large_real": LARGE, "small": REAL + SYNTHETIC, "all": ALL}
    names = []
    for part in text.split(","):
        names += list(groups.get(part.strip(), (part.strip(),)))
    for n in names:
        if n not in ALL:
            raise ValueError(f"Unknown suite set {n!r}; choose from {', '.join(ALL)}.")
    return list(dict.fromkeys(names))


if __name__ == "__main__":
    for set_name in ALL:
        s = load(set_name, 0)
        print(f"{set_name:14s} d={s.features:3d} train/val/test={len(s.train)}/{len(s.val)}/{len(s.test)} "
              f"true test NLL={s.true_test_nll:.3f}")
