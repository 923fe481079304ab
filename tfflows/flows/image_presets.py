"""Multi-scale image flows: `ImageRealNVP` and `Glow` presets, and the transforms they use.

Both take an image shape (H, W, C) and model dequantized pixel levels: the transform
starts with `Dequantize(num_levels)` and `Logit(alpha)`, so `log_prob` and
`bits_per_dim` are in pixel space (see `tfflows.bijectors.preprocessing`). Fit them on floats in
[0, num_levels): `tfflows.dequantize(images)` or the integer levels cast to float (the
`Dequantize` layer draws fresh noise at every training step either way); evaluate on
`tfflows.dequantize(test_images, seed=0)`. With `num_levels=None` there is no
preprocessing and the flow models continuous images as given.
"""

import keras
import numpy as np

from tfflows.bijectors.chain import Chain
from tfflows.bijectors.elementwise import ActNorm
from tfflows.bijectors.image.conv1x1 import Invertible1x1Conv
from tfflows.bijectors.image.coupling import ConvAdditiveCoupling, ConvAffineCoupling
from tfflows.bijectors.image.multiscale import MultiScale
from tfflows.bijectors.preprocessing import Dequantize, Logit
from tfflows.flows.preset import Preset


def _image_shape(image_shape, num_halvings, preset):
    shape = tuple(int(s) for s in np.ravel(image_shape))
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{preset} takes an image shape (H, W, C); got {image_shape!r}.")
    h, w, c = shape
    factor = 2**num_halvings
    if h % factor or w % factor:
        raise ValueError(
            f"{preset} with these scales squeezes {num_halvings} time(s), so H and W must be "
            f"multiples of {factor}; got (H, W, C) = {shape}."
        )
    return shape


def _preprocessing(num_levels, alpha, dtype):
    if num_levels is None:
        return []
    return [
        Dequantize(num_levels, name="dequantize", dtype=dtype),
        Logit(alpha, name="logit", dtype=dtype),
    ]


def realnvp_image_transform(
    image_shape,
    num_scales=2,
    steps_per_scale=3,
    hidden_channels=64,
    num_blocks=2,
    num_levels=256,
    alpha=0.05,
    log_scale_clamp=3.0,
    context_features=0,
    dtype=None,
):
    """The multi-scale RealNVP transform (Dinh et al. 2016, sec. 3.6) for images (H, W, C).

    Each scale but the last: `steps_per_scale` checkerboard affine couplings, then a
    `MultiScale` (squeeze, `steps_per_scale` channel-wise couplings, factor out half the
    channels, recurse on the rest). Last scale: `steps_per_scale + 1` checkerboard
    couplings. Every coupling is followed by `ActNorm`. H and W must be multiples of
    2 ** (num_scales - 1).
    """
    _image_shape(image_shape, num_scales - 1, "RealNVP")
    opts = dict(
        hidden_channels=hidden_channels,
        num_blocks=num_blocks,
        log_scale_clamp=log_scale_clamp,
        context_features=context_features,
        dtype=dtype,
    )

    def couplings(mask, count, prefix):
        layers = []
        for i in range(count):
            layers.append(
                ConvAffineCoupling(mask=mask, flip=bool(i % 2), name=f"{prefix}_{mask}_{i}", **opts)
            )
            layers.append(ActNorm(name=f"{prefix}_actnorm_{i}", dtype=dtype))
        return layers

    def scale(k):
        if k == num_scales - 1:
            return Chain(
                couplings("checkerboard", steps_per_scale + 1, f"scale{k}"),
                name=f"scale{k}",
                dtype=dtype,
            )
        squeezed = Chain(
            couplings("channel", steps_per_scale, f"scale{k}_sq"),
            name=f"scale{k}_squeezed",
            dtype=dtype,
        )
        multiscale = MultiScale(
            squeezed, inner=scale(k + 1), name=f"scale{k}_multiscale", dtype=dtype
        )
        return Chain(
            couplings("checkerboard", steps_per_scale, f"scale{k}") + [multiscale],
            name=f"scale{k}",
            dtype=dtype,
        )

    return Chain(_preprocessing(num_levels, alpha, dtype) + [scale(0)], name="realnvp", dtype=dtype)


