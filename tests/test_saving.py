"""Saving: `.keras` round trips for every preset in safe mode, resuming training from a
ModelCheckpoint, and clear errors for missing, truncated or corrupt files."""

import os
import shutil

import keras
import numpy as np
import pytest

import tfflows as tff
from tests.test_tfp import PRESETS, make_preset

D = 4


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_save_load_round_trip(name, tmp_path):
    flow, x = make_preset(name)
    path = str(tmp_path / f"{name}.keras")
    flow.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is type(flow)
    np.testing.assert_allclose(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy(), rtol=1e-6, atol=1e-6)
    again = tff.load_model(path)  # the wrapper: same model
    np.testing.assert_allclose(again.log_prob(x).numpy(), flow.log_prob(x).numpy(), rtol=1e-6, atol=1e-6)


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, D)) @ rng.normal(size=(D, D))).astype("float32")


def test_training_resumes_from_model_checkpoint(tmp_path):
    x = _data()
    ckpt = str(tmp_path / "ckpt.keras")
    keras.utils.set_random_seed(0)
    flow = tff.RealNVP(D, num_layers=2, hidden_units=(16,))
    flow.fit(x, epochs=2, batch_size=64, shuffle=False, verbose=0,
             callbacks=[keras.callbacks.ModelCheckpoint(ckpt)])
    resumed = tff.load_model(ckpt)
    np.testing.assert_allclose(resumed.log_prob(x).numpy(), flow.log_prob(x).numpy(), rtol=1e-6)
    assert int(resumed.optimizer.iterations.numpy()) == int(flow.optimizer.iterations.numpy()) == 8
    # One more epoch from the checkpoint equals one more epoch of the original run.
    flow.fit(x, epochs=1, batch_size=64, shuffle=False, verbose=0)
    resumed.fit(x, epochs=1, batch_size=64, shuffle=False, verbose=0)
    assert int(resumed.optimizer.iterations.numpy()) == 12
    np.testing.assert_allclose(resumed.log_prob(x).numpy(), flow.log_prob(x).numpy(), rtol=1e-5, atol=1e-5)


def test_weights_only_checkpoint(tmp_path):
    x = _data(64)
    flow = tff.NICE(D, num_layers=2, hidden_units=(8,))
    path = str(tmp_path / "w.weights.h5")
    flow.fit(x, epochs=1, batch_size=32, verbose=0,
             callbacks=[keras.callbacks.ModelCheckpoint(path, save_weights_only=True)])
    fresh = tff.NICE(D, num_layers=2, hidden_units=(8,))
    fresh.build((None, D))
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh.log_prob(x).numpy(), flow.log_prob(x).numpy(), rtol=1e-6)
    with pytest.raises(tff.ModelFileError, match="load_weights"):
        tff.load_model(path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    flow = tff.RealNVP(D, num_layers=1, hidden_units=(8,))
    flow.build((None, D))
    keras_path = str(root / "m.keras")
    flow.save(keras_path)
    return root, keras_path, flow.export(str(root / "sm"))


def test_truncated_keras_file(saved, tmp_path):
    _, keras_path, _ = saved
    data = open(keras_path, "rb").read()
    for cut in (0, 10, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.keras"
        bad.write_bytes(data[:cut])
        with pytest.raises(tff.ModelFileError, match="truncated or corrupt|corrupt"):
            tff.load_model(str(bad))


def test_corrupt_keras_file(saved, tmp_path):
    _, keras_path, _ = saved
    data = bytearray(open(keras_path, "rb").read())
    rng = np.random.default_rng(0)
    start = len(data) // 2
    data[start:start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(bytes(data))
    with pytest.raises(tff.ModelFileError, match="corrupt"):
        tff.load_model(str(bad))


def test_wrong_kinds_of_path(saved, tmp_path):
    _, keras_path, sm_path = saved
    with pytest.raises(tff.ModelFileError, match="No such file"):
        tff.load_model(str(tmp_path / "missing.keras"))
    with pytest.raises(tff.ModelFileError, match="SavedModel"):
        tff.load_model(sm_path)
    with pytest.raises(tff.ModelFileError, match="load_model"):
        tff.load_saved_model(keras_path)
    with pytest.raises(tff.ModelFileError, match="No SavedModel"):
        tff.load_saved_model(str(tmp_path / "nothing"))
    not_a_model = tmp_path / "other.keras"
    import zipfile

    with zipfile.ZipFile(not_a_model, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(tff.ModelFileError, match="lacks"):
        tff.load_model(str(not_a_model))


def _damaged_copy(sm_path, tmp_path, name, member, keep=0.5):
    target = tmp_path / name
    shutil.copytree(sm_path, target)
    file = target / member
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])
    return str(target)


def test_truncated_saved_model(saved, tmp_path):
    _, _, sm_path = saved
    bad_graph = _damaged_copy(sm_path, tmp_path, "graph", "saved_model.pb")
    with pytest.raises(tff.ModelFileError, match="saved_model.pb"):
        tff.load_saved_model(bad_graph)
    bad_weights = _damaged_copy(sm_path, tmp_path, "weights", "variables/variables.data-00000-of-00001")
    with pytest.raises(tff.ModelFileError, match="variables"):
        tff.load_saved_model(bad_weights)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(sm_path, incomplete)
    os.remove(incomplete / "variables" / "variables.index")
    with pytest.raises(tff.ModelFileError, match="incomplete"):
        tff.load_saved_model(str(incomplete))
    assert tff.load_saved_model(sm_path).signatures["log_prob"] is not None
