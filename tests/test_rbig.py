"""RBIG (greedy) and GaussianizationFlow (greedy init + fit) as ordinary Flows."""

import keras
import numpy as np
import pytest

import tfflows as tff


def _moons(n=1500, seed=0):
    return tff.datasets.toy_2d("moons", n=n, seed=seed)


@pytest.fixture(scope="module")
def fitted():
    x = _moons()
    val = _moons(500, seed=1)
    model = tff.RBIG(2).fit_greedy(x, validation_data=val, max_blocks=30, patience=4, verbose=0)
    return model, x, val


def test_greedy_fit_improves_and_keeps_the_best_depth(fitted):
    model, x, val = fitted
    history = model.greedy_history
    assert model.num_blocks == int(np.argmin(history["val_nll"])) + 1
    assert len(model.transform.layers) == 2 * model.num_blocks
    assert min(history["val_nll"]) < history["val_nll"][0] - 0.1  # more than one block helps on moons
    nll = -np.mean(np.asarray(model.log_prob(val)))
    assert abs(nll - min(history["val_nll"])) < 1e-3  # the kept model is the validated one
    assert nll < 2.3  # moons: a Gaussian fit gives about 2.9 nats, the true entropy is about 1.65


@pytest.mark.parametrize("max_tail_slope, margin", [("default", 15.0), (None, 100.0)])
def test_far_points_are_finite_round_trip_and_ever_less_likely(fitted, max_tail_slope, margin):
    model, x, val = fitted
    if max_tail_slope is None:  # uncapped tails: Gaussian-like, far points astronomically unlikely
        model = tff.RBIG(2, max_tail_slope=None).fit_greedy(x, validation_data=val, max_blocks=30, patience=4,
                                                            verbose=0)
    std = x.std(axis=0)
    # the default caps each block's tail slope below the standardization's, so its tails are
    # heavier (chosen on validation NLL), but still ever less likely along every ray
    for direction in ([-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]):
        edge = np.where(np.array(direction) < 0, x.min(0), x.max(0))
        far = np.array([edge + k * np.array(direction) * std for k in (1.0, 10.0, 100.0, 1000.0)] + [x.mean(0)],
                       dtype="float32")
        log_prob = np.asarray(model.log_prob(far))
        assert np.all(np.isfinite(log_prob))
        assert np.all(np.diff(log_prob[:4]) < 0)
        assert log_prob[3] < log_prob[4] - margin
        z = np.asarray(model.encode(far))
        np.testing.assert_allclose(np.asarray(model.decode(z)), far, rtol=1e-4, atol=1e-4)


def test_sample_encode_decode(fitted):
    model, x, _ = fitted
    samples = np.asarray(model.sample(2000, seed=0))
    assert samples.shape == (2000, 2) and np.all(np.isfinite(samples))
    np.testing.assert_allclose(samples.mean(0), x.mean(0), atol=0.15)
    np.testing.assert_allclose(np.asarray(model.decode(model.encode(x[:200]))), x[:200], atol=1e-4)


def test_density_integrates_to_one(fitted):
    model, _, _ = fitted
    edges = np.linspace(-8, 8, 321)
    grid = np.stack(np.meshgrid(edges, edges), axis=-1).reshape(-1, 2).astype("float32")
    density = np.exp(np.asarray(model.log_prob(grid), dtype="float64"))
    total = density.sum() * (edges[1] - edges[0]) ** 2
    assert abs(total - 1.0) < 0.02


