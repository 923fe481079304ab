"""The monotone rational-quadratic spline (Gregory & Delbourgo 1982; Durkan, Bekasov,
Murray & Papamakarios 2019, Neural Spline Flows, arXiv:1906.04032), the one spline of the
package, in two parameterizations that share the in-bin formulas and the tails:

- `rational_quadratic_spline(x, params, bound)`: K bins on [-B, B] whose widths, heights
  and interior knot derivatives are unconstrained conditioner outputs (the spline
  coupling and autoregressive layers); identity outside [-B, B].
- `spline_from_knots(x, x_knots, y_knots, slopes)`: explicit increasing knots per
  feature (the fitted marginal Gaussianization); linear tails outside the outer knots,
  with the boundary slopes.

In bin k with knots (x_k, y_k), (x_k+1, y_k+1), derivatives d_k, d_k+1, w = x_k+1 - x_k,
h = y_k+1 - y_k, s = h / w and xi = (x - x_k) / w:
    y = y_k + h (s xi^2 + d_k xi (1 - xi)) / (s + (d_k+1 + d_k - 2 s) xi (1 - xi))
    dy/dx = s^2 (d_k+1 xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2)
            / (s + (d_k+1 + d_k - 2 s) xi (1 - xi))^2
The inverse is the root of a quadratic in xi (analytic). Every value's bin is found with
0/1 masks and every knot is read as a sum of masked products (no gathers, whose
gradients are scatters) in the conditioner-parameterized form; the explicit-knots form,
whose knots all rows share, gathers them.
"""

import math

import numpy as np
from keras import ops

from tfflows._math import soft_clamp

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# The raw widths, heights and derivatives are soft-clamped to (-3.5, 3.5) (tanh, like the
# affine layers' log-scales): neighbouring bins differ by at most e^7 in size and interior
# knot slopes lie in [0.05, 4.1], which keeps the map and its inverse well conditioned for
# any conditioner output (chosen on validation NLL: BENCHMARKS.md, "NSF variants").
RAW_PARAMETER_CLAMP = 3.5
# softplus(raw + _DERIVATIVE_SHIFT) + MIN_DERIVATIVE == 1 at raw == 0: a zero-initialized
# conditioner gives the identity spline.
_DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def knot_derivatives(raw):
    """Interior knot derivatives from their (soft-clamped) raw values; 1 at raw == 0."""
    return MIN_DERIVATIVE + ops.softplus(raw + _DERIVATIVE_SHIFT)


def spline_params_per_feature(bins):
    """K widths, K heights and K - 1 interior derivatives."""
    return 3 * int(bins) - 1


def _bin_masks(t, sizes, total, minimum):
    """Which bins lie before the value: `before[j] = 1` if the value is at or after the
    right knot of bin j, `through[j] = 1` if it is at or after the left knot of bin j
    (so `through - before` is the one-hot of its bin). Shapes (..., K, D).

    t = (x + B) / 2B in [0, 1]; `sizes` are the unnormalized bin sizes exp(raw) with sum
    `total`. A knot at fraction  minimum * (j + 1) + (1 - K minimum) cumsum_j / total  is
    compared without a division. The last bin never lies before the value (x <= B) and
    the first bin's left knot is -B. No gradient flows through the masks."""
    bins = sizes.shape[-2]
    scale = 1.0 - minimum * bins
    # cumsum of bins 0..K-2 as a matmul: much cheaper than a cumsum op on TF's CPU
    inclusive = ops.convert_to_tensor(np.tril(np.ones((bins - 1, bins))), sizes.dtype)
    cumulative = ops.matmul(inclusive, sizes)
    offsets = ops.convert_to_tensor(minimum * np.arange(1, bins, dtype="float64")[:, None],
                                    sizes.dtype)
    passed = ops.cast((t[..., None, :] - offsets) * total[..., None, :] >= scale * cumulative,
                      sizes.dtype)
    ones = ops.ones_like(t[..., None, :])
    before = ops.concatenate([passed, ops.zeros_like(ones)], axis=-2)
    through = ops.concatenate([ones, passed], axis=-2)
    return before, through


