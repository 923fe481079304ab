"""`Conditioned`: the base of layers whose elementwise transformer takes its parameters
from a conditioner network (coupling and autoregressive layers): the transformer's and a
user-given conditioner's part of the config."""

import keras

from tfflows.bijectors.base import Bijector


class Conditioned(Bijector):
    """A layer with `self.transformer` (a `tfflows.bijectors.transformers` object) and a
    conditioner network, built by the layer unless one is given (then it is saved in the
    config, as `keras.layers.Wrapper` saves its layer).

    Args:
        conditioner: the conditioner network (None: the subclass builds its default).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    conditioner_attribute = "conditioner"  # the attribute its weights are saved under

    def __init__(self, conditioner=None, **kwargs):
        super().__init__(**kwargs)
        self.custom_conditioner = conditioner is not None
        setattr(self, self.conditioner_attribute, conditioner)

    def get_config(self):
        config = {**super().get_config(), **self.transformer.config()}
        if self.custom_conditioner:
            conditioner = getattr(self, self.conditioner_attribute)
            config["conditioner"] = keras.saving.serialize_keras_object(conditioner)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("conditioner"), dict):
            config["conditioner"] = keras.saving.deserialize_keras_object(config["conditioner"])
        return cls(**config)
