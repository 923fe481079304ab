"""Small numerical helpers shared by the layers and the bases (keras.ops only)."""

import keras
import numpy as np
from keras import ops

LOG_2PI = float(np.log(2.0 * np.pi))


def soft_clamp(x, bound):
    """Smoothly limit `x` to (-bound, bound): bound * tanh(x / bound); identity near 0.

    Computed in the input's dtype on every backend: Keras 3.15's `ops.tanh` returns
    float32 for a float64 input on JAX, which would put a float32 step inside float64
    layers. float32 inputs use the native tanh (cheaper); others use
    tanh(t) = expm1(2t) / (expm1(2t) + 2) for t <= 0 (mirrored for t > 0), which is
    accurate to rounding, overflow-free and has gradient 1 at 0.
    """
    if bound is None:
        return x
    t = x / bound
    if keras.backend.standardize_dtype(t.dtype) in ("float32", "float16", "bfloat16"):
        return bound * ops.tanh(t)
    positive = t > 0
    zero = ops.zeros_like(t)
    a = ops.expm1(2.0 * ops.where(positive, zero, t))
    b = ops.expm1(-2.0 * ops.where(positive, t, zero))
    return bound * ops.where(positive, -b / (b + 2.0), a / (a + 2.0))


def inverse_soft_clamp(value, bound):
    """The raw x with soft_clamp(x, bound) = value (value clipped just inside the bound)."""
    return bound * np.arctanh(np.clip(np.asarray(value, dtype="float64") / bound, -0.999, 0.999))


def reduce_log_det(log_det, ndims):
    """Sum the trailing `ndims` axes of an elementwise (or per-position) log-det, leaving
    the batch shape. The one log-det reduction of the package."""
    ndims = int(ndims)
    if ndims <= 0:
        return log_det
    return ops.sum(log_det, axis=tuple(range(-ndims, 0)))


def draw_seed():
    """A fresh integer seed from Keras's global seed generator, so that
    `keras.utils.set_random_seed` makes layers built without a seed repeatable."""
    value = keras.random.randint((), 0, 2**31 - 1, seed=None, dtype="int32")
    return int(ops.convert_to_numpy(value))


def eager_compiled(fn):
    """fn (a function of tensors only, written in keras.ops), compiled by the backend when it is
    called eagerly: on TensorFlow by XLA (`tf.function(jit_compile=True)`, one compilation
    per input shape), on JAX by `jax.jit`. Inside a traced function (Keras's compiled
    train step, an export) and on other backends, fn itself runs. XLA fuses a long chain
    of elementwise ops into one pass over the data, which is what eager calls on large
    batches lack (the marginal splines of a greedy fit: BENCHMARKS.md, "Fit time")."""
    compiled = []  # the backend's compiled fn, made at the first eager call

    def call(*args):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.executing_eagerly():
                return fn(*args)
            if not compiled:
                compiled.append(tf.function(fn, jit_compile=True, autograph=False))
        elif backend == "jax":
            import jax

            if any(isinstance(a, jax.core.Tracer) for a in args):
                return fn(*args)
            if not compiled:
                compiled.append(jax.jit(fn))
        else:
            return fn(*args)
        return compiled[0](*args)

    return call
