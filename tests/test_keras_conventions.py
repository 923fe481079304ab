"""A Flow behaves like any Keras model: the data forms, arguments and callbacks Keras users
write with `fit`, `evaluate` and `predict` (the README's conventions table)."""

import os

import keras
import numpy as np
import pytest

import tfflows as tff

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.data / tf.train")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype("float32") @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]], "float32")
    return x[:64], x[64:]


def small_flow(seed=0, build=True):
    keras.utils.set_random_seed(seed)
    flow = tff.MAF(3, num_layers=2, hidden_units=(8,))
    if build:
        flow.build((None, 3))  # weights drawn now, from this seed
    return flow


def weights_of(flow):
    return [np.array(w) for w in flow.get_weights()]


def nll(flow, x):
    return float(-np.mean(keras.ops.convert_to_numpy(flow.log_prob(x))))


@pytest.mark.parametrize("form", ["array", "tuple1", "tuple_none", "tuple_weights", "dataset", "dataset_tuple"])
def test_validation_data_in_every_keras_form(data, form):
    train, val = data
    if form.startswith("dataset") and keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data")
    forms = {"array": lambda: val, "tuple1": lambda: (val,), "tuple_none": lambda: (val, None),
             "tuple_weights": lambda: (val, None, np.ones(len(val)))}
    if form.startswith("dataset"):
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(val).batch(16)
        forms["dataset"] = lambda: dataset
        forms["dataset_tuple"] = lambda: dataset.map(lambda v: (v,))
    flow = small_flow()
    history = flow.fit(train, validation_data=forms[form](), epochs=2, batch_size=16, verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1], nll(flow, val), rtol=1e-4, atol=1e-4)


def test_validation_data_with_context_dict(data):
    train, val = data
    context = np.eye(2, dtype="float32")[np.arange(96) % 2]
    flow = tff.MAF(3, num_layers=1, hidden_units=(8,), context_features=2)
    history = flow.fit({"x": train, "context": context[:64]}, validation_data=({"x": val, "context": context[64:]},),
                       epochs=1, batch_size=16, verbose=0)
    expected = -np.mean(keras.ops.convert_to_numpy(flow.log_prob(val, context=context[64:])))
    np.testing.assert_allclose(history.history["val_loss"][-1], expected, rtol=1e-4, atol=1e-4)


def test_validation_split_takes_the_last_rows(data):
    train, _ = data
    flow = small_flow()
    history = flow.fit(train, validation_split=0.25, epochs=1, batch_size=16, verbose=0, shuffle=False)
    np.testing.assert_allclose(history.history["val_loss"][-1], nll(flow, train[48:]), rtol=1e-4, atol=1e-4)


def test_evaluate_is_the_mean_nll_and_predict_the_log_density(data):
    train, val = data
    flow = small_flow()
    flow.fit(train, epochs=1, verbose=0)
    np.testing.assert_allclose(flow.evaluate(val, batch_size=7, verbose=0), nll(flow, val), rtol=1e-5)
    np.testing.assert_allclose(flow.predict(val, batch_size=7, verbose=0),
                               keras.ops.convert_to_numpy(flow.log_prob(val)), rtol=1e-5, atol=1e-5)