def glow_transform(
    image_shape,
    num_scales=2,
    steps_per_scale=4,
    hidden_channels=64,
    num_blocks=1,
    num_levels=256,
    alpha=0.05,
    coupling="affine",
    log_scale_clamp=3.0,
    context_features=0,
    network="glow",
    dtype=None,
):
    """The Glow transform (Kingma & Dhariwal 2018, sec. 3) for images (H, W, C).

    Each scale: squeeze, then `steps_per_scale` steps of [ActNorm, Invertible1x1Conv,
    channel-wise coupling], then factor out half the channels (not after the last
    scale). H and W must be multiples of 2 ** num_scales. Each coupling's network is the
    paper's (network="glow": 3x3, 1x1, 3x3 convolutions) or a `ConvResNet`
    (network="resnet", which Glows saved before the argument existed keep).
    """
    _image_shape(image_shape, num_scales, "Glow")
    if coupling not in ("affine", "additive"):
        raise ValueError(f"coupling must be 'affine' or 'additive'; got {coupling!r}.")

    def step(k, i):
        opts = dict(
            mask="channel",
            hidden_channels=hidden_channels,
            num_blocks=num_blocks,
            context_features=context_features,
            network=network,
            name=f"scale{k}_coupling_{i}",
            dtype=dtype,
        )
        layer = (
            ConvAffineCoupling(log_scale_clamp=log_scale_clamp, **opts)
            if coupling == "affine"
            else ConvAdditiveCoupling(**opts)
        )
        return [
            ActNorm(name=f"scale{k}_actnorm_{i}", dtype=dtype),
            Invertible1x1Conv(name=f"scale{k}_1x1conv_{i}", dtype=dtype),
            layer,
        ]

    def scale(k):
        steps = Chain(
            [layer for i in range(steps_per_scale) for layer in step(k, i)],
            name=f"scale{k}_steps",
            dtype=dtype,
        )
        inner = scale(k + 1) if k + 1 < num_scales else None
        return MultiScale(steps, inner=inner, name=f"scale{k}", dtype=dtype)

    return Chain(_preprocessing(num_levels, alpha, dtype) + [scale(0)], name="glow", dtype=dtype)


class _ImagePreset(Preset):
    """Checks that image data lie in [0, num_levels) before they reach the logit."""

    def _check_rows(self, x, what="x", finite=False, event_shape="data"):
        x = super()._check_rows(x, what, finite, event_shape)
        levels = self._arguments.get("num_levels")
        if levels is not None and event_shape == "data" and isinstance(x, np.ndarray) and x.size:
            low, high = float(np.min(x)), float(np.max(x))
            if low < 0 or high >= levels:
                raise ValueError(
                    f"{what} must hold pixel levels in [0, {levels}) (integer levels "
                    f"0..{levels - 1}, dequantized or cast to float); got values in "
                    f"[{low:g}, {high:g}]. Pass num_levels=None for continuous images."
                )
        return x


