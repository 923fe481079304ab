"""Preset flows: `Flow` subclasses that compose layers from a few size arguments.

A preset's config is its constructor arguments, so `model.save` / `load_model` rebuild
the same architecture and restore the weights.
"""

import keras

from tfflows.base import Chain
from tfflows.coupling import AdditiveCoupling, AffineCoupling
from tfflows.distributions import StandardLogistic, StandardNormal
from tfflows.elementwise import ActNorm, BatchNorm, Rescale
from tfflows.flow import Flow


class Preset(Flow):
    """A `Flow` whose architecture is a function of its constructor arguments."""

    def __init__(self, transform, base=None, event_shape=None, context_features=0, *, arguments, **kwargs):
        super().__init__(transform, base=base, event_shape=event_shape, context_features=context_features, **kwargs)
        self._arguments = dict(arguments)

    def get_config(self):
        config = {"name": self.name, **self._arguments}
        if "base" not in self._arguments and not isinstance(self.base, StandardNormal):
            config["base"] = keras.saving.serialize_keras_object(self.base)  # a custom base object
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("base"), dict):
            config["base"] = keras.saving.deserialize_keras_object(config["base"])
        return cls(**config)


def _normalization(kind, name):
    if kind is None or kind == "none":
        return []
    if kind == "actnorm":
        return [ActNorm(name=name)]
    if kind == "batchnorm":
        return [BatchNorm(name=name)]
    raise ValueError(f"normalization must be 'actnorm', 'batchnorm' or None; got {kind!r}.")


def _check_features(features, preset):
    features = int(features)
    if features < 2:
        raise ValueError(f"{preset} needs at least 2 features to split between coupling halves; got {features}.")
    return features


@keras.saving.register_keras_serializable(package="tfflows")
class NICE(Preset):
    """NICE (Dinh, Krueger & Bengio 2014): additive couplings with alternating masks, then
    a diagonal `Rescale`, on a standard logistic prior.

    log p(x) = sum_i log p_logistic(z_i) + sum_i s_i,   z = exp(s) * (couplings(x))
    """

    def __init__(self, features, num_layers=4, hidden_units=(128, 128), activation="relu",
                 context_features=0, base="logistic", **kwargs):
        features = _check_features(features, "NICE")
        layers = [
            AdditiveCoupling(mask="alternate", flip=bool(i % 2), hidden_units=hidden_units,
                             activation=activation, context_features=context_features, name=f"coupling_{i}")
            for i in range(num_layers)
        ]
        layers.append(Rescale(name="rescale"))
        arguments = dict(features=features, num_layers=num_layers, hidden_units=list(hidden_units),
                         activation=activation, context_features=context_features)
        if base == "logistic":
            prior = StandardLogistic()
        elif base == "normal":
            prior = StandardNormal()
        elif isinstance(base, str):
            raise ValueError(f"NICE's base must be 'logistic', 'normal' or a distribution object; got {base!r}.")
        else:
            prior = base  # an object: saved by Preset.get_config
        if isinstance(base, str):
            arguments["base"] = base
        super().__init__(Chain(layers, name="chain"), base=prior, event_shape=(features,),
                         context_features=context_features, arguments=arguments, **kwargs)


@keras.saving.register_keras_serializable(package="tfflows")
class RealNVP(Preset):
    """RealNVP (Dinh, Sohl-Dickstein & Bengio 2016): affine couplings with alternating
    masks, each followed by a normalization layer (ActNorm by default), on N(0, I).

    log p(x) = log N(z; 0, I) + sum over layers of their log-scales.

    Given an image shape (H, W, C) instead of a feature count, `RealNVP((8, 8, 1), ...)`
    returns the multi-scale image model `tfflows.ImageRealNVP` (its own arguments apply).
    """

    def __new__(cls, features=None, *args, **kwargs):
        if cls is RealNVP and isinstance(features, (tuple, list)) and len(features) == 3:
            from tfflows.image_presets import ImageRealNVP

            return ImageRealNVP(features, *args, **kwargs)
        return super().__new__(cls, features, *args, **kwargs)

    def __init__(self, features, num_layers=8, hidden_units=(64, 64), activation="relu",
                 normalization="actnorm", log_scale_clamp=3.0, context_features=0, **kwargs):
        features = _check_features(features, "RealNVP")
        layers = []
        for i in range(num_layers):
            layers.append(AffineCoupling(mask="alternate", flip=bool(i % 2), hidden_units=hidden_units,
                                         activation=activation, log_scale_clamp=log_scale_clamp,
                                         context_features=context_features, name=f"coupling_{i}"))
            layers += _normalization(normalization, f"norm_{i}")
        arguments = dict(features=features, num_layers=num_layers, hidden_units=list(hidden_units),
                         activation=activation, normalization=normalization,
                         log_scale_clamp=log_scale_clamp, context_features=context_features)
        super().__init__(Chain(layers, name="chain"), event_shape=(features,),
                         context_features=context_features, arguments=arguments, **kwargs)
