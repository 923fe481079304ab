"""MADE masks, MAF/IAF structure, presets (conditional too), sampling/density agreement."""

import keras
import numpy as np
import pytest

import tfflows as tff
from tests.helpers import randomize_weights
from tfflows.nets.made import input_order, made_masks


def _jacobian(fn, x):
    """Per-row Jacobians d fn(x)[b] / d x[b], shape (batch, outputs, inputs), on either backend."""
    x = np.asarray(x)
    batch = x.shape[0]
    if keras.backend.backend() == "jax":
        import jax

        full = np.asarray(jax.jacfwd(lambda v: keras.ops.reshape(fn(v), (batch, -1)))(x))  # (B, O, B, I)
        return full[np.arange(batch), :, np.arange(batch), :]
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.reshape(fn(xt), (batch, -1))
    return tape.batch_jacobian(y, xt).numpy()


def _built(layer, features=5, context=0, seed=0):
    rng = np.random.default_rng(seed)
    layer.build((None, features))
    randomize_weights(layer, rng, scale=0.5)
    x = rng.normal(size=(3, features))
    c = rng.normal(size=(3, context)) if context else None
    return x, c


# ----- MADE -------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["given", "reversed", "random", [3, 1, 4, 0, 2]])
@pytest.mark.parametrize("hidden", [(), (7,), (16, 9)])
def test_made_is_autoregressive(order, hidden):
    made = tff.MADE(params_per_feature=3, hidden_units=hidden, order=order, seed=4,
                    activation="tanh", dtype="float64")
    x, _ = _built(made)
    out = made(x)
    assert tuple(out.shape) == (3, 3, 5)  # (batch, param, feature): parameter-major
    jac = _jacobian(lambda v: made(v), x).reshape(3, 3, 5, 5)  # (batch, param, feature, input)
    position = np.empty(5, int)
    position[made.permutation] = np.arange(5)
    allowed = position[None, :] < position[:, None]  # output i may see input j iff j precedes i
    for i in range(5):
        for j in range(5):
            if not allowed[i, j]:
                assert np.all(jac[:, :, i, j] == 0), (i, j)
    # With hidden layers wide enough, every allowed connection is actually used.
    if hidden and min(hidden) >= 4:
        used = np.abs(jac).sum(axis=(0, 1)) > 0
        np.testing.assert_array_equal(used, allowed)


def test_made_context_reaches_every_output_including_the_first():
    made = tff.MADE(params_per_feature=2, hidden_units=(8,), context_features=2, dtype="float64")
    x, c = _built(made, context=2)
    # d out[b, i, :] / d context[b]: the context enters every feature's parameters.
    grad = _jacobian(lambda ctx: made(keras.ops.convert_to_tensor(x), ctx), c).reshape(3, 2, 5, 2)
    for i in range(5):
        assert np.abs(grad[:, :, i]).sum() > 0, f"feature {i} ignores the context"
    with pytest.raises(ValueError, match="no context"):
        made(x)


def test_made_masks_and_order_helpers():
    assert list(input_order("reversed", 4)) == [3, 2, 1, 0]
    assert sorted(input_order("random", 6, seed=1)) == list(range(6))
    with pytest.raises(ValueError, match="permutation"):
        input_order([0, 0, 1], 3)
    with pytest.raises(ValueError, match="Unknown order"):
        input_order("sideways", 3)
    masks = made_masks(np.array([1, 2, 3]), (4,), 2)
    assert [m.shape for m in masks] == [(3, 4), (4, 6)]
    assert masks[-1][:, [0, 3]].sum() == 0  # the first feature's 2 parameters depend on nothing


def test_made_config_round_trip_keeps_random_order():
    made = tff.MADE(hidden_units=(8,), order="random")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(made))
    made.build((None, 6))
    clone.build((None, 6))
    np.testing.assert_array_equal(made.permutation, clone.permutation)


@pytest.mark.parametrize("make", [lambda: tff.MADE(params_per_feature=3, hidden_units=(64, 48)),
                                  lambda: tff.MLP(out_features=10, hidden_units=(64, 48))],
                         ids=["MADE", "MLP"])
def test_conditioner_starts_uniform_in_one_over_sqrt_fan_in_with_a_zero_last_layer(make):
    def initial():
        keras.utils.set_random_seed(3)
        layer = make()
        layer.build((None, 20))
        kernels, biases = layer.kernels_and_biases()
        return [keras.ops.convert_to_numpy(a) for a in kernels + biases]

    values = initial()
    kernels, biases = values[:3], values[3:]
    for kernel, bias in zip(kernels[:-1], biases[:-1]):
        limit = 1.0 / np.sqrt(kernel.shape[0])
        for w in (kernel[kernel != 0], bias):  # MADE's masked entries are exact zeros
            assert np.all(np.abs(w) <= limit) and np.std(w) > 0.4 * limit  # uniform: std = limit / sqrt(3)
    assert not np.any(kernels[-1]) and not np.any(biases[-1])  # identity flow at start
    for a, b in zip(values, initial()):  # keras.utils.set_random_seed makes it repeatable
        np.testing.assert_array_equal(a, b)


# ----- MAF / IAF structure ----------------------------------------------------------------
@pytest.mark.parametrize("cls, order", [(tff.MaskedAutoregressive, "given"), (tff.MaskedAutoregressive, "reversed"),
                                        (tff.MaskedAutoregressive, "random"), (tff.InverseAutoregressive, "given"),
                                        (tff.InverseAutoregressive, "random"), (tff.SplineAutoregressive, "random")])
