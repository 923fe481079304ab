"""The kernels and biases of a stack of dense layers, held in ONE flat variable.

Keras's Adam runs about 20 small ops per variable on TensorFlow, and at the sizes of
tabular flows their count, not their arithmetic, is the cost: with one variable per
conditioner instead of two per dense layer a MAF training step is 1.3-1.5x cheaper
(`python benchmarks/bench_dense_stack.py`, BENCHMARKS.md). `MADE` and `MLP` use this
layout: [kernel_0, bias_0, kernel_1, bias_1, ...], each kernel (fan_in, fan_out) row-major.
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
    """Glorot-uniform kernels (the last one zero if `zero_last`), zero biases, flattened.
    Draws from Keras's global RNG, so `keras.utils.set_random_seed` makes it repeatable."""
    parts = []
    for k, shape in enumerate(shapes):
        last = k == len(shapes) - 1
        init = keras.initializers.Zeros() if (last and zero_last) else keras.initializers.GlorotUniform()
        parts += [ops.reshape(init(tuple(shape), dtype=dtype), (-1,)), ops.zeros((shape[1],), dtype=dtype)]
    return ops.concatenate(parts)


def kernels_and_biases(flat, shapes):
    """Split the flat vector into the kernels (reshaped) and the biases, first to last."""
    pieces = ops.split(flat, np.cumsum(sizes(shapes))[:-1].tolist())
    kernels = [ops.reshape(piece, tuple(shape)) for piece, shape in zip(pieces[0::2], shapes)]
    return kernels, pieces[1::2]