def test_sample_weights_are_a_weighted_maximum_likelihood(data):
    train, val = data
    flow = small_flow()
    flow.fit(train, epochs=1, verbose=0)
    w = np.linspace(0.0, 2.0, len(val))
    log_p = keras.ops.convert_to_numpy(flow.log_prob(val))
    np.testing.assert_allclose(flow.evaluate(val, sample_weight=w, batch_size=8, verbose=0),
                               -np.sum(w * log_p) / np.sum(w), rtol=1e-5)
    np.testing.assert_allclose(flow.evaluate((val, None, w), batch_size=8, verbose=0), -np.sum(w * log_p) / np.sum(w),
                               rtol=1e-5)
    # a weight of 0 removes a row exactly: full-batch training with 0-weight extra rows
    keep = np.r_[np.ones(48), np.zeros(16)]
    weighted, plain = small_flow(1), small_flow(1)
    weighted.compile(optimizer=keras.optimizers.SGD(0.05))
    plain.compile(optimizer=keras.optimizers.SGD(0.05))
    weighted.fit(train, sample_weight=keep, epochs=3, batch_size=64, shuffle=False, verbose=0)
    plain.fit(train[:48], epochs=3, batch_size=48, shuffle=False, verbose=0)
    for a, b in zip(weights_of(weighted), weights_of(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_batch_of_zero_weights_gives_no_nan(data):
    train, _ = data
    flow = small_flow()
    w = np.r_[np.zeros(16), np.ones(48)]
    history = flow.fit(train, sample_weight=w, batch_size=16, shuffle=False, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    with pytest.raises(ValueError, match="every sample weight is zero"):
        flow.fit(train, sample_weight=np.zeros(64), verbose=0)
    with pytest.raises(ValueError, match="non-negative"):
        flow.fit(train, sample_weight=-np.ones(64), verbose=0)


def test_initial_epoch_shuffle_and_refusals(data):
    train, _ = data
    flow = small_flow()
    history = flow.fit(train, epochs=3, initial_epoch=2, verbose=0)
    assert len(history.history["loss"]) == 1
    runs = []
    for _ in range(2):
        f = small_flow(3)
        f.fit(train, epochs=2, batch_size=16, shuffle=False, verbose=0)
        runs.append(weights_of(f))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="class_weight"):
        flow.fit(train, class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="without targets"):
        flow.fit(train, train, verbose=0)
    with pytest.raises(ValueError, match="second element"):
        flow.fit((train, train), verbose=0)
    with pytest.raises(ValueError, match="loss"):
        flow.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="metrics"):
        flow.compile(optimizer="adam", metrics=["mae"])


def test_generators_and_pydatasets_train(data):
    train, _ = data

    def batches():
        for epoch in range(100):
            for i in range(0, 64, 16):
                yield train[i:i + 16]

    flow = small_flow()
    history = flow.fit(batches(), steps_per_epoch=4, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return (train[i * 16:(i + 1) * 16],)

    flow = small_flow()
    history = flow.fit(Batches(), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    np.testing.assert_allclose(flow.evaluate(Batches(), verbose=0), nll(flow, train), rtol=1e-4)

    def integers():
        yield np.zeros((4, 3), "int64")

    with pytest.raises(TypeError, match="dequantize"):
        small_flow().fit(integers(), steps_per_epoch=1, verbose=0)


def test_summary_and_count_params_build_an_unbuilt_preset(capsys):
    flow = small_flow(build=False)
    assert flow.count_params() > 0
    flow.summary()
    assert "Total params" in capsys.readouterr().out
    with pytest.raises(ValueError, match="event_shape"):
        tff.Flow(tff.Chain([tff.ActNorm()])).count_params()


def test_clone_model_and_trainable_false(data):
    train, val = data
    flow = small_flow()
    flow.fit(train, epochs=1, verbose=0)
    clone = keras.models.clone_model(flow)
    assert type(clone) is tff.MAF and clone.get_config() == flow.get_config()
    clone.set_weights(flow.get_weights())
    np.testing.assert_allclose(nll(clone, val), nll(flow, val), rtol=1e-6)
    frozen = small_flow()
    frozen.fit(train, epochs=1, verbose=0)
    before = weights_of(frozen)
    frozen.trainable = False
    frozen.compile(optimizer="adam")
    frozen.fit(train, epochs=1, verbose=0)
    for a, b in zip(before, weights_of(frozen)):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_csv_tensorboard_and_reduce_lr_callbacks(data, tmp_path):
    train, val = data
    flow = small_flow()
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "last.weights.h5"), save_weights_only=True),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.ReduceLROnPlateau(patience=1, factor=0.5, min_delta=10.0),
    ]
    if keras.backend.backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(str(tmp_path / "tb")))
    history = flow.fit(train, validation_data=val, epochs=3, verbose=0, callbacks=callbacks)
    best = tff.load_model(tmp_path / "best.keras")
    assert np.isclose(nll(best, val), min(history.history["val_loss"]), rtol=1e-4)
    again = small_flow(build=False)  # built by load_weights
    again.load_weights(tmp_path / "last.weights.h5")
    np.testing.assert_allclose(nll(again, val), nll(flow, val), rtol=1e-6)
    assert (tmp_path / "log.csv").read_text().splitlines()[0].startswith("epoch")
    assert float(keras.ops.convert_to_numpy(flow.optimizer.learning_rate)) < 1e-3  # reduced on plateau
    if keras.backend.backend() == "tensorflow":
        assert any(name.startswith("events") for _, _, files in os.walk(tmp_path / "tb") for name in files)


