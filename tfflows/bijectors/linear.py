"""Linear layers over the last axis: Permute, Reverse, LULinear.

With inputs of rank > 2 (images) the same map acts on the channels at every position,
so `LULinear` on images is Glow's invertible 1x1 convolution.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import draw_seed, soft_clamp
from tfflows.bijectors.base import Bijector


@keras.saving.register_keras_serializable(package="tfflows")
class Permute(Bijector):
    """A fixed permutation of the features (last axis).

    forward:  y = x[..., perm],   inverse:  x = y[..., argsort(perm)],   log_det = 0
    `permutation` gives it explicitly; otherwise it is drawn from `seed` when the layer
    is built (a seed is drawn at construction if none is given, and kept in the config,
    so a saved layer rebuilds the same permutation).

    Args:
        permutation: the permutation of range(features), or None to draw one.
        seed: integer seed of the drawn permutation (None: drawn at construction).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, permutation=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.permutation = None if permutation is None else [int(i) for i in permutation]
        self.seed = draw_seed() if seed is None else int(seed)

    def build(self, input_shape):
        features = int(input_shape[-1])
        if self.permutation is not None:
            perm = np.asarray(self.permutation)
            if sorted(perm.tolist()) != list(range(features)):
                raise ValueError(f"permutation must be a permutation of range({features}); "
                                 f"got {self.permutation}.")
        else:
            perm = np.random.default_rng(self.seed).permutation(features)
        self._perm = perm.astype("int32")
        self._inverse_perm = np.argsort(perm).astype("int32")

    def _forward_and_log_det(self, x, context=None, training=False):
        return ops.take(x, self._perm, axis=-1), self._zeros_log_det(x)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return ops.take(y, self._inverse_perm, axis=-1), self._zeros_log_det(y)

    def get_config(self):
        return {**super().get_config(), "permutation": self.permutation, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfflows")
class Reverse(Bijector):
    """Reverses the order of the features (last axis): y = x[..., ::-1]; log_det = 0."""

    def _forward_and_log_det(self, x, context=None, training=False):
        return ops.flip(x, axis=-1), self._zeros_log_det(x)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return ops.flip(y, axis=-1), self._zeros_log_det(y)


@keras.saving.register_keras_serializable(package="tfflows")
class LULinear(Bijector):
    """Invertible linear map with an LU parameterization (Kingma & Dhariwal 2018, Glow).

    W = L (U + diag(exp(s))), L unit lower-triangular, U strictly upper-triangular.
    forward:  y = W x + b
    inverse:  x = W^-1 (y - b)  (two triangular solves)
    log_det:  sum(s)  (times H*W on images: the invertible 1x1 convolution)
    `s` is soft-clamped, so W is invertible for every parameter value. It starts at
    the identity.

    Args:
        log_scale_clamp: soft bound on each log-diagonal s.
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, log_scale_clamp=10.0, **kwargs):
        super().__init__(**kwargs)
        self.log_scale_clamp = float(log_scale_clamp)

    def build(self, input_shape):
        d = int(input_shape[-1])
        self.event_ndims = len(input_shape) - 1
        self._positions = int(np.prod(input_shape[1:-1])) if len(input_shape) > 2 else 1
        self.lower = self.add_weight(shape=(d, d), initializer="zeros", name="lower")
        self.upper = self.add_weight(shape=(d, d), initializer="zeros", name="upper")
        self.log_diag = self.add_weight(shape=(d,), initializer="zeros", name="log_diag")
        self.bias = self.add_weight(shape=(d,), initializer="zeros", name="bias")
        self._strict_lower = np.tril(np.ones((d, d)), -1)
        self._eye = np.eye(d)

    def _factors(self, dtype):
        lower_mask = ops.cast(self._strict_lower, dtype)
        eye = ops.cast(self._eye, dtype)
        log_diag = soft_clamp(ops.cast(self.log_diag, dtype), self.log_scale_clamp)
        lower = ops.cast(self.lower, dtype) * lower_mask + eye
        upper = ops.cast(self.upper, dtype) * ops.transpose(lower_mask) + eye * ops.exp(log_diag)
        return lower, upper, log_diag

    def weight_matrix(self):
        lower, upper, _ = self._factors(self.compute_dtype)
        return ops.matmul(lower, upper)

    def _log_det(self, x, log_diag):
        return ops.ones(self._batch_shape(x), dtype=x.dtype) * (ops.sum(log_diag) * self._positions)

    def _forward_and_log_det(self, x, context=None, training=False):
        lower, upper, log_diag = self._factors(x.dtype)
        y = ops.matmul(x, ops.transpose(ops.matmul(lower, upper))) + ops.cast(self.bias, x.dtype)
        return y, self._log_det(x, log_diag)

    def _inverse_and_log_det(self, y, context=None, training=False):
        lower, upper, log_diag = self._factors(y.dtype)
        shape = ops.shape(y)
        rows = ops.transpose(ops.reshape(y - ops.cast(self.bias, y.dtype), (-1, shape[-1])))
        z = ops.solve_triangular(lower, rows, lower=True)
        x = ops.solve_triangular(upper, z, lower=False)
        return ops.reshape(ops.transpose(x), shape), -self._log_det(y, log_diag)

    def get_config(self):
        return {**super().get_config(), "log_scale_clamp": self.log_scale_clamp}
