"""SavedModel export for TF Serving (TensorFlow backend): `Flow.export(path)`.

Signatures (names of inputs and outputs as TF Serving's REST and gRPC `predict` see them;
every float tensor has the flow's compute dtype, float32 by default):

    serving_default, log_prob   {"x": (batch, *event)}        -> {"log_prob": (batch,)}
    encode                      {"x": (batch, *event)}        -> {"z": (batch, *latent)}
    decode                      {"z": (batch, *latent)}       -> {"x": (batch, *event)}
    sample                      {"num_samples": int32 scalar,
                                 "seed": int64 scalar}        -> {"x": (num_samples, *event)}

A conditional flow (`context_features > 0`) takes one more input, "context"
(batch, context_features), in log_prob/encode/decode; its `sample` takes "context" and
"seed" and draws one sample per context row. Sampling is stateless: TFP seed
`(seed mod (2^31 - 2), 0)`, the convention of `keras.random` with an integer seed, so the
served `sample(n, s)` equals `flow.sample(n, seed=s)` for the tfflows bases and for a
`TFPDistribution` base. The SavedModel needs TensorFlow only: it is loaded with
`tf.saved_model.load` (or served) without tfflows or TFP installed.

Any layer written in `keras.ops` exports, including data-dependent control flow that
`tf.function` can trace (`ops.while_loop`, `ops.cond`); layers that convert tensors to
NumPy inside `forward`/`inverse` (an eager-only computation) cannot be traced and make
`export` fail with TensorFlow's error naming that layer.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfflows.interop.tfp import base_distribution

_INT32_MAX = np.iinfo(np.int32).max


def stateless_seed(seed):
    """An int64 scalar seed -> the int32 pair keras.random uses for an integer seed."""
    seed = tf.cast(seed, tf.int64)
    pair = tf.stack([seed, tf.zeros_like(seed)])
    return tf.cast(tf.math.floormod(pair, _INT32_MAX - 1), tf.int32)


def export_saved_model(flow, path, verbose=False):
    """Write `flow` to `path` as a SavedModel with the signatures of the module docstring.

    Returns `path`. The flow must know its event shape (built, or `event_shape=` given).
    """
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "SavedModel export needs the TensorFlow backend (KERAS_BACKEND=tensorflow)."
        )
    flow._ensure_built()
    path = os.fspath(path)
    functions, signatures = _endpoints(flow)
    # tf.saved_model.save directly (not keras.export.ExportArchive): the archive needs its
    # endpoints traced before saving, and TensorFlow traces them again while saving (a
    # trace's cache key includes whether it runs under the save context), so a deep flow
    # (a 100-block RBIG) took minutes. Traced here only under the save, each endpoint is
    # traced once. The root tracks the flow's variables, which the endpoints capture.
    root = tf.Module()
    root.flow_variables = [_tf_variable(v) for v in flow.variables]
    for name in ("log_prob", "encode", "decode", "sample"):
        fn = tf.function(functions[name], input_signature=signatures[name], autograph=False)
        setattr(root, name, fn)
    endpoints = {name: getattr(root, name) for name in ("log_prob", "encode", "decode", "sample")}
    tf.saved_model.save(root, path, signatures={"serving_default": root.log_prob, **endpoints})
    if verbose:
        print(f"Saved a SavedModel with the signatures {sorted(endpoints)} to '{path}'.")
    return path


def _tf_variable(variable):
    """The tf.Variable behind a Keras variable (on TensorFlow, `variable.value`)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _endpoints(flow):
    """({name: function}, {name: input signature}) of the four endpoints."""
    dtype, transform = flow.compute_dtype, flow.transform
    x_spec = tf.TensorSpec((None,) + tuple(flow.event_shape), dtype, name="x")
    z_spec = tf.TensorSpec((None,) + flow.latent_shape, dtype, name="z")
    seed_spec = tf.TensorSpec((), tf.int64, name="seed")

    def draw_latent(n, seed):
        dist = base_distribution(flow)  # inside the trace: reads the current base weights
        return tf.cast(dist.sample(n, seed=stateless_seed(seed)), dtype)

    if flow.context_features > 0:
        return _conditional_endpoints(flow, draw_latent, x_spec, z_spec, seed_spec)
    # One trace of each direction of the transform, shared by the endpoints: the
    # transform's graph (100 blocks of a deep RBIG) is the cost of an export.
    forward = _traced(transform.forward_and_log_det, [x_spec])
    inverse = _traced(transform.inverse, [z_spec])

    def log_prob(x):
        z, log_det = forward(x)
        return {"log_prob": _base_log_prob(flow, z) + log_det}

    def encode(x):
        return {"z": forward(x)[0]}

    def decode(z):
        return {"x": inverse(z)}

    def sample(num_samples, seed):
        return {"x": inverse(draw_latent(num_samples, seed))}

    n_spec = tf.TensorSpec((), tf.int32, name="num_samples")
    functions = {"log_prob": log_prob, "encode": encode, "decode": decode, "sample": sample}
    signatures = {
        "log_prob": [x_spec],
        "encode": [x_spec],
        "decode": [z_spec],
        "sample": [n_spec, seed_spec],
    }
    return functions, signatures


def _traced(fn, signature):
    return tf.function(fn, input_signature=signature, autograph=False)


def _base_log_prob(flow, z):
    """log p_Z(z) per row, as `Flow.call` adds it to the log-det."""
    return flow.base.log_prob(z, event_ndims=len(z.shape) - 1)


def _conditional_endpoints(flow, draw_latent, x_spec, z_spec, seed_spec):
    """`_endpoints` of a conditional flow: each takes a "context" too."""
    transform = flow.transform
    c_spec = tf.TensorSpec((None, flow.context_features), flow.compute_dtype, name="context")

    forward = _traced(transform.forward_and_log_det, [x_spec, c_spec])
    inverse = _traced(transform.inverse, [z_spec, c_spec])

    def log_prob(x, context):
        z, log_det = forward(x, context)
        return {"log_prob": _base_log_prob(flow, z) + log_det}

    def encode(x, context):
        return {"z": forward(x, context)[0]}

    def decode(z, context):
        return {"x": inverse(z, context)}

    def sample(context, seed):
        return {"x": inverse(draw_latent(tf.shape(context)[0], seed), context)}

    functions = {"log_prob": log_prob, "encode": encode, "decode": decode, "sample": sample}
    signatures = {
        "log_prob": [x_spec, c_spec],
        "encode": [x_spec, c_spec],
        "decode": [z_spec, c_spec],
        "sample": [c_spec, seed_spec],
    }
    return functions, signatures


__all__ = ["export_saved_model", "stateless_seed"]
