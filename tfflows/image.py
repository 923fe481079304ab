"""Image flow layers on (N, H, W, C) tensors: `Squeeze`, convolutional couplings with
checkerboard and channel masks, `Invertible1x1Conv`, `MaskedConv`, and the multi-scale
wrapper `MultiScale` (RealNVP/Glow). Every layer's event is (H, W, C) (`event_ndims=3`).

Per-channel `ActNorm`/`BatchNorm` (tfflows.elementwise) already act on images.
"""

import keras
import numpy as np
from keras import ops

from tfflows._math import soft_clamp
from tfflows.base import Bijector
from tfflows.conv_conditioners import ConvResNet
from tfflows.linear import LULinear
from tfflows.masked_conv import MaskedConv  # noqa: F401  (its own module, for size)


def check_image_shape(input_shape, layer, even=False):
    """(H, W, C) of an input shape (batch, H, W, C), with errors that name the constraint."""
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(f"{layer} expects images shaped (batch, H, W, C), i.e. events (H, W, C); "
                         f"got input shape {shape}.")
    h, w, c = (int(s) for s in shape[1:])
    if even and (h % 2 or w % 2):
        raise ValueError(f"{layer} needs even H and W (it folds 2x2 pixel blocks into channels); "
                         f"got (H, W, C) = ({h}, {w}, {c}).")
    return h, w, c


