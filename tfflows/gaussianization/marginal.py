"""Marginal Gaussianization: y_i = Phi^-1(F_i(x_i)) for each feature i, with an exact log-det.

Two ways to represent the monotone maps, chosen by `method`:

- "spline" (fitted from data, no gradients): the map s_i = Phi^-1 o F_i itself is the
  package's monotone rational-quadratic spline (`tfflows.bijectors.rq_spline`) through K
  knots (x_k, y_k) with slopes d_k, extended linearly beyond the outer knots. The knots interpolate Phi^-1 of a Gaussian-kernel-smoothed
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

from tfflows._math import eager_compiled, inverse_soft_clamp, reduce_log_det, soft_clamp
from tfflows.bijectors.base import Bijector, FittedOnce
from tfflows.bijectors.rq_spline import spline_from_knots
from tfflows.gaussianization.marginal_fit import inverse_softplus, logistic_mixture_em, smoothed_cdf_knots
from tfflows.gaussianization.normal_cdf import log_phi, log_ndtr, ndtri_from_logs

# Eager calls on at least this many values run the spline compiled (one compilation per
# shape, ~0.5 s, repaid after a few calls: the greedy fits' repeated full-data passes).
COMPILE_MIN_VALUES = 2**18
_compiled_spline = eager_compiled(spline_from_knots)
_compiled_inverse_spline = eager_compiled(lambda y, xk, yk, dk: spline_from_knots(y, xk, yk, dk, inverse=True))


def _spline(flat, knots, inverse):
    large = flat.shape[0] is not None and flat.shape[0] * flat.shape[1] >= COMPILE_MIN_VALUES
    if not large:
        return spline_from_knots(flat, *knots, inverse=inverse)
    return (_compiled_inverse_spline if inverse else _compiled_spline)(flat, *knots)


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


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
        `max_tail_slope` (None: no limit) caps the slopes at the outer knots, and so of
        the linear tails, at max_tail_slope / std of each column: beyond the training
        range the map is then never steeper than that multiple of the standardization
        (relaxed in outer bins narrower than about 1% of the std, where a forced cap
        would put a kink at float32 resolution; `marginal_fit.CAP_RELAX_WIDTH`).
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
                 shrinkage=0.0, train_spline=False, max_tail_slope=None, **kwargs):
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
        if max_tail_slope is not None and not float(max_tail_slope) > 0:
            raise ValueError(f"max_tail_slope must be positive or None; got {max_tail_slope}.")
        self.max_tail_slope = None if max_tail_slope is None else float(max_tail_slope)
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
                float(inverse_softplus(6.0 / (k - 1)))), name="x_gaps", **fixed)
            self.y_start = self.add_weight(shape=(d,), initializer=start, name="y_start", **fixed)
            self.y_gaps = self.add_weight(shape=(d, k - 1), initializer=keras.initializers.Constant(
                float(inverse_softplus(6.0 / (k - 1)))), name="y_gaps", **fixed)
            self.log_slopes = self.add_weight(shape=(d, k), initializer="zeros", name="log_slopes", **fixed)
        else:
            k = self.num_components
            self.loc = self.add_weight(shape=(d, k), initializer=keras.initializers.RandomNormal(stddev=1.0),
                                       name="loc")
            self.log_scale = self.add_weight(shape=(d, k), initializer="zeros", name="log_scale")
            self.logits = self.add_weight(shape=(d, k), initializer="zeros", name="logits")
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False, name="initialized")

    # ----- fitting -------------------------------------------------------------------------
    def fit_from_summary(self, summary):
        """Fit the spline marginals from a summary of the data instead of the rows (a
        `sketches.HistogramSketch` of a stream, or `marginal_fit.SampleSummary`); returns self."""
        if self.method != "spline":
            raise ValueError("Only method='spline' fits from a summary; the logistic mixture needs the rows.")
        if not self.built:
            self.build((None, len(summary.mean)))
        self._set_knots(*smoothed_cdf_knots(summary, self.num_knots, self.bandwidth, self.shrinkage,
                                           self.max_tail_slope))
        self.initialized.assign(1.0)
        return self

    def _set_knots(self, xk, yk, dk):
        self.x_start.assign(xk[:, 0].astype(self.x_start.dtype))
        self.x_gaps.assign(inverse_softplus(np.diff(xk, axis=1)).astype(self.x_gaps.dtype))
        self.y_start.assign(yk[:, 0].astype(self.y_start.dtype))
        self.y_gaps.assign(inverse_softplus(np.diff(yk, axis=1)).astype(self.y_gaps.dtype))
        self.log_slopes.assign(inverse_soft_clamp(np.log(dk), 8.0).astype(self.log_slopes.dtype))

    def fit_from_data(self, x):
        """Fit the marginal CDFs to the rows of x (N, d); returns self."""
        x = np.asarray(ops.convert_to_numpy(x), dtype="float64").reshape(-1, int(np.shape(x)[-1]))
        self._ensure_built(ops.convert_to_tensor(x[:1], self.compute_dtype))
        if self.method == "spline":
            self._set_knots(*smoothed_cdf_knots(x, self.num_knots, self.bandwidth, self.shrinkage,
                                                self.max_tail_slope))
        else:
            loc, log_scale, logits = logistic_mixture_em(x, self.num_components, self.bandwidth)
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
            gaps.assign(np.full((d, k - 1), inverse_softplus(gap), gaps.dtype))
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
            y, log_slope = _spline(flat, self._knots(flat.dtype), inverse=False)
        else:
            x64 = ops.cast(flat, "float64")
            log_cdf, log_sf, log_pdf = self._mixture_logs(x64, self._mixture())
            y64 = ndtri_from_logs(log_cdf, log_sf)
            y, log_slope = ops.cast(y64, x.dtype), ops.cast(log_pdf - log_phi(y64), x.dtype)
        log_det = ops.reshape(reduce_log_det(log_slope, 1), shape[:-1])
        return ops.reshape(y, shape), log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        shape = ops.shape(y)
        flat = self._flat(y)
        if self.method == "spline":
            x, log_slope = _spline(flat, self._knots(flat.dtype), inverse=True)
        else:
            y64 = ops.cast(flat, "float64")
            x64 = self._logistic_inverse(y64)
            log_pdf = self._mixture_logs(x64, self._mixture())[2]
            x, log_slope = ops.cast(x64, y.dtype), ops.cast(log_phi(y64) - log_pdf, y.dtype)
        log_det = ops.reshape(reduce_log_det(log_slope, 1), shape[:-1])
        return ops.reshape(x, shape), log_det

    def get_config(self):
        return {**super().get_config(), "method": self.method, "num_knots": self.num_knots,
                "num_components": self.num_components, "bandwidth": self.bandwidth,
                "shrinkage": self.shrinkage, "train_spline": self.train_spline, "max_tail_slope": self.max_tail_slope}
