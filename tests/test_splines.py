"""The rational-quadratic spline transformer and its layers."""

import keras
import numpy as np
import pytest

import tfflows as tff
from tfflows.bijectors.rq_spline import rational_quadratic_spline, spline_params_per_feature


def _spline(x, params, bound=3.0, inverse=False):
    y, log_deriv = rational_quadratic_spline(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(params),
                                             bound, inverse=inverse)
    return keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(log_deriv)


def _random_params(shape, bins, scale=2.0, seed=0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape + (spline_params_per_feature(bins),))


def test_zero_parameters_give_the_identity():
    x = np.linspace(-5, 5, 101)
    y, log_deriv = _spline(x, np.zeros((101, spline_params_per_feature(8))))
    np.testing.assert_allclose(y, x, atol=1e-12)
    np.testing.assert_allclose(log_deriv, 0.0, atol=1e-12)


@pytest.mark.parametrize("bins", [1, 3, 10])
def test_monotone_exact_inverse_and_derivative(bins):
    x = np.linspace(-4.0, 4.0, 2001)
    params = np.broadcast_to(_random_params((), bins, seed=bins), (2001, spline_params_per_feature(bins)))
    y, log_deriv = _spline(x, params)
    assert np.all(np.diff(y) > 0), "the spline must be strictly increasing"
    x_back, inv_log_deriv = _spline(y, params, inverse=True)
    np.testing.assert_allclose(x_back, x, atol=1e-9)
    np.testing.assert_allclose(inv_log_deriv, -log_deriv, atol=1e-8)
    # log-derivative agrees with central differences (the spline is C^1, knots included)
    h = 1e-6
    numeric = np.log((_spline(x + h, params)[0] - _spline(x - h, params)[0]) / (2 * h))
    np.testing.assert_allclose(log_deriv, numeric, atol=1e-4)
    # the knots map -B -> -B and B -> B, tails are the identity
    outside = np.abs(x) > 3.0
    np.testing.assert_allclose(y[outside], x[outside])
    np.testing.assert_allclose(log_deriv[outside], 0.0)


def test_continuous_at_the_boundary_with_unit_slope():
    params = np.broadcast_to(_random_params((), 6, seed=5), (4, spline_params_per_feature(6)))
    x = np.array([-3.0 - 1e-9, -3.0 + 1e-9, 3.0 - 1e-9, 3.0 + 1e-9])
    y, log_deriv = _spline(x, params)
    np.testing.assert_allclose(y, x, atol=1e-7)
    np.testing.assert_allclose(log_deriv, 0.0, atol=1e-6)


def _value_and_grads(fn, *args):
    """fn(*args) -> (outputs tuple, scalar); returns numpy outputs and d scalar / d args."""
    if keras.backend.backend() == "jax":
        import jax

        (_, outputs), grads = jax.value_and_grad(lambda *a: fn(*a)[::-1], argnums=tuple(range(len(args))),
                                                 has_aux=True)(*args)
    else:
        import tensorflow as tf

        args = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            outputs, total = fn(*args)
        grads = tape.gradient(total, args)
    return [keras.ops.convert_to_numpy(v) for v in outputs], [keras.ops.convert_to_numpy(g) for g in grads]


def test_extreme_parameters_stay_finite_with_finite_gradients():
    params = _random_params((50,), 8, scale=30.0, seed=1)
    x = np.linspace(-10, 10, 50)

    def run(x, params):
        y, log_deriv = rational_quadratic_spline(x, params, 3.0)
        back, _ = rational_quadratic_spline(y, params, 3.0, inverse=True)
        total = keras.ops.sum(y) + keras.ops.sum(log_deriv) + keras.ops.sum(back)
        return (y, log_deriv, back), total

    (y, log_deriv, back), grads = _value_and_grads(run, x, params)
    for value in [y, log_deriv, back] + grads:
        assert np.all(np.isfinite(value))
    np.testing.assert_allclose(back, x, atol=1e-6)
    # float32 with such parameters: still finite, gradients included (slopes down to ~1e-6
    # cost inverse accuracy, not finiteness)
    (y32, ld32, back32), grads32 = _value_and_grads(run, x.astype("float32"), params.astype("float32"))
    for value in [y32, ld32, back32] + grads32:
        assert value.dtype == np.float32 and np.all(np.isfinite(value))


def test_spline_coupling_is_the_identity_at_initialization_and_keeps_identity_half():
    layer = tff.SplineCoupling(mask="alternate", bins=4)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    y, log_det = layer.forward_and_log_det(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), x, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(log_det), 0.0, atol=1e-6)
    assert layer.conditioner.out_features == 2 * spline_params_per_feature(4)
    config = layer.get_config()
    assert config["bins"] == 4 and config["bound"] == 5.0


def test_nsf_beats_a_gaussian_on_a_bimodal_toy():
    """A short fit of NSF must find structure a Gaussian cannot (sanity of the training path)."""
    x = tff.datasets.toy_2d("eight_gaussians", n=1000, seed=0)
    x = (x - x.mean(0)) / x.std(0)
    flow = tff.NSF(2, num_layers=2, hidden_units=(32,), bins=8, kind="coupling", bound=3.0)
    flow.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    flow.fit(x, batch_size=200, epochs=15, verbose=0)
    nll = -float(np.mean(keras.ops.convert_to_numpy(flow.log_prob(x))))
    gaussian_nll = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * np.cov(x.T)))
    assert nll < gaussian_nll - 0.1, (nll, gaussian_nll)