class _Killed(Exception):
    pass


class _KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Killed


@tensorflow_only
def test_backup_and_restore_resumes_to_the_uninterrupted_weights(data, tmp_path):
    train, _ = data
    full = small_flow(5)
    full.fit(train, epochs=4, batch_size=16, verbose=0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupted = small_flow(5)
    with pytest.raises(_Killed):  # the process "dies" after epoch 2
        interrupted.fit(train, epochs=4, batch_size=16, verbose=0, callbacks=[backup, _KillAfter(1)])
    resumed = small_flow(5)  # a fresh process: same code, same seed
    history = resumed.fit(train, epochs=4, batch_size=16, verbose=0,
                          callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    for a, b in zip(weights_of(full), weights_of(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@tensorflow_only
def test_tf_train_checkpoint_and_tf_saved_model_save(data, tmp_path):
    import tensorflow as tf

    train, val = data
    flow = small_flow()
    flow.fit(train, epochs=1, verbose=0)
    path = tf.train.Checkpoint(model=flow).save(str(tmp_path / "ckpt"))
    restored = small_flow(9)
    status = tf.train.Checkpoint(model=restored).restore(path)
    status.assert_existing_objects_matched()
    np.testing.assert_allclose(nll(restored, val), nll(flow, val), rtol=1e-6)
    tf.saved_model.save(flow, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    out = loaded.signatures["serving_default"](tf.constant(val[:5]))
    np.testing.assert_allclose(list(out.values())[0].numpy(), keras.ops.convert_to_numpy(flow.log_prob(val[:5])),
                               rtol=1e-5, atol=1e-5)


@tensorflow_only
@pytest.mark.parametrize("shuffle", [True, False])
def test_training_batches_are_full_and_every_row_is_read_each_epoch(shuffle):
    """fit's pipeline gives every batch the same static size (a static batch dimension
    keeps the gradient graph's broadcasting static): the last batch is filled up with
    rows of the same epoch, so each epoch still reads every row; evaluation reads each
    row exactly once."""
    import tensorflow as tf

    from tfflows.interop.tf_training import array_dataset

    rows = np.arange(10, dtype="float32")[:, None]
    epoch = tf.Variable(0, dtype=tf.int64)
    train = array_dataset(rows, 4, shuffle=shuffle, seed=3, epoch=epoch, fill_last=True)
    assert train.element_spec.shape.as_list() == [4, 1]
    assert int(train.cardinality()) == 3
    orders = []
    for e in range(2):
        epoch.assign(e)
        seen = np.concatenate([b.numpy()[:, 0] for b in train])
        assert len(seen) == 12 and set(seen) == set(range(10))
        np.testing.assert_array_equal(seen[10:], seen[:2])  # the filling: this epoch's first rows
        orders.append(seen)
    assert shuffle == (not np.array_equal(orders[0], orders[1]))

    evaluation = array_dataset(rows, 4)
    assert evaluation.element_spec.shape.as_list() == [None, 1]
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in evaluation]), rows)
    for batch_size in (5, 10, 64):  # a divisor, or one batch: static without any filling
        whole = array_dataset(rows, batch_size)
        assert whole.element_spec.shape.as_list() == [min(batch_size, 10), 1]
        np.testing.assert_array_equal(np.concatenate([b.numpy() for b in whole]), rows)
