"""Autoregressive flow layers: MAF (`MaskedAutoregressive`) and IAF (`InverseAutoregressive`).

Both use one `MADE` conditioner and an elementwise transformer tau(u_i; theta_i) whose
parameters theta_i depend on u_<i (in the layer's order). The map

    v = T(u):  v_i = tau(u_i; theta_i(u_<i))

costs ONE network pass (all theta_i at once from u); its inverse costs D passes, because
u_i is needed before theta_{i+1} can be computed. The inverse runs as a compiled loop
(`keras.ops.fori_loop`): after pass k the first k features in the order are exact, and
the last pass also yields the exact parameters for the log-det.

MAF puts the cheap direction on the density (data -> latent); IAF puts it on sampling.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import soft_clamp
from tfflows.base import Bijector
from tfflows.made import MADE


class Autoregressive(Bijector):
    """Base of MADE-conditioned autoregressive layers; subclasses define the transformer.

    `_transform(u, params) -> (v, log|dv/du| summed)` and its inverse
    `_inverse_transform(v, params) -> (u, log|du/dv| summed)`; params has shape
    (batch, params_per_feature, D), parameter-major as `MADE` returns it. `_parallel`
    is T (one pass), `_sequential` is T^-1 (D passes in a compiled loop).
    """

    params_per_feature = 2

    def __init__(self, hidden_units=(64, 64), order="given", seed=None, activation="relu",
                 context_features=0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(h) for h in hidden_units)
        self.order = order if isinstance(order, str) else [int(i) for i in order]
        if seed is None and isinstance(order, str) and order == "random":
            seed = int(np.random.randint(0, 2**31 - 1))
        self.seed = None if seed is None else int(seed)
        self.activation = activation
        self.context_features = int(context_features)

    def build(self, input_shape):
        self._features = int(input_shape[-1])
        self.made = MADE(self.params_per_feature, hidden_units=self.hidden_units, order=self.order,
                         seed=self.seed, activation=self.activation,
                         context_features=self.context_features, dtype=self.dtype_policy, name="made")
        self.made.build((None, self._features))

    @property
    def permutation(self):
        """The layer's autoregressive order: `permutation[k]` is the k-th feature."""
        return self.made.permutation

    def _parallel(self, u, context):
        return self._transform(u, self.made(u, context))

    def _sequential(self, v, context):
        def step(_, u):
            return self._inverse_transform(v, self.made(u, context))[0]

        u = ops.fori_loop(0, self._features - 1, step, ops.zeros_like(v))
        return self._inverse_transform(v, self.made(u, context))

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "order": self.order,
            "seed": self.seed,
            "activation": self.activation,
            "context_features": self.context_features,
        }


class _AffineTransformer:
    """tau(u; t, s) = u * exp(s) + t, s = clamp * tanh(s_raw / clamp)."""

    params_per_feature = 2

    def _shift_and_log_scale(self, params):
        # unstack, not params[..., 0, :]: the gradient of a strided slice was 30% of a MAF
        # training step without XLA (benchmarks/results/profile.md)
        shift, log_scale = ops.unstack(params, 2, axis=-2)
        return shift, soft_clamp(log_scale, self.log_scale_clamp)

    def _transform(self, u, params):
        shift, log_scale = self._shift_and_log_scale(params)
        return u * ops.exp(log_scale) + shift, ops.sum(log_scale, axis=-1)

    def _inverse_transform(self, v, params):
        shift, log_scale = self._shift_and_log_scale(params)
        return (v - shift) * ops.exp(-log_scale), -ops.sum(log_scale, axis=-1)


@keras.saving.register_keras_serializable(package="tfflows")
class MaskedAutoregressive(_AffineTransformer, Autoregressive):
    """Masked autoregressive flow layer, MAF (Papamakarios, Pavlakou & Murray 2017,
    arXiv:1705.07057), with a MADE conditioner (Germain et al. 2015).

    forward (data -> latent, density):  z_i = x_i * exp(s_i) + t_i,
                                        (t_i, s_i) = MADE(x_<i, context),
                                        s = clamp * tanh(s_raw / clamp)
    inverse (latent -> data, sampling): x_i = (z_i - t_i) * exp(-s_i), in order
    log_det (forward):                  sum_i s_i

    Costs: the forward (log_prob, training) is ONE MADE pass; the inverse (sampling,
    decode) is D sequential MADE passes, run as a compiled `keras.ops.fori_loop`.
    `order` ("given", "reversed", "random" or a permutation) is the order i runs over.
    """

    def __init__(self, *args, log_scale_clamp=3.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_scale_clamp = float(log_scale_clamp)

    def _forward_and_log_det(self, x, context=None, training=False):
        return self._parallel(x, context)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return self._sequential(y, context)

    def get_config(self):
        return {**super().get_config(), "log_scale_clamp": self.log_scale_clamp}


@keras.saving.register_keras_serializable(package="tfflows")
class InverseAutoregressive(_AffineTransformer, Autoregressive):
    """Inverse autoregressive flow layer, IAF (Kingma et al. 2016, arXiv:1606.04934): the
    dual of MAF, whose MADE reads the latent instead of the data.

    inverse (latent -> data, sampling): x_i = z_i * exp(s_i) + t_i,
                                        (t_i, s_i) = MADE(z_<i, context),
                                        s = clamp * tanh(s_raw / clamp)
    forward (data -> latent, density):  z_i = (x_i - t_i) * exp(-s_i), in order
    log_det (forward):                  -sum_i s_i

    Costs: sampling (inverse, decode) is ONE MADE pass and also gives the log-density
    of the samples; the forward (log_prob of arbitrary data, maximum-likelihood
    training) is D sequential MADE passes in a compiled `keras.ops.fori_loop`. Train it
    by distillation (`tfflows.Distiller`) or by variational objectives that only need
    its own samples.
    """

    def __init__(self, *args, log_scale_clamp=3.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_scale_clamp = float(log_scale_clamp)

    def _forward_and_log_det(self, x, context=None, training=False):
        return self._sequential(x, context)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return self._parallel(y, context)

    def get_config(self):
        return {**super().get_config(), "log_scale_clamp": self.log_scale_clamp}
