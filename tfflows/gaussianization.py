"""Marginal Gaussianization: y_i = Phi^-1(F_i(x_i)) for each feature i, with an exact log-det.

Two ways to represent the monotone maps, chosen by `method`:

- "spline" (fitted from data, no gradients): the map s_i = Phi^-1 o F_i itself is a
  monotone rational-quadratic spline (Gregory & Delbourgo 1982; Durkan et al. 2019,
  arXiv:1906.04032) through K knots (x_k, y_k) with slopes d_k, extended linearly
  beyond the outer knots. The knots interpolate Phi^-1 of a Gaussian-kernel-smoothed
  empirical CDF and its slope (f_hat / phi), so the density of the model is that of a
  smoothed CDF, and it is *the same* map that the forward pass evaluates. Linear tails
  in y mean Gaussian tails in x: every finite input has a finite output and log-det.
- "logistic" (trainable, Gaussianization Flows, Meng et al. 2020, arXiv:2003.01941):
  F_i is a mixture of K logistic CDFs with learnable centres, log-scales and weights,
  initialized from data; Phi^-1 is applied in log space.

forward:  y = Phi^-1(F(x))
inverse:  x = F^-1(Phi(y))     (spline: analytic; logistic: vectorized bisection whose
                                bracket comes from the mixture, then safeguarded Newton)
log_det:  sum_i log f_i(x_i) - log phi(y_i)  (= log s_i'(x_i) for the spline)

All CDF values are handled as (log F, log(1 - F)) pairs, so no value ever rounds to 0 or
1 and no log-det is infinite, whatever the magnitude of the input.
"""

import keras
import numpy as np
from keras import ops
from scipy import special

from tfflows._math import soft_clamp
from tfflows._math import LOG_2PI
from tfflows.base import Bijector, FittedOnce

_SQRT2 = float(np.sqrt(2.0))
_ASYMPTOTIC = -20.0  # below this, log Phi uses its asymptotic series (erfc underflows later)


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


# ----- log-space normal CDF and its inverse (float64, keras.ops) -------------------------
def _log_mills_lower(y):
    """log Phi(y) - log phi(y) (log of the Mills ratio at -y), finite for every finite y:
    through erfc above `_ASYMPTOTIC`, through the asymptotic series below it."""
    y_mid = ops.maximum(y, _ASYMPTOTIC)
    mid = ops.log(0.5 * ops.erfc(-y_mid / _SQRT2)) + 0.5 * ops.square(y_mid) + 0.5 * LOG_2PI
    y_tail = ops.minimum(y, _ASYMPTOTIC)
    r = 1.0 / ops.square(y_tail)
    series = 1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r * (1.0 - 9.0 * r))))
    tail = ops.log(series) - ops.log(-y_tail)
    return ops.where(y >= _ASYMPTOTIC, mid, tail)


def _log_phi(y):
    return -0.5 * ops.square(y) - 0.5 * LOG_2PI


def log_ndtr(y):
    """log Phi(y), finite for every finite y, accurate in both tails (float64 recommended)."""
    neg = ops.minimum(y, 0.0)
    pos = ops.minimum(-y, 0.0)
    return ops.where(y <= 0, _log_phi(neg) + _log_mills_lower(neg),
                     ops.log1p(-ops.exp(_log_phi(pos) + _log_mills_lower(pos))))


def _ndtri_lower(log_p, newton_steps=3):
    """Phi^-1(exp(log_p)) for log_p <= log(1/2) (a value <= 0), by a closed-form start
    (erfinv in the body, the asymptotic expansion in the tail) and Newton steps on
    log Phi, which is concave, so the steps converge from either side."""
    log_p = ops.minimum(log_p, float(np.log(0.5)))
    p = ops.exp(ops.maximum(log_p, -30.0))
    body = _SQRT2 * ops.erfinv(2.0 * p - 1.0)
    t = -2.0 * ops.minimum(log_p, -1.0)
    tail = -ops.sqrt(ops.maximum(t - ops.log(t) - LOG_2PI, 1.0))
    y = ops.where(log_p > -30.0, body, tail)
    for _ in range(newton_steps):
        log_mills = _log_mills_lower(y)
        y = y - (_log_phi(y) + log_mills - log_p) * ops.exp(log_mills)
        y = ops.minimum(y, 0.0)
    return y