def squeeze(x):
    """Space-to-depth: (N, H, W, C) -> (N, H/2, W/2, 4C); channel order (row, col, c)."""
    h, w, c = x.shape[1:]
    x = ops.reshape(x, (-1, h // 2, 2, w // 2, 2, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, h // 2, w // 2, 4 * c))


def unsqueeze(y):
    """Depth-to-space, the inverse of `squeeze`: (N, H, W, 4C) -> (N, 2H, 2W, C)."""
    h, w, c4 = y.shape[1:]
    c = c4 // 4
    y = ops.reshape(y, (-1, h, w, 2, 2, c))
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    return ops.reshape(y, (-1, 2 * h, 2 * w, c))


class _ImageLayer(Bijector):
    """Event (H, W, C); remembers the built (H, W, C) and checks inputs against it."""

    event_ndims = 3
    _even = False

    def build(self, input_shape):
        self._hwc = check_image_shape(input_shape, type(self).__name__, even=self._even)

    def _check_input(self, x, hwc=None):
        hwc = hwc or self._hwc
        if tuple(x.shape[1:]) != hwc:
            raise ValueError(f"{type(self).__name__} was built for images of shape (H, W, C) = {hwc}; "
                             f"got input shape {tuple(x.shape)}.")


@keras.saving.register_keras_serializable(package="tfflows")
class Squeeze(_ImageLayer):
    """Space-to-depth (Dinh et al. 2016, RealNVP, arXiv:1605.08803, sec. 3.6).

    forward:  (H, W, C) -> (H/2, W/2, 4C): each 2x2 block of pixels becomes 4C channels
    inverse:  depth-to-space, (H/2, W/2, 4C) -> (H, W, C)
    log_det:  0 (a permutation). H and W must be even.
    """

    _even = True

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, h // 2, w // 2, 4 * c)

    def inverse_output_shape(self, output_shape):
        n, h, w, c = output_shape
        return (n, 2 * h, 2 * w, c // 4)

    def _forward_and_log_det(self, x, context=None, training=False):
        self._check_input(x)
        return squeeze(x), self._zeros_log_det(x)

    def _inverse_and_log_det(self, y, context=None, training=False):
        h, w, c = self._hwc
        self._check_input(y, (h // 2, w // 2, 4 * c))
        return unsqueeze(y), self._zeros_log_det(y)


class ImageCoupling(_ImageLayer):
    """Coupling on images; a `ConvResNet` reads the identity part.

    mask="checkerboard": pixels with (i + j) even are the identity part (odd with
    flip=True); the conditioner reads x * m and the transformed pixels use its output.
    mask="channel": the first C//2 channels are the identity part (the others with
    flip=True); the conditioner reads them and returns parameters for the rest.

    forward:  y = m * x + (1 - m) * tau(x; theta(m * x, context))
    inverse:  x = m * y + (1 - m) * tau^-1(y; theta(m * y, context))
    log_det:  sum over transformed entries of log|d tau / dx|
    """

    params_per_channel = 1

    def __init__(self, mask="checkerboard", flip=False, hidden_channels=64, num_blocks=2, kernel_size=3,
                 activation="relu", context_features=0, **kwargs):
        super().__init__(**kwargs)
        if mask not in ("checkerboard", "channel"):
            raise ValueError(f"Unknown image mask {mask!r}; use 'checkerboard' or 'channel'.")
        self.mask = mask
        self.flip = bool(flip)
        self.hidden_channels = int(hidden_channels)
        self.num_blocks = int(num_blocks)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.context_features = int(context_features)

    def build(self, input_shape):
        super().build(input_shape)
        h, w, c = self._hwc
        if self.mask == "checkerboard":
            if h * w < 2:
                raise ValueError(f"A checkerboard mask needs at least 2 pixels; got (H, W, C) = {self._hwc}.")
            grid = (np.add.outer(np.arange(h), np.arange(w)) % 2 == 0) != self.flip
            self._mask = grid[:, :, None].astype("float32")
            c_in, c_out = c, c
        else:
            if c < 2:
                raise ValueError(f"A channel mask needs at least 2 channels; got (H, W, C) = {self._hwc} "
                                 "(squeeze first, or use mask='checkerboard').")
            self._split = c // 2
            c_in = self._split if not self.flip else c - self._split
            c_out = c - c_in
        self._n_transformed = c_out
        self.conditioner = ConvResNet(c_out * self.params_per_channel, hidden_channels=self.hidden_channels,
                                      num_blocks=self.num_blocks, kernel_size=self.kernel_size,
                                      activation=self.activation, context_features=self.context_features,
                                      dtype=self.dtype_policy, name="conditioner")
        self.conditioner.build((None, h, w, c_in))

    def _params(self, x_id, context):
        p = self.conditioner(x_id, context)
        n = self._n_transformed
        return [p[..., i * n:(i + 1) * n] for i in range(self.params_per_channel)]

    def _couple(self, x, context, inverse):
        self._check_input(x)
        step = self._inverse_transform if inverse else self._transform
        if self.mask == "checkerboard":
            m = ops.cast(self._mask, x.dtype)
            out, log_deriv = step(x, self._params(x * m, context))
            y = m * x + (1 - m) * out
            log_det = 0.0 if log_deriv is None else ops.sum((1 - m) * log_deriv, axis=(1, 2, 3))
        else:
            a, b = x[..., :self._split], x[..., self._split:]
            if self.flip:
                out, log_deriv = step(a, self._params(b, context))
                y = ops.concatenate([out, b], axis=-1)
            else:
                out, log_deriv = step(b, self._params(a, context))
                y = ops.concatenate([a, out], axis=-1)
            log_det = 0.0 if log_deriv is None else ops.sum(log_deriv, axis=(1, 2, 3))
        return y, log_det + self._zeros_log_det(x)

    def _forward_and_log_det(self, x, context=None, training=False):
        return self._couple(x, context, inverse=False)

    def _inverse_and_log_det(self, y, context=None, training=False):
        return self._couple(y, context, inverse=True)

    def get_config(self):
        return {**super().get_config(), "mask": self.mask, "flip": self.flip,
                "hidden_channels": self.hidden_channels, "num_blocks": self.num_blocks,
                "kernel_size": self.kernel_size, "activation": self.activation,
                "context_features": self.context_features}


@keras.saving.register_keras_serializable(package="tfflows")
class ConvAdditiveCoupling(ImageCoupling):
    """NICE additive coupling on images (Dinh et al. 2014, arXiv:1410.8516) with a
    convolutional conditioner and a checkerboard or channel mask (see `ImageCoupling`).

    tau(x) = x + t,   tau^-1(y) = y - t,   log_det = 0
    """

    def _transform(self, x, params):
        return x + params[0], None

    def _inverse_transform(self, y, params):
        return y - params[0], None


@keras.saving.register_keras_serializable(package="tfflows")
class ConvAffineCoupling(ImageCoupling):
    """RealNVP affine coupling on images (Dinh et al. 2016, arXiv:1605.08803) with a
    convolutional conditioner and a checkerboard or channel mask (see `ImageCoupling`).

    tau(x) = x * exp(s) + t,   tau^-1(y) = (y - t) * exp(-s),   s = clamp * tanh(s_raw / clamp)
    log_det = sum over transformed entries of s
    """

    params_per_channel = 2

    def __init__(self, *args, log_scale_clamp=3.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_scale_clamp = float(log_scale_clamp)

    def _transform(self, x, params):
        s = soft_clamp(params[1], self.log_scale_clamp)
        return x * ops.exp(s) + params[0], s

    def _inverse_transform(self, y, params):
        s = soft_clamp(params[1], self.log_scale_clamp)
        return (y - params[0]) * ops.exp(-s), -s

    def get_config(self):
        return {**super().get_config(), "log_scale_clamp": self.log_scale_clamp}


@keras.saving.register_keras_serializable(package="tfflows")
class Invertible1x1Conv(LULinear):
    """Glow's invertible 1x1 convolution (Kingma & Dhariwal 2018, arXiv:1807.03039), LU
    parameterized: `LULinear` applied to the channels of every pixel.

    W = L (U + diag(exp(s))) (C x C)
    forward:  y[i, j] = W x[i, j] + b,   inverse:  x[i, j] = W^-1 (y[i, j] - b)
    log_det:  H * W * sum(s)
    Adds the check that inputs are images (batch, H, W, C) and Glow's initialization:
    with `init="rotation"` (default) W starts as a random rotation drawn from `seed`
    (a row-permuted, column-signed orthogonal matrix, so that its LU factors need no
    pivoting and have a positive diagonal); `init="identity"` starts at W = I.
    """

    def __init__(self, init="rotation", seed=None, **kwargs):
        super().__init__(**kwargs)
        if init not in ("rotation", "identity"):
            raise ValueError(f"init must be 'rotation' or 'identity'; got {init!r}.")
        self.init = init
        self.seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else int(seed)

    def build(self, input_shape):
        check_image_shape(input_shape, "Invertible1x1Conv")
        super().build(input_shape)
        if self.init == "rotation":
            lower, upper, raw = _rotation_lu(int(input_shape[-1]), self.seed, self.log_scale_clamp)
            self.lower.assign(lower.astype(self.lower.dtype))
            self.upper.assign(upper.astype(self.upper.dtype))
            self.log_diag.assign(raw.astype(self.log_diag.dtype))

    def get_config(self):
        return {**super().get_config(), "init": self.init, "seed": self.seed}


def _rotation_lu(channels, seed, clamp):
    """LU factors (strict L, strict U, raw log-diagonal) of a random orthogonal matrix
    whose LU decomposition needs no pivoting and has a positive diagonal."""
    import scipy.linalg

    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(channels, channels)))
    perm, lower, upper = scipy.linalg.lu(q)  # q = perm @ lower @ upper
    signs = np.sign(np.diag(upper))
    upper = upper * signs  # perm.T @ q @ diag(signs) = lower @ upper is orthogonal too
    log_diag = np.log(np.diag(upper))
    raw = clamp * np.arctanh(np.clip(log_diag / clamp, -0.999, 0.999))
    return np.tril(lower, -1), np.triu(upper, 1), raw


@keras.saving.register_keras_serializable(package="tfflows")
class MultiScale(_ImageLayer):
    """One scale of the multi-scale architecture (RealNVP sec. 3.6; Glow sec. 3).

    forward:  h = squeeze(x)  (H/2, W/2, 4C);  h = transform(h);
              split channels h -> [z_out (first 2C), h_kept (last 2C)];
              h_kept = inner(h_kept)  (the coarser scales; may itself end in a MultiScale);
              y = unsqueeze(concat[z_out, h_kept])
    inverse:  the same steps backwards.
    log_det:  transform log_det + inner log_det.

    Half of the channels are factored out at each scale (only the kept half goes on to
    `inner`), yet y has the shape of x, so x and z are the same size and the layer
    composes like any other; z_out and the inner latents are interleaved by the final
    unsqueeze, which does not matter for a factorized base distribution.
    """

    _even = True

    def __init__(self, transform, inner=None, **kwargs):
        super().__init__(**kwargs)
        self.transform = transform
        self.inner = inner

    def build(self, input_shape):
        super().build(input_shape)
        h, w, c = self._hwc
        squeezed = (None, h // 2, w // 2, 4 * c)
        if not self.transform.built:
            self.transform.build(squeezed)
        if tuple(self.transform.compute_output_shape(squeezed)) != squeezed:
            raise ValueError("MultiScale's transform must keep the squeezed shape (H/2, W/2, 4C) = "
                             f"{squeezed[1:]}.")
        self._factored = 2 * c
        if self.inner is not None and not self.inner.built:
            self.inner.build((None, h // 2, w // 2, 2 * c))

    def initialize_from_data(self, x, context=None):
        x = self._cast(x)
        self._ensure_built(x)
        h = squeeze(x)
        self.transform.initialize_from_data(h, context)
        if self.inner is not None:
            h = self.transform.forward(h, context)
            self.inner.initialize_from_data(h[..., self._factored:], context)

    def _forward_and_log_det(self, x, context=None, training=False):
        self._check_input(x)
        h, log_det = self.transform.forward_and_log_det(squeeze(x), context, training=training)
        if self.inner is not None:
            kept, inner_log_det = self.inner.forward_and_log_det(h[..., self._factored:], context, training=training)
            h = ops.concatenate([h[..., :self._factored], kept], axis=-1)
            log_det = log_det + inner_log_det
        return unsqueeze(h), log_det

    def _inverse_and_log_det(self, y, context=None, training=False):
        self._check_input(y)
        h, log_det = squeeze(y), 0.0
        if self.inner is not None:
            kept, log_det = self.inner.inverse_and_log_det(h[..., self._factored:], context, training=training)
            h = ops.concatenate([h[..., :self._factored], kept], axis=-1)
        h, outer_log_det = self.transform.inverse_and_log_det(h, context, training=training)
        return unsqueeze(h), log_det + outer_log_det

    def get_config(self):
        config = super().get_config()
        config["transform"] = keras.saving.serialize_keras_object(self.transform)
        config["inner"] = None if self.inner is None else keras.saving.serialize_keras_object(self.inner)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["transform"] = keras.saving.deserialize_keras_object(config["transform"])
        if config.get("inner") is not None:
            config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
        return cls(**config)
