"""One property suite over every tfflows layer (the registry), in float64.

For each entry: inverse(forward(x)) == x; the reported log-det equals log|det J| of the
autodiff Jacobian; the inverse log-det is minus the forward one; the TFP adapter
agrees; a `get_config` round trip (with copied weights) gives the same outputs.

Each registry entry builds a layer for a given dtype and says which input shape and
context size to test it on. A new layer is not done until it is listed here.
"""

import keras
import numpy as np
import pytest

import tfflows as tff
from tests.helpers import jacobian_log_det, randomize_weights

try:  # the TFP wrappers' entries (skipped on other backends)
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfb = tfp.bijectors
except ImportError:
    tf = tfp = tfb = None

D = 4  # tabular test dimension
CTX = 3  # context size of conditional variants

# name -> (constructor(dtype), input shape without batch, context features)
# The abstract bases Coupling and Autoregressive are covered through every subclass below.
REGISTRY = {
    # --- composition -----------------------------------------------------------------
    "Chain": (lambda dt: tff.Chain([tff.AffineCoupling(dtype=dt), tff.Permute(seed=1, dtype=dt),
                                    tff.ActNorm(dtype=dt)], dtype=dt), (D,), 0),
    "Invert": (lambda dt: tff.Invert(tff.AffineCoupling(mask="alternate", dtype=dt), dtype=dt), (D,), 0),
    # --- coupling (foundation) ---------------------------------------------------------
    "AdditiveCoupling": (lambda dt: tff.AdditiveCoupling(dtype=dt), (D,), 0),
    "AdditiveCoupling-context": (lambda dt: tff.AdditiveCoupling(mask="alternate", context_features=CTX, dtype=dt), (D,), CTX),
    "AffineCoupling": (lambda dt: tff.AffineCoupling(dtype=dt), (D,), 0),
    "AffineCoupling-flip-alternate": (lambda dt: tff.AffineCoupling(mask="alternate", flip=True, dtype=dt), (D,), 0),
    "AffineCoupling-custom-mask": (lambda dt: tff.AffineCoupling(mask=[True, False, False, True], dtype=dt), (D,), 0),
    "AffineCoupling-context": (lambda dt: tff.AffineCoupling(context_features=CTX, activation="tanh", dtype=dt), (D,), CTX),
    # any Keras layer as the conditioner (here a Sequential: x_a (2) -> 2 params x 2 features)
    "AffineCoupling-sequential-conditioner": (lambda dt: tff.AffineCoupling(conditioner=keras.Sequential(
        [keras.layers.Dense(8, activation="tanh", dtype=dt), keras.layers.Dense(4, dtype=dt)]), dtype=dt), (D,), 0),
    # --- elementwise -------------------------------------------------------------------
    "Rescale": (lambda dt: tff.Rescale(dtype=dt), (D,), 0),
    "ActNorm": (lambda dt: tff.ActNorm(dtype=dt), (D,), 0),
    "BatchNorm": (lambda dt: tff.BatchNorm(dtype=dt), (D,), 0),
    # --- linear ------------------------------------------------------------------------
    "Permute": (lambda dt: tff.Permute(seed=3, dtype=dt), (D,), 0),
    "Permute-explicit": (lambda dt: tff.Permute(permutation=[2, 0, 3, 1], dtype=dt), (D,), 0),
    "Reverse": (lambda dt: tff.Reverse(dtype=dt), (D,), 0),
    "LULinear": (lambda dt: tff.LULinear(dtype=dt), (D,), 0),
    # --- autoregressive and splines (issue 3) -------------------------------------------
    "MaskedAutoregressive": (lambda dt: tff.MaskedAutoregressive(dtype=dt), (D,), 0),
    "MaskedAutoregressive-reversed": (lambda dt: tff.MaskedAutoregressive(order="reversed", hidden_units=(16,), dtype=dt), (D,), 0),
    "MaskedAutoregressive-random-order": (lambda dt: tff.MaskedAutoregressive(order="random", seed=5, dtype=dt), (D,), 0),
    "MaskedAutoregressive-explicit-order": (lambda dt: tff.MaskedAutoregressive(order=[2, 0, 3, 1], hidden_units=(), dtype=dt), (D,), 0),
    "MaskedAutoregressive-context": (lambda dt: tff.MaskedAutoregressive(context_features=CTX, activation="tanh", dtype=dt), (D,), CTX),
    "MaskedAutoregressive-custom-made": (lambda dt: tff.MaskedAutoregressive(conditioner=tff.MADE(
        2, hidden_units=(8, 8), activation="tanh", order="reversed", dtype=dt), dtype=dt), (D,), 0),
    "SplineAutoregressive-custom-made-context": (lambda dt: tff.SplineAutoregressive(bins=3, context_features=CTX, conditioner=tff.MADE(
        8, hidden_units=(8,), context_features=CTX, dtype=dt), dtype=dt), (D,), CTX),
    "InverseAutoregressive": (lambda dt: tff.InverseAutoregressive(dtype=dt), (D,), 0),
    "InverseAutoregressive-random-order": (lambda dt: tff.InverseAutoregressive(order="random", seed=2, dtype=dt), (D,), 0),
    "InverseAutoregressive-context": (lambda dt: tff.InverseAutoregressive(order="reversed", context_features=CTX, dtype=dt), (D,), CTX),
    "SplineCoupling": (lambda dt: tff.SplineCoupling(bins=5, dtype=dt), (D,), 0),
    "SplineCoupling-alternate": (lambda dt: tff.SplineCoupling(mask="alternate", bound=2.0, dtype=dt), (D,), 0),
    "SplineCoupling-context": (lambda dt: tff.SplineCoupling(context_features=CTX, dtype=dt), (D,), CTX),
    "SplineAutoregressive": (lambda dt: tff.SplineAutoregressive(bins=6, dtype=dt), (D,), 0),
    "SplineAutoregressive-random-order": (lambda dt: tff.SplineAutoregressive(order="random", seed=7, dtype=dt), (D,), 0),
    "SplineAutoregressive-context": (lambda dt: tff.SplineAutoregressive(context_features=CTX, dtype=dt), (D,), CTX),
    # --- Gaussianization and rotations (issue 4) ----------------------------------------
    # Every weight value is a valid map (knot gaps via softplus, slopes via exp, rotations
    # as Householder vectors), so the randomized weights of the suite are fine.
    "MarginalGaussianization-spline": (lambda dt: tff.MarginalGaussianization(num_knots=8, dtype=dt), (D,), 0),
    "MarginalGaussianization-logistic": (lambda dt: tff.MarginalGaussianization(method="logistic", num_components=4, dtype=dt), (D,), 0),
    "Rotation-pca": (lambda dt: tff.Rotation(kind="pca", dtype=dt), (D,), 0),
    "Rotation-random": (lambda dt: tff.Rotation(kind="random", seed=2, dtype=dt), (D,), 0),
    "Rotation-ica": (lambda dt: tff.Rotation(kind="ica", seed=2, dtype=dt), (D,), 0),
    "Rotation-max_sliced_wasserstein": (lambda dt: tff.Rotation(kind="max_sliced_wasserstein", num_directions=2, seed=2, dtype=dt), (D,), 0),
    "Householder": (lambda dt: tff.Householder(num_reflections=2, seed=1, dtype=dt), (D,), 0),
    "Householder-full": (lambda dt: tff.Householder(dtype=dt), (D,), 0),
    # --- TFP-wrapped bijectors (issue 5) ------------------------------------------------
    "TFPBijector-Shift-Scale": (lambda dt: tff.TFPBijector(tfb.Chain([
        tfb.Shift(tf.Variable(np.zeros(D, dt))),
        tfb.Scale(tfp.util.TransformedVariable(
            np.ones(D, dt), tfb.Softplus()))]), dtype=dt), (D,), 0),
    "TFPBijector-SinhArcsinh": (lambda dt: tff.TFPBijector(tfb.SinhArcsinh(
        skewness=tf.Variable(np.full(D, 0.2, dt)),
        tailweight=tfp.util.TransformedVariable(np.ones(D, dt), tfb.Softplus())),
        dtype=dt), (D,), 0),
    # --- image layers (issue 6) ---------------------------------------------------------
    "Squeeze": (lambda dt: tff.Squeeze(dtype=dt), (4, 4, 2), 0),
    "Squeeze-sandwich": (lambda dt: tff.Chain([tff.Squeeze(dtype=dt), tff.Invertible1x1Conv(dtype=dt),
                                               tff.Invert(tff.Squeeze(dtype=dt), dtype=dt)], dtype=dt), (4, 4, 2), 0),
    "ConvAffineCoupling-checkerboard": (lambda dt: tff.ConvAffineCoupling(hidden_channels=8, num_blocks=1, dtype=dt), (4, 4, 2), 0),
    "ConvAffineCoupling-channel-flip": (lambda dt: tff.ConvAffineCoupling(mask="channel", flip=True, hidden_channels=8, num_blocks=1, dtype=dt), (4, 4, 2), 0),
    "ConvAffineCoupling-checkerboard-context": (lambda dt: tff.ConvAffineCoupling(context_features=CTX, hidden_channels=8, num_blocks=1, dtype=dt), (4, 4, 2), CTX),
    "ConvAdditiveCoupling-checkerboard-flip": (lambda dt: tff.ConvAdditiveCoupling(flip=True, hidden_channels=8, num_blocks=1, dtype=dt), (4, 4, 2), 0),
    "ConvAdditiveCoupling-channel": (lambda dt: tff.ConvAdditiveCoupling(mask="channel", hidden_channels=8, num_blocks=1, dtype=dt), (4, 4, 2), 0),
    "ConvAffineCoupling-channel-glow-net": (lambda dt: tff.ConvAffineCoupling(mask="channel", network="glow", hidden_channels=8, dtype=dt), (4, 4, 4), 0),
    "ConvAffineCoupling-checkerboard-glow-net-context": (lambda dt: tff.ConvAffineCoupling(network="glow", context_features=CTX, hidden_channels=8, dtype=dt), (4, 4, 2), CTX),
    "Invertible1x1Conv": (lambda dt: tff.Invertible1x1Conv(dtype=dt), (4, 4, 2), 0),
    "MaskedConv": (lambda dt: tff.MaskedConv(dtype=dt), (4, 4, 2), 0),
    "MaskedConv-reverse-k5": (lambda dt: tff.MaskedConv(kernel_size=5, reverse=True, dtype=dt), (4, 4, 2), 0),
    "MultiScale": (lambda dt: tff.MultiScale(tff.Chain([tff.ConvAffineCoupling(mask="channel", hidden_channels=8, num_blocks=1, dtype=dt),
                                                        tff.Invertible1x1Conv(dtype=dt)], dtype=dt),
                                             inner=tff.ConvAffineCoupling(hidden_channels=8, num_blocks=1, dtype=dt), dtype=dt), (4, 4, 2), 0),
    "MultiScale-no-inner": (lambda dt: tff.MultiScale(tff.MaskedConv(dtype=dt), dtype=dt), (4, 4, 2), 0),
    "Dequantize": (lambda dt: tff.Dequantize(17, dtype=dt), (4, 4, 2), 0),
    # Logit's domain is (0, 1) and registry inputs are N(0, 1): test it through its inverse
    # (both directions and both log-dets are still checked against autodiff).
    "Logit": (lambda dt: tff.Invert(tff.Logit(0.05, dtype=dt), dtype=dt), (4, 4, 2), 0),
    "ActNorm-image": (lambda dt: tff.ActNorm(dtype=dt), (4, 4, 2), 0),
    "RealNVP-image-transform": (lambda dt: tff.realnvp_image_transform((4, 4, 2), steps_per_scale=1, num_levels=None,
                                                                           hidden_channels=8, num_blocks=1, dtype=dt), (4, 4, 2), 0),
    "Glow-transform": (lambda dt: tff.glow_transform((4, 4, 2), steps_per_scale=1, num_levels=None, hidden_channels=8,
                                                             num_blocks=1, dtype=dt), (4, 4, 2), 0),
}