def _bin_edges(sizes, total, before, through, bin_index, bound, minimum):
    """The left and right knots of each value's bin, -B + 2B (minimum k + (1 - K minimum)
    sum of the sizes of the bins before / total). The right knot of bin k and the left
    knot of bin k + 1 sum the same products in the same order, so they are equal bit for
    bit, and every sum over bins is of a product with a 0/1 mask (no gathers, whose
    gradients are scatters)."""
    bins = sizes.shape[-2]
    scale = (1.0 - minimum * bins) / total
    left = minimum * bin_index + scale * ops.sum(sizes * before, axis=-2)
    right = minimum * (bin_index + 1.0) + scale * ops.sum(sizes * through, axis=-2)
    return 2.0 * bound * left - bound, 2.0 * bound * right - bound


def _bin_position(u, v, s, d_lo, d_hi):
    """Inside a bin inverted: the root xi in [0, 1] of a xi^2 + b xi + c = 0.

    u = y - y_k >= 0 and v = y_(k+1) - y >= 0 are the distances to the bin's two knots
    (u + v = h), s = h / w the bin slope, d_lo, d_hi the knot derivatives. Written with u
    and v instead of Durkan et al.'s  a = h (s - d_k) + u delta,  b = h d_k - u delta  (the
    same numbers when u + v = h), so that no two large equal terms cancel when the knot
    derivatives are far above the slope:
        a = u d_hi - v d_lo + s (v - u),   b = v d_lo - u d_hi + 2 s u,   c = -s u.
    The coefficients are divided by max(|a|, |b|, |c|) (roots unchanged; b^2 cannot
    overflow), then xi = 2c / (-b - sqrt(disc)) for b >= 0 (Durkan et al.'s form) and
    xi = (-b + sqrt(disc)) / (2a) for b < 0, where the first form would subtract nearly
    equal numbers and where a > s h > 0. Untaken branches see safe values, so no Inf/NaN
    reaches the value or the gradient. Swapping (u, d_lo) with (v, d_hi) gives 1 - xi.
    """
    a = u * d_hi - v * d_lo + s * (v - u)
    b = v * d_lo - u * d_hi + 2.0 * s * u
    c = -s * u
    scale = ops.maximum(ops.maximum(ops.abs(a), ops.abs(b)), ops.abs(c))
    scale = ops.where(scale > 0, scale, ops.ones_like(scale))
    a, b, c = a / scale, b / scale, c / scale
    tiny = 1e-30  # a float32 normal far below any reachable discriminant (>= b^2 ~ 1)
    root = ops.sqrt(ops.maximum(b * b - 4.0 * a * c, tiny))
    positive = b >= 0
    minus_one = -ops.ones_like(b)
    first = (2.0 * c) / ops.where(positive, -b - root, minus_one)
    second = (-b + root) / ops.where(positive, minus_one, 2.0 * a)
    return ops.where(positive, first, second)


def _evaluate_in_bin(x, x_k, x_k1, y_k, y_k1, d_k, d_k1, inverse):
    """The spline (or its inverse) at x inside the bin [x_k, x_k1] -> [y_k, y_k1];
    returns (value, log|d value / dx|).

    The position in the bin is carried as the pair (xi, eta = 1 - xi), each computed from
    its own nearest knot, and every formula is written with sums of positive terms only,
    so the map, its inverse and the log-derivative stay accurate at both ends of a bin
    even when knot derivatives and bin slopes differ by many orders of magnitude."""
    w_k, h_k = x_k1 - x_k, y_k1 - y_k
    s_k = h_k / w_k
    zero = ops.zeros_like(x)
    if inverse:
        u, v = ops.maximum(x - y_k, zero), ops.maximum(y_k1 - x, zero)
        xi = _bin_position(u, v, s_k, d_k, d_k1)
        eta = _bin_position(v, u, s_k, d_k1, d_k)
        out = ops.where(xi <= eta, x_k + xi * w_k, x_k1 - eta * w_k)
    else:
        xi = ops.maximum((x - x_k) / w_k, zero)
        eta = ops.maximum((x_k1 - x) / w_k, zero)
    xi_eta = xi * eta
    denominator = s_k * (xi * xi + eta * eta) + (d_k + d_k1) * xi_eta  # = s + delta xi (1 - xi)
    if not inverse:
        rise = y_k + h_k * (s_k * xi * xi + d_k * xi_eta) / denominator
        fall = y_k1 - h_k * (s_k * eta * eta + d_k1 * xi_eta) / denominator
        out = ops.where(xi <= eta, rise, fall)
    numerator = d_k1 * xi * xi + 2.0 * s_k * xi_eta + d_k * eta * eta
    log_deriv = 2.0 * ops.log(s_k) + ops.log(numerator) - 2.0 * ops.log(denominator)
    return out, -log_deriv if inverse else log_deriv


