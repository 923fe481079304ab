"""The true log-densities of the embedded 2-D generators (`tfflows.data.datasets.toy_2d`),
for measuring how far a fitted flow is from the truth (benchmarks/bench_toy_2d.py).

Each generator is a known distribution, so its density is exact or a 1-D integral:

- moons, spirals: a point uniform along a curve (spirals: t = 3 pi sqrt(U), density
  2t / (3 pi)^2), plus isotropic Gaussian noise: the curve parameter is integrated out by
  composite Gauss-Legendre quadrature (panels much shorter than the noise scale);
- circles: two noisy rings, closed form with the modified Bessel function I0;
- eight_gaussians: an equal-weight mixture of 8 isotropic Gaussians, closed form;
- checkerboard: uniform on 8 squares of side 2, exact (log 1/32 on the support, -inf off);
- pinwheel: a Gaussian f pushed through f -> 2 R(-a(f)) f with a = 2 pi l / 5 +
  0.25 exp(f_0): the rotation keeps |f|, so each preimage solves a 1-D equation on the
  circle of radius |x| / 2; every preimage (found on a fine grid, refined by Newton)
  contributes p(f) / |1 + 0.25 exp(f_0) f_1| (the Jacobian determinant).

The parameters below are those of `datasets.py`; tests/test_toy_density.py checks each
density against fresh draws of its generator (grid integral, chi-square of a histogram).
"""

import numpy as np
from scipy.special import i0e

MOONS_NOISE = CIRCLES_NOISE = SPIRALS_NOISE = 0.1
CIRCLES_RADII = (1.0, 2.5)
EIGHT_GAUSSIANS_RADIUS, EIGHT_GAUSSIANS_STD = 2.5, 0.25
PINWHEEL = dict(arms=5, radial_std=0.3, tangential_std=0.1, rate=0.25, scale=2.0)
MOONS_PANELS, SPIRALS_PANELS, PINWHEEL_GRID = 64, 240, 360  # converged to 1e-12 (tests)
_CHUNK = 2048  # rows per block of the quadrature sums (rows x nodes doubles in memory)


def toy_2d_log_prob(name, x):
    """log p(x) in nats of the embedded 2-D generator `name` at the rows of x (n, 2);
    returns a float64 array of shape (n,)."""
    x = np.asarray(x, dtype="float64")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (n, 2); got {x.shape}.")
    if name not in _DENSITIES:
        raise ValueError(f"No true density for {name!r}; choose one of {', '.join(_DENSITIES)}.")
    return _DENSITIES[name](x)


