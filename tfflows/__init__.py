"""tfflows: normalizing flows for Keras 3 on TensorFlow, with a focus on Gaussianization."""

import os

# TensorFlow's C++ start-up log (CUDA probing, CPU features) is noise for flow users;
# set TF_CPP_MIN_LOG_LEVEL yourself before importing tfflows to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tfflows.base import Bijector, Chain, Invert
from tfflows.callbacks import StopOnNonFiniteLoss
from tfflows.conditioners import MLP
from tfflows.coupling import AdditiveCoupling, AffineCoupling, Coupling
from tfflows.distributions import StandardLogistic, StandardNormal
from tfflows.elementwise import ActNorm, BatchNorm, Rescale
from tfflows.flow import Flow
from tfflows.linear import LULinear, Permute, Reverse
from tfflows.presets import NICE, RealNVP
from tfflows import datasets

# --- autoregressive and splines (issue 3) ---
from tfflows.made import MADE
from tfflows.autoregressive import InverseAutoregressive, MaskedAutoregressive
from tfflows.splines import SplineAutoregressive, SplineCoupling
from tfflows.autoregressive_presets import IAF, MAF, NSF
from tfflows.distillation import Distiller
# --- Gaussianization (issue 4) ---
from tfflows.gaussianization import MarginalGaussianization
from tfflows.rotations import Householder, Rotation
from tfflows.rbig import RBIG, GaussianizationFlow
from tfflows import information
# --- TFP interop and export (issue 5) ---
from tfflows.tfp_interop import TFPBijector, TFPDistribution
from tfflows.export import export_saved_model
from tfflows.saving import ModelFileError, load_model, load_saved_model
# --- image layers (issue 6) ---
from tfflows.image import (ConvAdditiveCoupling, ConvAffineCoupling, ImageCoupling, Invertible1x1Conv,
                           MaskedConv, MultiScale, Squeeze)
from tfflows.conv_conditioners import ConvResNet
from tfflows.preprocessing import Dequantize, Logit, dequantize, quantize
from tfflows.image_presets import Glow, ImageRealNVP, glow_transform, realnvp_image_transform

__version__ = "0.1.0"

__all__ = [name for name in dir() if not name.startswith("_") and name != "os"]
