"""Streamed greedy Gaussianization and data larger than memory: mergeable sketches within
their stated bounds, the streamed RBIG fit equal to the in-memory one at the same depth,
every stream form (lists of batches, tf.data, functions, text shards on disk), and the
command line's --stream."""

import numpy as np
import pytest

import tfflows as tff
from tfflows.data.files import TextBatches
from tfflows.gaussianization.marginal_fit import SampleSummary
from tfflows.gaussianization.sketches import HistogramSketch, MomentSketch


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6000, 4))
    return (np.tanh(z @ rng.normal(size=(4, 4)) / 2) + 0.1 * z**3).astype("float32")


def batches_of(x, size=1000):
    return [x[i:i + size] for i in range(0, len(x), size)]


def test_histogram_sketch_reads_within_its_bounds_and_merges():
    rng = np.random.default_rng(1)
    x = np.c_[rng.normal(size=20000), rng.exponential(size=20000), rng.standard_t(3, size=20000)]
    exact = SampleSummary(x)
    whole = HistogramSketch(x.mean(0), x.std(0))
    whole.add(x)
    halves = HistogramSketch(x.mean(0), x.std(0))
    halves.add(x[:7000])
    other = HistogramSketch(x.mean(0), x.std(0))
    other.add(x[7000:])
    halves.merge(other.state())
    np.testing.assert_array_equal(halves.counts, whole.counts)
    levels = np.linspace(0.001, 0.999, 41)
    width = x.std(0)[:, None] * np.cosh(np.arcsinh((exact.quantile(levels) - x.mean(0)[:, None]) / x.std(0)[:, None]))
    bound = width * 2 * np.arcsinh(1e4) / whole.bins  # one bin width at each quantile
    assert np.all(np.abs(whole.quantile(levels) - exact.quantile(levels)) <= bound + 1e-12)
    points, h = exact.quantile(levels), 0.2 * x.std(0)
    cdf, pdf = whole.kernel_cdf_pdf(points, h)
    cdf0, pdf0 = exact.kernel_cdf_pdf(points, h)
    first_order = bound.max(axis=1, keepdims=True) / (2 * h[:, None] * np.sqrt(2 * np.pi))
    assert np.all(np.abs(cdf - cdf0) <= first_order) and np.abs(cdf - cdf0).max() < 1e-4
    assert np.abs(pdf - pdf0).max() < 1e-3
    moments = MomentSketch(3)
    for part in np.array_split(x, 7):
        moments.add(part)
    np.testing.assert_allclose(moments.covariance, np.cov(x.T, bias=True), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("form", ["list", "function", "dataset"])
def test_streamed_rbig_is_the_in_memory_rbig_at_the_same_depth(rows, form):
    train, test = rows[:5000], rows[5000:]
    if form == "dataset":
        import keras

        if keras.backend.backend() != "tensorflow":
            pytest.skip("tf.data")
        import tensorflow as tf

        stream = tf.data.Dataset.from_tensor_slices(train).batch(700)
    elif form == "function":
        def stream():
            return (batch for batch in batches_of(train, 900))
    else:
        stream = batches_of(train)
    fixed = dict(max_blocks=3, patience=3, tol=-1.0, verbose=0)
    # PCA: exact second moments, so only the marginal sketches differ (to their bound)
    memory = tff.RBIG(4, rotation="pca").fit_greedy(train, **fixed)
    streamed = tff.RBIG(4, rotation="pca").fit_greedy(stream, **fixed)
    assert streamed.num_blocks == memory.num_blocks == 3
    difference = np.abs(np.asarray(streamed.log_prob(test)) - np.asarray(memory.log_prob(test)))
    assert difference.mean() < 0.005 and difference.max() < 0.1
    np.testing.assert_allclose(streamed.greedy_history["train_nll"], memory.greedy_history["train_nll"], atol=2e-3)
    if form == "list":  # the default max-sliced-Wasserstein directions: ascended on (nearly) the same rows
        msw = tff.RBIG(4).fit_greedy(stream, **fixed), tff.RBIG(4).fit_greedy(train, **fixed)
        gap = np.abs(np.asarray(msw[0].log_prob(test)) - np.asarray(msw[1].log_prob(test))).mean()
        assert gap < 0.1


def test_streamed_validation_chooses_the_depth_and_generators_are_refused(rows):
    train, val = rows[:5000], rows[5000:]
    flow = tff.RBIG(4).fit_greedy(batches_of(train), validation_data=batches_of(val, 500), max_blocks=6, patience=2,
                                  verbose=0)
    assert 1 <= flow.num_blocks <= 6 and len(flow.greedy_history["val_nll"]) >= flow.num_blocks
    with pytest.raises(TypeError, match="read only once"):
        tff.RBIG(4).fit_greedy((batch for batch in batches_of(train)), verbose=0)
    with pytest.raises(TypeError, match="dequantize"):
        tff.RBIG(4).fit_greedy([np.ones((10, 4), "int64")], verbose=0)


def write_shards(folder, x, shards=3):
    for k, part in enumerate(np.array_split(x, shards)):
        lines = ["id,a,b,c,d"] + [f"r{k}_{i}," + ",".join(f"{v:.7g}" for v in row) for i, row in enumerate(part)]
        (folder / f"part-{k}.csv").write_text("\n".join(lines) + "\n")
    return str(folder / "part-*.csv")


def test_text_shards_feed_the_greedy_fit_and_flow_fit(rows, tmp_path):
    pattern = write_shards(tmp_path, rows)
    every = TextBatches(pattern, batch_size=1024)
    assert every.features == 4 and every.columns == ["a", "b", "c", "d"] and len(every.paths) == 3
    np.testing.assert_allclose(np.concatenate(list(every)), rows, rtol=1e-6, atol=1e-6)
    train = TextBatches(pattern, batch_size=1024, part="train")
    val = TextBatches(pattern, batch_size=1024, part="validation")
    assert sum(len(b) for b in train) + sum(len(b) for b in val) == len(rows)
    fixed = dict(max_blocks=2, patience=2, tol=-1.0, verbose=0)
    streamed = tff.RBIG(4, rotation="pca").fit_greedy(train, **fixed)
    memory = tff.RBIG(4, rotation="pca").fit_greedy(np.concatenate(list(train)), **fixed)
    assert np.abs(np.asarray(streamed.log_prob(rows[:200])) - np.asarray(memory.log_prob(rows[:200]))).mean() < 0.005
    import keras

    if keras.backend.backend() == "tensorflow":
        flow = tff.MAF(4, num_layers=1, hidden_units=(8,))
        history = flow.fit(train.as_dataset(256, shuffle_buffer=2000), validation_data=val.as_dataset(512),
                           epochs=2, verbose=0)
        assert np.all(np.isfinite(history.history["val_loss"]))
    # the same TextBatches objects as the greedy fit read, given to Flow.fit as they are
    flow = tff.MAF(4, num_layers=1, hidden_units=(8,))
    history = flow.fit(train, batch_size=256, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["val_loss"]) == 2 and np.all(np.isfinite(history.history["val_loss"]))
    whole = np.concatenate(list(val))
    np.testing.assert_allclose(flow.evaluate(val, batch_size=512, verbose=0),
                               -np.mean(np.asarray(flow.log_prob(whole))), rtol=1e-4)
    gf = tff.GaussianizationFlow(4).initialize_greedy(train, validation_data=val)
    assert gf.num_blocks >= 1


def test_command_line_streams_shards(rows, tmp_path):
    from tfflows.cli import main

    pattern = write_shards(tmp_path, rows[:1500])
    out = tmp_path / "out"
    assert main(["fit", pattern, "--stream", "--model", "rbig", "--out", str(out)]) == 0
    assert (out / "part_rbig.keras").is_file() and (out / "part_rbig" / "1" / "saved_model.pb").is_file()
    assert main(["fit", pattern, str(tmp_path / "x.csv"), "--model", "rbig"]) == 2  # several files need --stream


def test_one_stream_protocol_for_arrays_and_streams(rows):
    from tfflows.data.source import Source, is_stream
    from tfflows.gaussianization.greedy import Stopping

    batches = [rows[:100], rows[100:200]]
    assert not any(is_stream(a) for a in (rows, rows.tolist(), (rows,), {"x": rows}))
    assert all(is_stream(s) for s in (batches, lambda: iter(batches), iter(batches)))
    one = list(Source(rows[:300], 4))  # an array is a one-batch source
    assert len(one) == 1 and one[0].shape == (300, 4)
    assert [len(b) for b in Source(lambda: iter(batches), 4)] == [100, 100]
    with pytest.raises(TypeError, match="read only once"):
        Source(iter(batches), 4)
    with pytest.raises(ValueError, match="max_blocks must be a positive integer"):
        Stopping(max_blocks=0)


class CountingBatches:
    """A re-readable list of batches that counts how often it is read."""

    def __init__(self, batches):
        self.batches, self.reads = batches, 0

    def __iter__(self):
        self.reads += 1
        return iter(self.batches)


def test_flow_fit_reads_a_rereadable_source_again_at_every_epoch(rows):
    import keras

    keras.utils.set_random_seed(0)
    train = CountingBatches(batches_of(rows[:3000], 700))
    flow = tff.MAF(4, num_layers=1, hidden_units=(8,))
    flow.compile(optimizer="adam", steps_per_execution=1)
    steps = []

    class CountSteps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            steps[-1] += 1

    history = flow.fit(train, batch_size=500, epochs=3, verbose=0, callbacks=[CountSteps()],
                       validation_data=lambda: iter(batches_of(rows[3000:4000], 300)))
    # every epoch reads all 3,000 rows again, batched to 500 rows whatever the stored batches
    assert steps == [6, 6, 6] and train.reads >= 3
    assert len(history.history["val_loss"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]
    log_p = flow.predict(batches_of(rows[:900], 400), batch_size=256, verbose=0)
    np.testing.assert_allclose(log_p, np.asarray(flow.log_prob(rows[:900])), rtol=1e-4, atol=1e-4)


def test_rereadable_sources_carry_rows_alone_and_are_checked(rows):
    flow = tff.MAF(4, num_layers=1, hidden_units=(8,))
    weights = np.ones(100, "float32")
    with pytest.raises(ValueError, match="rows x alone"):
        flow.fit([(rows[:100], None, weights)], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="3 features|shape"):
        flow.fit([rows[:100, :3]], epochs=1, verbose=0)
    bad = rows[100:200].copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        flow.fit([rows[:100], bad], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="no batches"):
        flow.fit(lambda: iter([]), epochs=1, verbose=0)
