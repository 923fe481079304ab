"""Elementwise transformers: the invertible maps tau(u; theta) that coupling and
autoregressive layers apply to each transformed feature, with parameters theta from a
conditioner. One object per kind of math, passed to the layers (never copied or mixed in).

A transformer reads parameters laid out parameter-major, `params[..., p, i]` = parameter
p of feature (or channel) i, and returns elementwise values and log-derivatives; the
layer reduces the log-derivatives over its event (`tfflows._math.reduce_log_det`).
"""

from keras import ops

from tfflows._math import soft_clamp
from tfflows.bijectors.rq_spline import rational_quadratic_spline, spline_params_per_feature


class AdditiveTransformer:
    """tau(u; t) = u + t;  tau^-1(v; t) = v - t;  log|tau'| = 0 (NICE)."""

    params_per_feature = 1

    def config(self):
        """The constructor arguments, merged into the owning layer's config."""
        return {}

    def forward(self, u, params):
        return u + params[..., 0, :], None

    def inverse(self, v, params):
        return v - params[..., 0, :], None


class AffineTransformer:
    """tau(u; t, s) = u exp(s) + t,  tau^-1(v; t, s) = (v - t) exp(-s),  log|tau'| = s,
    with s = clamp tanh(s_raw / clamp), so every parameter value gives an invertible map.
    Parameters [t, s_raw] (RealNVP, MAF, IAF).

    Args:
        log_scale_clamp: the clamp, a soft bound on every log-scale s.
    """

    params_per_feature = 2

    def __init__(self, log_scale_clamp=3.0):
        self.log_scale_clamp = float(log_scale_clamp)

    def config(self):
        return {"log_scale_clamp": self.log_scale_clamp}

    def _shift_and_log_scale(self, params):
        # unstack, not params[..., 0, :]: the gradient of a strided slice is expensive on
        # TensorFlow's CPU kernels without XLA
        shift, log_scale = ops.unstack(params, 2, axis=-2)
        return shift, soft_clamp(log_scale, self.log_scale_clamp)

    def forward(self, u, params):
        shift, log_scale = self._shift_and_log_scale(params)
        return u * ops.exp(log_scale) + shift, log_scale

    def inverse(self, v, params):
        shift, log_scale = self._shift_and_log_scale(params)
        return (v - shift) * ops.exp(-log_scale), -log_scale


class SplineTransformer:
    """tau = the monotone rational-quadratic spline with `bins` bins on [-bound, bound]
    and identity tails (`tfflows.bijectors.rq_spline.rational_quadratic_spline`);
    3 bins - 1 parameters per feature: widths, heights, interior knot derivatives.

    Args:
        bins: number of spline bins.
        bound: the spline acts on [-bound, bound]; identity outside.
    """

    def __init__(self, bins=8, bound=5.0):
        self.bins = int(bins)
        self.bound = float(bound)
        self.params_per_feature = spline_params_per_feature(self.bins)

    def config(self):
        return {"bins": self.bins, "bound": self.bound}

    def forward(self, u, params):
        return rational_quadratic_spline(u, params, self.bound, axis=-2)

    def inverse(self, v, params):
        return rational_quadratic_spline(v, params, self.bound, inverse=True, axis=-2)
