"""Image layout: (N, H, W, C) shape checks, space-to-depth (`squeeze`) and the `Squeeze`
layer; `ImageLayer`, the base of layers whose event is (H, W, C) (`event_ndims=3`)."""

import keras
from keras import ops

from tfflows.bijectors.base import Bijector


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


class ImageLayer(Bijector):
    """Event (H, W, C); remembers the built (H, W, C) and checks inputs against it."""

    event_ndims = 3
    _even = False

    def build(self, input_shape):
        self._hwc = check_image_shape(input_shape, type(self).__name__, even=self._even)

    def _check_input(self, x, hwc=None):
        hwc = hwc or self._hwc
        if tuple(x.shape[1:]) != hwc:
            raise ValueError(f"{type(self).__name__} was built for images of shape "
                             f"(H, W, C) = {hwc}; got input shape {tuple(x.shape)}.")


@keras.saving.register_keras_serializable(package="tfflows")
class Squeeze(ImageLayer):
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
