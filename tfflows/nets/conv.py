"""Convolutional conditioners for image coupling layers: a small ResNet and Glow's
three-convolution network.

Like `tfflows.MLP`, their output convolution starts at zero, so a freshly built coupling
layer is the identity map.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfflows")
class ConvResNet(keras.layers.Layer):
    """Images (N, H, W, C_in) -> parameters (N, H, W, out_channels), 'same' padding.

    conv3x3(hidden) -> num_blocks x [h + conv3x3(relu(conv3x3(relu(h))))] -> relu
    -> conv3x3(out_channels), zero-initialized (He et al. 2016 residual blocks, as in
    RealNVP's and Glow's coupling networks, without normalization).

    With `context_features` > 0, `call(x, context)` tiles the context vector over the
    image and concatenates it to the input channels.

    Args:
        out_channels: number of output channels (the coupling layer's parameters).
        hidden_channels: channels of the hidden convolutions.
        num_blocks: number of residual blocks.
        kernel_size: side of every (square) convolution kernel.
        activation: activation between convolutions (a Keras activation name or callable).
        context_features: size of the optional conditioning vector (0: none).
        zero_init: start the output convolution's kernel at zero (identity flow at start);
            otherwise Glorot-uniform.
    """

    def __init__(self, out_channels, hidden_channels=64, num_blocks=2, kernel_size=3,
                 activation="relu", context_features=0, zero_init=True, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = int(out_channels)
        self.hidden_channels = int(hidden_channels)
        self.num_blocks = int(num_blocks)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.context_features = int(context_features)
        self.zero_init = bool(zero_init)

        def conv(channels, name, **kw):
            return keras.layers.Conv2D(channels, self.kernel_size, padding="same",
                                       dtype=self.dtype_policy, name=name, **kw)

        self.input_conv = conv(self.hidden_channels, "input_conv")
        self.block_a = [conv(self.hidden_channels, f"block_{i}_a") for i in range(self.num_blocks)]
        self.block_b = [conv(self.hidden_channels, f"block_{i}_b") for i in range(self.num_blocks)]
        self.output_conv = conv(self.out_channels, "output_conv",
                                kernel_initializer="zeros" if zero_init else "glorot_uniform")
        self._act = keras.activations.get(activation)

    def build(self, input_shape):
        spatial = tuple(input_shape[:-1])
        self.input_conv.build(spatial + (int(input_shape[-1]) + self.context_features,))
        hidden = spatial + (self.hidden_channels,)
        for conv_a, conv_b in zip(self.block_a, self.block_b):
            conv_a.build(hidden)
            conv_b.build(hidden)
        self.output_conv.build(hidden)

    def call(self, x, context=None):
        x = tile_context(x, context, self.context_features, self.name)
        h = self.input_conv(x)
        for conv_a, conv_b in zip(self.block_a, self.block_b):
            h = h + conv_b(self._act(conv_a(self._act(h))))
        return self.output_conv(self._act(h))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        return {
            **super().get_config(),
            "out_channels": self.out_channels,
            "hidden_channels": self.hidden_channels,
            "num_blocks": self.num_blocks,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "context_features": self.context_features,
            "zero_init": self.zero_init,
        }


@keras.saving.register_keras_serializable(package="tfflows")
class GlowConvNet(keras.layers.Layer):
    """Glow's coupling network NN() (Kingma & Dhariwal 2018, sec. 3.3): images
    (N, H, W, C_in) -> parameters (N, H, W, out_channels), 'same' padding.

    conv3x3(hidden) -> relu -> conv1x1(hidden) -> relu -> conv3x3(out_channels),
    the last convolution zero-initialized (so a fresh coupling is the identity).

    Against `ConvResNet` with one residual block at the same width it has no 3x3
    hidden x hidden convolution (ConvResNet has two) and a 1x1 one instead: a 28x28 Glow
    of width 64 has 76k parameters with it against 634k.

    Args: as `ConvResNet` (no `num_blocks`).
    """

    def __init__(self, out_channels, hidden_channels=64, kernel_size=3, activation="relu",
                 context_features=0, zero_init=True, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = int(out_channels)
        self.hidden_channels = int(hidden_channels)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.context_features = int(context_features)
        self.zero_init = bool(zero_init)
        self.input_conv = keras.layers.Conv2D(self.hidden_channels, self.kernel_size,
                                              padding="same", dtype=self.dtype_policy,
                                              name="input_conv")
        self.middle_conv = keras.layers.Conv2D(self.hidden_channels, 1, dtype=self.dtype_policy,
                                               name="middle_conv")
        self.output_conv = keras.layers.Conv2D(
            self.out_channels, self.kernel_size, padding="same", dtype=self.dtype_policy,
            name="output_conv", kernel_initializer="zeros" if zero_init else "glorot_uniform")
        self._act = keras.activations.get(activation)

    def build(self, input_shape):
        spatial = tuple(input_shape[:-1])
        self.input_conv.build(spatial + (int(input_shape[-1]) + self.context_features,))
        self.middle_conv.build(spatial + (self.hidden_channels,))
        self.output_conv.build(spatial + (self.hidden_channels,))

    def call(self, x, context=None):
        x = tile_context(x, context, self.context_features, self.name)
        h = self._act(self.middle_conv(self._act(self.input_conv(x))))
        return self.output_conv(h)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels,
                "hidden_channels": self.hidden_channels, "kernel_size": self.kernel_size,
                "activation": self.activation, "context_features": self.context_features,
                "zero_init": self.zero_init}


def tile_context(x, context, context_features, name):
    """x with the context vector tiled over its pixels and concatenated to its channels
    (x itself when context_features is 0)."""
    if not context_features:
        return x
    if context is None:
        raise ValueError(f"{name} was built with context_features={context_features} "
                         "but no context was given.")
    shape = ops.shape(x)
    c = ops.cast(context, x.dtype)[:, None, None, :]
    tiled = ops.broadcast_to(c, (shape[0], shape[1], shape[2], context_features))
    return ops.concatenate([x, tiled], axis=-1)
