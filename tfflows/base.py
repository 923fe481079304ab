"""The one bijector contract, and composition (`Chain`, `Invert`).

A `Bijector` is a Keras layer that maps x to y invertibly and reports the log
absolute determinant of the Jacobian, summed over the event dimensions, so that
`log_det` has the batch shape.

Subclasses write two methods (TFP's convention of a private implementation behind
a public entry point, so that the public one can build the layer first):

    _forward_and_log_det(x, context=None, training=False) -> (y, log|det dy/dx|)
    _inverse_and_log_det(y, context=None, training=False) -> (x, log|det dx/dy|)

Everything else (`forward`, `inverse`, `forward_log_det_jacobian`,
`inverse_log_det_jacobian`, `call`, the TFP adapter `.bijector`) derives from them.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfflows")
class Bijector(keras.layers.Layer):
    """Base class of every tfflows layer: an invertible map with a tractable log-det.

    forward:  y = f(x),       log_det = log|det df/dx|      (summed over the event)
    inverse:  x = f^-1(y),    log_det = log|det df^-1/dy| = -forward log_det

    `event_ndims` is the number of trailing axes that form one event (1 for
    tabular data, 3 for images shaped (H, W, C)). `context` is an optional
    conditioning tensor with the same leading (batch) axis, threaded everywhere.
    """

    event_ndims = 1

    # ----- what a subclass writes ---------------------------------------------------
    def _forward_and_log_det(self, x, context=None, training=False):
        raise NotImplementedError(f"{type(self).__name__} has no forward.")

    def _inverse_and_log_det(self, y, context=None, training=False):
        raise NotImplementedError(f"{type(self).__name__} has no inverse.")

    def initialize_from_data(self, x, context=None):
        """Data-dependent initialization on a first batch (e.g. ActNorm); no-op here.

        Called eagerly, outside any compiled step, by `Flow.fit` before training.
        """

    # ----- derived API --------------------------------------------------------------
    def _ensure_built(self, x):
        if not self.built:
            self.build(tuple(x.shape))

    def _cast(self, x):
        return ops.cast(x, self.compute_dtype)

    def forward_and_log_det(self, x, context=None, training=False):
        x = self._cast(x)
        self._ensure_built(x)
        if x.shape[0] == 0:
            return self._empty_result(x, self.compute_output_shape(x.shape))
        return self._forward_and_log_det(x, context=context, training=training)

    def inverse_and_log_det(self, y, context=None, training=False):
        y = self._cast(y)
        self._ensure_built(y)
        if y.shape[0] == 0:
            return self._empty_result(y, self.inverse_output_shape(y.shape))
        return self._inverse_and_log_det(y, context=context, training=training)

    def _empty_result(self, x, out_shape):
        """An empty batch maps to an empty batch (some kernels, e.g. convolutions, refuse it)."""
        batch_ndims = len(x.shape) - self.event_ndims
        return ops.zeros((0,) + tuple(out_shape[1:]), x.dtype), ops.zeros((0,) * batch_ndims, x.dtype)

    def forward(self, x, context=None):
        return self.forward_and_log_det(x, context)[0]

    def inverse(self, y, context=None):
        return self.inverse_and_log_det(y, context)[0]

    def forward_log_det_jacobian(self, x, context=None):
        return self.forward_and_log_det(x, context)[1]

    def inverse_log_det_jacobian(self, y, context=None):
        return self.inverse_and_log_det(y, context)[1]

    def call(self, x, context=None, training=False):
        return self._forward_and_log_det(x, context=context, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def inverse_output_shape(self, output_shape):
        return tuple(output_shape)

    def _batch_shape(self, x):
        return ops.shape(x)[: len(x.shape) - self.event_ndims]

    def _zeros_log_det(self, x):
        """A zero log-det with the batch shape of `x` (for volume-preserving maps)."""
        return ops.zeros(self._batch_shape(x), dtype=x.dtype)

    @property
    def bijector(self):
        """This layer as a `tfp.bijectors.Bijector` (TensorFlow backend only)."""
        from tfflows.tfp_interop import to_tfp_bijector

        return to_tfp_bijector(self)


class FittedOnce:
    """Mixin for layers fitted from data without gradients (`fit_from_data(x)`) that keep
    an `initialized` flag weight: `initialize_from_data` fits them once, so `Flow.fit`
    does not refit a loaded or already fitted layer. Put it before the Bijector base."""

    def initialize_from_data(self, x, context=None):
        x = self._cast(x)
        self._ensure_built(x)
        if float(ops.convert_to_numpy(self.initialized)) > 0:
            return
        self.fit_from_data(x)


def _serialize_layers(layers):
    return [keras.saving.serialize_keras_object(layer) for layer in layers]


def _deserialize_layers(configs):
    return [keras.saving.deserialize_keras_object(c) for c in configs]


@keras.saving.register_keras_serializable(package="tfflows")
class Chain(Bijector):
    """Composition of bijectors applied in list order (unlike `tfb.Chain`, which reverses).

    forward:  y = f_n(...f_2(f_1(x)))        log_det = sum_k log|det J_{f_k}|
    inverse:  x = f_1^-1(...f_n^-1(y))       log_det = -forward log_det at x
    """

    def __init__(self, layers, **kwargs):
        super().__init__(**kwargs)
        self.layers = list(layers)

    @property
    def event_ndims(self):
        return max((layer.event_ndims for layer in self.layers), default=1)

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
        # Layers with a larger event (images) report log-dets over fewer batch axes;
        # reduce the smaller-event ones to match.
        while len(log_det.shape) > len(total.shape):
            log_det = ops.sum(log_det, axis=-1)
        return total + log_det

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