def _linear_tails(x, inside_value, inside_log_deriv, lo, hi, out_lo, out_hi, slope_lo, slope_hi,
                  inverse):
    """Outside [lo, hi] (the input side's outer knots) the map continues as straight lines
    through the outer knots with the boundary slopes (dividing by them for the inverse);
    `slope_lo=None` means the identity tails of a spline with y = x at both ends."""
    if slope_lo is None:
        inside = ops.logical_and(x >= lo, x <= hi)
        return (ops.where(inside, inside_value, x),
                ops.where(inside, inside_log_deriv, ops.zeros_like(x)))
    below, above = x < lo, x > hi
    if inverse:
        tail_lo, tail_hi = out_lo + (x - lo) / slope_lo, out_hi + (x - hi) / slope_hi
        log_lo, log_hi = -ops.log(slope_lo), -ops.log(slope_hi)
    else:
        tail_lo, tail_hi = out_lo + (x - lo) * slope_lo, out_hi + (x - hi) * slope_hi
        log_lo, log_hi = ops.log(slope_lo), ops.log(slope_hi)
    value = ops.where(below, tail_lo, ops.where(above, tail_hi, inside_value))
    log_deriv = ops.where(below, log_lo + ops.zeros_like(x),
                          ops.where(above, log_hi + ops.zeros_like(x), inside_log_deriv))
    return value, log_deriv


