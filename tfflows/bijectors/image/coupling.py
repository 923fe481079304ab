"""Coupling layers on images (N, H, W, C) with checkerboard and channel masks and a
convolutional conditioner (`tfflows.nets.conv.ConvResNet`); the elementwise maps are the
shared transformers of `tfflows.bijectors.transformers`."""

import keras
import numpy as np
from keras import ops

from tfflows._math import reduce_log_det
from tfflows.bijectors.image.layout import ImageLayer
from tfflows.bijectors.transformers import AdditiveTransformer, AffineTransformer
from tfflows.nets.conv import ConvResNet, GlowConvNet


class ImageCoupling(ImageLayer):
    """Coupling on images; a convolutional network (`ConvResNet` or Glow's `GlowConvNet`)
    reads the identity part.

    mask="checkerboard": pixels with (i + j) even are the identity part (odd with
    flip=True); the conditioner reads x * m and the transformed pixels use its output.
    mask="channel": the first C//2 channels are the identity part (the others with
    flip=True); the conditioner reads them and returns parameters for the rest.

    forward:  y = m * x + (1 - m) * tau(x; theta(m * x, context))
    inverse:  x = m * y + (1 - m) * tau^-1(y; theta(m * y, context))
    log_det:  sum over transformed entries of log|d tau / dx|

    Args:
        mask: "checkerboard" or "channel" (see above).
        flip: swap the identity and the transformed parts.
        hidden_channels: channels of the conditioner's hidden convolutions.
        num_blocks: number of residual blocks of a "resnet" conditioner.
        network: "resnet" (`ConvResNet`, RealNVP's coupling network) or "glow"
            (`GlowConvNet`: 3x3, 1x1, 3x3 convolutions, Glow's).
        kernel_size: side of the conditioner's (square) convolution kernels.
        activation: activation of the conditioner.
        context_features: size of the conditioning vector (0: unconditional), tiled over
            the image by the conditioner.
        **kwargs: of `keras.layers.Layer` (name, dtype).
    """

    transformer = AdditiveTransformer()

    def __init__(
        self,
        mask="checkerboard",
        flip=False,
        hidden_channels=64,
        num_blocks=2,
        kernel_size=3,
        activation="relu",
        context_features=0,
        network="resnet",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if network not in ("resnet", "glow"):
            raise ValueError(f"network must be 'resnet' or 'glow'; got {network!r}.")
        if mask not in ("checkerboard", "channel"):
            raise ValueError(f"Unknown image mask {mask!r}; use 'checkerboard' or 'channel'.")
        self.mask = mask
        self.flip = bool(flip)
        self.hidden_channels = int(hidden_channels)
        self.num_blocks = int(num_blocks)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.context_features = int(context_features)
        self.network = network

    def build(self, input_shape):
        super().build(input_shape)
        h, w, c = self._hwc
        if self.mask == "checkerboard":
            if h * w < 2:
                raise ValueError("A checkerboard mask needs at least 2 pixels; "
                                 f"got (H, W, C) = {self._hwc}.")
            grid = (np.add.outer(np.arange(h), np.arange(w)) % 2 == 0) != self.flip
            self._mask = grid[:, :, None].astype("float32")
            c_in, c_out = c, c
        else:
            if c < 2:
                raise ValueError("A channel mask needs at least 2 channels; "
                                 f"got (H, W, C) = {self._hwc} "
                                 "(squeeze first, or use mask='checkerboard').")
            self._split = c // 2
            c_in = self._split if not self.flip else c - self._split
            c_out = c - c_in
        self._n_transformed = c_out
        options = dict(hidden_channels=self.hidden_channels, kernel_size=self.kernel_size,
                       activation=self.activation, context_features=self.context_features,
                       dtype=self.network_dtype_policy, name="conditioner")
        out = c_out * self.transformer.params_per_feature
        self.conditioner = (ConvResNet(out, num_blocks=self.num_blocks, **options)
                            if self.network == "resnet" else GlowConvNet(out, **options))
        self.conditioner.build((None, h, w, c_in))

    def _params(self, x_id, context):
        """The conditioner's (N, H, W, P * C_out) outputs as (N, H, W, P, C_out),
        parameter-major."""
        p = self.conditioner(x_id, context)
        shape = (self.transformer.params_per_feature, self._n_transformed)
        return ops.cast(ops.reshape(p, tuple(ops.shape(p)[:-1]) + shape), x_id.dtype)

    def _couple(self, x, context, inverse):
        self._check_input(x)
        step = self.transformer.inverse if inverse else self.transformer.forward
        if self.mask == "checkerboard":
            m = ops.cast(self._mask, x.dtype)
            out, log_deriv = step(x, self._params(x * m, context))
            y = m * x + (1 - m) * out
            if log_deriv is not None:
                log_deriv = (1 - m) * log_deriv
        else:
            a, b = x[..., :self._split], x[..., self._split:]
            if self.flip:
                out, log_deriv = step(a, self._params(b, context))
                y = ops.concatenate([out, b], axis=-1)
            else:
                out, log_deriv = step(b, self._params(a, context))
                y = ops.concatenate([a, out], axis=-1)
        if log_deriv is None:
            return y, self._zeros_log_det(x)
        return y, reduce_log_det(log_deriv, 3)

    def _forward_and_log_det(self, x, context=None, training=False):
        return self._couple(x, context, inverse=False)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return self._couple(y, context, inverse=True)

    def get_config(self):
        return {**super().get_config(), **self.transformer.config(), "mask": self.mask,
                "flip": self.flip, "hidden_channels": self.hidden_channels,
                "num_blocks": self.num_blocks, "kernel_size": self.kernel_size,
                "activation": self.activation,
                "context_features": self.context_features, "network": self.network}


@keras.saving.register_keras_serializable(package="tfflows")
class ConvAdditiveCoupling(ImageCoupling):
    """NICE additive coupling on images (Dinh et al. 2014, arXiv:1410.8516) with a
    convolutional conditioner and a checkerboard or channel mask (see `ImageCoupling`).

    tau(x) = x + t,   tau^-1(y) = y - t,   log_det = 0

    Args:
        *args, **kwargs: of `ImageCoupling` (mask, flip, hidden_channels, num_blocks,
            kernel_size, activation, context_features) and `keras.layers.Layer` (name,
            dtype).
    """


@keras.saving.register_keras_serializable(package="tfflows")
class ConvAffineCoupling(ImageCoupling):
    """RealNVP affine coupling on images (Dinh et al. 2016, arXiv:1605.08803) with a
    convolutional conditioner and a checkerboard or channel mask (see `ImageCoupling`).

    tau(x) = x * exp(s) + t,   tau^-1(y) = (y - t) * exp(-s),   s = clamp * tanh(s_raw / clamp)
    log_det = sum over transformed entries of s

    Args:
        log_scale_clamp: soft bound on each log-scale s (the clamp above).
        *args, **kwargs: of `ImageCoupling` (mask, flip, hidden_channels, num_blocks,
            kernel_size, activation, context_features) and `keras.layers.Layer` (name,
            dtype).
    """

    def __init__(self, *args, log_scale_clamp=3.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.transformer = AffineTransformer(log_scale_clamp)

