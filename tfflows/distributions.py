"""Base (latent) distributions written with keras.ops and keras.random, and the one
protocol every `Flow` base keeps (the TFP wrapper `tfflows.TFPDistribution` too):

    log_prob(z, event_ndims=None) -> log p(z) per batch row, summed over the event axes
                                     (None: every axis after the first)
    sample(n, event_shape, seed=None, dtype="float32") -> (n, *event_shape) samples
    to_tfp(event_shape, dtype) -> the same law as a `tfp.distributions.Distribution`

`seed` is None (Keras's global seed generator), an integer (repeatable) or a
`keras.random.SeedGenerator`.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import LOG_2PI, reduce_log_det


class BaseDistribution(keras.layers.Layer):
    """A factorized distribution over events of any shape (one scalar law per entry)."""

    def log_prob(self, z, event_ndims=None):
        event_ndims = len(z.shape) - 1 if event_ndims is None else event_ndims
        return reduce_log_det(self._log_prob_elementwise(z), event_ndims)

    def sample(self, n, event_shape, seed=None, dtype="float32"):
        raise NotImplementedError

    def to_tfp(self, event_shape, dtype="float32"):
        """The same law as a `tfp.distributions.Distribution` (TensorFlow backend)."""
        raise NotImplementedError

    def _tfp_factorized(self, scalar_law, event_shape, dtype):
        from tensorflow_probability import distributions as tfd

        law = scalar_law(np.zeros(event_shape, dtype), np.ones(event_shape, dtype))
        return tfd.Independent(law, reinterpreted_batch_ndims=len(event_shape))


@keras.saving.register_keras_serializable(package="tfflows")
class StandardNormal(BaseDistribution):
    """Standard normal N(0, I): log p(z) = -0.5 * sum(z^2 + log(2 pi))."""

    def _log_prob_elementwise(self, z):
        return -0.5 * (ops.square(z) + LOG_2PI)

    def sample(self, n, event_shape, seed=None, dtype="float32"):
        return keras.random.normal((n,) + tuple(event_shape), dtype=dtype, seed=seed)

    def to_tfp(self, event_shape, dtype="float32"):
        from tensorflow_probability import distributions as tfd

        return self._tfp_factorized(tfd.Normal, event_shape, dtype)


@keras.saving.register_keras_serializable(package="tfflows")
class StandardLogistic(BaseDistribution):
    """Standard logistic, NICE's prior: log p(z) = -sum(softplus(z) + softplus(-z))."""

    def _log_prob_elementwise(self, z):
        return -(ops.softplus(z) + ops.softplus(-z))

    def sample(self, n, event_shape, seed=None, dtype="float32"):
        tiny = np.finfo(np.dtype(dtype)).tiny
        u = keras.random.uniform((n,) + tuple(event_shape), minval=tiny, maxval=1.0, dtype=dtype,
                                 seed=seed)
        return ops.log(u) - ops.log1p(-u)

    def to_tfp(self, event_shape, dtype="float32"):
        from tensorflow_probability import distributions as tfd

        return self._tfp_factorized(tfd.Logistic, event_shape, dtype)
