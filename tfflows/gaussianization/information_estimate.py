"""The value type of the information measures (`Estimate`) and what every estimator of
`tfflows.gaussianization.information` shares: the input checks, the split of its
options, and an estimate with its bootstrap interval from the replicate values."""

import dataclasses
import math

import numpy as np
from scipy import special

from tfflows.data import validation
from tfflows.gaussianization import information_terms as terms

MIN_ROWS = 10


@dataclasses.dataclass(frozen=True)
class Estimate:
    """An information measure in nats with its uncertainty.

    value: the bias-corrected estimate; stderr: bootstrap standard error (nan without
    bootstrap); ci_low, ci_high: the `confidence` interval value +/- z stderr; bias: the
    analytic correction already subtracted from the plug-in value; method: how it was
    estimated; n: rows used; parts: the terms (Gaussian part, remainder, marginal
    entropies, flow depths, ...); note: what the bias of `value` still is.
    `float(estimate)` is `value`.
    """

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    confidence: float
    bias: float
    method: str
    n: int
    parts: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    note: str = dataclasses.field(default="", repr=False, compare=False)

    def __float__(self):
        return float(self.value)

    def __str__(self):
        return (
            f"{self.value:.4f} nats (stderr {self.stderr:.4f}, {100 * self.confidence:g}% CI "
            f"[{self.ci_low:.4f}, {self.ci_high:.4f}]; {self.method})"
        )


# ----- input checks -----------------------------------------------------------------------
def as_rows(x, what):
    """x as a float64 (samples, features) array, after the data rules of DESIGN.md."""
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    validation.check_dtype(x, what)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(
            f"{what} must be a (samples, features) array (or 1-D for one feature); "
            f"got shape {x.shape}."
        )
    validation.check_finite_rows(x, what)
    if len(x) < MIN_ROWS:
        raise ValueError(f"{what} has {len(x)} rows; the estimators need at least {MIN_ROWS}.")
    if x.shape[1] == 0:
        raise ValueError(f"{what} has no features (shape {x.shape}).")
    return x.astype("float64")


def pair(x, y):
    x, y = as_rows(x, "x"), as_rows(y, "y")
    if len(x) != len(y):
        raise ValueError(
            "x and y must have the same number of rows (paired samples); "
            f"got {len(x)} and {len(y)}."
        )
    return x, y


def split_options(options):
    """(estimator settings, RBIG keywords, fit_greedy keywords)."""
    options = dict(options)
    own = {
        k: options.pop(k) for k in ("seed", "folds", "holdout", "gate", "remainder") if k in options
    }
    greedy = {k: options.pop(k) for k in terms.GREEDY_OPTIONS if k in options}
    return own, options, greedy


def method_name(remainder):
    base = "rank-Gaussian copula -1/2 log det R (Wishart bias removed)"
    return base + (" + cross-fitted RBIG remainder" if remainder else "")


NOTE_TC = (
    "Gaussian part: exact small-sample bias b(d, n) removed. Remainder: midpoint of "
    "training and held-out RBIG gains, counted when the held-out gain is significant; "
    "biased low by dependence the flow misses."
)


METHOD_MI = (
    "rank-Gaussian canonical correlations -1/2 sum log(1 - rho^2) (Wishart bias removed) "
    "+ KSG on the canonical scores with their log-radius minus KSG on Gaussian references"
)
NOTE_MI = (
    "Gaussian part: exact small-sample bias removed. Remainder: k-NN (KSG) excess over "
    "Gaussian references with the same canonical correlations; the interval includes the "
    "references' noise; biased low by non-Gaussian dependence the k-NN misses at this n "
    "(a few % on shared-scale laws, more on spirals)."
)


def plain(v):
    if isinstance(v, dict):
        return {k: plain(w) for k, w in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(w) for w in v]
    if isinstance(v, np.ndarray):
        return v.astype(float)
    return float(v) if isinstance(v, (float, np.floating)) else v


def estimate(value, reps, confidence, bias, method, n, parts, note, nonnegative, extra_var=0.0):
    parts = {**plain(parts), "unclipped": float(value)}
    if len(reps) > 1:
        se = float(math.sqrt(np.var(reps, ddof=1) + extra_var))
        z = float(special.ndtri(0.5 + 0.5 * confidence))
        low, high = value - z * se, value + z * se
    else:
        se = low = high = math.nan
    if nonnegative:
        value, low, high = max(value, 0.0), (max(low, 0.0) if low == low else low), high
    return Estimate(
        float(value),
        se,
        float(low),
        float(high),
        float(confidence),
        float(bias),
        method,
        int(n),
        parts,
        note,
    )
