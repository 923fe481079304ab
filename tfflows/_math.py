"""Small numerical helpers shared by the layers (keras.ops only)."""

import numpy as np
from keras import ops

LOG_2PI = float(np.log(2.0 * np.pi))


def soft_clamp(x, bound):
    """Smoothly limit `x` to (-bound, bound): bound * tanh(x / bound); identity near 0."""
    if bound is None:
        return x
    return bound * ops.tanh(x / bound)


def sum_event(x, event_ndims):
    """Sum the trailing `event_ndims` axes, leaving the batch shape."""
    if event_ndims == 0:
        return x
    return ops.sum(x, axis=tuple(range(-event_ndims, 0)))
