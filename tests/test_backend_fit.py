"""Backend-agnostic training check: runs the same on TensorFlow and on JAX
(`KERAS_BACKEND=jax python -m pytest tests/test_backend_fit.py tests/test_bijectors.py`)."""

import os

import keras
import numpy as np
import pytest

import tfflows as tff


@pytest.mark.parametrize("make", [
    lambda: tff.RealNVP(2, num_layers=2, hidden_units=(16,)),
    lambda: tff.MAF(2, num_layers=2, hidden_units=(16,)),
    lambda: tff.NSF(2, num_layers=2, hidden_units=(16,)),
], ids=["RealNVP", "MAF", "NSF"])
def test_fit_log_prob_sample_and_save(make, tmp_path):
    x = tff.datasets.toy_2d("moons", 1000, seed=0)
    keras.utils.set_random_seed(0)
    flow = make()
    before = float(np.mean(keras.ops.convert_to_numpy(flow.log_prob(x))))
    history = flow.fit(x, epochs=3, batch_size=100, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = float(np.mean(keras.ops.convert_to_numpy(flow.log_prob(x))))
    assert after > before
    samples = keras.ops.convert_to_numpy(flow.sample(50, seed=1))
    assert samples.shape == (50, 2) and np.all(np.isfinite(samples))
    path = os.path.join(tmp_path, "flow.keras")
    flow.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.log_prob(x[:20])),
                               keras.ops.convert_to_numpy(flow.log_prob(x[:20])), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: tff.Glow((8, 8, 3), num_scales=2, steps_per_scale=2, hidden_channels=8, num_levels=16),
    lambda: tff.Glow((8, 8, 1), num_scales=1, steps_per_scale=2, hidden_channels=8, num_levels=16,
                     context_features=3),
    lambda: tff.ImageRealNVP((8, 8, 3), num_scales=2, steps_per_scale=2, hidden_channels=8,
                             num_blocks=1, num_levels=16),
], ids=["Glow", "Glow-conditional", "ImageRealNVP"])
def test_image_presets_fit_sample_and_save(make, tmp_path):
    """The image presets train, score, sample and round-trip `.keras` on every backend (the
    CI's JAX job runs this file): levels in [0, 16), dequantized with fresh noise."""
    flow = make()
    shape = tuple(flow.event_shape)
    rng = np.random.default_rng(0)
    levels = np.clip(np.round(8 + 3 * rng.standard_normal((96,) + shape)), 0, 15)
    x = (levels + rng.uniform(size=levels.shape)).astype("float32")
    context = np.eye(3, dtype="float32")[rng.integers(0, 3, 96)]
    conditional = flow.context_features > 0
    data = {"x": x, "context": context} if conditional else x
    keras.utils.set_random_seed(0)

    def bits(model):
        per_image = model.bits_per_dim(x[:32], context=context[:32]) if conditional \
            else model.bits_per_dim(x[:32])
        return float(np.mean(keras.ops.convert_to_numpy(per_image)))

    before = bits(flow)
    history = flow.fit(data, epochs=3, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert bits(flow) < before
    draw = dict(context=context[:4]) if conditional else {}
    samples = keras.ops.convert_to_numpy(flow.sample(4, seed=1, **draw))
    assert samples.shape == (4,) + shape and np.all(np.isfinite(samples))
    path = os.path.join(tmp_path, "image_flow.keras")
    flow.save(path)
    loaded = keras.models.load_model(path)
    assert abs(bits(loaded) - bits(flow)) < 1e-4