def test_jacobian_is_triangular_in_the_layer_order(cls, order):
    layer = cls(hidden_units=(16, 16), order=order, seed=3, dtype="float64")
    x, _ = _built(layer, features=5)
    directions = [(layer.forward, x)]
    if cls is not tff.SplineAutoregressive:  # (its sequential direction is slow to differentiate)
        directions.append((layer.inverse, keras.ops.convert_to_numpy(layer.forward(x))))
    for fn, point in directions:
        jac = _jacobian(fn, point)
        perm = layer.permutation
        ordered = jac[:, perm][:, :, perm]
        assert np.all(np.triu(ordered, k=1) == 0), "entries above the diagonal must vanish"
        assert np.abs(np.tril(ordered, k=-1)).sum() > 0, "the map should not be elementwise"
        assert np.all(np.abs(np.diagonal(ordered, axis1=1, axis2=2)) > 0)


def test_sequential_direction_runs_compiled():
    layer = tff.MaskedAutoregressive(hidden_units=(16,), order="random", seed=1, context_features=2)
    x, c = _built(layer, features=6, context=2)
    x, c = x.astype("float32"), c.astype("float32")
    y = layer.forward(x, c)
    if keras.backend.backend() == "jax":
        import jax

        compiled = jax.jit(lambda v, ctx: layer.inverse_and_log_det(v, ctx))
    else:
        import tensorflow as tf

        compiled = tf.function(lambda v, ctx: layer.inverse_and_log_det(v, ctx), jit_compile=True)
    x_back, log_det = compiled(y, c)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(x_back), x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(log_det),
                               -keras.ops.convert_to_numpy(layer.forward_log_det_jacobian(x, c)), rtol=1e-4, atol=1e-5)


# ----- presets ----------------------------------------------------------------------------
PRESETS = {
    "MAF": lambda **kw: tff.MAF(3, num_layers=3, hidden_units=(16, 16), **kw),
    "IAF": lambda **kw: tff.IAF(3, num_layers=2, hidden_units=(16,), permutation="random", **kw),
    "NSF-autoregressive": lambda **kw: tff.NSF(3, num_layers=2, hidden_units=(16,), bins=4, **kw),
    "NSF-coupling": lambda **kw: tff.NSF(3, num_layers=3, hidden_units=(16,), bins=4, kind="coupling", **kw),
}


def _randomized(flow, seed=0):
    flow._ensure_built()
    randomize_weights(flow, np.random.default_rng(seed), scale=0.3)
    return flow


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_samples_report_the_log_density_that_log_prob_gives(name):
    flow = _randomized(PRESETS[name]())
    x, reported = flow.sample_and_log_prob(64, seed=1)
    reported = keras.ops.convert_to_numpy(reported)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(flow.log_prob(x)), reported, rtol=1e-4, atol=1e-4)
    samples = keras.ops.convert_to_numpy(flow.sample(50, seed=3))
    assert samples.shape == (50, 3) and np.all(np.isfinite(samples))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(flow.decode(flow.encode(samples))), samples,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_conditional_preset_end_to_end(name, tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 256)
    context = np.eye(2, dtype="float32")[labels]
    x = (rng.normal(size=(256, 3)) + 3.0 * labels[:, None]).astype("float32")
    flow = PRESETS[name](context_features=2)
    flow.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    history = flow.fit(x={"x": x, "context": context}, batch_size=64, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]
    lp = keras.ops.convert_to_numpy(flow.log_prob(x[:8], context=context[:8]))
    assert lp.shape == (8,) and np.all(np.isfinite(lp))
    # The context matters: the density of the same points changes with the label.
    other = keras.ops.convert_to_numpy(flow.log_prob(x[:8], context=context[:8, ::-1]))
    assert np.abs(lp - other).max() > 1e-3
    s = keras.ops.convert_to_numpy(flow.sample(20, seed=1, context=np.array([[0.0, 1.0]], "float32")))
    assert s.shape == (20, 3) and np.all(np.isfinite(s))
    path = tmp_path / f"{name}.keras"
    flow.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(flow)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.log_prob(x[:8], context=context[:8])), lp,
                               rtol=1e-5, atol=1e-5)


def test_preset_arguments_are_checked():
    with pytest.raises(ValueError, match="kind"):
        tff.NSF(3, kind="sideways")
    with pytest.raises(ValueError, match="permutation"):
        tff.MAF(3, permutation="shuffle")
    with pytest.raises(ValueError, match="features"):
        tff.MAF(0)


def test_trained_2d_density_integrates_to_one():
    x = tff.datasets.toy_2d("moons", n=1000, seed=0)
    flow = tff.MAF(2, num_layers=3, hidden_units=(32, 32))
    flow.compile(optimizer=keras.optimizers.Adam(5e-3), jit_compile=False)
    flow.fit(x, batch_size=100, epochs=4, verbose=0)
    grid = np.linspace(-7, 7, 281)
    xx, yy = np.meshgrid(grid, grid)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
    density = np.exp(keras.ops.convert_to_numpy(flow.log_prob(points)).astype("float64"))
    mass = density.sum() * (grid[1] - grid[0]) ** 2
    assert abs(mass - 1.0) < 0.02, mass
