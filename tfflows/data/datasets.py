"""Embedded data: 2-D toy densities generated in code, and tabular sets shipped with
scikit-learn (no download), with the 60/20/20 standardized split of DESIGN.md."""

import numpy as np

# re-exported: tfflows.datasets.split_standardize
from tfflows.data.splits import split_standardize  # noqa: F401

TOY_2D = ("moons", "circles", "eight_gaussians", "checkerboard", "pinwheel", "spirals")


def toy_2d(name="moons", n=2000, seed=0):
    """n points of a 2-D toy density as a float32 array of shape (n, 2), roughly in [-4, 4]^2."""
    rng = np.random.default_rng(seed)
    if name not in _TOY_MAKERS:
        raise ValueError(f"Unknown 2-D dataset {name!r}; choose one of {', '.join(TOY_2D)}.")
    return _TOY_MAKERS[name](int(n), rng).astype("float32")


def _moons(n, rng):
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x - 0.5, y - 0.25], axis=1) * 2.0
    return pts + rng.normal(scale=0.1, size=pts.shape)


def _circles(n, rng):
    radius = np.where(rng.random(n) < 0.5, 1.0, 2.5)
    angle = rng.uniform(0, 2 * np.pi, n)
    pts = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return pts + rng.normal(scale=0.1, size=pts.shape)


def _eight_gaussians(n, rng):
    angles = 2 * np.pi * rng.integers(0, 8, n) / 8
    centres = 2.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centres + rng.normal(scale=0.25, size=(n, 2))


def _checkerboard(n, rng):
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) - 2 * rng.integers(0, 2, n) + np.floor(x1) % 2
    return 2.0 * np.stack([x1, x2], axis=1)


def _pinwheel(n, rng, arms=5, radial_std=0.3, tangential_std=0.1, rate=0.25):
    labels = rng.integers(0, arms, n)
    feats = rng.normal(size=(n, 2)) * np.array([radial_std, tangential_std])
    feats[:, 0] += 1.0
    angles = 2 * np.pi * labels / arms + rate * np.exp(feats[:, 0])
    rot = np.stack(
        [np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)], axis=1
    ).reshape(-1, 2, 2)
    return 2.0 * np.einsum("ni,nij->nj", feats, rot)


def _spirals(n, rng):
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    pts = sign[:, None] * np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 3.0
    return pts + rng.normal(scale=0.1, size=pts.shape)


_TOY_MAKERS = {
    "moons": _moons,
    "circles": _circles,
    "eight_gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "pinwheel": _pinwheel,
    "spirals": _spirals,
}


def digits_tabular(seed=0):
    """scikit-learn's 8x8 digits (17 levels) as 64 continuous features: uniform
    dequantization, scaling to (0, 1), logit with alpha = 0.05; split and standardized.

    Each dequantized level k becomes (k + u) / 17 with u ~ U(0, 1).
    """
    from sklearn.datasets import load_digits

    levels = load_digits().data
    rng = np.random.default_rng(seed)
    u = (levels + rng.uniform(size=levels.shape)) / 17.0
    alpha = 0.05
    p = alpha + (1 - 2 * alpha) * u
    return split_standardize(np.log(p) - np.log1p(-p), seed=seed)


def breast_cancer(seed=0):
    """scikit-learn's breast cancer features (30-D): log1p of each feature shifted to be
    non-negative; split and standardized."""
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data
    x = np.log1p(x - x.min(axis=0))
    return split_standardize(x, seed=seed)


def digits():
    """scikit-learn's 8x8 handwritten digits as integer pixel levels 0..16, shaped
    (1797, 8, 8, 1), with their labels. Shipped inside scikit-learn (no download).

    Returns (images, labels); images are int64: dequantize before fitting a flow.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype("int64").reshape(-1, 8, 8, 1), data.target.astype("int64")
