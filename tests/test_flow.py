"""The Flow model: training, density normalization, save/load, data rules."""

import os

import keras
import numpy as np
import pytest

import tfflows as tff
from tfflows.data import datasets
from tfflows.flows.flow import AUTO_STEPS_PER_EXECUTION


@pytest.fixture(scope="module")
def moons():
    return datasets.toy_2d("moons", n=2000, seed=0)


@pytest.fixture(scope="module")
def trained_realnvp(moons):
    keras.utils.set_random_seed(1)
    flow = tff.RealNVP(2, num_layers=4, hidden_units=(32, 32))
    flow.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = flow.fit(moons, epochs=4, batch_size=200, verbose=0)
    return flow, history


def test_fit_decreases_the_loss(trained_realnvp):
    _, history = trained_realnvp
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 0.1


@pytest.mark.parametrize("preset", [tff.NICE, tff.RealNVP])
def test_presets_train_from_the_identity(preset, moons):
    keras.utils.set_random_seed(0)
    flow = preset(2, num_layers=2, hidden_units=(16,))
    before = float(np.mean(flow.log_prob(moons)))
    flow.fit(moons, epochs=3, batch_size=250, verbose=0)
    after = float(np.mean(flow.log_prob(moons)))
    assert np.isfinite(after) and after > before


def test_trained_density_integrates_to_one(trained_realnvp):
    flow, _ = trained_realnvp
    from tfflows.plot.density import grid_log_prob

    xs, ys, log_p = grid_log_prob(flow, ((-7.0, 7.0), (-6.0, 6.0)), resolution=400)
    mass = np.exp(log_p).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert abs(mass - 1.0) < 0.01


def test_sample_encode_decode(trained_realnvp, moons):
    flow, _ = trained_realnvp
    z = flow.encode(moons[:50])
    np.testing.assert_allclose(np.asarray(flow.decode(z)), moons[:50], atol=1e-4)
    a = np.asarray(flow.sample(20, seed=3))
    b = np.asarray(flow.sample(20, seed=3))
    assert a.shape == (20, 2) and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    bpd = np.asarray(flow.bits_per_dim(moons[:10]))
    np.testing.assert_allclose(bpd, -np.asarray(flow.log_prob(moons[:10])) / (2 * np.log(2)), rtol=1e-6)


def test_log_prob_matches_change_of_variables(trained_realnvp, moons):
    flow, _ = trained_realnvp
    x = moons[:16]
    z, log_det = flow.transform.forward_and_log_det(x)
    base = -0.5 * np.sum(np.asarray(z) ** 2 + np.log(2 * np.pi), axis=1)
    np.testing.assert_allclose(np.asarray(flow.log_prob(x)), base + np.asarray(log_det), rtol=1e-5)


def test_save_and_load_round_trip(tmp_path, trained_realnvp, moons):
    flow, _ = trained_realnvp
    path = os.path.join(tmp_path, "flow.keras")
    flow.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is tff.RealNVP
    np.testing.assert_allclose(np.asarray(loaded.log_prob(moons[:100])), np.asarray(flow.log_prob(moons[:100])),
                               rtol=1e-6)


def test_custom_chain_flow_saves_with_logistic_base(tmp_path, moons):
    flow = tff.Flow(tff.Chain([tff.ActNorm(), tff.AdditiveCoupling(hidden_units=(8,)), tff.Reverse(),
                               tff.LULinear(), tff.Rescale()]), base=tff.StandardLogistic())
    flow.fit(moons, epochs=1, batch_size=500, verbose=0)
    path = os.path.join(tmp_path, "chain.keras")
    flow.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded.log_prob(moons[:50])), np.asarray(flow.log_prob(moons[:50])),
                               rtol=1e-6)