@keras.saving.register_keras_serializable(package="tfflows")
class ImageRealNVP(_ImagePreset):
    """Multi-scale RealNVP for images (Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803).

    log p(v) = log N(z; 0, I) + log|det dz/dv| for dequantized levels v in [0, L)^(H W C);
    see `realnvp_image_transform` for the architecture and `tfflows.bijectors.preprocessing` for
    what `bits_per_dim` means.

    Args:
        image_shape: (H, W, C); H and W multiples of 2 ** (num_scales - 1).
        num_scales: scales of the multi-scale architecture.
        steps_per_scale: couplings per scale.
        hidden_channels: channels of each coupling's `ConvResNet`.
        num_blocks: residual blocks of each `ConvResNet`.
        num_levels: pixel levels L of the data (inputs must lie in [0, L)); None for
            continuous images (no dequantization and logit in front).
        alpha: of the `Logit` preprocessing.
        log_scale_clamp: soft bound on each affine log-scale.
        context_features: size of the conditioning vector (0: unconditional).
        **kwargs: of `Flow` (name, dtype).
    """

    def __init__(
        self,
        image_shape,
        num_scales=2,
        steps_per_scale=3,
        hidden_channels=64,
        num_blocks=2,
        num_levels=256,
        alpha=0.05,
        log_scale_clamp=3.0,
        context_features=0,
        **kwargs,
    ):
        shape = _image_shape(image_shape, num_scales - 1, "RealNVP")
        arguments = dict(
            image_shape=list(shape),
            num_scales=num_scales,
            steps_per_scale=steps_per_scale,
            hidden_channels=hidden_channels,
            num_blocks=num_blocks,
            num_levels=num_levels,
            alpha=alpha,
            log_scale_clamp=log_scale_clamp,
            context_features=context_features,
        )
        transform = realnvp_image_transform(**arguments)
        super().__init__(
            transform,
            event_shape=shape,
            context_features=context_features,
            arguments=arguments,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="tfflows")
class Glow(_ImagePreset):
    """Glow (Kingma & Dhariwal 2018, arXiv:1807.03039): multi-scale steps of ActNorm,
    invertible 1x1 convolution and channel-wise coupling, on N(0, I).

    log p(v) = log N(z; 0, I) + log|det dz/dv| for dequantized levels v in [0, L)^(H W C);
    see `glow_transform` for the architecture and `tfflows.bijectors.preprocessing` for what
    `bits_per_dim` means. (Glow's learned split priors are replaced by N(0, I).)

    Args:
        image_shape: (H, W, C); H and W multiples of 2 ** num_scales.
        num_scales: scales of the multi-scale architecture.
        steps_per_scale: flow steps (ActNorm, 1x1 convolution, coupling) per scale.
        hidden_channels: channels of each coupling's network.
        num_blocks: residual blocks of each coupling's network when network="resnet".
        num_levels: pixel levels L of the data (inputs must lie in [0, L)); None for
            continuous images (no dequantization and logit in front).
        alpha: of the `Logit` preprocessing.
        log_scale_clamp: soft bound on each affine log-scale.
        context_features: size of the conditioning vector (0: unconditional).
        network: each coupling's network: "glow" (`GlowConvNet`, the paper's 3x3, 1x1, 3x3
            convolutions) or "resnet" (`ConvResNet`). "glow" trains about 4x more steps per
            second at width 64 and reached lower validation bits/dim in a 300 s budget on
            28x28 and 32x32x3 photographs (BENCHMARKS.md, "Image flows at the sizes users
            bring").
        **kwargs: of `Flow` (name, dtype).
    """

    def __init__(
        self,
        image_shape,
        num_scales=2,
        steps_per_scale=4,
        hidden_channels=64,
        num_blocks=1,
        num_levels=256,
        alpha=0.05,
        coupling="affine",
        log_scale_clamp=3.0,
        context_features=0,
        network="glow",
        **kwargs,
    ):
        shape = _image_shape(image_shape, num_scales, "Glow")
        arguments = dict(
            image_shape=list(shape),
            num_scales=num_scales,
            steps_per_scale=steps_per_scale,
            hidden_channels=hidden_channels,
            num_blocks=num_blocks,
            num_levels=num_levels,
            alpha=alpha,
            coupling=coupling,
            log_scale_clamp=log_scale_clamp,
            context_features=context_features,
            network=network,
        )
        transform = glow_transform(**arguments)
        super().__init__(
            transform,
            event_shape=shape,
            context_features=context_features,
            arguments=arguments,
            **kwargs,
        )

    @classmethod
    def from_config(cls, config):
        # A Glow saved before `network` was an argument had ConvResNet couplings.
        return super().from_config({"network": "resnet", **config})
