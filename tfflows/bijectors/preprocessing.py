"""Preprocessing bijectors for images with exact density bookkeeping: `Dequantize`, `Logit`.

Pixel data are integer levels k in {0, ..., L-1} (L = 17 for scikit-learn's digits, 256
for 8-bit images). A flow models continuous data, so the levels are *dequantized*:
v = k + u with u ~ U[0, 1)^D (Uria et al. 2013; Theis et al. 2016, arXiv:1511.01844).
Each discrete value k owns the unit cube k + [0, 1)^D of [0, L)^D, so for any density
p(v) on [0, L)^D

    P(k) = integral over [0,1)^D of p(k + u) du  >=  exp E_u[log p(k + u)]   (Jensen).

The image flows start with `Dequantize(L)` (v -> v / L) and `Logit(alpha)` (the squeeze
of RealNVP), so their input space is the dequantized levels v in [0, L)^D and
`Flow.log_prob(v)` is the density p(v) there, with both preprocessing log-dets included.
Therefore

    flow.bits_per_dim(dequantize(k)) = -log2 p(k + u) / D

and its average over the noise is an upper bound of the discrete model's -log2 P(k) / D:
exactly the "bits/dim in pixel space" that papers report (a model uniform over the
levels scores log2 L: 4.09 bits/dim for L = 17, 8 for L = 256).

Data passed to `Flow.fit` must be floats (integers are refused, see DESIGN.md): pass
`dequantize(images)` (or the integer levels cast to float). With `resample=True` (the
default) `Dequantize` replaces the fractional part by fresh noise at every training step
(v <- floor(v) + u), so each epoch sees a new dequantization, like Keras' noise layers
that act only in training. At inference the map is deterministic; evaluate test bits/dim
on `dequantize(test_images, seed=...)`.
"""

import math

import keras
import numpy as np
from keras import ops

from tfflows._math import reduce_log_det
from tfflows.bijectors.base import Bijector


def dequantize(levels, num_levels=None, seed=None, dtype="float32"):
    """Integer pixel levels k -> floats k + u, u ~ U[0, 1), as a NumPy array of `dtype`.

    If `num_levels` is given, the levels must lie in {0, ..., num_levels - 1}.
    """
    k = np.asarray(levels)
    if num_levels is not None and k.size and (k.min() < 0 or k.max() > num_levels - 1):
        raise ValueError(f"Pixel levels must lie in 0..{num_levels - 1}; got values in "
                         f"[{k.min()}, {k.max()}].")
    u = np.random.default_rng(seed).uniform(size=k.shape)
    return (k.astype("float64") + u).astype(dtype)


def quantize(values, num_levels):
    """Continuous levels (e.g. samples of an image flow) -> integer levels 0..num_levels-1."""
    v = np.floor(np.asarray(keras.ops.convert_to_numpy(values), dtype="float64"))
    return np.clip(v, 0, num_levels - 1).astype("int64")


class _WholeEvent(Bijector):
    """An elementwise map whose event is every non-batch axis (vectors or images)."""

    def build(self, input_shape):
        self.event_ndims = max(len(input_shape) - 1, 1)

    def _dims(self, x):
        return math.prod(int(s) for s in x.shape[len(x.shape) - self.event_ndims:])


@keras.saving.register_keras_serializable(package="tfflows")
class Dequantize(_WholeEvent):
    """Dequantized pixel levels -> the unit interval (Theis et al. 2016, arXiv:1511.01844).

    forward:  y = v / L                          v in [0, L)^D, y in [0, 1)^D
    inverse:  v = y * L
    log_det:  -D log L

    `L = num_levels`. In training (`training=True`) with `resample=True`, the forward
    first draws a fresh dequantization, v <- floor(v) + u with u ~ U[0, 1)^D, so integer
    levels cast to float and already dequantized levels both work, and every step sees
    new noise. At inference the map is the deterministic bijection above; with it as
    the first layer, `Flow.log_prob(v)` is the density of the dequantized levels and
    `Flow.bits_per_dim` is in pixel space (see the module docstring for the bound).

    Args:
        num_levels: L, the number of pixel levels (at least 2).
        resample: draw fresh dequantization noise in training (see above).
        seed: seed of the noise's `keras.random.SeedGenerator` (None: unseeded).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, num_levels=256, resample=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be at least 2; got {num_levels}.")
        self.num_levels = int(num_levels)
        self.resample = bool(resample)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if resample else None

    def _log_det(self, x):
        value = -self._dims(x) * math.log(self.num_levels)
        return ops.ones(self._batch_shape(x), dtype=x.dtype) * value

    def _forward_and_log_det(self, x, context=None, training=False):
        if training and self.resample:
            noise = keras.random.uniform(ops.shape(x), dtype=x.dtype, seed=self.seed_generator)
            x = ops.floor(x) + noise
        return x / float(self.num_levels), self._log_det(x)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return y * float(self.num_levels), -self._log_det(y)

    def get_config(self):
        return {**super().get_config(), "num_levels": self.num_levels, "resample": self.resample,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfflows")
class Logit(_WholeEvent):
    """Logit with RealNVP's alpha squeeze (Dinh et al. 2016, arXiv:1605.08803, sec. 4.1).

    forward:  p = alpha + (1 - 2 alpha) y,   z = log p - log(1 - p)      y in [0, 1)^D
    inverse:  y = (sigmoid(z) - alpha) / (1 - 2 alpha)
    log_det:  sum[log(1 - 2 alpha) - log p - log(1 - p)]
              (= sum[log(1 - 2 alpha) + softplus(z) + softplus(-z)], used in the inverse)

    The squeeze keeps z finite at the edges y = 0 and y -> 1 (alpha = 0.05 in RealNVP
    for CIFAR-10). The domain is -alpha / (1 - 2 alpha) < y < 1 + alpha / (1 - 2 alpha).
    Numerics: p and 1 - p are computed separately (1 - p as (1 - alpha) - (1 - 2 alpha) y,
    not by subtracting the rounded p from 1), and both are floored at the smallest normal
    number of the dtype, so the forward is finite everywhere: on and beyond the edges of
    the domain z saturates at +-log(1 / tiny) (+-87.3 in float32, +-708 in float64)
    instead of becoming infinite or NaN (the image presets check the data range first).
    The inverse is the sigmoid, finite for every z; its log-det uses the softplus forms.
    In float32 the sigmoid rounds to its edge for |z| above about 17 (upper edge) or
    19 (lower edge), so z cannot be recovered beyond that (RELIABILITY.md).

    Args:
        alpha: the squeeze, in [0, 0.5).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, alpha=0.05, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(alpha) < 0.5:
            raise ValueError(f"alpha must lie in [0, 0.5); got {alpha}.")
        self.alpha = float(alpha)

    def _forward_and_log_det(self, x, context=None, training=False):
        tiny = float(np.finfo(keras.backend.standardize_dtype(x.dtype)).tiny)
        width = 1.0 - 2.0 * self.alpha
        log_p = ops.log(ops.maximum(self.alpha + width * x, tiny))
        log_q = ops.log(ops.maximum((1.0 - self.alpha) - width * x, tiny))
        log_det = reduce_log_det(math.log(width) - log_p - log_q, self.event_ndims)
        return log_p - log_q, log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        x = (ops.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)
        log_det = reduce_log_det(
            -math.log(1.0 - 2.0 * self.alpha) - ops.softplus(y) - ops.softplus(-y),
            self.event_ndims)
        return x, log_det

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}
