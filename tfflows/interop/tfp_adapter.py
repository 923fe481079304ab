"""tfflows -> TFP: any tfflows layer as a `tfp.bijectors.Bijector` (TensorFlow backend).

A leaf module: it imports nothing of tfflows (it only calls the layer's public
`forward`/`inverse`/log-det methods), so the contract can offer `layer.bijector` without
depending on TensorFlow itself.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


class LayerBijector(tfb.Bijector):
    """Adapter: TFP's Bijector API over a `tfflows.Bijector` layer.

    TFP's `forward` is the layer's forward; `tfb.Chain([a, b])` applies b first, unlike
    `tfflows.Chain`. The underlying `tf.Variable`s of the layer (and of `variables`, e.g.
    a flow's base) are attributes of this `tf.Module`, so `trainable_variables` lists them
    and TFP code that trains a distribution's variables (`tfp.vi.fit_surrogate_posterior`,
    a custom `tf.GradientTape` loop) trains the layer. Build the layer first.
    `min_event_ndims` is the layer's `event_ndims`; TFP sums the log-det over any further
    event axes requested with `event_ndims=`. Layers that change the event shape (image
    squeezes) report it through `compute_output_shape`.

    Args:
        layer: the tfflows layer.
        context: the conditioning tensor passed to every call (None: unconditional).
        name: of the TFP bijector.
        variables: the layer's variables (for TFP's variable tracking).
    """

    def __init__(self, layer, context=None, name=None, variables=None):
        self.layer = layer
        self.context = context
        # Keras variables wrap tf.Variables, which tf.Module's variable tracking finds
        self.layer_variables = [
            v.value for v in (layer.variables if variables is None else variables)
        ]
        super().__init__(
            forward_min_event_ndims=layer.event_ndims,
            inverse_min_event_ndims=layer.event_ndims,
            is_constant_jacobian=False,
            validate_args=False,
            name=name or f"tfflows_{layer.name}",
        )

    def _forward(self, x):
        return self.layer.forward(x, self.context)

    def _inverse(self, y):
        return self.layer.inverse(y, self.context)

    def _forward_log_det_jacobian(self, x):
        return self.layer.forward_log_det_jacobian(x, self.context)

    def _inverse_log_det_jacobian(self, y):
        return self.layer.inverse_log_det_jacobian(y, self.context)

    def _event_shape(self, shape, fn):
        shape = tf.TensorShape(shape)
        if shape.rank is None or not shape.is_fully_defined():
            return shape
        return tf.TensorShape(fn((None,) + tuple(shape.as_list()))[1:])

    def _forward_event_shape(self, input_shape):
        return self._event_shape(input_shape, self.layer.compute_output_shape)

    def _inverse_event_shape(self, output_shape):
        return self._event_shape(output_shape, self.layer.inverse_output_shape)

    def _event_shape_tensor(self, shape, fn):
        static = tf.get_static_value(shape)
        if static is None:  # unknown until run time: the layer's shape map needs static shapes
            return shape
        return tf.constant(self._event_shape(static, fn).as_list(), tf.int32)

    def _forward_event_shape_tensor(self, input_shape):
        return self._event_shape_tensor(input_shape, self.layer.compute_output_shape)

    def _inverse_event_shape_tensor(self, output_shape):
        return self._event_shape_tensor(output_shape, self.layer.inverse_output_shape)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    @property
    def _is_permutation(self):
        return False


def to_tfp_bijector(layer, context=None, variables=None):
    """The layer (or `flow.transform`) as a `tfp.bijectors.Bijector`."""
    return LayerBijector(layer, context=context, variables=variables)
