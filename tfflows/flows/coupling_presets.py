"""Coupling presets: `NICE` and `RealNVP` (vectors; `RealNVP` given an image shape
returns the multi-scale `ImageRealNVP`)."""

import keras

from tfflows.bijectors.chain import Chain
from tfflows.bijectors.coupling import AdditiveCoupling, AffineCoupling
from tfflows.bijectors.elementwise import Rescale
from tfflows.distributions import StandardLogistic, StandardNormal
from tfflows.flows.image_presets import ImageRealNVP
from tfflows.flows.preset import Preset, check_features, normalization_layers


@keras.saving.register_keras_serializable(package="tfflows")
class NICE(Preset):
    """NICE (Dinh, Krueger & Bengio 2014): additive couplings with alternating masks, then
    a diagonal `Rescale`, on a standard logistic prior.

    log p(x) = sum_i log p_logistic(z_i) + sum_i s_i,   z = exp(s) * (couplings(x))

    Args:
        features: data dimension D.
        num_layers: additive couplings (alternating masks).
        hidden_units: widths of each coupling's MLP.
        activation: of the MLP's hidden layers.
        context_features: size of the conditioning vector (0: unconditional).
        base: "logistic" (NICE's prior) or any base `Flow` takes.
        **kwargs: of `Flow` (name, dtype).
    """

    def __init__(
        self,
        features,
        num_layers=4,
        hidden_units=(128, 128),
        activation="relu",
        context_features=0,
        base="logistic",
        **kwargs,
    ):
        features = check_features(features, "NICE")
        layers = [
            AdditiveCoupling(
                mask="alternate",
                flip=bool(i % 2),
                hidden_units=hidden_units,
                activation=activation,
                context_features=context_features,
                name=f"coupling_{i}",
            )
            for i in range(num_layers)
        ]
        layers.append(Rescale(name="rescale"))
        arguments = dict(
            features=features,
            num_layers=num_layers,
            hidden_units=list(hidden_units),
            activation=activation,
            context_features=context_features,
        )
        if base == "logistic":
            prior = StandardLogistic()
        elif base == "normal":
            prior = StandardNormal()
        elif isinstance(base, str):
            raise ValueError(
                f"NICE's base must be 'logistic', 'normal' or a distribution object; got {base!r}."
            )
        else:
            prior = base  # an object: saved by Preset.get_config
        if isinstance(base, str):
            arguments["base"] = base
        super().__init__(
            Chain(layers, name="chain"),
            base=prior,
            event_shape=(features,),
            context_features=context_features,
            arguments=arguments,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="tfflows")
class RealNVP(Preset):
    """RealNVP (Dinh, Sohl-Dickstein & Bengio 2016): affine couplings with alternating
    masks, each followed by a normalization layer (ActNorm by default), on N(0, I).

    log p(x) = log N(z; 0, I) + sum over layers of their log-scales.

    Given an image shape (H, W, C) instead of a feature count, `RealNVP((8, 8, 1), ...)`
    returns the multi-scale image model `tfflows.ImageRealNVP` (its own arguments apply).

    Args:
        features: data dimension D (or an image shape (H, W, C): `ImageRealNVP`).
        num_layers: affine couplings (alternating masks).
        hidden_units: widths of each coupling's MLP.
        activation: of the MLP's hidden layers.
        normalization: "actnorm" (default), "batchnorm" or None after each coupling.
        log_scale_clamp: soft bound on each affine log-scale.
        context_features: size of the conditioning vector (0: unconditional).
        **kwargs: of `Flow` (name, dtype).
    """

    def __new__(cls, features=None, *args, **kwargs):
        if cls is RealNVP and isinstance(features, (tuple, list)) and len(features) == 3:
            return ImageRealNVP(features, *args, **kwargs)
        return super().__new__(cls, features, *args, **kwargs)

    def __init__(
        self,
        features,
        num_layers=8,
        hidden_units=(64, 64),
        activation="relu",
        normalization="actnorm",
        log_scale_clamp=3.0,
        context_features=0,
        **kwargs,
    ):
        features = check_features(features, "RealNVP")
        layers = []
        for i in range(num_layers):
            layers.append(
                AffineCoupling(
                    mask="alternate",
                    flip=bool(i % 2),
                    hidden_units=hidden_units,
                    activation=activation,
                    log_scale_clamp=log_scale_clamp,
                    context_features=context_features,
                    name=f"coupling_{i}",
                )
            )
            layers += normalization_layers(normalization, f"norm_{i}")
        arguments = dict(
            features=features,
            num_layers=num_layers,
            hidden_units=list(hidden_units),
            activation=activation,
            normalization=normalization,
            log_scale_clamp=log_scale_clamp,
            context_features=context_features,
        )
        super().__init__(
            Chain(layers, name="chain"),
            event_shape=(features,),
            context_features=context_features,
            arguments=arguments,
            **kwargs,
        )