def ndtri_from_logs(log_cdf, log_sf):
    """Phi^-1(F) from log F and log(1 - F), using the smaller tail for precision."""
    y = _ndtri_lower(ops.minimum(log_cdf, log_sf))
    return ops.where(log_cdf <= log_sf, y, -y)


# ----- monotone rational-quadratic spline with linear tails -----------------------------
def _gather(params, idx):
    """params (d, K), idx (N, d) -> params[j, idx[n, j]] of shape (N, d), as one flat take."""
    d, k = int(params.shape[0]), int(params.shape[1])
    offsets = ops.cast(ops.arange(d) * k, "int32")
    return ops.take(ops.reshape(params, (-1,)), idx + offsets)


def _bin(v, knots):
    """Bin index in 0..K-2 of each v (N, d) among increasing knots (d, K)."""
    inner = knots[None, :, 1:-1]
    return ops.cast(ops.sum(ops.cast(v[..., None] >= inner, "int32"), axis=-1), "int32")


def rq_spline(x, xk, yk, dk, inverse=False):
    """Evaluate the spline (or its inverse) per feature; returns (value, log slope)."""
    src, dst = (yk, xk) if inverse else (xk, yk)
    lo, hi = src[:, 0], src[:, -1]
    v = ops.clip(x, lo, hi)
    idx = _bin(v, src)
    x0, x1 = _gather(xk, idx), _gather(xk, idx + 1)
    y0, y1 = _gather(yk, idx), _gather(yk, idx + 1)
    d0, d1 = _gather(dk, idx), _gather(dk, idx + 1)
    w, h = x1 - x0, y1 - y0
    s = h / w
    c = d0 + d1 - 2.0 * s
    if inverse:
        dy = v - y0
        a = h * (s - d0) + dy * c
        b = h * d0 - dy * c
        q = -s * dy
        disc = ops.maximum(ops.square(b) - 4.0 * a * q, 0.0)
        xi = ops.clip((2.0 * q) / (-b - ops.sqrt(disc)), 0.0, 1.0)
        inside = x0 + xi * w
    else:
        xi = (v - x0) / w
    t = xi * (1.0 - xi)
    den = s + c * t
    if not inverse:
        inside = y0 + h * (s * ops.square(xi) + d0 * t) / den
    log_slope = (2.0 * ops.log(s) + ops.log(d1 * ops.square(xi) + 2.0 * s * t + d0 * ops.square(1.0 - xi))
                 - 2.0 * ops.log(den))
    # Linear tails: slope d_0 below the first knot, d_{K-1} above the last.
    d_lo, d_hi = dk[:, 0], dk[:, -1]
    out_lo, out_hi = dst[:, 0], dst[:, -1]
    if inverse:
        below = out_lo + (x - lo) / d_lo
        above = out_hi + (x - hi) / d_hi
    else:
        below = out_lo + (x - lo) * d_lo
        above = out_hi + (x - hi) * d_hi
    value = ops.where(x < lo, below, ops.where(x > hi, above, inside))
    log_slope = ops.where(x < lo, ops.log(d_lo), ops.where(x > hi, ops.log(d_hi), log_slope))
    return value, log_slope


def _inverse_softplus(v):
    v = np.asarray(v, dtype="float64")
    return np.where(v > 20.0, v, np.log(np.expm1(np.maximum(v, 1e-30))))


