"""MarginalGaussianization (spline and logistic), the log-space normal CDF helpers,
Rotation and Householder: exactness, tails far outside the data, consistency of the
log-det with the forward map."""

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special

import tfflows as tff
from tests.helpers import jacobian_log_det
from tfflows.gaussianization.normal_cdf import log_ndtr, ndtri_from_logs
from tfflows.gaussianization.rotations import (householder_vectors, max_sliced_wasserstein_rotation, random_orthogonal,
                               signed_householder_vectors)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _data(n=1500, seed=0):
    """Three awkward marginals: heavy-tailed, bimodal, skewed."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.standard_t(3, n),
                     np.where(rng.random(n) < 0.5, rng.normal(-3, 0.5, n), rng.normal(3, 1, n)),
                     rng.exponential(1.0, n)], axis=1)


def test_log_ndtr_and_its_inverse_match_scipy_everywhere():
    y = np.array([-1e12, -1e4, -300, -40, -20.5, -20, -19.5, -8, -1, 0, 1, 8, 19.5, 20.5, 40])
    expected = special.log_ndtr(y)
    actual = _np(log_ndtr(ops.convert_to_tensor(y)))
    np.testing.assert_allclose(actual[:-3], expected[:-3], rtol=1e-12)
    np.testing.assert_allclose(actual[-3:], expected[-3:], atol=1e-300, rtol=1e-6)
    back = _np(ndtri_from_logs(ops.convert_to_tensor(special.log_ndtr(y)), ops.convert_to_tensor(special.log_ndtr(-y))))
    np.testing.assert_allclose(back, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["spline", "logistic"])
def test_marginal_output_is_standard_normal(method):
    x = _data().astype("float32")
    layer = tff.MarginalGaussianization(method=method, bandwidth=0.3).fit_from_data(x)
    y = _np(layer.forward(x))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(y.std(axis=0), 1.0, atol=0.2)
    # Gaussianized marginals: skewness and excess kurtosis near 0
    z = (y - y.mean(0)) / y.std(0)
    assert np.all(np.abs((z**3).mean(0)) < 0.2) and np.all(np.abs((z**4).mean(0) - 3) < 0.5)


@pytest.mark.parametrize("method", ["spline", "logistic"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_far_outside_the_data_is_finite_and_invertible(method, dtype):
    x = _data(seed=1)
    layer = tff.MarginalGaussianization(method=method, dtype=dtype).fit_from_data(x.astype(dtype))
    std = x.std(axis=0)
    far = np.stack([x.min(0) - 1e3 * std, x.max(0) + 1e3 * std, x.min(0) - 1e6 * std,
                    x.max(0) + 1e6 * std, x.mean(0)]).astype(dtype)
    y, log_det = layer.forward_and_log_det(far)
    y, log_det = _np(y), _np(log_det)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(log_det))
    assert np.all(y[0] < -3) and np.all(y[1] > 3)
    x_back, inverse_log_det = layer.inverse_and_log_det(y)
    np.testing.assert_allclose(_np(x_back), far, rtol=1e-5 if dtype == "float32" else 1e-9)
    np.testing.assert_allclose(_np(inverse_log_det), -log_det, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("method", ["spline", "logistic"])
def test_log_det_is_the_derivative_of_the_forward_map_inside_and_in_the_tails(method):
    x = _data(seed=2)
    layer = tff.MarginalGaussianization(method=method, num_knots=12, num_components=6,
                                        dtype="float64").fit_from_data(x)
    points = np.concatenate([x[:20], x.min(0)[None] - [[0.5, 1.0, 2.0]], x.max(0)[None] + [[5.0, 20.0, 50.0]]])
    expected = jacobian_log_det(layer.forward, points)
    np.testing.assert_allclose(_np(layer.forward_log_det_jacobian(points)), expected, rtol=1e-7, atol=1e-9)


def test_spline_density_integrates_to_one():
    x = _data(seed=3)[:, 1:2]  # the bimodal column
    layer = tff.MarginalGaussianization(num_knots=16, dtype="float64").fit_from_data(x)
    grid = np.linspace(-40, 40, 400001)[:, None]
    y, log_det = layer.forward_and_log_det(grid)
    density = np.exp(-0.5 * _np(y)[:, 0] ** 2 - 0.5 * np.log(2 * np.pi) + _np(log_det))
    assert abs(np.trapezoid(density, grid[:, 0]) - 1.0) < 1e-4


def test_logistic_inverse_for_any_magnitude():
    layer = tff.MarginalGaussianization(method="logistic", num_components=5, dtype="float32")
    layer.fit_from_data(_data(seed=4).astype("float32"))
    x = np.array([[-1e15, 1e-7, 3e10], [1e6, -1e6, -1e-3], [12.0, -7.0, 0.5]], dtype="float32")
    back = _np(layer.inverse(layer.forward(x)))
    # float32 rounding of y limits the absolute accuracy near 0 (the solver runs in float64)
    np.testing.assert_allclose(back, x, rtol=1e-6, atol=1e-6)


def test_logistic_inverse_compiles_to_one_loop():
    """The 60 bisection steps are one `keras.ops.fori_loop`, not 60 unrolled copies."""
    layer = tff.MarginalGaussianization(method="logistic", num_components=4, dtype="float64")
    layer.fit_from_data(_data(seed=6))
    y = np.random.default_rng(6).normal(size=(9, 3))
    if keras.backend.backend() == "jax":
        import jax

        text = str(jax.make_jaxpr(layer.inverse)(y))
        # lax.fori_loop with static bounds lowers to one scan (a while loop otherwise)
        assert text.count("scan[") + text.count("while[") == 1
        assert len(text.splitlines()) < 1500  # not unrolled over the 60 steps
        compiled = jax.jit(layer.inverse)
    else:
        import tensorflow as tf

        compiled = tf.function(layer.inverse)
        graph = compiled.get_concrete_function(tf.TensorSpec((None, 3), tf.float64)).graph
        op_types = [op.type for op in graph.get_operations()]
        assert sum(t in ("While", "StatelessWhile") for t in op_types) == 1
        assert len(op_types) < 1000  # not unrolled over the 60 steps
    x = _np(compiled(y))
    np.testing.assert_allclose(x, _np(layer.inverse(y)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(layer.forward(x)), y, rtol=1e-9, atol=1e-9)


def test_shrinkage_moves_the_map_toward_standardization():
    x = _data(seed=5)
    plain = tff.MarginalGaussianization(dtype="float64").fit_from_data(x)
    shrunk = tff.MarginalGaussianization(shrinkage=0.9, dtype="float64").fit_from_data(x)
    affine = (x - x.mean(0)) / x.std(0)
    assert np.abs(_np(shrunk.forward(x)) - affine).mean() < 0.3 * np.abs(_np(plain.forward(x)) - affine).mean()
    with pytest.raises(ValueError, match="shrinkage"):
        tff.MarginalGaussianization(shrinkage=1.0)


def _tail_slopes(layer, x):
    """Slopes of the fitted map beyond the largest and below the smallest training value of
    each column, by finite differences between 1 and 3 stds out."""
    lo, hi, std = x.min(0), x.max(0), x.std(0)
    slopes = []
    for edge, sign in ((hi, 1.0), (lo, -1.0)):
        a, b = edge + sign * 1.0 * std, edge + sign * 3.0 * std
        ya, yb = _np(layer.forward(a[None])), _np(layer.forward(b[None]))
        slopes.append(((yb - ya) / (b - a))[0] * std)  # in units of the standardization's slope 1 / std
    return np.stack(slopes)


def test_max_tail_slope_caps_the_linear_tails_at_that_multiple_of_the_standardization():
    from tfflows.gaussianization.marginal_fit import CAP_RELAX_WIDTH, smoothed_cdf_knots

    rng = np.random.default_rng(11)
    # light-tailed columns with sparse edges: the kernel-smoothed map is steep there
    z = rng.normal(size=300)
    x = np.stack([z, np.sign(z) * np.sqrt(np.abs(z)), rng.beta(2, 2, 300)], axis=1)
    xk = smoothed_cdf_knots(x, 16, 1.5, 0.4)[0]
    outer_bins = np.minimum(xk[:, 1] - xk[:, 0], xk[:, -1] - xk[:, -2]) / x.std(0)
    assert (outer_bins > 5 * CAP_RELAX_WIDTH).all()  # wide enough for the cap to hold in full
    plain = tff.MarginalGaussianization(num_knots=16, bandwidth=1.5, shrinkage=0.4, dtype="float64").fit_from_data(x)
    capped = tff.MarginalGaussianization(num_knots=16, bandwidth=1.5, shrinkage=0.4, max_tail_slope=0.75,
                                         dtype="float64").fit_from_data(x)
    assert (_tail_slopes(plain, x) > 1.0).all()  # the uncapped tails stretch: what the cap is for
    np.testing.assert_array_less(_tail_slopes(capped, x), 0.75 + 1e-9)
    far = np.array([[10.0, 10.0, 10.0]])  # the log-det in the tail is log(slope), at most log(0.75 / std)
    assert (_np(capped.forward_and_log_det(far)[1]) <= np.sum(np.log(0.75 / x.std(0))) + 1e-9).all()
    inside = x[(np.abs(x - x.mean(0)) < x.std(0)).all(axis=1)]  # the middle of the map is unchanged
    np.testing.assert_allclose(_np(capped.forward(inside)), _np(plain.forward(inside)), atol=1e-12)
    assert tff.MarginalGaussianization.from_config(capped.get_config()).max_tail_slope == 0.75
    with pytest.raises(ValueError, match="max_tail_slope"):
        tff.MarginalGaussianization(max_tail_slope=0.0)


def test_the_tail_cap_relaxes_in_an_outer_bin_a_few_ulps_wide():
    from tfflows.gaussianization.marginal_fit import CAP_RELAX_WIDTH, smoothed_cdf_knots

    rng = np.random.default_rng(13)
    x = np.sort(rng.uniform(-1, 1, 30))
    x[1] = x[0] + 1e-7  # the two smallest rows nearly equal: the lower outer bin is a few ulps wide
    x[-1] = x[-2] + 0.1  # the largest row isolated: a wide upper outer bin
    x = x[:, None]
    std = x.std()
    xk, _, plain = smoothed_cdf_knots(x, 16, 1.5, 0.4)
    _, _, capped = smoothed_cdf_knots(x, 16, 1.5, 0.4, max_tail_slope=0.75)
    assert plain[0, 0] > 0.75 / std and plain[0, -1] > 0.75 / std  # both outer slopes exceed the cap
    assert xk[0, 1] - xk[0, 0] < 1e-3 * std and xk[0, -1] - xk[0, -2] > 5 * CAP_RELAX_WIDTH * std
    width = xk[0, 1] - xk[0, 0]
    # the narrow bin: the slope changes by at most exp(width / (CAP_RELAX_WIDTH std)), no kink
    assert np.log(plain[0, 0] / capped[0, 0]) <= width / (CAP_RELAX_WIDTH * std) + 1e-12
    np.testing.assert_allclose(capped[0, -1], 0.75 / std, rtol=1e-3)  # the wide bin: capped in full
    layer = tff.MarginalGaussianization(num_knots=16, bandwidth=1.5, shrinkage=0.4, max_tail_slope=0.75,
                                        dtype="float32").fit_from_data(x)
    near = np.array([[xk[0, 0] - 1e-7], [xk[0, 0] + 1e-7]], dtype="float32")  # float32 neighbours of the knot
    log_det = _np(layer.forward_and_log_det(near)[1])
    assert abs(log_det[1] - log_det[0]) < 1e-4


def test_rbig_caps_its_tails_by_default_and_keeps_the_setting_through_a_save(tmp_path):
    from tfflows.gaussianization.rbig import MAX_TAIL_SLOPE

    x = _data(seed=12).astype("float32")
    flow = tff.RBIG(3, seed=0)
    flow.fit_greedy(x[:1000], validation_data=x[1000:], verbose=0)
    marginals = [layer for layer in flow.transform.layers if isinstance(layer, tff.MarginalGaussianization)]
    assert marginals and all(layer.max_tail_slope == MAX_TAIL_SLOPE for layer in marginals)
    uncapped = tff.RBIG(3, seed=0, max_tail_slope=None)
    uncapped.fit_greedy(x[:1000], validation_data=x[1000:], verbose=0)
    assert all(layer.max_tail_slope is None for layer in uncapped.transform.layers
               if isinstance(layer, tff.MarginalGaussianization))
    path = str(tmp_path / "rbig.keras")
    flow.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(_np(loaded.log_prob(x[:50])), _np(flow.log_prob(x[:50])), rtol=1e-5, atol=1e-5)
    assert all(layer.max_tail_slope == MAX_TAIL_SLOPE for layer in loaded.transform.layers
               if isinstance(layer, tff.MarginalGaussianization))


def test_initialize_from_data_fits_once():
    x = _data(seed=6).astype("float32")
    layer = tff.MarginalGaussianization()
    layer.initialize_from_data(x)
    before = [w.copy() for w in layer.get_weights()]
    layer.initialize_from_data(x[:100] * 5)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_are_keras_weights_with_static_shapes():
    layer = tff.MarginalGaussianization(num_knots=9)
    layer.build((None, 4))
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in layer.weights}
    assert shapes["x_gaps"] == (4, 8) and shapes["log_slopes"] == (4, 9)
    assert not layer.trainable_weights  # fitted without gradients
    trainable = tff.MarginalGaussianization(method="logistic", num_components=3)
    trainable.build((None, 4))
    assert len(trainable.trainable_weights) == 3


@pytest.mark.parametrize("d", [1, 2, 7, 40])
def test_householder_vectors_represent_any_rotation(d):
    q = random_orthogonal(d, seed=d)
    layer = tff.Householder(dtype="float64")
    layer.build((None, d))
    layer.set_matrix(q)
    np.testing.assert_allclose(_np(layer.matrix()), q, atol=1e-12)
    reflection = np.eye(d)
    reflection[0, 0] = -1.0  # determinant -1 too
    vectors = householder_vectors(reflection)
    layer.vectors.assign(vectors)
    np.testing.assert_allclose(_np(layer.matrix()), reflection, atol=1e-12)


def test_householder_is_orthogonal_for_any_weights():
    layer = tff.Householder(num_reflections=3, seed=0, dtype="float64")
    layer.build((None, 6))
    layer.vectors.assign(np.random.default_rng(0).normal(size=(3, 6)) * 1e-3)
    m = _np(layer.matrix())
    np.testing.assert_allclose(m @ m.T, np.eye(6), atol=1e-12)
    assert len(layer.trainable_weights) == 1


def test_rotation_kinds():
    rng = np.random.default_rng(0)
    sources = rng.uniform(-1, 1, size=(2000, 3))
    mixing = random_orthogonal(3, seed=1)
    x = (sources @ mixing).astype("float64")
    pca = tff.Rotation(kind="pca", dtype="float64").fit_from_data(x * [1.0, 2.0, 3.0])
    y = _np(pca.forward(x * [1.0, 2.0, 3.0]))
    cov = np.cov(y.T)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0.0, atol=1e-8)
    assert np.all(np.diff(np.diag(cov)) < 0)  # decreasing variance
    ica = tff.Rotation(kind="ica", seed=0, dtype="float64").fit_from_data(x)
    recovered = _np(ica.forward(x))
    # each recovered component matches one source up to sign
    corr = np.abs(np.corrcoef(recovered.T, sources.T)[:3, 3:])
    assert np.all(corr.max(axis=1) > 0.98)
    random = tff.Rotation(kind="random", seed=3, dtype="float64")
    random.build((None, 3))
    again = tff.Rotation(kind="random", seed=3, dtype="float64")
    again.build((None, 3))
    np.testing.assert_allclose(_np(random.matrix()), _np(again.matrix()))
    for layer in (pca, ica, random):
        assert not layer.trainable_weights
        m = _np(layer.matrix())
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-10)
        np.testing.assert_allclose(_np(layer.inverse(layer.forward(x))), x, atol=1e-10)


@pytest.mark.parametrize("d", [1, 2, 7, 40])
def test_signed_householder_vectors_are_well_conditioned(d):
    q = random_orthogonal(d, seed=d)
    for matrix in (q, np.eye(d), -np.eye(d)):
        vectors, signs = signed_householder_vectors(matrix)
        assert np.all(np.sum(vectors**2, axis=1) >= 2.0 - 1e-9)  # never near v = 0
        layer = tff.Householder(dtype="float64")
        layer.build((None, d))
        layer.vectors.assign(vectors)
        np.testing.assert_allclose(_np(layer.matrix()) * signs, matrix, atol=1e-12)


@pytest.mark.parametrize("method", ["spline", "logistic"])
def test_mirror_gives_minus_the_map_at_minus_x(method):
    x = _data(seed=4)
    layer = tff.MarginalGaussianization(method=method, num_knots=10, num_components=4, dtype="float64")
    layer.fit_from_data(x)
    probe = np.concatenate([x[:50], [[-30.0, 0.0, 40.0]]])
    y, log_det = (_np(v) for v in layer.forward_and_log_det(probe))
    mask = np.array([True, False, True])
    layer.mirror(mask)
    sign = np.where(mask, -1.0, 1.0)
    y_m, log_det_m = (_np(v) for v in layer.forward_and_log_det(probe * sign))
    np.testing.assert_allclose(y_m, y * sign, atol=1e-9)
    np.testing.assert_allclose(log_det_m, log_det, atol=1e-9)


def test_max_sliced_wasserstein_finds_the_non_gaussian_direction():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 6))
    z[:, 0] = rng.choice([-1.5, 1.5], 2000) + 0.3 * rng.normal(size=2000)
    z[:, 0] /= z[:, 0].std()  # bimodal, unit variance: invisible to PCA
    mixing = random_orthogonal(6, seed=3)
    x = z @ mixing.T
    for seed in range(3):
        m = max_sliced_wasserstein_rotation(x, num_directions=1, seed=seed)
        np.testing.assert_allclose(m.T @ m, np.eye(6), atol=1e-10)
        assert abs(m[:, 0] @ mixing[:, 0]) > 0.99
    layer = tff.Rotation(kind="max_sliced_wasserstein", num_directions=2, seed=1, dtype="float64").fit_from_data(x)
    assert not layer.trainable_weights and layer.get_config()["num_directions"] == 2
    assert np.max(np.abs(_np(layer.matrix())[:, :2].T @ mixing[:, 0])) > 0.99
    np.testing.assert_allclose(_np(layer.inverse(layer.forward(x))), x, atol=1e-10)


def test_layers_survive_a_keras_save(tmp_path):
    x = _data(seed=7).astype("float32")
    layers = [tff.MarginalGaussianization(num_knots=10, name="m0"), tff.Rotation(kind="pca", name="r0"),
              tff.MarginalGaussianization(method="logistic", num_components=4, name="m1"),
              tff.Householder(seed=2, name="h1")]
    flow = tff.Flow(tff.Chain(layers), event_shape=(3,))
    flow.build((None, 3))
    flow.transform.initialize_from_data(x)
    path = str(tmp_path / "marginal.keras")
    flow.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(_np(loaded.log_prob(x[:50])), _np(flow.log_prob(x[:50])), rtol=1e-5, atol=1e-5)


def test_large_eager_batches_run_the_compiled_spline_with_the_same_values(monkeypatch):
    from tfflows.gaussianization import marginal

    calls = []
    for name in ("_compiled_spline", "_compiled_inverse_spline"):
        compiled = getattr(marginal, name)
        monkeypatch.setattr(marginal, name, lambda *a, f=compiled, n=name: calls.append(n) or f(*a))
    rng = np.random.default_rng(4)
    x = (rng.standard_t(3, size=(marginal.COMPILE_MIN_VALUES // 8 + 5, 8)) * 2.0).astype("float32")
    layer = tff.MarginalGaussianization(num_knots=12).fit_from_data(x)
    y, log_det = (_np(v) for v in layer.forward_and_log_det(x))  # compiled: one large eager batch
    small = [[_np(v) for v in layer.forward_and_log_det(part)] for part in np.array_split(x, 4)]
    np.testing.assert_allclose(y, np.concatenate([s[0] for s in small]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_det, np.concatenate([s[1] for s in small]), rtol=1e-5, atol=1e-5)
    back, inverse_log_det = (_np(v) for v in layer.inverse_and_log_det(y))
    np.testing.assert_allclose(back, x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(inverse_log_det, -log_det, rtol=1e-4, atol=1e-4)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(log_det))
    assert calls == ["_compiled_spline", "_compiled_inverse_spline"]  # the small parts ran uncompiled


def test_binned_kernel_sums_match_the_exact_sums_and_far_outliers_use_the_histogram():
    from tfflows.gaussianization.marginal_fit import SampleSummary
    from tfflows.gaussianization.sketches import HistogramSketch

    x = _data(n=8000, seed=3)
    x = np.c_[x, np.r_[np.random.default_rng(1).normal(size=7999), 1e5]]  # column 3: range 1e5 h
    summary = SampleSummary(x)
    assert summary.n > summary.BINNED_ABOVE
    h = 0.2 * np.minimum(summary.std, summary.quartile_spread())
    points = summary.quantile(np.linspace(0.001, 0.999, 16))
    cdf, pdf = summary.kernel_cdf_pdf(points, h)
    exact_cdf, exact_pdf = summary._exact_kernel_sums(points, h)
    assert np.abs(cdf - exact_cdf)[:3].max() < 1e-4 and np.abs(np.log(pdf / exact_pdf))[:3].max() < 2e-3
    reach = float(np.max(np.abs(x[:, 3] - summary.mean[3]) / summary.std[3])) * 1.001 + 1e-9
    sketch = HistogramSketch(summary.mean[3:], summary.std[3:], bins=4096, value_range=reach)
    sketch.add(x[:, 3:])
    histogram_cdf, histogram_pdf = sketch.kernel_cdf_pdf(points[3:], h[3:])
    np.testing.assert_allclose(cdf[3:], histogram_cdf, rtol=1e-12)
    np.testing.assert_allclose(pdf[3:], histogram_pdf, rtol=1e-12)
