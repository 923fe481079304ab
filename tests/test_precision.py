"""Precision policies: under "mixed_float16" / "mixed_bfloat16" every preset trains without
NaN, its conditioner networks compute in the low precision and its log-determinants,
base log-probabilities and loss stay in float32; under floatx "float64" everything is
float64 end to end. Runs on the TensorFlow and JAX backends."""

import contextlib

import keras
import numpy as np
import pytest

import tfflows as tff

D = 4
PRESETS = {
    "NICE": lambda: tff.NICE(D, num_layers=2, hidden_units=(8,)),
    "RealNVP": lambda: tff.RealNVP(D, num_layers=2, hidden_units=(8,)),
    "MAF": lambda: tff.MAF(D, num_layers=2, hidden_units=(8,)),
    "IAF": lambda: tff.IAF(D, num_layers=1, hidden_units=(8,)),
    "NSF": lambda: tff.NSF(D, num_layers=2, hidden_units=(8,), bins=4),
    "NSF-coupling": lambda: tff.NSF(D, num_layers=2, hidden_units=(8,), bins=4, kind="coupling"),
    "GaussianizationFlow": lambda: tff.GaussianizationFlow(D, num_blocks=2),
    "Glow": lambda: tff.Glow((4, 4, 1), num_scales=1, steps_per_scale=1, hidden_channels=4, num_levels=4),
}
JAX_SUBSET = ("RealNVP", "MAF", "NSF")


@contextlib.contextmanager
def policy(name=None, floatx=None):
    old_policy, old_floatx = keras.config.dtype_policy(), keras.config.floatx()
    try:
        if floatx:
            keras.config.set_floatx(floatx)
            keras.config.set_dtype_policy(floatx)
        if name:
            keras.config.set_dtype_policy(name)
        yield
    finally:
        keras.config.set_floatx(old_floatx)
        keras.config.set_dtype_policy(old_policy)


def data_for(name, dtype="float32"):
    rng = np.random.default_rng(0)
    if name == "Glow":
        return rng.uniform(0, 4, size=(64, 4, 4, 1)).astype(dtype)
    return (rng.standard_t(4, size=(128, D)) * [1, 2, 0.5, 1]).astype(dtype)


def networks(flow):
    return [layer for layer in flow._flatten_layers() if isinstance(layer, (tff.MLP, tff.MADE, tff.ConvResNet, tff.GlowConvNet))]


def _names():
    if keras.backend.backend() == "tensorflow":
        return sorted(PRESETS)
    return list(JAX_SUBSET)


@pytest.mark.parametrize("mixed", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", _names())
def test_presets_train_under_mixed_precision_with_float32_densities(name, mixed):
    x = data_for(name)
    with policy(mixed):
        keras.utils.set_random_seed(0)
        flow = PRESETS[name]()
        history = flow.fit(x, epochs=2, batch_size=32, verbose=0)
        log_p = flow.log_prob(x[:16])
        z, log_det = flow.transform.forward_and_log_det(keras.ops.convert_to_tensor(x[:16]))
    assert np.all(np.isfinite(history.history["loss"]))
    assert keras.backend.standardize_dtype(log_p.dtype) == "float32"
    assert keras.backend.standardize_dtype(log_det.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(log_p)))
    low = mixed.split("_")[1]
    nets = networks(flow)
    if name != "GaussianizationFlow":  # no conditioner networks
        assert nets and all(net.compute_dtype == low for net in nets)
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in flow.trainable_variables)


@pytest.mark.parametrize("name", _names())
def test_float64_end_to_end(name):
    x = data_for(name, "float64")
    with policy(floatx="float64"):
        keras.utils.set_random_seed(0)
        flow = PRESETS[name]()
        flow.fit(x, epochs=1, batch_size=32, verbose=0)
        log_p = flow.log_prob(x[:8])
        samples = flow.sample(4, seed=1)
    assert keras.backend.standardize_dtype(log_p.dtype) == "float64"
    assert keras.backend.standardize_dtype(samples.dtype) == "float64"
    assert all(keras.backend.standardize_dtype(v.dtype) == "float64" for v in flow.trainable_variables)


def test_rbig_under_mixed_float16_is_finite_and_float32():
    x = data_for("RBIG")
    with policy("mixed_float16"):
        rbig = tff.RBIG(D).fit_greedy(x, max_blocks=3, verbose=0)
        log_p = rbig.log_prob(x)
    assert keras.backend.standardize_dtype(log_p.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(log_p)))
    reference = tff.RBIG(D).fit_greedy(x, max_blocks=3, verbose=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(log_p), keras.ops.convert_to_numpy(reference.log_prob(x)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel export")
def test_export_under_mixed_precision_takes_float32_inputs(tmp_path):
    import tensorflow as tf

    x = data_for("MAF")
    with policy("mixed_float16"):
        flow = PRESETS["MAF"]()
        flow.fit(x, epochs=1, verbose=0)
        flow.export(str(tmp_path / "m" / "1"))
    loaded = tf.saved_model.load(str(tmp_path / "m" / "1"))
    spec = loaded.signatures["log_prob"].structured_input_signature[1]["x"]
    assert spec.dtype == tf.float32