def _gauss_legendre(lo, hi, panels, order=8):
    """Nodes and weights of composite Gauss-Legendre quadrature on [lo, hi]."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(lo, hi, panels + 1)
    half = np.diff(edges)[:, None] / 2
    t = (edges[:-1, None] + half * (nodes + 1)).ravel()
    return t, (half * weights).ravel()


def _noisy_curve(x, centres, log_weights, noise):
    """log of sum_k w_k N(x; c_k, noise^2 I): a curve's points (quadrature nodes c_k with
    log-weights summing to the curve's probability) blurred by Gaussian noise. The squared
    distances are expanded (|x|^2 - 2 x.c + |c|^2) so the sum over nodes is a matrix product."""
    inv = 1.0 / noise ** 2
    bias = log_weights - 0.5 * inv * (centres ** 2).sum(1)
    out = np.empty(len(x))
    for start in range(0, len(x), _CHUNK):
        rows = x[start:start + _CHUNK]
        exponent = inv * rows @ centres.T + bias
        top = exponent.max(axis=1, keepdims=True)
        total = np.exp(exponent - top).sum(axis=1)
        out[start:start + _CHUNK] = np.log(total) + top[:, 0] - 0.5 * inv * (rows ** 2).sum(1)
    return out - np.log(2 * np.pi * noise ** 2)


def _moons_log_prob(x):
    # Arc length per moon 2 pi: 64 panels of 8 nodes, 0.1 per panel (the noise scale).
    t, w = _gauss_legendre(0.0, np.pi, panels=MOONS_PANELS)
    upper = np.stack([np.cos(t) - 0.5, np.sin(t) - 0.25], axis=1) * 2.0
    lower = np.stack([0.5 - np.cos(t), 0.25 - np.sin(t)], axis=1) * 2.0
    log_w = np.log(w / np.pi * 0.5)  # uniform angle, each moon with probability 1/2
    return _noisy_curve(x, np.concatenate([upper, lower]), np.concatenate([log_w, log_w]),
                        MOONS_NOISE)


def _spirals_log_prob(x):
    # t = 3 pi sqrt(U) has density 2 t / (3 pi)^2; speed sqrt(1 + t^2) / 3 <= 3.2.
    top = 3 * np.pi
    t, w = _gauss_legendre(0.0, top, panels=SPIRALS_PANELS)
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 3.0
    with np.errstate(divide="ignore"):
        log_w = np.log(w * 2 * t / top ** 2 * 0.5)
    return _noisy_curve(x, np.concatenate([arm, -arm]), np.concatenate([log_w, log_w]),
                        SPIRALS_NOISE)


def _circles_log_prob(x):
    # A ring of radius r, uniform angle, blurred by N(0, s^2 I):
    # p(x) = exp(-(|x|^2 + r^2) / 2s^2) I0(|x| r / s^2) / (2 pi s^2).
    s2 = CIRCLES_NOISE ** 2
    rho = np.hypot(x[:, 0], x[:, 1])
    terms = [np.log(0.5 / (2 * np.pi * s2)) - (rho - r) ** 2 / (2 * s2) + np.log(i0e(rho * r / s2))
             for r in CIRCLES_RADII]
    return np.logaddexp(*terms)


def _eight_gaussians_log_prob(x):
    angles = 2 * np.pi * np.arange(8) / 8
    centres = EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _noisy_curve(x, centres, np.full(8, np.log(1 / 8)), EIGHT_GAUSSIANS_STD)


def _checkerboard_log_prob(x):
    # Before the factor 2: x1 ~ U(-2, 2), x2 in [s, s + 1) or [s - 2, s - 1), s = floor(x1) % 2.
    u = x / 2.0
    inside = (u[:, 0] >= -2) & (u[:, 0] < 2) & (u[:, 1] >= -2) & (u[:, 1] < 2)
    on_square = (np.floor(u[:, 0]) + np.floor(u[:, 1])) % 2 == 0
    return np.where(inside & on_square, -np.log(32.0), -np.inf)


def _pinwheel_log_prob(x):
    parts = [_pinwheel_rows(x[start:start + _CHUNK]) for start in range(0, len(x), _CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _pinwheel_rows(x, newton_steps=4):
    arms, sr, st, rate, scale = (PINWHEEL[k] for k in
                                 ("arms", "radial_std", "tangential_std", "rate", "scale"))
    y = x / scale
    rho = np.hypot(y[:, 0], y[:, 1])
    psi = np.arctan2(y[:, 1], y[:, 0])
    phi = np.linspace(-np.pi, np.pi, PINWHEEL_GRID + 1)  # closed grid: both ends are the same point
    out = np.full(len(x), -np.inf)
    for arm in range(arms):
        # y = R(-a) f in polar form: psi = phi - a(rho cos phi) (mod 2 pi), rho unchanged, so
        # the preimages are the roots of h(phi) = phi - rate exp(rho cos phi) - c in 2 pi Z.
        c = psi + 2 * np.pi * arm / arms

        def h(p, r, c):
            return p - rate * np.exp(r * np.cos(p)) - c

        turns = np.floor(h(phi[None], rho[:, None], c[:, None]) / (2 * np.pi))
        rows, cells = np.nonzero(np.diff(turns, axis=1))  # h passes a multiple of 2 pi in a cell
        level = 2 * np.pi * np.maximum(turns[rows, cells], turns[rows, cells + 1])
        r, c = rho[rows], c[rows]
        lo, hi = phi[cells], phi[cells + 1]
        h_lo, h_hi = h(lo, r, c), h(hi, r, c)
        p = lo + (level - h_lo) / (h_hi - h_lo) * (hi - lo)
        for _ in range(newton_steps):
            slope = 1 + rate * r * np.sin(p) * np.exp(r * np.cos(p))
            p = np.clip(p - (h(p, r, c) - level) / slope, lo, hi)
        f0, f1 = r * np.cos(p), r * np.sin(p)
        log_f = -0.5 * ((f0 - 1.0) / sr) ** 2 - 0.5 * (f1 / st) ** 2 - np.log(2 * np.pi * sr * st)
        # |det d y / d f| = |1 + a'(f0) f1| with a'(f0) = rate exp(f0).
        log_det = np.log(np.abs(1 + rate * np.exp(f0) * f1))
        out = np.logaddexp(out, _log_sum_by_row(rows, np.log(1 / arms) + log_f - log_det, len(x)))
    return out - 2 * np.log(scale)


def _log_sum_by_row(rows, values, n):
    """log sum of exp(values) grouped by row index (rows without a value: -inf)."""
    top = np.full(n, -np.inf)
    np.maximum.at(top, rows, values)
    total = np.zeros(n)
    safe = np.where(np.isfinite(top), top, 0.0)
    np.add.at(total, rows, np.exp(values - safe[rows]))
    with np.errstate(divide="ignore"):
        return np.log(total) + safe


_DENSITIES = {
    "moons": _moons_log_prob,
    "circles": _circles_log_prob,
    "eight_gaussians": _eight_gaussians_log_prob,
    "checkerboard": _checkerboard_log_prob,
    "pinwheel": _pinwheel_log_prob,
    "spirals": _spirals_log_prob,
}
