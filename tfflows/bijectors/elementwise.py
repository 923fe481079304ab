"""Elementwise (per-feature or per-channel) layers: Rescale, ActNorm, BatchNorm.

Each acts on the last axis. With inputs of rank > 2 (images shaped (N, H, W, C)) the
same per-channel map is applied at every position, so the log-det is multiplied by the
number of positions and the event is (H, W, C).
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import inverse_soft_clamp, soft_clamp
from tfflows.bijectors.base import Bijector


class _PerChannel(Bijector):
    """Shared machinery: parameters over the last axis, event = all non-batch axes."""

    def build(self, input_shape):
        self.event_ndims = len(input_shape) - 1
        self._positions = int(np.prod(input_shape[1:-1])) if len(input_shape) > 2 else 1
        self._channels = int(input_shape[-1])

    def _broadcast_log_det(self, x, per_position):
        """Turn a scalar per-position log-det into one value per batch row."""
        return ops.ones(self._batch_shape(x), dtype=x.dtype) * (per_position * self._positions)

    def _reduce_axes(self, x):
        return tuple(range(len(x.shape) - 1))


@keras.saving.register_keras_serializable(package="tfflows")
class Rescale(_PerChannel):
    """NICE's diagonal scaling layer (Dinh et al. 2014, arXiv:1410.8516, section 3.3).

    forward:  y = x * exp(s),   inverse:  x = y * exp(-s),   log_det = sum(s)
    `s` is a learned vector, soft-clamped to (-log_scale_clamp, log_scale_clamp).

    Args:
        log_scale_clamp: soft bound on each log-scale s.
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, log_scale_clamp=10.0, **kwargs):
        super().__init__(**kwargs)
        self.log_scale_clamp = float(log_scale_clamp)

    def build(self, input_shape):
        super().build(input_shape)
        self.log_scale = self.add_weight(shape=(self._channels,), initializer="zeros",
                                         name="log_scale")

    def _scale(self):
        return soft_clamp(self.log_scale, self.log_scale_clamp)

    def _forward_and_log_det(self, x, context=None, training=False):
        s = ops.cast(self._scale(), x.dtype)
        return x * ops.exp(s), self._broadcast_log_det(x, ops.sum(s))

    def _inverse_and_log_det(self, y, context=None, training=False):
        s = ops.cast(self._scale(), y.dtype)
        return y * ops.exp(-s), -self._broadcast_log_det(y, ops.sum(s))

    def get_config(self):
        return {**super().get_config(), "log_scale_clamp": self.log_scale_clamp}


@keras.saving.register_keras_serializable(package="tfflows")
class ActNorm(Rescale):
    """Activation normalization (Kingma & Dhariwal 2018, Glow, arXiv:1807.03039).

    forward:  y = x * exp(s) + b,   inverse:  x = (y - b) * exp(-s),   log_det = sum(s)
    (times H*W for images). On the first batch seen by `Flow.fit` (or by an explicit
    `initialize_from_data`) s and b are set so that the batch has zero mean and unit
    variance per channel.

    Args:
        log_scale_clamp: soft bound on each log-scale s (as `Rescale`).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.bias = self.add_weight(shape=(self._channels,), initializer="zeros", name="bias")
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="initialized")

    def initialize_from_data(self, x, context=None):
        x = self._cast(x)
        self._ensure_built(x)
        if float(ops.convert_to_numpy(self.initialized)) > 0:
            return
        x = ops.convert_to_numpy(x).reshape(-1, self._channels)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
        # Invert the soft clamp so that the effective scale is exactly 1 / std.
        bound = self.log_scale_clamp
        raw = inverse_soft_clamp(-np.log(std), bound)
        scale = np.exp(bound * np.tanh(raw / bound))
        self.log_scale.assign(raw.astype(self.log_scale.dtype))
        self.bias.assign((-mean * scale).astype(self.bias.dtype))
        self.initialized.assign(1.0)

    def _forward_and_log_det(self, x, context=None, training=False):
        y, log_det = super()._forward_and_log_det(x)
        return y + ops.cast(self.bias, x.dtype), log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        return super()._inverse_and_log_det(y - ops.cast(self.bias, y.dtype))


@keras.saving.register_keras_serializable(package="tfflows")
class BatchNorm(_PerChannel):
    """Batch normalization as a bijector (Dinh et al. 2016 RealNVP; Papamakarios et al. 2017 MAF).

    forward:  y = (x - mu) / sqrt(v + eps) * exp(g) + b
    inverse:  x = (y - b) * exp(-g) * sqrt(v + eps) + mu
    log_det:  sum(g - 0.5 * log(v + eps))
    In training, mu and v are the batch statistics and update running averages; at
    inference (and always in the inverse) the running averages are used, so the map is
    a fixed, exactly invertible affine function.

    Args:
        momentum: weight of the old value in each update of the running averages.
        epsilon: eps above, added to the variance before the square root.
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, momentum=0.95, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        super().build(input_shape)
        c = self._channels
        self.log_gamma = self.add_weight(shape=(c,), initializer="zeros", name="log_gamma")
        self.beta = self.add_weight(shape=(c,), initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=(c,), initializer="zeros", trainable=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight(shape=(c,), initializer="ones", trainable=False,
                                               name="moving_variance")

    def _stats(self, x, training):
        if not training:
            return ops.cast(self.moving_mean, x.dtype), ops.cast(self.moving_variance, x.dtype)
        axes = self._reduce_axes(x)
        mean, var = ops.mean(x, axis=axes), ops.var(x, axis=axes)
        m = self.momentum
        self.moving_mean.assign(
            m * self.moving_mean + (1 - m) * ops.cast(mean, self.moving_mean.dtype))
        self.moving_variance.assign(
            m * self.moving_variance + (1 - m) * ops.cast(var, self.moving_variance.dtype))
        return mean, var

    def _log_scale(self, var):
        return (soft_clamp(ops.cast(self.log_gamma, var.dtype), 10.0)
                - 0.5 * ops.log(var + self.epsilon))

    def _forward_and_log_det(self, x, context=None, training=False):
        mean, var = self._stats(x, training)
        s = self._log_scale(var)
        y = (x - mean) * ops.exp(s) + ops.cast(self.beta, x.dtype)
        return y, self._broadcast_log_det(x, ops.sum(s))

    def _inverse_and_log_det(self, y, context=None, training=False):
        mean, var = self._stats(y, False)
        s = self._log_scale(var)
        x = (y - ops.cast(self.beta, y.dtype)) * ops.exp(-s) + mean
        return x, -self._broadcast_log_det(y, ops.sum(s))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