def test_save_and_load_keep_log_prob(fitted, tmp_path):
    model, x, _ = fitted
    path = str(tmp_path / "rbig.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, tff.RBIG) and loaded.num_blocks == model.num_blocks
    np.testing.assert_allclose(np.asarray(loaded.log_prob(x[:100])), np.asarray(model.log_prob(x[:100])),
                               rtol=1e-5, atol=1e-5)


def test_tolerance_stopping_and_progress_bar(capsys):
    x = np.random.default_rng(0).normal(size=(800, 3)).astype("float32")
    model = tff.RBIG(3).fit_greedy(x, tol=0.05, patience=2, max_blocks=20, verbose=1)
    out = capsys.readouterr().out
    assert "block" in out and "train_nll" in out
    assert len(model.greedy_history["train_nll"]) < 20  # Gaussian data: nothing left to gain
    assert model.num_blocks >= 1


def test_fit_runs_the_greedy_fit_and_refuses_bad_data():
    x = _moons(600)
    model = tff.RBIG(2)
    history = model.fit(x, validation_data=_moons(200, seed=2), max_blocks=5, verbose=0)
    assert len(history.history["loss"]) == len(history.history["val_loss"]) >= 1
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tff.RBIG(2).fit_greedy(bad, verbose=0)
    with pytest.raises(TypeError, match="dequantize"):
        tff.RBIG(2).fit_greedy(np.ones((10, 2), dtype="int64"), verbose=0)


@pytest.mark.parametrize("marginal", ["spline", "logistic"])
def test_gaussianization_flow_starts_greedy_and_improves_with_fit(tmp_path, marginal):
    x, val = _moons(1000), _moons(400, seed=3)
    model = tff.GaussianizationFlow(2, num_blocks=3, marginal=marginal, num_components=8)
    model.initialize_greedy(x)
    assert model.trainable_weights  # every block trains, the spline knots too
    greedy_nll = -np.mean(np.asarray(model.log_prob(val)))
    fresh = tff.GaussianizationFlow(2, num_blocks=3, marginal=marginal, num_components=8)
    fresh.build((None, 2))
    assert greedy_nll < -np.mean(np.asarray(fresh.log_prob(val)))  # better than random init
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x, batch_size=200, epochs=8, verbose=0)
    tuned_nll = -np.mean(np.asarray(model.log_prob(val)))
    assert np.isfinite(tuned_nll) and tuned_nll < greedy_nll
    path = str(tmp_path / "gf.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded.log_prob(val[:50])), np.asarray(model.log_prob(val[:50])),
                               rtol=1e-5, atol=1e-5)
    samples = np.asarray(model.sample(300, seed=1))
    assert np.all(np.isfinite(samples))


def test_gaussianization_flow_starts_exactly_at_the_validated_rbig_depth():
    x, val = _moons(1000), _moons(400, seed=3)
    model = tff.GaussianizationFlow(2, num_blocks=12).initialize_greedy(x, validation_data=val)
    rbig = tff.RBIG(2).fit_greedy(x, validation_data=val, max_blocks=12, patience=12, verbose=0)
    depth = int(np.argmin(rbig.greedy_history["val_nll"][:12])) + 1
    np.testing.assert_allclose(-np.mean(np.asarray(model.log_prob(val))), rbig.greedy_history["val_nll"][depth - 1],
                               rtol=1e-4)


def test_gaussianization_flow_starts_exactly_at_rbig():
    x, val = _moons(600), _moons(200, seed=4)
    options = dict(rotation="max_sliced_wasserstein", num_knots=16)
    rbig = tff.RBIG(2, **options).fit_greedy(x, validation_data=val, max_blocks=8, patience=3, verbose=0)
    model = tff.GaussianizationFlow(2, **options).initialize_greedy(x, validation_data=val, max_blocks=8, patience=3)
    assert model.num_blocks == rbig.num_blocks and model.trainable_weights
    probe = np.concatenate([val, [[40.0, -50.0]]]).astype("float32")
    np.testing.assert_allclose(np.asarray(model.log_prob(probe)), np.asarray(rbig.log_prob(probe)),
                               rtol=1e-4, atol=2e-4)
    householder = model.transform.layers[1]
    assert np.min(np.sum(np.square(np.asarray(householder.vectors)), axis=1)) > 1.9  # well-conditioned


def test_gaussianization_fine_tuning_never_ends_worse_on_validation():
    x, val = _moons(600), _moons(200, seed=5)
    model = tff.GaussianizationFlow(2, num_knots=8)
    model.initialize_greedy(x, validation_data=val, max_blocks=3, patience=1)
    start = -np.mean(np.asarray(model.log_prob(val)))
    # A step far too large: every epoch ends worse than the start, which is kept.
    model.compile(optimizer=keras.optimizers.Adam(0.3), run_eagerly=True)  # 4 steps: no tracing
    history = model.fit(x, validation_data=val, batch_size=300, epochs=2, verbose=0)
    assert min(history.history["val_loss"]) > start + 0.01  # every epoch was worse
    assert -np.mean(np.asarray(model.log_prob(val))) <= start + 1e-4


