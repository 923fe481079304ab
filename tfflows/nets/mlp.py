"""Conditioner networks: the Keras layers that compute a flow layer's parameters.

They are ordinary serializable layers (never lambdas). Their last layer starts at
zero, so a freshly built flow layer is the identity map and training starts from
the base distribution.
"""

import keras

from tfflows.nets import dense_stack


@keras.saving.register_keras_serializable(package="tfflows")
class MLP(keras.layers.Layer):
    """Fully connected conditioner: inputs -> hidden layers -> `out_features` outputs.

    If `context_features` > 0, `call(x, context)` concatenates the context to the input.
    Hidden kernels and biases start uniform in +-1/sqrt(fan_in); the output layer starts
    at zero (identity flow at start). All kernels and biases are one flat variable
    `parameters` (see `tfflows.nets.dense_stack`, which says why this initialization).

    Args:
        out_features: number of outputs per row.
        hidden_units: sizes of the hidden layers, first to last.
        activation: hidden activation (a Keras activation name or callable).
        context_features: size of the optional conditioning input (0: none).
        zero_init: start the output layer at zero (the flow layer starts at the identity).
    """

    def __init__(
        self,
        out_features,
        hidden_units=(64, 64),
        activation="relu",
        context_features=0,
        zero_init=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.out_features = int(out_features)
        self.hidden_units = tuple(int(h) for h in hidden_units)
        self.activation = activation
        self.context_features = int(context_features)
        self.zero_init = bool(zero_init)
        self._activation = keras.activations.get(activation)

    def build(self, input_shape):
        widths = [int(input_shape[-1]) + self.context_features, *self.hidden_units,
                  self.out_features]
        self._shapes = list(zip(widths[:-1], widths[1:]))
        # kernels and biases in one flat variable: one optimizer update per conditioner
        self.parameters = dense_stack.add_parameters(self, self._shapes, self.zero_init)

    def kernels_and_biases(self):
        """The kernels (fan_in, fan_out) and the biases of every layer, first to last."""
        return dense_stack.kernels_and_biases(self.parameters, self._shapes)

    def call(self, x, context=None):
        kernels, biases = self.kernels_and_biases()
        return dense_stack.apply(dense_stack.with_context(self, x, context), kernels, biases,
                                 self._activation)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_features,)

    def get_config(self):
        return {
            **super().get_config(),
            "out_features": self.out_features,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "context_features": self.context_features,
            "zero_init": self.zero_init,
        }