def test_fit_accepts_datasets_validation_and_callbacks(tmp_path, moons):
    import tensorflow as tf

    flow = tff.RealNVP(2, num_layers=2, hidden_units=(16,))
    train = tf.data.Dataset.from_tensor_slices(moons[:1500]).batch(250)
    checkpoint = os.path.join(tmp_path, "best.keras")
    history = flow.fit(
        train, validation_data=moons[1500:], epochs=3, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True),
                   keras.callbacks.ModelCheckpoint(checkpoint, save_best_only=True)],
    )
    assert "val_loss" in history.history and os.path.exists(checkpoint)
    resumed = keras.models.load_model(checkpoint)
    resumed.fit(moons[:1500], epochs=1, batch_size=250, verbose=0)


def test_fit_with_jit_compile(moons):
    flow = tff.RealNVP(2, num_layers=2, hidden_units=(16,))
    flow.compile(optimizer="adam", jit_compile=True)
    history = flow.fit(moons, epochs=2, batch_size=500, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_actnorm_is_initialized_from_the_first_batch():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 0.0]).astype("float32")
    flow = tff.Flow(tff.Chain([tff.ActNorm()]))
    flow.fit(x, epochs=1, batch_size=500, verbose=0, steps_per_epoch=1)
    z = np.asarray(flow.encode(x))
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.05)


def test_batchnorm_uses_batch_statistics_in_training_only():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1000, 2)) * 3.0 + 2.0).astype("float32")
    flow = tff.Flow(tff.Chain([tff.BatchNorm(momentum=0.9), tff.AffineCoupling(hidden_units=(8,))]))
    flow.fit(x, epochs=5, batch_size=100, verbose=0)  # running averages over ~10 batches of 100
    layer = flow.transform.layers[0]
    np.testing.assert_allclose(np.asarray(layer.moving_mean), [2.0, 2.0], atol=0.4)
    np.testing.assert_allclose(np.asarray(flow.decode(flow.encode(x[:10]))), x[:10], atol=1e-4)


# ----- data rules (DESIGN.md) -----------------------------------------------------------------
def test_integer_data_is_refused_with_a_hint_to_dequantize():
    flow = tff.RealNVP(2, num_layers=1)
    with pytest.raises(TypeError, match="[Dd]equantize"):
        flow.fit(np.ones((10, 2), dtype="int32"), verbose=0)
    with pytest.raises(TypeError, match="[Dd]equantize"):
        flow.log_prob(np.ones((10, 2), dtype=bool))


def test_wrong_event_shape_names_both_shapes():
    flow = tff.RealNVP(2, num_layers=1)
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        flow.log_prob(np.zeros((4, 3), dtype="float32"))


def test_nan_rows_are_refused_with_count_and_first_row():
    x = np.zeros((10, 2), dtype="float32")
    x[4, 0] = np.nan
    x[7, 1] = np.inf
    flow = tff.RealNVP(2, num_layers=1)
    with pytest.raises(ValueError, match=r"2 row\(s\).*row 4"):
        flow.fit(x, verbose=0)


def test_fit_refuses_targets_and_bad_sample_counts(moons):
    flow = tff.RealNVP(2, num_layers=1)
    with pytest.raises(ValueError, match="without targets"):
        flow.fit(moons, moons, verbose=0)
    for bad in (-1, 2.5, "3"):
        with pytest.raises(ValueError, match="non-negative integer"):
            flow.sample(bad)


def test_coupling_needs_two_features():
    with pytest.raises(ValueError, match="at least 2 features"):
        tff.RealNVP(1)
    with pytest.raises(ValueError, match="4 entries.*3 features"):
        tff.AffineCoupling(mask=[True, False, True, False]).build((None, 3))


def test_nonfinite_loss_stops_training_and_restores_weights(moons):
    flow = tff.RealNVP(2, num_layers=2, hidden_units=(16,))
    flow.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3))
    flow.fit(moons, epochs=1, batch_size=500, verbose=0, steps_per_epoch=1)
    flow.optimizer.learning_rate.assign(1e30)  # the next steps blow up
    with pytest.warns(RuntimeWarning, match="NaN or Inf"):
        flow.fit(moons, epochs=5, batch_size=500, verbose=0)
    assert all(np.all(np.isfinite(w)) for w in flow.get_weights())
    assert np.all(np.isfinite(np.asarray(flow.log_prob(moons[:20]))))