@pytest.mark.parametrize("built_first", [False, True])
def test_gaussianization_flow_with_fixed_depth_fits_on_arrays(built_first):
    # fit() runs the greedy start, which replaces the chain; a model that was already
    # built (e.g. by an early log_prob) must accept that too.
    x, val = _moons(400), _moons(200, seed=6)
    model = tff.GaussianizationFlow(2, num_blocks=2, num_knots=16)
    if built_first:
        model.log_prob(val[:5])
    model.fit(x, validation_data=val, batch_size=200, epochs=1, verbose=0)
    assert model.num_blocks == 2 and len(model.transform.layers) == 4
    assert np.all(np.isfinite(np.asarray(model.log_prob(val))))


def test_first_block_takes_its_own_shrinkage_and_later_blocks_small_steps(tmp_path):
    x = _moons(800)
    model = tff.RBIG(2, shrinkage=0.8, first_shrinkage=0.1).fit_greedy(x, max_blocks=3, patience=3, tol=-1.0,
                                                                      verbose=0)
    marginals = [layer for layer in model.transform.layers if isinstance(layer, tff.MarginalGaussianization)]
    assert [m.shrinkage for m in marginals] == [0.1, 0.8, 0.8]
    # a first block with little shrinkage Gaussianizes the raw marginals much further than a
    # small step does
    small_step = tff.RBIG(2, first_shrinkage=0.8).fit_greedy(x, max_blocks=1, patience=1, tol=-1.0, verbose=0)
    assert model.greedy_history["train_nll"][0] < small_step.greedy_history["train_nll"][0] - 0.05
    path = str(tmp_path / "rbig.keras")
    model.save(path)
    loaded = tff.load_model(path)
    assert loaded.get_config()["first_shrinkage"] == 0.1
    np.testing.assert_allclose(np.asarray(loaded.log_prob(x[:50])), np.asarray(model.log_prob(x[:50])), rtol=1e-5)
    flow = tff.GaussianizationFlow(2, first_shrinkage=0.1).initialize_greedy(x, max_blocks=2, patience=2, tol=-1.0)
    assert [m.shrinkage for m in flow.transform.layers[::2]] == [0.1, 0.8]


@pytest.mark.parametrize("validated", [False, True])
def test_default_first_block_is_chosen_by_the_nll_after_the_lookahead(validated):
    x, val = _moons(800), _moons(400, seed=1)
    greedy = dict(max_blocks=12, patience=12, tol=-1.0, verbose=0)
    auto = tff.RBIG(2).fit_greedy(x, validation_data=val if validated else None, **greedy)
    scores = auto.greedy_history["lookahead_nll"]
    assert len(scores) == 2  # the large first step (0.4) and the small one (= shrinkage, 0.8)
    chosen = [0.4, 0.8][int(np.argmin(scores))]
    assert auto.transform.layers[0].shrinkage == chosen
    # the chosen run goes on exactly as a fit with that first shrinkage fixed
    fixed = tff.RBIG(2, first_shrinkage=chosen).fit_greedy(x, validation_data=val if validated else None, **greedy)
    assert fixed.greedy_history["lookahead_nll"] == []
    np.testing.assert_allclose(auto.greedy_history["train_nll"], fixed.greedy_history["train_nll"], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(auto.log_prob(val)), np.asarray(fixed.log_prob(val)), rtol=1e-5)
    key = "val_nll" if validated else "train_nll"
    other = tff.RBIG(2, first_shrinkage=[0.4, 0.8][1 - int(np.argmin(scores))]).fit_greedy(
        x, validation_data=val if validated else None, **greedy)
    assert min(scores) == pytest.approx(fixed.greedy_history[key][9], rel=1e-6)
    assert max(scores) == pytest.approx(other.greedy_history[key][9], rel=1e-6)
