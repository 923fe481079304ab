"""Marginal Gaussianization: y_i = Phi^-1(F_i(x_i)) for each feature i, with an exact log-det.

Two representations of the monotone maps, two classes behind the one registered layer
`MarginalGaussianization` (its `method` chooses one, once, when it is made):

- `SplineMaps` (method="spline", fitted from data, no gradients): the map
  s_i = Phi^-1 o F_i itself is the package's monotone rational-quadratic spline
  (`tfflows.bijectors.rq_spline`) through K knots (x_k, y_k) with slopes d_k, extended
  linearly beyond the outer knots. The knots interpolate Phi^-1 of a
  Gaussian-kernel-smoothed empirical CDF and its slope (f_hat / phi), so the density of
  the model is that of a smoothed CDF, and it is *the same* map that the forward pass
  evaluates. Linear tails in y mean Gaussian tails in x: every finite input has a finite
  output and log-det.
- `LogisticMaps` (method="logistic", trainable, Gaussianization Flows, Meng et al.
  2020, arXiv:2003.01941): F_i is a mixture of K logistic CDFs with learnable centres,
  log-scales and weights, initialized from data; Phi^-1 is applied in log space
  (`tfflows.gaussianization.marginal_logistic`).

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
from tfflows.gaussianization.marginal_fit import inverse_softplus, smoothed_cdf_knots
from tfflows.gaussianization.marginal_logistic import LogisticMaps

# Eager calls on at least this many values run the spline compiled (one compilation per
# shape, ~0.5 s, repaid after a few calls: the greedy fits' repeated full-data passes).
COMPILE_MIN_VALUES = 2**18
_compiled_spline = eager_compiled(spline_from_knots)
_compiled_inverse_spline = eager_compiled(
    lambda y, xk, yk, dk: spline_from_knots(y, xk, yk, dk, inverse=True)
)


def _spline(flat, knots, inverse):
    large = flat.shape[0] is not None and flat.shape[0] * flat.shape[1] >= COMPILE_MIN_VALUES
    if not large:
        return spline_from_knots(flat, *knots, inverse=inverse)
    return (_compiled_inverse_spline if inverse else _compiled_spline)(flat, *knots)


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


class SplineMaps:
    """The spline representation of `MarginalGaussianization(method="spline")`: F is a
    kernel-smoothed empirical CDF represented through the monotone rational-quadratic
    spline s = Phi^-1 o F with `num_knots` knots and linear (Gaussian-tail) extensions;
    fitted from the rows or from a streamed fit's histogram without gradients; analytic
    inverse; log_det = sum_i log s_i'(x_i). Its weights (made on `layer`) are
    unconstrained (knot gaps through softplus, slopes through exp of a soft-clamped
    value), so every weight value is a valid invertible map; they are fixed unless
    `train_spline=True`. `bandwidth=0` interpolates the empirical quantiles instead (no
    kernel): the most Gaussian outputs on the training data, but steep tails that
    generalize poorly.

    Args:
        layer: the `MarginalGaussianization` whose weights and settings these are.
    """

    def __init__(self, layer):
        if layer.num_knots < 2:
            raise ValueError("num_knots must be at least 2.")
        self.layer = layer

    def build(self, d):
        layer = self.layer
        k, fixed = layer.num_knots, dict(trainable=layer.train_spline)
        start = keras.initializers.Constant(-3.0)
        gaps = keras.initializers.Constant(float(inverse_softplus(6.0 / (k - 1))))
        self.x_start = layer.add_weight(shape=(d,), initializer=start, name="x_start", **fixed)
        self.x_gaps = layer.add_weight(shape=(d, k - 1), initializer=gaps, name="x_gaps", **fixed)
        self.y_start = layer.add_weight(shape=(d,), initializer=start, name="y_start", **fixed)
        self.y_gaps = layer.add_weight(shape=(d, k - 1), initializer=gaps, name="y_gaps", **fixed)
        self.log_slopes = layer.add_weight(
            shape=(d, k), initializer="zeros", name="log_slopes", **fixed
        )

    def fit(self, data):
        """Fit to the rows (N, d) float64, or to a summary of them (`SampleSummary`, a
        `sketches.HistogramSketch`)."""
        layer = self.layer
        xk, yk, dk = smoothed_cdf_knots(
            data, layer.num_knots, layer.bandwidth, layer.shrinkage, layer.max_tail_slope
        )
        self.x_start.assign(xk[:, 0].astype(self.x_start.dtype))
        self.x_gaps.assign(inverse_softplus(np.diff(xk, axis=1)).astype(self.x_gaps.dtype))
        self.y_start.assign(yk[:, 0].astype(self.y_start.dtype))
        self.y_gaps.assign(inverse_softplus(np.diff(yk, axis=1)).astype(self.y_gaps.dtype))
        self.log_slopes.assign(inverse_soft_clamp(np.log(dk), 8.0).astype(self.log_slopes.dtype))

    fit_summary = fit

    def set_identity(self, half_width):
        d, k = self.layer.features, self.layer.num_knots
        gap = 2.0 * half_width / (k - 1)
        for start, gaps in ((self.x_start, self.x_gaps), (self.y_start, self.y_gaps)):
            start.assign(np.full((d,), -half_width, start.dtype))
            gaps.assign(np.full((d, k - 1), inverse_softplus(gap), gaps.dtype))
        self.log_slopes.assign(np.zeros((d, k), self.log_slopes.dtype))

    def mirror(self, mask):
        knots = self.knots("float64")
        x_end, y_end = _numpy(knots[0])[:, -1], _numpy(knots[1])[:, -1]
        for start, gaps, end in (
            (self.x_start, self.x_gaps, x_end),
            (self.y_start, self.y_gaps, y_end),
        ):
            start.assign(np.where(mask, -end, _numpy(start)).astype(start.dtype))
            gaps.assign(
                np.where(mask[:, None], _numpy(gaps)[:, ::-1], _numpy(gaps)).astype(gaps.dtype)
            )
        slopes = _numpy(self.log_slopes)
        self.log_slopes.assign(
            np.where(mask[:, None], slopes[:, ::-1], slopes).astype(slopes.dtype)
        )

    def knots(self, dtype):
        """(x knots, y knots, slopes), each (d, K), in `dtype`."""

        def cumulative(start, gaps):
            start = ops.cast(start, dtype)[:, None]
            return ops.concatenate(
                [start, start + ops.cumsum(ops.softplus(ops.cast(gaps, dtype)), axis=1)], axis=1
            )

        dk = ops.exp(soft_clamp(ops.cast(self.log_slopes, dtype), 8.0))
        return cumulative(self.x_start, self.x_gaps), cumulative(self.y_start, self.y_gaps), dk

    def map_and_log_slope(self, flat, inverse):
        """(s(x) or s^-1(y), the log-slopes), each (N, d)."""
        return _spline(flat, self.knots(flat.dtype), inverse=inverse)


_MAPS = {"spline": SplineMaps, "logistic": LogisticMaps}


@keras.saving.register_keras_serializable(package="tfflows")
class MarginalGaussianization(FittedOnce, Bijector):
    """Per-feature Gaussianization y_i = Phi^-1(F_i(x_i)) (Chen & Gopinath 2000).

    forward:  y = Phi^-1(F(x))          log_det = sum_i log f_i(x_i) - log phi(y_i)
    inverse:  x = F^-1(Phi(y))          log_det = -forward log_det at x

    method="spline" (`SplineMaps`): F a kernel-smoothed empirical CDF through a monotone
    rational-quadratic spline, fitted by `fit_from_data(x)` (or `fit_from_summary`)
    without gradients, analytic inverse. method="logistic" (`LogisticMaps`):
    F(x) = sum_k w_k sigmoid((x - mu_k) / s_k), trainable, initialized from data, inverse
    by bisection then Newton, CDF math in float64.

    Args:
        method: "spline" or "logistic" (above).
        num_knots: knots of each spline (at least 2).
        num_components: logistic components of each mixture.
        bandwidth: spline: the kernel width in units of Silverman's rule (0: interpolate
            the empirical quantiles, no kernel); logistic: the spread of the initial
            components.
        shrinkage: in [0, 1): blends the spline toward the affine standardization
            (x - mean) / std, the regularization for small data.
        train_spline: whether gradient training refines the fitted spline.
        max_tail_slope: caps the spline's slopes at the outer knots, and so of its linear
            tails, at max_tail_slope / std of each column (None: no cap), so beyond the
            training range the map is never steeper than that multiple of the
            standardization (relaxed in outer bins narrower than about 1% of the std,
            where a forced cap would put a kink at float32 resolution;
            `marginal_fit.CAP_RELAX_WIDTH`).
        **kwargs: of `keras.layers.Layer` (name, dtype).

    Data-dependent initialization: `initialize_from_data(x)` fits once (the first call);
    `fit_from_data(x)` always refits.
    """

    def __init__(
        self,
        method="spline",
        num_knots=32,
        num_components=16,
        bandwidth=0.5,
        shrinkage=0.0,
        train_spline=False,
        max_tail_slope=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if method not in _MAPS:
            raise ValueError(f"method must be 'spline' or 'logistic'; got {method!r}.")
        if not 0.0 <= float(shrinkage) < 1.0:
            raise ValueError(f"shrinkage must be in [0, 1); got {shrinkage}.")
        if max_tail_slope is not None and not float(max_tail_slope) > 0:
            raise ValueError(f"max_tail_slope must be positive or None; got {max_tail_slope}.")
        self.method = method
        self.train_spline = bool(train_spline)
        self.num_knots = int(num_knots)
        self.num_components = int(num_components)
        self.bandwidth = float(bandwidth)
        self.shrinkage = float(shrinkage)
        self.max_tail_slope = None if max_tail_slope is None else float(max_tail_slope)
        self.maps = _MAPS[method](self)

    def build(self, input_shape):
        self.features = int(input_shape[-1])
        self.maps.build(self.features)
        self.initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="initialized"
        )

    # ----- fitting ---------------------------------------------------------------------
    def fit_from_data(self, x):
        """Fit the marginal CDFs to the rows of x (N, d); returns self."""
        x = np.asarray(ops.convert_to_numpy(x), dtype="float64")
        x = x.reshape(-1, int(np.shape(x)[-1]))
        self._ensure_built(x)  # by its shape alone
        self.maps.fit(x)
        self.initialized.assign(1.0)
        return self

    def fit_from_summary(self, summary):
        """Fit the spline marginals from a summary of the data instead of the rows (a
        `sketches.HistogramSketch` of a stream, or `marginal_fit.SampleSummary`); returns
        self."""
        if not self.built:
            self.build((None, len(summary.mean)))
        self.maps.fit_summary(summary)
        self.initialized.assign(1.0)
        return self

    def set_identity(self, half_width=5.0):
        """Make the spline the identity map y = x (knots on the diagonal, slopes 1)."""
        self.maps.set_identity(half_width)
        self.initialized.assign(1.0)
        return self

    def mirror(self, mask):
        """Replace the map s_i of each feature with mask_i True by -s_i(-x), also
        increasing, with the same log-slopes at mirrored points (used to move sign flips
        through a flow exactly). Returns self."""
        self.maps.mirror(np.asarray(mask, dtype=bool))
        return self

    # ----- the bijector ------------------------------------------------------------------
    def _forward_and_log_det(self, x, context=None, training=False):
        shape = ops.shape(x)
        y, log_slope = self.maps.map_and_log_slope(ops.reshape(x, (-1, self.features)), False)
        log_det = ops.reshape(reduce_log_det(log_slope, 1), shape[:-1])
        return ops.reshape(y, shape), log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        shape = ops.shape(y)
        x, log_slope = self.maps.map_and_log_slope(ops.reshape(y, (-1, self.features)), True)
        log_det = ops.reshape(reduce_log_det(log_slope, 1), shape[:-1])
        return ops.reshape(x, shape), log_det

    def get_config(self):
        return {
            **super().get_config(),
            "method": self.method,
            "num_knots": self.num_knots,
            "num_components": self.num_components,
            "bandwidth": self.bandwidth,
            "shrinkage": self.shrinkage,
            "train_spline": self.train_spline,
            "max_tail_slope": self.max_tail_slope,
        }
