"""The kernels and biases of a stack of dense layers, held in ONE flat variable.

Keras's Adam runs about 20 small ops per variable on TensorFlow, and at the sizes of
tabular flows their count, not their arithmetic, is the cost, so one variable per
conditioner instead of two per dense layer makes a training step cheaper (measured in
BENCHMARKS.md, "flat variables"). `MADE` and `MLP` use this layout:
[kernel_0, bias_0, kernel_1, bias_1, ...], each kernel (fan_in, fan_out) row-major.
"""

import keras
import numpy as np
from keras import ops


def sizes(shapes):
    """Flat sizes of [kernel_0, bias_0, ...] for kernel shapes [(fan_in, fan_out), ...]."""
    out = []
    for fan_in, fan_out in shapes:
        out += [int(fan_in) * int(fan_out), int(fan_out)]
    return out


def initial_values(shapes, zero_last=True, dtype=None):
    """Kernels and biases uniform in +-1/sqrt(fan_in) (PyTorch's nn.Linear default; the
    last kernel and bias zero if `zero_last`, so a flow starts at the identity), flattened.

    Chosen over Keras's Glorot-uniform kernels with zero biases on validation NLL
    (BENCHMARKS.md, "conditioner initialization"). Draws from Keras's global seed
    generator, so `keras.utils.set_random_seed` makes it repeatable."""
    parts = []
    for k, (fan_in, fan_out) in enumerate(shapes):
        if k == len(shapes) - 1 and zero_last:
            kernel_init = bias_init = keras.initializers.Zeros()
        else:
            # two initializers: an unseeded Keras initializer fixes its seed when built, so
            # one instance called twice would give the bias the kernel's first values
            limit = 1.0 / np.sqrt(fan_in)
            kernel_init = keras.initializers.RandomUniform(-limit, limit)
            bias_init = keras.initializers.RandomUniform(-limit, limit)
        parts += [ops.reshape(kernel_init((fan_in, fan_out), dtype=dtype), (-1,)),
                  bias_init((fan_out,), dtype=dtype)]
    return ops.concatenate(parts)


def kernels_and_biases(flat, shapes):
    """Split the flat vector into the kernels (reshaped) and the biases, first to last."""
    pieces = ops.split(flat, np.cumsum(sizes(shapes))[:-1].tolist())
    kernels = [ops.reshape(piece, tuple(shape)) for piece, shape in zip(pieces[0::2], shapes)]
    return kernels, pieces[1::2]


def add_parameters(layer, shapes, zero_last=True):
    """Create `layer`'s one flat trainable variable `parameters` for kernel `shapes`."""
    return layer.add_weight(
        shape=(sum(sizes(shapes)),), name="parameters",
        initializer=lambda shape, dtype=None: initial_values(shapes, zero_last, dtype))


def with_context(layer, x, context):
    """x with the context appended as extra inputs when `layer.context_features` > 0."""
    if not layer.context_features:
        return x
    if context is None:
        raise ValueError(f"{layer.name} was built with context_features={layer.context_features} "
                         "but no context was given.")
    return ops.concatenate([x, ops.cast(context, x.dtype)], axis=-1)


def apply(x, kernels, biases, activation):
    """The dense stack on x: activation after every layer but the last."""
    last = len(kernels) - 1
    for k, (kernel, bias) in enumerate(zip(kernels, biases)):
        x = ops.matmul(x, kernel) + bias
        if k < last:
            x = activation(x)
    return x
