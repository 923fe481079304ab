"""Autoregressive flow layers: MAF (`MaskedAutoregressive`), IAF (`InverseAutoregressive`)
and the autoregressive neural spline (`SplineAutoregressive`).

Each uses one autoregressive conditioner (a `MADE` by default) and an elementwise
transformer tau(u_i; theta_i) (`tfflows.bijectors.transformers`) whose parameters theta_i
depend on u_<i (in the layer's order). The map

    v = T(u):  v_i = tau(u_i; theta_i(u_<i))

costs ONE network pass (all theta_i at once from u); its inverse costs D passes, because
u_i is needed before theta_{i+1} can be computed. The inverse runs as a compiled loop
(`keras.ops.fori_loop`): after pass k the first k features in the order are exact, and
the last pass also yields the exact parameters for the log-det.

MAF puts the cheap direction on the density (data -> latent); IAF puts it on sampling.
"""

import keras
from keras import ops

from tfflows._math import draw_seed, reduce_log_det
from tfflows.bijectors.conditioned import Conditioned
from tfflows.bijectors.transformers import AffineTransformer, SplineTransformer
from tfflows.nets.made import MADE


class Autoregressive(Conditioned):
    """Base of autoregressive layers; a subclass sets `self.transformer` and
    `self.density_is_parallel` (True: forward = T, one pass; False: forward = T^-1).

    `conditioner`: a Keras layer returning (batch, P, D) parameters, parameter-major,
    where parameters of feature i depend only on the features before i in the layer's
    order (and on the context, passed as a second argument when `context_features` > 0),
    e.g. a `MADE` with other sizes or activation. Default: `MADE(P, hidden_units, order)`.
    Either way it is the attribute `made` (the name its weights are saved under).

    Args:
        hidden_units: sizes of the default MADE's hidden layers.
        order: the order i runs over: "given", "reversed", "random" (seeded) or a
            permutation of range(D) (see `tfflows.nets.made.input_order`).
        seed: integer seed of the "random" order (None: drawn at construction when the
            order is "random", then kept in the config).
        activation: hidden activation of the default MADE.
        context_features: size of the conditioning vector (0: unconditional).
        conditioner: a Keras layer used instead of the default MADE (see above); it is
            saved in the config.
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    density_is_parallel = True
    conditioner_attribute = "made"

    def __init__(self, hidden_units=(64, 64), order="given", seed=None, activation="relu",
                 context_features=0, conditioner=None, **kwargs):
        super().__init__(conditioner=conditioner, **kwargs)
        self.hidden_units = tuple(int(h) for h in hidden_units)
        self.order = order if isinstance(order, str) else [int(i) for i in order]
        if seed is None and isinstance(order, str) and order == "random":
            seed = draw_seed()
        self.seed = None if seed is None else int(seed)
        self.activation = activation
        self.context_features = int(context_features)

    def build(self, input_shape):
        self._features = int(input_shape[-1])
        if self.made is None:
            self.made = MADE(self.transformer.params_per_feature, hidden_units=self.hidden_units,
                             order=self.order, seed=self.seed, activation=self.activation,
                             context_features=self.context_features,
                             dtype=self.network_dtype_policy, name="made")
        if not self.made.built:
            self.made.build((None, self._features))

    @property
    def permutation(self):
        """The layer's autoregressive order: `permutation[k]` is the k-th feature."""
        return self.made.permutation

    def _params(self, u, context):
        params = self.made(u, context) if self.context_features else self.made(u)
        return ops.cast(params, u.dtype)  # a mixed-precision network returns float16

    def _parallel(self, u, context):
        v, log_deriv = self.transformer.forward(u, self._params(u, context))
        return v, reduce_log_det(log_deriv, 1)

    def _sequential(self, v, context):
        def step(_, u):
            return self.transformer.inverse(v, self._params(u, context))[0]

        u = ops.fori_loop(0, self._features - 1, step, ops.zeros_like(v))
        u, log_deriv = self.transformer.inverse(v, self._params(u, context))
        return u, reduce_log_det(log_deriv, 1)

    def _forward_and_log_det(self, x, context=None, training=False):
        if self.density_is_parallel:
            return self._parallel(x, context)
        return self._sequential(x, context)

    def _inverse_and_log_det(self, y, context=None, training=False):
        if self.density_is_parallel:
            return self._sequential(y, context)
        return self._parallel(y, context)

    def get_config(self):
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "order": self.order, "seed": self.seed, "activation": self.activation,
                "context_features": self.context_features}


class _AffineAutoregressive(Autoregressive):
    def __init__(self, *args, log_scale_clamp=3.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.transformer = AffineTransformer(log_scale_clamp)



@keras.saving.register_keras_serializable(package="tfflows")
class MaskedAutoregressive(_AffineAutoregressive):
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

    Args:
        log_scale_clamp: soft bound on each log-scale s (the clamp above).
        *args, **kwargs: of `Autoregressive` (hidden_units, order, seed, activation,
            context_features, conditioner) and `keras.layers.Layer` (name, dtype).
    """


@keras.saving.register_keras_serializable(package="tfflows")
class InverseAutoregressive(_AffineAutoregressive):
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

    Args:
        log_scale_clamp: soft bound on each log-scale s (the clamp above).
        *args, **kwargs: of `Autoregressive` (hidden_units, order, seed, activation,
            context_features, conditioner) and `keras.layers.Layer` (name, dtype).
    """

    density_is_parallel = False


@keras.saving.register_keras_serializable(package="tfflows")
class SplineAutoregressive(Autoregressive):
    """Autoregressive rational-quadratic spline layer (Durkan et al. 2019), MAF-style.

    forward (data -> latent, density):  z_i = RQS(x_i; theta_i),
                                        theta_i = MADE(x_<i, context)
    inverse (latent -> data, sampling): x_i = RQS^-1(z_i; theta_i), in order
    log_det (forward):                  sum_i log RQS'(x_i)
    Costs: forward is ONE MADE pass; the inverse is D sequential passes (compiled
    `keras.ops.fori_loop`). Identity outside [-bound, bound].

    Args:
        bins: number of spline bins K (3 K - 1 parameters per feature).
        bound: the spline acts on [-bound, bound]; identity outside.
        *args, **kwargs: of `Autoregressive` (hidden_units, order, seed, activation,
            context_features, conditioner) and `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, *args, bins=8, bound=5.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.transformer = SplineTransformer(bins, bound)

