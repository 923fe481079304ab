"""The mixture-of-logistics marginal maps, `LogisticMaps` (Gaussianization Flows,
Meng et al. 2020, arXiv:2003.01941), in keras.ops and float64:

F(x) = sum_k w_k sigmoid((x - mu_k) / s_k), handled as (log F, log(1 - F), log f), and its
inverse by bisection in a bracket given by the mixture, then safeguarded Newton steps.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import soft_clamp
from tfflows.gaussianization.marginal_fit import logistic_mixture_em
from tfflows.gaussianization.normal_cdf import log_ndtr, log_phi, ndtri_from_logs


def mixture(loc, log_scale, logits):
    """(mu, log s, log w) in float64 from the layer's weights (log s soft-clamped)."""
    return (
        ops.cast(loc, "float64"),
        soft_clamp(ops.cast(log_scale, "float64"), 7.0),
        ops.log_softmax(ops.cast(logits, "float64"), axis=-1),
    )


def mixture_logs(x, params):
    """log F, log(1 - F) and log f at x (N, d), all in float64."""
    loc, log_s, log_w = params
    z = (x[..., None] - loc) * ops.exp(-log_s)
    ls_pos, ls_neg = ops.log_sigmoid(z), ops.log_sigmoid(-z)
    log_cdf = ops.logsumexp(log_w + ls_pos, axis=-1)
    log_sf = ops.logsumexp(log_w + ls_neg, axis=-1)
    log_pdf = ops.logsumexp(log_w + ls_pos + ls_neg - log_s, axis=-1)
    return log_cdf, log_sf, log_pdf


def inverse_cdf(y, params):
    """x = F^-1(Phi(y)) (N, d) in float64: 60 bisection steps (one compiled
    `keras.ops.fori_loop`) in the bracket [min_k, max_k] of mu_k + s_k logit(Phi(y)),
    then Newton steps kept inside it; a last unclipped Newton step carries the exact
    derivative to autodiff."""
    loc, log_s, _ = params
    log_cdf_t, log_sf_t = log_ndtr(y), log_ndtr(-y)
    # F(x) <= max_k sigmoid(z_k) and >= min_k sigmoid(z_k): the root lies between
    # min_k and max_k of mu_k + s_k * logit(target).
    ends = loc + ops.exp(log_s) * (log_cdf_t - log_sf_t)[..., None]
    lo = ops.stop_gradient(ops.min(ends, axis=-1))
    hi = ops.stop_gradient(ops.max(ends, axis=-1))
    lower = log_cdf_t <= log_sf_t

    def residual(x):  # increasing in x, zero at the root, in the precise tail
        log_cdf, log_sf, log_pdf = mixture_logs(x, params)
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
        slope = ops.exp(log_pdf - ops.where(lower, log_cdf, log_sf))
        return x - r / ops.maximum(slope, tiny)

    for _ in range(2):
        x = ops.clip(newton(x), lo, hi)
    # A last, unclipped step from the converged root carries the exact derivative
    # dx/dy = -(d residual/dy) / (d residual/dx) (implicit function theorem) to autodiff.
    return newton(ops.stop_gradient(x))


class LogisticMaps:
    """The mixture-of-logistics representation of `MarginalGaussianization(
    method="logistic")`: F(x) = sum_k w_k sigmoid((x - mu_k) / s_k), trainable, with
    `num_components` components initialized from data by EM (centres at quantiles);
    inverse by `inverse_cdf` (relative tolerance far below 1e-6).

    Args:
        layer: the `MarginalGaussianization` whose weights and settings these are.
    """

    def __init__(self, layer):
        self.layer = layer

    def build(self, d):
        layer, k = self.layer, self.layer.num_components
        spread = keras.initializers.RandomNormal(stddev=1.0)
        self.loc = layer.add_weight(shape=(d, k), initializer=spread, name="loc")
        self.log_scale = layer.add_weight(shape=(d, k), initializer="zeros", name="log_scale")
        self.logits = layer.add_weight(shape=(d, k), initializer="zeros", name="logits")

    def fit(self, x):
        """Fit the mixtures to the rows x (N, d) float64 by EM."""
        loc, log_scale, logits = logistic_mixture_em(
            x, self.layer.num_components, self.layer.bandwidth
        )
        self.loc.assign(loc.astype(self.loc.dtype))
        self.log_scale.assign(log_scale.astype(self.log_scale.dtype))
        self.logits.assign(logits.astype(self.logits.dtype))

    def fit_summary(self, summary):
        raise ValueError(
            "Only method='spline' fits from a summary; the logistic mixture needs the rows."
        )

    def set_identity(self, half_width):
        raise ValueError("set_identity applies to method='spline'.")

    def mirror(self, mask):
        """1 - F(-x) = sum_k w_k sigmoid((x + mu_k) / s_k): masked centres change sign."""
        loc = np.asarray(ops.convert_to_numpy(self.loc))
        self.loc.assign(np.where(mask[:, None], -loc, loc).astype(self.loc.dtype))

    def map_and_log_slope(self, flat, inverse):
        """(Phi^-1(F(x)) or F^-1(Phi(y)), the log-slopes), each (N, d) in flat's dtype."""
        params = mixture(self.loc, self.log_scale, self.logits)
        v64 = ops.cast(flat, "float64")
        if inverse:
            x64 = inverse_cdf(v64, params)
            log_pdf = mixture_logs(x64, params)[2]
            return ops.cast(x64, flat.dtype), ops.cast(log_phi(v64) - log_pdf, flat.dtype)
        log_cdf, log_sf, log_pdf = mixture_logs(v64, params)
        y64 = ndtri_from_logs(log_cdf, log_sf)
        return ops.cast(y64, flat.dtype), ops.cast(log_pdf - log_phi(y64), flat.dtype)
