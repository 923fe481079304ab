"""Coupling layers: NICE's additive coupling and RealNVP's affine coupling.

The input is split by a fixed binary mask into an identity part x_a (mask True) and a
transformed part x_b. A conditioner network reads x_a (and the context) and returns the
parameters of an elementwise, invertible transform of x_b; the Jacobian is triangular,
so its log-det is the sum of the elementwise log-derivatives.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import soft_clamp
from tfflows.base import Bijector
from tfflows.conditioners import MLP


def make_mask(kind, features, flip=False):
    """A boolean mask of length `features`; True marks the identity (conditioning) part.

    kind: "half" (first floor(d/2) features), "alternate" (even indices) or a boolean
    sequence of length `features`. `flip` swaps the two parts.
    """
    if isinstance(kind, str):
        if kind == "half":
            mask = np.arange(features) < features // 2
        elif kind == "alternate":
            mask = np.arange(features) % 2 == 0
        else:
            raise ValueError(f"Unknown mask {kind!r}; use 'half', 'alternate' or a boolean list.")
    else:
        mask = np.asarray(kind, dtype=bool).reshape(-1)
        if mask.shape[0] != features:
            raise ValueError(f"Mask has {mask.shape[0]} entries but the data has {features} features.")
    if flip:
        mask = ~mask
    if mask.all() or not mask.any():
        raise ValueError("A coupling mask needs at least one identity and one transformed feature.")
    return mask


class Coupling(Bijector):
    """Base of tabular coupling layers; subclasses define the elementwise transformer.

    forward:  y_a = x_a,  y_b = tau(x_b; theta(x_a, context))
    inverse:  x_a = y_a,  x_b = tau^-1(y_b; theta(y_a, context))
    log_det:  sum_b log|d tau / d x_b|
    """

    params_per_feature = 1

    def __init__(self, mask="half", flip=False, hidden_units=(64, 64), activation="relu",
                 context_features=0, **kwargs):
        super().__init__(**kwargs)
        self.mask = mask if isinstance(mask, str) else [bool(m) for m in np.ravel(mask)]
        self.flip = bool(flip)
        self.hidden_units = tuple(hidden_units)
        self.activation = activation
        self.context_features = int(context_features)

    def build(self, input_shape):
        features = int(input_shape[-1])
        mask = make_mask(self.mask, features, self.flip)
        self._identity_idx = np.flatnonzero(mask)
        self._transform_idx = np.flatnonzero(~mask)
        self._merge_idx = np.argsort(np.concatenate([self._identity_idx, self._transform_idx]))
        self.conditioner = MLP(
            len(self._transform_idx) * self.params_per_feature,
            hidden_units=self.hidden_units,
            activation=self.activation,
            context_features=self.context_features,
            dtype=self.dtype_policy,
            name="conditioner",
        )
        self.conditioner.build((None, len(self._identity_idx)))

    def _params(self, x_a, context):
        """The conditioner's outputs as (batch, params_per_feature, n_b), parameter-major
        like `MADE`'s: each parameter is a contiguous block, read without strided slices."""
        params = self.conditioner(x_a, context)
        n_b = len(self._transform_idx)
        return ops.reshape(params, tuple(ops.shape(params)[:-1]) + (self.params_per_feature, n_b))

    def _split(self, x):
        return ops.take(x, self._identity_idx, axis=-1), ops.take(x, self._transform_idx, axis=-1)

    def _merge(self, a, b):
        return ops.take(ops.concatenate([a, b], axis=-1), self._merge_idx, axis=-1)

    def _forward_and_log_det(self, x, context=None, training=False):
        x_a, x_b = self._split(x)
        y_b, log_det = self._transform(x_b, self._params(x_a, context))
        return self._merge(x_a, y_b), log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        y_a, y_b = self._split(y)
        x_b, log_det = self._inverse_transform(y_b, self._params(y_a, context))
        return self._merge(y_a, x_b), log_det

    def get_config(self):
        return {
            **super().get_config(),
            "mask": self.mask,
            "flip": self.flip,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "context_features": self.context_features,
        }


@keras.saving.register_keras_serializable(package="tfflows")
class AdditiveCoupling(Coupling):
    """NICE additive coupling (Dinh, Krueger & Bengio 2014, arXiv:1410.8516).

    forward:  y_a = x_a,  y_b = x_b + m(x_a)
    inverse:  x_b = y_b - m(y_a)
    log_det:  0 (volume preserving; pair it with `Rescale`)
    """

    params_per_feature = 1

    def _transform(self, x_b, params):
        return x_b + params[..., 0, :], self._zeros_log_det(x_b)

    def _inverse_transform(self, y_b, params):
        return y_b - params[..., 0, :], self._zeros_log_det(y_b)


@keras.saving.register_keras_serializable(package="tfflows")
class AffineCoupling(Coupling):
    """RealNVP affine coupling (Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803).

    forward:  y_b = x_b * exp(s(x_a)) + t(x_a),    s = clamp * tanh(s_raw / clamp)
    inverse:  x_b = (y_b - t(y_a)) * exp(-s(y_a))
    log_det:  sum_b s(x_a)_b

    The soft clamp bounds every log-scale, so the map is invertible and finite for
    every parameter value.
    """

    params_per_feature = 2

    def __init__(self, *args, log_scale_clamp=3.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_scale_clamp = float(log_scale_clamp)

    def _shift_and_log_scale(self, params):
        shift, log_scale = ops.unstack(params, 2, axis=-2)
        return shift, soft_clamp(log_scale, self.log_scale_clamp)

    def _transform(self, x_b, params):
        shift, log_scale = self._shift_and_log_scale(params)
        return x_b * ops.exp(log_scale) + shift, ops.sum(log_scale, axis=-1)

    def _inverse_transform(self, y_b, params):
        shift, log_scale = self._shift_and_log_scale(params)
        return (y_b - shift) * ops.exp(-log_scale), -ops.sum(log_scale, axis=-1)

    def get_config(self):
        return {**super().get_config(), "log_scale_clamp": self.log_scale_clamp}
