"""tfflows: normalizing flows for Keras 3 on TensorFlow, with a focus on Gaussianization.

The public API is re-exported here; ARCHITECTURE.md maps the subpackages:
`bijectors` (the contract and every layer), `nets` (conditioners), `flows` (`Flow`,
presets, distillation), `gaussianization` (marginal layers, rotations, RBIG, information
measures), `interop` (TFP, export, saving), `data`, `plot` and the command line.
"""

import sys as _sys


def _started_as_command_line():
    """True in a process started as `tfflows ...` or `python -m tfflows.cli ...`."""
    argv = list(getattr(_sys, "orig_argv", None) or ())
    script = (_sys.argv or [""])[0].replace("\\", "/").rsplit("/", 1)[-1]
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    return script in ("tfflows", "tfflows.exe") or module == "tfflows.cli"


# The command line imports TensorFlow only when a command needs it, so that `tfflows --help`
# and argument errors answer at once: there the names below load on first use (a reload of
# this file, which keeps `_DEFERRED` in its namespace). Everywhere else they load here, which
# also registers every serializable class for `keras.models.load_model`.
_DEFERRED = "_DEFERRED" not in globals() and _started_as_command_line()
if not _DEFERRED:
    from tfflows.bijectors.autoregressive import (
        InverseAutoregressive, MaskedAutoregressive, SplineAutoregressive
    )
    from tfflows.bijectors.base import Bijector
    from tfflows.bijectors.chain import Chain, Invert
    from tfflows.bijectors.coupling import (
        AdditiveCoupling, AffineCoupling, Coupling, SplineCoupling
    )
    from tfflows.bijectors.elementwise import ActNorm, BatchNorm, Rescale
    from tfflows.bijectors.image.conv1x1 import Invertible1x1Conv
    from tfflows.bijectors.image.coupling import (
        ConvAdditiveCoupling, ConvAffineCoupling, ImageCoupling
    )
    from tfflows.bijectors.image.layout import Squeeze
    from tfflows.bijectors.image.masked_conv import MaskedConv
    from tfflows.bijectors.image.multiscale import MultiScale
    from tfflows.bijectors.linear import LULinear, Permute, Reverse
    from tfflows.bijectors.preprocessing import Dequantize, Logit, dequantize, quantize
    from tfflows.data import datasets
    from tfflows.distributions import StandardLogistic, StandardNormal
    from tfflows.flows.autoregressive_presets import IAF, MAF, NSF
    from tfflows.flows.callbacks import StopOnNonFiniteLoss
    from tfflows.flows.coupling_presets import NICE, RealNVP
    from tfflows.flows.distillation import Distiller
    from tfflows.flows.flow import Flow
    from tfflows.flows.image_presets import (
        Glow, ImageRealNVP, glow_transform, realnvp_image_transform
    )
    from tfflows.gaussianization import information
    from tfflows.gaussianization.marginal import MarginalGaussianization
    from tfflows.gaussianization.rbig import RBIG, GaussianizationFlow
    from tfflows.gaussianization.rotations import Householder, Rotation
    from tfflows.interop.saving import ModelFileError, load_model, load_saved_model
    from tfflows.nets.conv import ConvResNet, GlowConvNet
    from tfflows.nets.made import MADE
    from tfflows.nets.mlp import MLP

__version__ = "0.1.0"


def __getattr__(name):
    if _DEFERRED and not name.startswith("_"):
        import importlib

        importlib.reload(_sys.modules[__name__])
        return getattr(_sys.modules[__name__], name)
    # The TFP wrappers and SavedModel export need TensorFlow and TFP; they load on first
    # use, so that `import tfflows` works on the JAX backend without TensorFlow.
    if name in ("TFPBijector", "TFPDistribution"):
        from tfflows.interop import tfp

        return getattr(tfp, name)
    if name == "export_saved_model":
        from tfflows.interop.export import export_saved_model

        return export_saved_model
    raise AttributeError(f"module 'tfflows' has no attribute {name!r}")


__all__ = sorted([name for name in dir() if not name.startswith("_")]
                 + ["TFPBijector", "TFPDistribution", "export_saved_model"])