NAMES = sorted(REGISTRY)
# Abstract bases, tested through their concrete subclasses above: Coupling and
# Autoregressive (both Conditioned), ImageCoupling and ImageLayer (the image layers).
ABSTRACT = {"Bijector", "Coupling", "Autoregressive", "Conditioned", "ImageCoupling", "ImageLayer"}


def test_every_public_layer_is_in_the_registry():
    import inspect

    import tfflows.bijectors.conditioned
    import tfflows.bijectors.image.layout

    public = {name: getattr(tff, name) for name in tff.__all__ if name not in ("TFPBijector", "TFPDistribution",
                                                                              "export_saved_model")}
    public.update(Conditioned=tfflows.bijectors.conditioned.Conditioned,
                  ImageLayer=tfflows.bijectors.image.layout.ImageLayer)
    layers = [n for n, c in public.items() if inspect.isclass(c) and issubclass(c, tff.Bijector)]
    missing = [n for n in layers if n not in ABSTRACT and not any(k.split("-")[0] == n for k in REGISTRY)]
    assert not missing, f"layers missing from the registry: {missing}"


def make(name, dtype="float64", batch=7, seed=0):
    """A built layer with random (non-identity) parameters, inputs and context."""
    ctor, shape, ctx = REGISTRY[name]
    if name.startswith("TFPBijector") and keras.backend.backend() != "tensorflow":
        pytest.skip("wraps a TFP bijector: TensorFlow backend only")
    layer = ctor(dtype)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch,) + shape).astype(dtype)
    context = rng.normal(size=(batch, ctx)).astype(dtype) if ctx else None
    layer.build((None,) + shape)
    randomize_weights(layer, rng)
    return layer, x, context


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(name):
    layer, x, context = make(name)
    y = layer.forward(x, context)
    assert y.dtype == "float64"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
    y_np = keras.ops.convert_to_numpy(y)
    assert y_np.shape != x.shape or not np.allclose(y_np, x), "parameters should make the map non-trivial"
    x_back = layer.inverse(y, context)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(x_back), x, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_log_det_matches_autodiff_jacobian(name):
    layer, x, context = make(name)
    expected = jacobian_log_det(lambda v: layer.forward(v, context), x)
    actual = keras.ops.convert_to_numpy(layer.forward_log_det_jacobian(x, context))
    assert actual.shape == (x.shape[0],)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_log_det_is_minus_forward(name):
    layer, x, context = make(name)
    y, fldj = layer.forward_and_log_det(x, context)
    x_back, ildj = layer.inverse_and_log_det(y, context)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ildj), -keras.ops.convert_to_numpy(fldj),
                               rtol=1e-6, atol=1e-8)
    expected = jacobian_log_det(lambda v: layer.inverse(v, context), keras.ops.convert_to_numpy(y))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ildj), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_tfp_adapter_agrees(name):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TFP interop is TensorFlow-only")
    from tfflows.interop.tfp_adapter import to_tfp_bijector

    layer, x, context = make(name)
    tfp_bijector = to_tfp_bijector(layer, context)
    y, fldj = layer.forward_and_log_det(x, context)
    np.testing.assert_allclose(tfp_bijector.forward(x).numpy(), y.numpy(), rtol=1e-10)
    np.testing.assert_allclose(tfp_bijector.inverse(y).numpy(), x, rtol=1e-6, atol=1e-8)
    ndims = layer.event_ndims
    np.testing.assert_allclose(tfp_bijector.forward_log_det_jacobian(x, event_ndims=ndims).numpy(),
                               fldj.numpy(), rtol=1e-10)
    np.testing.assert_allclose(tfp_bijector.inverse_log_det_jacobian(y, event_ndims=ndims).numpy(),
                               -fldj.numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    layer, x, context = make(name)
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    if not clone.built:  # deserialization builds from the saved build config
        clone.build((None,) + x.shape[1:])
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone.forward(x, context)),
                               keras.ops.convert_to_numpy(layer.forward(x, context)), rtol=1e-12)
    assert repr(clone)
