"""`Preset`: the base of the preset flows, `Flow` subclasses whose architecture is a
function of their constructor arguments, so their config is those arguments and
`model.save` / `load_model` rebuild the same architecture; shared layer helpers."""

import keras

from tfflows.bijectors.elementwise import ActNorm, BatchNorm
from tfflows.distributions import StandardNormal
from tfflows.flows.flow import Flow


class Preset(Flow):
    """A `Flow` whose architecture is a function of its constructor arguments.

    Args:
        transform, base, event_shape, context_features: of `Flow`.
        arguments: the constructor arguments of the subclass (its `get_config`).
        **kwargs: of `Flow` (name, dtype).
    """

    def __init__(
        self, transform, base=None, event_shape=None, context_features=0, *, arguments, **kwargs
    ):
        super().__init__(
            transform,
            base=base,
            event_shape=event_shape,
            context_features=context_features,
            **kwargs,
        )
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


def normalization_layers(kind, name):
    if kind is None or kind == "none":
        return []
    if kind == "actnorm":
        return [ActNorm(name=name)]
    if kind == "batchnorm":
        return [BatchNorm(name=name)]
    raise ValueError(f"normalization must be 'actnorm', 'batchnorm' or None; got {kind!r}.")


def check_features(features, preset):
    features = int(features)
    if features < 2:
        raise ValueError(
            f"{preset} needs at least 2 features to split between coupling halves; got {features}."
        )
    return features