def test_realnvp_with_an_image_shape_is_the_multiscale_image_model():
    flow = tff.RealNVP((8, 8, 1), num_levels=17, hidden_channels=8, num_blocks=1)
    assert isinstance(flow, tff.ImageRealNVP)
    assert tuple(flow.event_shape) == (8, 8, 1)


def test_bits_per_dim_builds_an_unbuilt_flow():
    flow = tff.Flow(tff.Chain([tff.AffineCoupling(hidden_units=(4,))]))
    bpd = np.asarray(flow.bits_per_dim(np.zeros((3, 2), dtype="float32")))
    np.testing.assert_allclose(bpd, np.log(2 * np.pi) / (2 * np.log(2)), rtol=1e-6)


def test_log_prob_works_inside_a_compiled_function(trained_realnvp, moons):
    # The boundary checks look at dtype and static shape only when the input is symbolic.
    flow, x = trained_realnvp[0], moons[:16]
    if keras.backend.backend() == "jax":
        import jax

        compiled = jax.jit(flow.log_prob)
    else:
        import tensorflow as tf

        compiled = tf.function(flow.log_prob)
    np.testing.assert_allclose(np.asarray(compiled(x)), np.asarray(flow.log_prob(x)), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="dequantize"):
        compiled(x.astype("int32"))


def test_default_compile_runs_several_steps_per_execution(moons):
    flow = tff.RealNVP(2, num_layers=2, hidden_units=(16,))
    flow.fit(moons[:640], epochs=1, batch_size=64, verbose=0)
    assert flow.steps_per_execution == AUTO_STEPS_PER_EXECUTION
    assert int(flow.optimizer.iterations.numpy() if hasattr(flow.optimizer.iterations, "numpy")
               else flow.optimizer.iterations) == 10  # every batch was a step
    flow.compile(optimizer="adam", steps_per_execution=1)
    assert flow.steps_per_execution == 1


def test_progress_bar_counts_the_epoch_steps_with_several_steps_per_execution(moons, capsys):
    flow = tff.RealNVP(2, num_layers=2, hidden_units=(16,))
    flow.fit(moons[:640], epochs=1, batch_size=64, verbose=1)  # 10 steps, one execution of up to 32
    out = capsys.readouterr().out
    assert "10/10" in out and "32/10" not in out


def test_check_data_gives_one_checked_value_that_fit_takes_as_it_is(moons):
    flow = tff.MAF(2, num_layers=1, hidden_units=(8,))
    weights = np.linspace(0.5, 1.5, len(moons))
    data = flow.check_data((moons, None, weights), what="training data")
    assert data.stream is None and data.context is None and data.x.dtype == np.float32
    np.testing.assert_allclose(data.weights.mean(), 1.0, rtol=1e-6)  # rescaled to mean 1
    assert flow.check_data(data) is data  # checked once: a Data passes through
    train, val = data.split(0.25)
    assert train.rows + val.rows == len(moons) and val.weights is not None
    flow.fit(train, validation_data=val, epochs=1, batch_size=256, verbose=0)
    assert np.isfinite(flow.evaluate(val.x, verbose=0))


def test_tensors_are_checked_as_tensors(moons):
    import tensorflow as tf

    flow = tff.MAF(2, num_layers=1, hidden_units=(8,))
    tensor = tf.constant(moons[:50])
    np.testing.assert_allclose(flow.log_prob(tensor), flow.log_prob(moons[:50]), rtol=1e-6)
    assert isinstance(flow.check_data(tensor).x, tf.Tensor)  # not copied through NumPy
    assert np.all(np.isfinite(tf.function(flow.log_prob)(tensor)))  # symbolic: dtype and shape
    bad = moons[:50].copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"2 row\(s\) containing NaN or Inf; the first is row 3"):
        flow.fit(tf.constant(bad), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="events of shape"):
        flow.log_prob(tf.zeros((4, 3)))
    with pytest.raises(TypeError, match="dequantize"):
        flow.log_prob(tf.zeros((4, 2), tf.int32))
