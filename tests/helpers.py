"""Shared test utilities: autodiff Jacobians on either backend, random parameters."""

import keras
import numpy as np


def jacobian_log_det(fn, x):
    """log|det d fn(x) / dx| per batch row, by automatic differentiation (float64).

    Works for any event shape: the event is flattened to a vector first.
    """
    x = np.asarray(x)
    batch, dims = x.shape[0], int(np.prod(x.shape[1:]))
    if keras.backend.backend() == "jax":
        import jax

        # Jacobian of the whole batch (rows are independent), then its diagonal blocks;
        # this keeps per-row inputs such as a context aligned with their rows.
        def flat(v):
            return fn(v.reshape(x.shape)).reshape(batch, dims)

        full = np.asarray(jax.jacfwd(flat)(x.reshape(batch, dims)))  # (B, D, B, D)
        jac = full[np.arange(batch), :, np.arange(batch), :]
    else:
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = tf.reshape(fn(xt), (batch, -1))
        jac = tape.batch_jacobian(y, xt).numpy().reshape(batch, -1, dims)
    assert jac.shape == (batch, dims, dims), f"Jacobian shape {jac.shape}: the map must keep the size"
    sign, log_det = np.linalg.slogdet(jac)
    assert np.all(sign != 0), "singular Jacobian"
    return log_det


def randomize_weights(layer, rng, scale=0.3):
    """Give every float weight a random value so that no layer is tested at the identity.

    Variances (BatchNorm running statistics) stay positive; flags stay as they are.
    """
    for var in layer.weights:
        name = var.path
        if "int" in str(var.dtype) or name.endswith("initialized"):
            continue
        shape = tuple(var.shape)
        if "variance" in name:
            value = rng.uniform(0.5, 2.0, size=shape)
        else:
            value = rng.normal(scale=scale, size=shape)
        var.assign(value.astype(var.dtype))
