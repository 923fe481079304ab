"""Composition of bijectors: `Chain` (list order) and `Invert` (directions swapped)."""

import keras

from tfflows._math import reduce_log_det
from tfflows.bijectors.base import Bijector


def _serialize_layers(layers):
    return [keras.saving.serialize_keras_object(layer) for layer in layers]


def _deserialize_layers(configs):
    return [keras.saving.deserialize_keras_object(c) for c in configs]


def _checked_layers(layers):
    layers = list(layers)
    for i, layer in enumerate(layers):
        if isinstance(layer, Bijector):
            continue
        if type(layer).__module__.startswith("tensorflow_probability"):
            raise TypeError(f"Chain item {i} is the TFP bijector {type(layer).__name__}; "
                            "wrap it as a layer: "
                            f"tfflows.TFPBijector({type(layer).__name__}(...)). "
                            "(tfflows.Chain applies its list in order, unlike tfb.Chain.)")
        raise TypeError(f"Chain item {i} is a {type(layer).__name__}, not a tfflows.Bijector "
                        "(a layer with forward_and_log_det and inverse_and_log_det).")
    return layers


@keras.saving.register_keras_serializable(package="tfflows")
class Chain(Bijector):
    """Composition of bijectors applied in list order (unlike `tfb.Chain`, which reverses).

    forward:  y = f_n(...f_2(f_1(x)))        log_det = sum_k log|det J_{f_k}|
    inverse:  x = f_1^-1(...f_n^-1(y))       log_det = -forward log_det at x

    Args:
        layers: the `tfflows.Bijector` layers f_1, ..., f_n, in the order they apply
            (a TFP bijector is refused: wrap it in `tfflows.TFPBijector`).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, layers, **kwargs):
        super().__init__(**kwargs)
        self.layers = _checked_layers(layers)

    @property
    def event_ndims(self):
        return max((layer.event_ndims for layer in self.layers), default=1)

    def set_layers(self, layers):
        """Replace the layers of a chain that is not built yet (Keras fixes a built
        layer's sub-layers); used by the greedy fits before their model is built."""
        if self.built:
            raise ValueError(f"{self.name} is built; its layers can no longer be replaced.")
        self.layers = _checked_layers(layers)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def inverse_output_shape(self, output_shape):
        shape = tuple(output_shape)
        for layer in reversed(self.layers):
            shape = layer.inverse_output_shape(shape)
        return shape

    def initialize_from_data(self, x, context=None):
        x = self._cast(x)
        self._ensure_built(x)
        for layer in self.layers:
            layer.initialize_from_data(x, context)
            x = layer.forward(x, context)

    def _sum_log_dets(self, total, log_det):
        # A layer with a smaller event than the chain's (a feature permutation inside an
        # image chain) reports a log-det per position: reduce it to the batch shape.
        return total + reduce_log_det(log_det, len(log_det.shape) - len(total.shape))

    def _forward_and_log_det(self, x, context=None, training=False):
        total = self._zeros_log_det(x)
        for layer in self.layers:
            x, log_det = layer.forward_and_log_det(x, context, training=training)
            total = self._sum_log_dets(total, log_det)
        return x, total

    def _inverse_and_log_det(self, y, context=None, training=False):
        total = self._zeros_log_det(y)
        for layer in reversed(self.layers):
            y, log_det = layer.inverse_and_log_det(y, context, training=training)
            total = self._sum_log_dets(total, log_det)
        return y, total

    def get_config(self):
        return {**super().get_config(), "layers": _serialize_layers(self.layers)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = _deserialize_layers(config["layers"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfflows")
class Invert(Bijector):
    """Swaps the directions of a bijector: forward is `b.inverse`, inverse is `b.forward`.

    forward:  y = b^-1(x),  log_det = b.inverse log_det
    inverse:  x = b(y),     log_det = b.forward log_det

    Args:
        bijector: the `tfflows.Bijector` b to invert (kept as the attribute `inner`).
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, bijector, **kwargs):
        super().__init__(**kwargs)
        self.inner = bijector

    @property
    def event_ndims(self):
        return self.inner.event_ndims

    def build(self, input_shape):
        if not self.inner.built:
            self.inner.build(self.inner.inverse_output_shape(tuple(input_shape)))

    def compute_output_shape(self, input_shape):
        return self.inner.inverse_output_shape(input_shape)

    def inverse_output_shape(self, output_shape):
        return self.inner.compute_output_shape(output_shape)

    def _forward_and_log_det(self, x, context=None, training=False):
        return self.inner.inverse_and_log_det(x, context, training=training)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return self.inner.forward_and_log_det(y, context, training=training)

    def get_config(self):
        config = super().get_config()
        config["bijector"] = keras.saving.serialize_keras_object(self.inner)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["bijector"] = keras.saving.deserialize_keras_object(config["bijector"])
        return cls(**config)