def rational_quadratic_spline(x, params, bound=5.0, inverse=False, axis=-1):
    """Elementwise monotone RQ spline on [-bound, bound], identity outside.

    x: (...,) values; params: their 3K - 1 unconstrained parameters, laid out [widths (K),
    heights (K), interior derivatives (K - 1)] along `axis`: -1 for params of shape
    (..., 3K - 1), or -2 for (..., 3K - 1, D) with x of shape (..., D) (the layers'
    parameter-major layout). Returns (y, log|dy/dx|) elementwise; with inverse=True,
    (x, log|dx/dy|) for x the input treated as y. Bin sizes are exp of the soft-clamped
    raw values, normalized through per-value sums (each bin at least MIN_BIN_WIDTH of the
    interval); interior derivatives MIN_DERIVATIVE + softplus(raw); boundary derivatives 1.

    Speed (TensorFlow's CPU kernels, no XLA): the bins sit on axis -2 with the features
    contiguous behind them, so every reduction over bins and its gradient's broadcast run
    over whole rows; the value's bin is found with 0/1 masks (see `_bin_masks`).
    """
    rank, x_rank = len(params.shape), len(x.shape)
    if axis in (-1, rank - 1) and rank == x_rank + 1:
        y, log_deriv = rational_quadratic_spline(x[..., None], params[..., None], bound, inverse,
                                                 axis=-2)
        return y[..., 0], log_deriv[..., 0]
    if axis not in (-2, rank - 2) or rank != x_rank + 1:
        raise ValueError("params must have one more axis than x, with the parameters on axis "
                         f"-1 or -2; got x of shape {tuple(x.shape)}, params of shape "
                         f"{tuple(params.shape)}, axis={axis}.")
    bins = (params.shape[-2] + 1) // 3
    params = soft_clamp(params, RAW_PARAMETER_CLAMP)
    widths_raw, heights_raw, derivs_raw = ops.split(params, [bins, 2 * bins], axis=-2)
    # unnormalized bin sizes: the raw values are soft-clamped to +-3.5, so exp cannot overflow
    widths, heights = ops.exp(widths_raw), ops.exp(heights_raw)
    width_total, height_total = ops.sum(widths, axis=-2), ops.sum(heights, axis=-2)
    inner_derivs = knot_derivatives(derivs_raw)

    xc = ops.clip(x, -bound, bound)  # keeps the unused branch finite (and its gradient)
    t = (xc + bound) / (2.0 * bound)
    if inverse:
        before, through = _bin_masks(t, heights, height_total, MIN_BIN_HEIGHT)
    else:
        before, through = _bin_masks(t, widths, width_total, MIN_BIN_WIDTH)
    bin_index = ops.sum(before, axis=-2)
    x_k, x_k1 = _bin_edges(widths, width_total, before, through, bin_index, bound, MIN_BIN_WIDTH)
    y_k, y_k1 = _bin_edges(heights, height_total, before, through, bin_index, bound, MIN_BIN_HEIGHT)
    # interior derivative j sits at knot j + 1: the left derivative of bin j + 1 and the
    # right derivative of bin j; the boundary derivatives are 1
    if bins > 1:
        one_hot = through - before
        first, after_first = ops.split(one_hot, [1], axis=-2)
        before_last, last = ops.split(one_hot, [bins - 1], axis=-2)
        d_k = ops.sum(inner_derivs * after_first, axis=-2) + first[..., 0, :]
        d_k1 = ops.sum(inner_derivs * before_last, axis=-2) + last[..., 0, :]
    else:
        d_k = d_k1 = ops.ones_like(xc)
    out, log_deriv = _evaluate_in_bin(xc, x_k, x_k1, y_k, y_k1, d_k, d_k1, inverse)
    return _linear_tails(x, out, log_deriv, -bound, bound, -bound, bound, None, None, inverse)


def spline_from_knots(x, x_knots, y_knots, slopes, inverse=False):
    """Per-feature monotone RQ spline through explicit knots, with linear tails.

    x: (N, D); x_knots, y_knots, slopes: (D, K), increasing knots and positive knot
    derivatives of each feature. Between the knots the RQ formulas above; below the first
    and above the last knot straight lines with slopes d_0 and d_K-1, so every finite input
    maps to a finite output with a finite log-derivative. Returns (y, log|dy/dx|)
    elementwise; with inverse=True, (x, log|dx/dy|) for x the input treated as y.

    The knots are shared by every row, so each value's bin is an index into them (one
    comparison count, then flat gathers whose gradients are cheap scatters into (D, K)):
    memory O(N D K) for one boolean count only, which the greedy fits of large data need.
    """
    src = y_knots if inverse else x_knots
    lo, hi = src[:, 0], src[:, -1]
    v = ops.clip(x, lo, hi)
    features, knots = int(src.shape[0]), int(src.shape[1])
    index = ops.sum(ops.cast(v[..., None] >= src[None, :, 1:-1], "int32"), axis=-1)  # bin 0..K-2
    flat = index + ops.cast(ops.arange(features) * knots, "int32")

    def pick(table):  # (left knot, right knot) of each value's bin
        table = ops.reshape(table, (-1,))
        return ops.take(table, flat), ops.take(table, flat + 1)

    (x_k, x_k1), (y_k, y_k1), (d_k, d_k1) = pick(x_knots), pick(y_knots), pick(slopes)
    out, log_deriv = _evaluate_in_bin(v, x_k, x_k1, y_k, y_k1, d_k, d_k1, inverse)
    dst = x_knots if inverse else y_knots
    return _linear_tails(x, out, log_deriv, lo, hi, dst[:, 0], dst[:, -1], slopes[:, 0],
                         slopes[:, -1], inverse)
