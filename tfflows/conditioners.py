"""Conditioner networks: the Keras layers that compute a flow layer's parameters.

They are ordinary serializable layers (never lambdas). Their last layer starts at
zero, so a freshly built flow layer is the identity map and training starts from
the base distribution.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfflows")
class MLP(keras.layers.Layer):
    """Fully connected conditioner: inputs -> hidden layers -> `out_features` outputs.

    If `context_features` > 0, `call(x, context)` concatenates the context to the input.
    The output layer is zero-initialized (identity flow at start).
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
        self.hidden = [
            keras.layers.Dense(h, activation=activation, dtype=self.dtype_policy, name=f"hidden_{i}")
            for i, h in enumerate(self.hidden_units)
        ]
        self.output_layer = keras.layers.Dense(
            self.out_features,
            kernel_initializer="zeros" if zero_init else "glorot_uniform",
            bias_initializer="zeros",
            dtype=self.dtype_policy,
            name="output",
        )

    def build(self, input_shape):
        width = input_shape[-1] + self.context_features
        for layer in self.hidden:
            layer.build((None, width))
            width = layer.units
        self.output_layer.build((None, width))

    def call(self, x, context=None):
        if self.context_features:
            if context is None:
                raise ValueError(
                    f"{self.name} was built with context_features={self.context_features} "
                    "but no context was given."
                )
            x = ops.concatenate([x, ops.cast(context, x.dtype)], axis=-1)
        for layer in self.hidden:
            x = layer(x)
        return self.output_layer(x)

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
