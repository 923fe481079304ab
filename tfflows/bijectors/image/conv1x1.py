"""Glow's invertible 1x1 convolution: `LULinear` on the channels of every pixel."""

import keras
import numpy as np

from tfflows._math import draw_seed, inverse_soft_clamp
from tfflows.bijectors.image.layout import check_image_shape
from tfflows.bijectors.linear import LULinear


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

    Args:
        init: "rotation" or "identity" (see above).
        seed: integer seed of the random rotation (None: drawn at construction and kept
            in the config).
        **kwargs: of `LULinear` (log_scale_clamp) and `keras.layers.Layer` (name, dtype).
    """

    def __init__(self, init="rotation", seed=None, **kwargs):
        super().__init__(**kwargs)
        if init not in ("rotation", "identity"):
            raise ValueError(f"init must be 'rotation' or 'identity'; got {init!r}.")
        self.init = init
        self.seed = draw_seed() if seed is None else int(seed)

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
    raw = inverse_soft_clamp(log_diag, clamp)
    return np.tril(lower, -1), np.triu(upper, 1), raw
