"""Information measures estimated by iterative Gaussianization (RBIG), in nats.

Each estimate fits an `RBIG` flow on the sample (the depth chosen on a held-out 20% of
the rows, so the estimate does not keep adding fitting noise) and reads the measure off
exact flow densities (Laparra, Camps-Valls & Malo 2011; Laparra et al. 2020,
"Information theory measures via multidimensional Gaussianization", arXiv:1910.03232):

- entropy:            H(x)   = -E[log p(x)]
- total correlation:  TC(x)  = sum_i H(x_i) - H(x), each marginal entropy by the same
                      estimator in one dimension, so that the terms share their biases
- mutual information: I(x; y) = TC([g_x(x), g_y(y)]), with g_x, g_y flows Gaussianizing
                      x and y separately (I is invariant under invertible maps of x and
                      of y, and each g has independent components)
- KL divergence:      KL(p_x || p_y) = E_x[log p_x(x) - log p_y(x)], each density a flow
                      fitted on its own sample

Any keyword argument of `RBIG` (rotation, num_knots, bandwidth, shrinkage; here the
defaults are bandwidth=0.5, shrinkage=0) and of `RBIG.fit_greedy` (max_blocks, patience)
can be passed through `**options`.
"""

import numpy as np
from keras import ops

from tfflows.data import validation
from tfflows.gaussianization.rbig import RBIG

_GREEDY = ("max_blocks", "patience", "tol")
# Less smoothing than RBIG's density defaults: a sample of thousands of points, and the
# measures need the marginals Gaussianized accurately.
_DEFAULTS = dict(bandwidth=0.5, shrinkage=0.0)


def _as_rows(x, what):
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{what} must be a (samples, features) array; got shape {x.shape}.")
    validation.check_dtype(x, what)
    validation.check_finite_rows(x, what)
    return x.astype("float64")


def fit_rbig(x, seed=0, holdout=0.2, **options):
    """An `RBIG` flow fitted on the rows of x (standardized inside: returns (flow, mean, std)).

    The depth is chosen on a random `holdout` fraction of the rows; the blocks are fitted
    on the others.
    """

    x = _as_rows(x, "x")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = ((x - mean) / std).astype("float32")
    greedy = {k: options.pop(k) for k in _GREEDY if k in options}
    for key, value in _DEFAULTS.items():
        options.setdefault(key, value)
    greedy.setdefault("patience", 3)
    order = np.random.default_rng(seed).permutation(len(z))
    n_val = int(holdout * len(z)) if holdout and len(z) >= 50 else 0
    train, val = z[order[n_val:]], (z[order[:n_val]] if n_val else None)
    flow = RBIG(z.shape[1], seed=seed, **options)
    flow.fit_greedy(train, validation_data=val, verbose=0, **greedy)
    return flow, mean, std


def _log_prob(fitted, x):
    flow, mean, std = fitted
    z = ((x - mean) / std).astype("float32")
    return np.asarray(ops.convert_to_numpy(flow.log_prob(z)), dtype="float64") - np.sum(np.log(std))


def entropy(x, **options):
    """Differential entropy H(x) = -E[log p(x)] in nats (x: (samples, features))."""
    x = _as_rows(x, "x")
    return float(-np.mean(_log_prob(fit_rbig(x, **options), x)))


def total_correlation(x, **options):
    """Total correlation (multi-information) sum_i H(x_i) - H(x) in nats; each marginal
    entropy by the same estimator in 1-D, so that the two terms share their biases."""
    x = _as_rows(x, "x")
    marginals = sum(entropy(x[:, [i]], **dict(options)) for i in range(x.shape[1]))
    return float(marginals - entropy(x, **options))


def mutual_information(x, y, **options):
    """Mutual information I(x; y) in nats between paired samples x (N, dx) and y (N, dy)."""
    x, y = _as_rows(x, "x"), _as_rows(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same number of rows; got {len(x)} and {len(y)}.")
    latents = []
    for part in (x, y):
        flow, mean, std = fit_rbig(part, **options)
        latents.append(np.asarray(ops.convert_to_numpy(flow.encode(((part - mean) / std).astype("float32")))))
    return total_correlation(np.concatenate(latents, axis=1), **options)


def kl_divergence(x, y, **options):
    """KL(p_x || p_y) in nats from a sample x of p_x and a sample y of p_y (same features)."""
    x, y = _as_rows(x, "x"), _as_rows(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features; got {x.shape[1]} and {y.shape[1]}.")
    return float(np.mean(_log_prob(fit_rbig(x, **options), x) - _log_prob(fit_rbig(y, **options), x)))
