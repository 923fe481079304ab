"""Coupling layers on vectors: NICE's additive, RealNVP's affine and the neural-spline
coupling.

The input is split by a fixed binary mask into an identity part x_a (mask True) and a
transformed part x_b. A conditioner network reads x_a (and the context) and returns the
parameters of an elementwise, invertible transformer of x_b
(`tfflows.bijectors.transformers`); the Jacobian is triangular, so its log-det is the
sum of the elementwise log-derivatives.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import reduce_log_det
from tfflows.bijectors.conditioned import Conditioned
from tfflows.bijectors.transformers import AdditiveTransformer, AffineTransformer, SplineTransformer
from tfflows.nets.mlp import MLP


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
            raise ValueError(f"Mask has {mask.shape[0]} entries but the data has {features} "
                             "features.")
    if flip:
        mask = ~mask
    if mask.all() or not mask.any():
        raise ValueError("A coupling mask needs at least one identity and one transformed feature.")
    return mask


class Coupling(Conditioned):
    """Base of vector coupling layers; a subclass sets `self.transformer`.

    forward:  y_a = x_a,  y_b = tau(x_b; theta(x_a, context))
    inverse:  x_a = y_a,  x_b = tau^-1(y_b; theta(y_a, context))
    log_det:  sum_b log|d tau / d x_b|

    `conditioner`: any Keras layer mapping x_a (batch, n_a) [and the context, as a second
    argument, when `context_features` > 0] to (batch, P * n_b) parameters, P the
    transformer's parameters per feature, laid out parameter-major (all n_b values of
    parameter 0 first). Default: an `MLP(hidden_units, activation)` whose last layer
    starts at zero, so the layer starts at the identity.

    Args:
        mask: which features are the identity part x_a: "half", "alternate" or a boolean
            sequence, one entry per feature (see `make_mask`).
        flip: swap the two parts of the mask.
        hidden_units: sizes of the default MLP conditioner's hidden layers.
        activation: hidden activation of the default MLP conditioner.
        context_features: size of the conditioning vector (0: unconditional).
        conditioner: a Keras layer used instead of the default MLP (see above); it is
            saved in the config.
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, mask="half", flip=False, hidden_units=(64, 64), activation="relu",
                 context_features=0, conditioner=None, **kwargs):
        super().__init__(conditioner=conditioner, **kwargs)
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
        outputs = len(self._transform_idx) * self.transformer.params_per_feature
        if self.conditioner is None:
            self.conditioner = MLP(outputs, hidden_units=self.hidden_units,
                                   activation=self.activation,
                                   context_features=self.context_features,
                                   dtype=self.network_dtype_policy, name="conditioner")
        if not self.conditioner.built:
            self.conditioner.build((None, len(self._identity_idx)))

    def _params(self, x_a, context):
        """The conditioner's outputs as (batch, P, n_b), parameter-major."""
        params = self.conditioner(x_a, context) if self.context_features else self.conditioner(x_a)
        shape = (self.transformer.params_per_feature, len(self._transform_idx))
        if int(params.shape[-1]) != shape[0] * shape[1]:
            raise ValueError(f"{self.name}'s conditioner returned {params.shape[-1]} outputs "
                             f"per row; the transformer needs {shape[0]} x {shape[1]} = "
                             f"{shape[0] * shape[1]}.")
        return ops.cast(ops.reshape(params, tuple(ops.shape(params)[:-1]) + shape), x_a.dtype)

    def _split(self, x):
        return ops.take(x, self._identity_idx, axis=-1), ops.take(x, self._transform_idx, axis=-1)

    def _merge(self, a, b):
        return ops.take(ops.concatenate([a, b], axis=-1), self._merge_idx, axis=-1)

    def _log_det(self, log_deriv, x):
        return self._zeros_log_det(x) if log_deriv is None else reduce_log_det(log_deriv, 1)

    def _forward_and_log_det(self, x, context=None, training=False):
        x_a, x_b = self._split(x)
        y_b, log_deriv = self.transformer.forward(x_b, self._params(x_a, context))
        return self._merge(x_a, y_b), self._log_det(log_deriv, x)

    def _inverse_and_log_det(self, y, context=None, training=False):
        y_a, y_b = self._split(y)
        x_b, log_deriv = self.transformer.inverse(y_b, self._params(y_a, context))
        return self._merge(y_a, x_b), self._log_det(log_deriv, y)

    def get_config(self):
        return {**super().get_config(), "mask": self.mask, "flip": self.flip,
                "hidden_units": list(self.hidden_units), "activation": self.activation,
                "context_features": self.context_features}


@keras.saving.register_keras_serializable(package="tfflows")
class AdditiveCoupling(Coupling):
    """NICE additive coupling (Dinh, Krueger & Bengio 2014, arXiv:1410.8516).

    forward:  y_a = x_a,  y_b = x_b + m(x_a)
    inverse:  x_b = y_b - m(y_a)
    log_det:  0 (volume preserving; pair it with `Rescale`)

    Args:
        *args, **kwargs: of `Coupling` (mask, flip, hidden_units, activation,
            context_features, conditioner) and `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transformer = AdditiveTransformer()


@keras.saving.register_keras_serializable(package="tfflows")
class AffineCoupling(Coupling):
    """RealNVP affine coupling (Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803).

    forward:  y_b = x_b * exp(s(x_a)) + t(x_a),    s = clamp * tanh(s_raw / clamp)
    inverse:  x_b = (y_b - t(y_a)) * exp(-s(y_a))
    log_det:  sum_b s(x_a)_b

    The soft clamp bounds every log-scale, so the map is invertible and finite for
    every parameter value.

    Args:
        log_scale_clamp: soft bound on each log-scale s (the clamp above).
        *args, **kwargs: of `Coupling` (mask, flip, hidden_units, activation,
            context_features, conditioner) and `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, *args, log_scale_clamp=3.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.transformer = AffineTransformer(log_scale_clamp)



@keras.saving.register_keras_serializable(package="tfflows")
class SplineCoupling(Coupling):
    """Rational-quadratic spline coupling (Durkan et al. 2019, arXiv:1906.04032).

    forward:  y_a = x_a,  y_b = RQS(x_b; theta(x_a, context))   (identity outside [-B, B])
    inverse:  x_b = RQS^-1(y_b; theta(y_a, context))            (analytic, quadratic root)
    log_det:  sum_b log RQS'(x_b)
    theta holds, per transformed feature, K bin widths, K heights (each at least 1e-3 of
    the interval) and K - 1 interior knot derivatives (softplus, >= 1e-3); the boundary
    derivatives are 1. A zero-initialized conditioner gives the identity.

    Args:
        bins: number of spline bins K (3 K - 1 parameters per transformed feature).
        bound: B, the spline acts on [-B, B]; identity outside.
        *args, **kwargs: of `Coupling` (mask, flip, hidden_units, activation,
            context_features, conditioner) and `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, *args, bins=8, bound=5.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.transformer = SplineTransformer(bins, bound)