def _smoothed_cdf_knots(x, num_knots, bandwidth, shrinkage):
    """Knots (x_k, y_k, d_k), each (d, K), of Phi^-1(F_hat) for the columns of x (n, d),
    F_hat the Gaussian-kernel-smoothed empirical CDF of each column.

    x_k are empirical quantiles at levels evenly spaced in Gaussian space (from the
    smallest to the largest data point); y_k = Phi^-1(F_hat(x_k)), taken from the smaller
    of F_hat and 1 - F_hat; d_k = f_hat(x_k) / phi(y_k), the exact slope of the smoothed
    map. `shrinkage` blends the map toward the standardizing affine map (x - mean) / std.
    """
    x = np.sort(np.asarray(x, dtype="float64"), axis=0)
    n = len(x)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    iqr = (x[int(0.75 * (n - 1))] - x[int(0.25 * (n - 1))]) / 1.349
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    h = (bandwidth * 0.9 * n ** -0.2) * spread  # Silverman's rule, times `bandwidth`
    edge = special.ndtri(1.0 - 0.5 / n)
    levels = special.ndtr(np.linspace(-edge, edge, num_knots))
    xk = np.quantile(x, levels, axis=0).T  # (d, K)
    gaps = np.maximum(np.diff(xk, axis=1), 1e-4 * std[:, None])
    xk = xk[:, :1] + np.concatenate([np.zeros((len(xk), 1)), np.cumsum(gaps, axis=1)], axis=1)
    if bandwidth == 0:  # no kernel: the spline interpolates the empirical quantiles
        yk = np.broadcast_to(np.linspace(-edge, edge, num_knots), xk.shape)
        secant = np.diff(yk, axis=1) / np.diff(xk, axis=1)
        inner = 2.0 / (1.0 / secant[:, 1:] + 1.0 / secant[:, :-1])  # harmonic mean (Fritsch-Carlson)
        dk = np.concatenate([secant[:, :1], inner, secant[:, -1:]], axis=1)
        return _shrink(xk, yk, dk, mean, std, shrinkage)
    cdf, pdf = np.empty_like(xk), np.empty_like(xk)
    step = max(1, int(4e6 // (num_knots * n)))  # columns per chunk, bounding memory
    for j in range(0, x.shape[1], step):
        z = (xk[j:j + step, :, None] - x.T[j:j + step, None, :]) / h[j:j + step, None, None]  # (c, K, n)
        cdf[j:j + step] = special.ndtr(z).mean(axis=2)
        pdf[j:j + step] = np.exp(-0.5 * z**2).mean(axis=2) / (np.sqrt(2 * np.pi) * h[j:j + step, None])
    sf = 1.0 - cdf  # exact enough: F_hat lies in [1/(2n), 1 - 1/(2n)] at the knots
    yk = np.where(cdf < sf, special.ndtri(np.minimum(cdf, 0.5)), -special.ndtri(np.minimum(sf, 0.5)))
    dk = pdf * np.sqrt(2 * np.pi) * np.exp(0.5 * yk**2)
    return _shrink(xk, yk, dk, mean, std, shrinkage)


def _shrink(xk, yk, dk, mean, std, shrinkage):
    if shrinkage > 0:
        yk = (1 - shrinkage) * yk + shrinkage * (xk - mean[:, None]) / std[:, None]
        dk = (1 - shrinkage) * dk + shrinkage / std[:, None]
    gaps = np.maximum(np.diff(yk, axis=1), 1e-6)
    yk = yk[:, :1] + np.concatenate([np.zeros((len(yk), 1)), np.cumsum(gaps, axis=1)], axis=1)
    return xk, yk, np.maximum(dk, 1e-6)


def _logistic_mixture_em(x, k, bandwidth, iterations=30):
    """Maximum-likelihood mixture of k logistics per column of x (n, d), by EM started from
    centres at quantiles; component scales never fall below the kernel width of the
    spline fit (Silverman's rule times `bandwidth`), which keeps the CDF smooth.
    Returns (loc, log_scale, logits), each (d, k)."""
    x = np.asarray(x, dtype="float64").T[:, :, None]  # (d, n, 1)
    n = x.shape[1]
    std = x.std(axis=1) + 1e-6  # (d, 1)
    iqr = np.subtract(*np.percentile(x, [75, 25], axis=1)) / 1.349
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    floor = np.maximum(max(bandwidth, 0.05) * 0.9 * spread * n ** -0.2, 1e-3 * std) * np.sqrt(3.0) / np.pi
    loc = np.quantile(x[..., 0], (np.arange(k) + 0.5) / k, axis=1).T  # (d, k)
    padded = np.concatenate([loc[:, :1], loc, loc[:, -1:]], axis=1)
    scale = np.maximum(0.5 * (padded[:, 2:] - padded[:, :-2]) * np.sqrt(3.0) / np.pi, floor)
    log_w = np.full(loc.shape, -np.log(k))
    for _ in range(iterations):
        z = (x - loc[:, None, :]) / scale[:, None, :]  # (d, n, k)
        log_r = log_w[:, None, :] - np.logaddexp(0, z) - np.logaddexp(0, -z) - np.log(scale[:, None, :])
        log_r -= special.logsumexp(log_r, axis=2, keepdims=True)
        r = np.exp(log_r)
        mass = r.sum(axis=1) + 1e-12  # (d, k)
        log_w = np.log(mass / n)
        loc = (r * x).sum(axis=1) / mass
        var = (r * (x - loc[:, None, :]) ** 2).sum(axis=1) / mass
        scale = np.maximum(np.sqrt(var) * np.sqrt(3.0) / np.pi, floor)
    return loc, np.log(scale), log_w - log_w.mean(axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="tfflows")
class MarginalGaussianization(FittedOnce, Bijector):
    """Per-feature Gaussianization y_i = Phi^-1(F_i(x_i)) (Chen & Gopinath 2000).

    forward:  y = Phi^-1(F(x))          log_det = sum_i log f_i(x_i) - log phi(y_i)
    inverse:  x = F^-1(Phi(y))          log_det = -forward log_det at x

    method="spline": F is a kernel-smoothed empirical CDF represented through the
        monotone rational-quadratic spline s = Phi^-1 o F with `num_knots` knots and
        linear (Gaussian-tail) extensions; fitted by `fit_from_data(x)` without
        gradients; analytic inverse; log_det = sum_i log s_i'(x_i). Its weights are
        unconstrained (knot gaps through softplus, slopes through exp of a soft-clamped
        value), so every weight value is a valid invertible map; they are fixed unless
        `train_spline=True` (then gradient training refines the fitted map). `bandwidth` scales the
        kernel width (Silverman's rule); `shrinkage` in [0, 1) blends the map toward the
        affine standardization (x - mean) / std, the regularization for small data.
        `bandwidth=0` interpolates the empirical quantiles instead (no kernel): the most
        Gaussian outputs on the training data, but steep tails that generalize poorly.
    method="logistic": F(x) = sum_k w_k sigmoid((x - mu_k) / s_k), trainable, with
        `num_components` components initialized from data (centres at quantiles);
        inverse by 60 bisection steps (one compiled `keras.ops.fori_loop`) in a bracket
        given by the mixture itself, then Newton steps kept inside the bracket
        (relative tolerance far below 1e-6).
        Its CDF math runs in float64.

    Data-dependent initialization: `initialize_from_data(x)` fits once (the first call);
    `fit_from_data(x)` always refits.
    """

    def __init__(self, method="spline", num_knots=32, num_components=16, bandwidth=0.5,
                 shrinkage=0.0, train_spline=False, **kwargs):
        super().__init__(**kwargs)
        self.train_spline = bool(train_spline)
        if method not in ("spline", "logistic"):
            raise ValueError(f"method must be 'spline' or 'logistic'; got {method!r}.")
        if not 0.0 <= float(shrinkage) < 1.0:
            raise ValueError(f"shrinkage must be in [0, 1); got {shrinkage}.")
        self.method = method
        self.num_knots = int(num_knots)
        self.num_components = int(num_components)
        self.bandwidth = float(bandwidth)
        self.shrinkage = float(shrinkage)
        if self.method == "spline" and self.num_knots < 2:
            raise ValueError("num_knots must be at least 2.")

    def build(self, input_shape):
        d = int(input_shape[-1])
        self.features = d
        if self.method == "spline":
            k = self.num_knots
            fixed = dict(trainable=self.train_spline)
            start = keras.initializers.Constant(-3.0)
            self.x_start = self.add_weight(shape=(d,), initializer=start, name="x_start", **fixed)
            self.x_gaps = self.add_weight(shape=(d, k - 1), initializer=keras.initializers.Constant(
                float(_inverse_softplus(6.0 / (k - 1)))), name="x_gaps", **fixed)
            self.y_start = self.add_weight(shape=(d,), initializer=start, name="y_start", **fixed)
            self.y_gaps = self.add_weight(shape=(d, k - 1), initializer=keras.initializers.Constant(
                float(_inverse_softplus(6.0 / (k - 1)))), name="y_gaps", **fixed)
            self.log_slopes = self.add_weight(shape=(d, k), initializer="zeros", name="log_slopes", **fixed)
        else:
            k = self.num_components
            self.loc = self.add_weight(shape=(d, k), initializer=keras.initializers.RandomNormal(stddev=1.0),
                                       name="loc")
            self.log_scale = self.add_weight(shape=(d, k), initializer="zeros", name="log_scale")
            self.logits = self.add_weight(shape=(d, k), initializer="zeros", name="logits")
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False, name="initialized")

    # ----- fitting -------------------------------------------------------------------------
    def fit_from_data(self, x):
        """Fit the marginal CDFs to the rows of x (N, d); returns self."""
        x = np.asarray(ops.convert_to_numpy(x), dtype="float64").reshape(-1, int(np.shape(x)[-1]))
        self._ensure_built(ops.convert_to_tensor(x[:1], self.compute_dtype))
        if self.method == "spline":
            xk, yk, dk = _smoothed_cdf_knots(x, self.num_knots, self.bandwidth, self.shrinkage)
            self.x_start.assign(xk[:, 0].astype(self.x_start.dtype))
            self.x_gaps.assign(_inverse_softplus(np.diff(xk, axis=1)).astype(self.x_gaps.dtype))
            self.y_start.assign(yk[:, 0].astype(self.y_start.dtype))
            self.y_gaps.assign(_inverse_softplus(np.diff(yk, axis=1)).astype(self.y_gaps.dtype))
            raw = 8.0 * np.arctanh(np.clip(np.log(dk) / 8.0, -0.999, 0.999))
            self.log_slopes.assign(raw.astype(self.log_slopes.dtype))
        else:
            loc, log_scale, logits = _logistic_mixture_em(x, self.num_components, self.bandwidth)
            self.loc.assign(loc.astype(self.loc.dtype))
            self.log_scale.assign(log_scale.astype(self.log_scale.dtype))
            self.logits.assign(logits.astype(self.logits.dtype))
        self.initialized.assign(1.0)
        return self

    def set_identity(self, half_width=5.0):
        """Make the spline the identity map y = x (knots on the diagonal, slopes 1)."""
        if self.method != "spline":
            raise ValueError("set_identity applies to method='spline'.")
        d, k = self.features, self.num_knots
        gap = 2.0 * half_width / (k - 1)
        for start, gaps in ((self.x_start, self.x_gaps), (self.y_start, self.y_gaps)):
            start.assign(np.full((d,), -half_width, start.dtype))
            gaps.assign(np.full((d, k - 1), _inverse_softplus(gap), gaps.dtype))
        self.log_slopes.assign(np.zeros((d, k), self.log_slopes.dtype))
        self.initialized.assign(1.0)
        return self

    def mirror(self, mask):
        """Replace the map s_i of each feature with mask_i True by -s_i(-x), also increasing,
        with the same log-slopes at mirrored points (used to move sign flips through a
        flow exactly). Returns self."""
        mask = np.asarray(mask, dtype=bool)
        if self.method == "spline":
            x_end = _numpy(self._knots("float64")[0])[:, -1]
            y_end = _numpy(self._knots("float64")[1])[:, -1]
            for start, gaps, end in ((self.x_start, self.x_gaps, x_end), (self.y_start, self.y_gaps, y_end)):
                start.assign(np.where(mask, -end, _numpy(start)).astype(start.dtype))
                gaps.assign(np.where(mask[:, None], _numpy(gaps)[:, ::-1], _numpy(gaps)).astype(gaps.dtype))
            slopes = _numpy(self.log_slopes)
            self.log_slopes.assign(np.where(mask[:, None], slopes[:, ::-1], slopes).astype(slopes.dtype))
        else:  # 1 - F(-x) = sum_k w_k sigmoid((x + mu_k) / s_k)
            self.loc.assign(np.where(mask[:, None], -_numpy(self.loc), _numpy(self.loc)).astype(self.loc.dtype))
        return self

    # ----- spline --------------------------------------------------------------------------
    def _knots(self, dtype):
        def cum(start, gaps):
            gaps = ops.softplus(ops.cast(gaps, dtype))
            return ops.concatenate([ops.cast(start, dtype)[:, None],
                                    ops.cast(start, dtype)[:, None] + ops.cumsum(gaps, axis=1)], axis=1)

        dk = ops.exp(soft_clamp(ops.cast(self.log_slopes, dtype), 8.0))
        return cum(self.x_start, self.x_gaps), cum(self.y_start, self.y_gaps), dk

    # ----- logistic mixture --------------------------------------------------------------------
    def _mixture(self):
        loc = ops.cast(self.loc, "float64")
        log_s = soft_clamp(ops.cast(self.log_scale, "float64"), 7.0)
        log_w = ops.log_softmax(ops.cast(self.logits, "float64"), axis=-1)
        return loc, log_s, log_w

    def _mixture_logs(self, x, mixture):
        """log F, log(1 - F) and log f at x (N, d), all in float64."""
        loc, log_s, log_w = mixture
        z = (x[..., None] - loc) * ops.exp(-log_s)
        ls_pos, ls_neg = ops.log_sigmoid(z), ops.log_sigmoid(-z)
        log_cdf = ops.logsumexp(log_w + ls_pos, axis=-1)
        log_sf = ops.logsumexp(log_w + ls_neg, axis=-1)
        log_pdf = ops.logsumexp(log_w + ls_pos + ls_neg - log_s, axis=-1)
        return log_cdf, log_sf, log_pdf

    def _logistic_inverse(self, y):
        mixture = self._mixture()
        loc, log_s, _ = mixture
        log_cdf_t, log_sf_t = log_ndtr(y), log_ndtr(-y)
        logit_t = log_cdf_t - log_sf_t
        # F(x) <= max_k sigmoid(z_k) and >= min_k sigmoid(z_k): the root lies between
        # min_k and max_k of mu_k + s_k * logit(target).
        ends = loc + ops.exp(log_s) * logit_t[..., None]
        lo, hi = ops.stop_gradient(ops.min(ends, axis=-1)), ops.stop_gradient(ops.max(ends, axis=-1))
        lower = log_cdf_t <= log_sf_t

        def residual(x):  # increasing in x, zero at the root, in the precise tail
            log_cdf, log_sf, log_pdf = self._mixture_logs(x, mixture)
            return ops.where(lower, log_cdf - log_cdf_t, log_sf_t - log_sf), log_cdf, log_sf, log_pdf

        def bisect(_, bracket):
            lo, hi = bracket
            mid = 0.5 * (lo + hi)
            above = residual(mid)[0] > 0
            return ops.where(above, lo, mid), ops.where(above, mid, hi)

        # One compiled loop (tf.while_loop / lax.fori_loop), not 60 unrolled steps; the
        # bracket carries no gradient (the last Newton step below supplies it).
        lo, hi = (ops.stop_gradient(v) for v in ops.fori_loop(0, 60, bisect, (lo, hi)))
        x = 0.5 * (lo + hi)
        tiny = float(np.finfo(keras.backend.standardize_dtype(x.dtype)).tiny)

        def newton(x):
            r, log_cdf, log_sf, log_pdf = residual(x)
            # d residual / dx = f / F (lower tail) or f / (1 - F) (upper tail)
            return x - r / ops.maximum(ops.exp(log_pdf - ops.where(lower, log_cdf, log_sf)), tiny)

        for _ in range(2):
            x = ops.clip(newton(x), lo, hi)
        # A last, unclipped step from the converged root carries the exact derivative
        # dx/dy = -(d residual/dy) / (d residual/dx) (implicit function theorem) to autodiff.
        return newton(ops.stop_gradient(x))

    # ----- the bijector ----------------------------------------------------------------------
    def _flat(self, x):
        return ops.reshape(x, (-1, self.features))

    def _forward_and_log_det(self, x, context=None, training=False):
        shape = ops.shape(x)
        flat = self._flat(x)
        if self.method == "spline":
            y, log_slope = rq_spline(flat, *self._knots(flat.dtype))
        else:
            x64 = ops.cast(flat, "float64")
            log_cdf, log_sf, log_pdf = self._mixture_logs(x64, self._mixture())
            y64 = ndtri_from_logs(log_cdf, log_sf)
            y, log_slope = ops.cast(y64, x.dtype), ops.cast(log_pdf - _log_phi(y64), x.dtype)
        log_det = ops.reshape(ops.sum(log_slope, axis=-1), shape[:-1])
        return ops.reshape(y, shape), log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        shape = ops.shape(y)
        flat = self._flat(y)
        if self.method == "spline":
            x, log_slope = rq_spline(flat, *self._knots(flat.dtype), inverse=True)
        else:
            y64 = ops.cast(flat, "float64")
            x64 = self._logistic_inverse(y64)
            log_pdf = self._mixture_logs(x64, self._mixture())[2]
            x, log_slope = ops.cast(x64, y.dtype), ops.cast(log_pdf - _log_phi(y64), y.dtype)
        log_det = -ops.reshape(ops.sum(log_slope, axis=-1), shape[:-1])
        return ops.reshape(x, shape), log_det

    def get_config(self):
        return {**super().get_config(), "method": self.method, "num_knots": self.num_knots,
                "num_components": self.num_components, "bandwidth": self.bandwidth,
                "shrinkage": self.shrinkage, "train_spline": self.train_spline}
