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
