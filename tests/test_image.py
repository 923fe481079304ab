"""Image layers, preprocessing and image presets (the property suite in test_bijectors.py
covers inverses, log-dets and configs; these tests cover what is specific to images)."""

import math

import keras
import numpy as np
import pytest

import tfflows as tff
from tests.helpers import randomize_weights

to_np = keras.ops.convert_to_numpy


def built(layer, shape, seed=0):
    layer.build((None,) + shape)
    randomize_weights(layer, np.random.default_rng(seed))
    return layer


# ----- Squeeze ---------------------------------------------------------------------------
def test_squeeze_folds_2x2_blocks_into_channels():
    x = np.arange(16.0, dtype="float32").reshape(1, 4, 4, 1)
    y = to_np(tff.Squeeze().forward(x))
    assert y.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(y[0, 0, 0], [0, 1, 4, 5])  # top-left 2x2 block, row-major
    np.testing.assert_array_equal(y[0, 1, 1], [10, 11, 14, 15])
    x = np.random.default_rng(0).normal(size=(3, 6, 4, 5)).astype("float32")
    layer = tff.Squeeze()
    y = layer.forward(x)
    assert tuple(y.shape) == (3, 3, 2, 20) == layer.compute_output_shape((3, 6, 4, 5))
    np.testing.assert_array_equal(to_np(layer.inverse(y)), x)
    np.testing.assert_array_equal(to_np(layer.forward_log_det_jacobian(x)), np.zeros(3))


@pytest.mark.parametrize("shape, words", [((None, 5, 4, 1), ["even H and W", "(H, W, C) = (5, 4, 1)"]),
                                          ((None, 8, 8), ["(batch, H, W, C)", "(H, W, C)"])])
def test_squeeze_shape_errors_name_expected_shape(shape, words):
    with pytest.raises(ValueError) as err:
        tff.Squeeze().build(shape)
    for word in words:
        assert word in str(err.value)


def test_layers_refuse_images_of_another_shape():
    layer = tff.Squeeze()
    layer.forward(np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match=r"built for images of shape \(H, W, C\) = \(4, 4, 1\)"):
        layer.forward(np.zeros((1, 6, 6, 1), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, H, W, C\)"):
        tff.Invertible1x1Conv().build((None, 4))
    with pytest.raises(ValueError, match="at least 2 channels"):
        tff.ConvAffineCoupling(mask="channel").build((None, 4, 4, 1))


# ----- couplings ---------------------------------------------------------------------------
@pytest.mark.parametrize("flip", [False, True])
def test_checkerboard_coupling_keeps_its_identity_pixels(flip):
    layer = built(tff.ConvAffineCoupling(mask="checkerboard", flip=flip, hidden_channels=8, num_blocks=1), (4, 4, 2))
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 2)).astype("float32")
    y = to_np(layer.forward(x))
    identity = (np.add.outer(np.arange(4), np.arange(4)) % 2 == 0) != flip
    np.testing.assert_array_equal(y[:, identity], x[:, identity])
    assert not np.allclose(y[:, ~identity], x[:, ~identity])


def test_channel_coupling_keeps_first_half_and_starts_at_identity():
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 4)).astype("float32")
    fresh = tff.ConvAffineCoupling(mask="channel")
    np.testing.assert_allclose(to_np(fresh.forward(x)), x)  # zero-initialized conditioner output
    layer = built(tff.ConvAdditiveCoupling(mask="channel", hidden_channels=8, num_blocks=1), (4, 4, 4))
    y = to_np(layer.forward(x))
    np.testing.assert_array_equal(y[..., :2], x[..., :2])
    assert not np.allclose(y[..., 2:], x[..., 2:])


# ----- MaskedConv ----------------------------------------------------------------------------
def _jacobian(fn, x):
    """Full Jacobian of fn at x (both flattened), by autodiff on either backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.jacfwd(fn)(x)).reshape(x.size, x.size)
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = fn(xt)
    return tape.jacobian(y, xt).numpy().reshape(x.size, x.size)


@pytest.mark.parametrize("reverse", [False, True])
def test_masked_conv_jacobian_is_triangular_in_raster_order(reverse):
    layer = built(tff.MaskedConv(kernel_size=3, reverse=reverse, dtype="float64"), (4, 4, 3), seed=3)
    x = np.random.default_rng(3).normal(size=(1, 4, 4, 3))
    jac = _jacobian(layer.forward, x)  # rows/cols in raster order: pixel (row-major), then channel
    strict = np.triu(jac, 1) if not reverse else np.tril(jac, -1)
    np.testing.assert_array_equal(strict, 0.0)
    other = np.tril(jac, -1) if not reverse else np.triu(jac, 1)
    assert np.abs(other).max() > 0.05  # it does mix pixels and channels
    s = 3.0 * np.tanh(to_np(layer.log_diag) / 3.0)
    diagonal = np.exp(s[::-1] if reverse else s)  # reverse conjugates the map with a flip of H, W and C
    np.testing.assert_allclose(np.diag(jac), np.tile(diagonal, 16), rtol=1e-10)
    np.testing.assert_allclose(to_np(layer.forward_log_det_jacobian(x)), [16 * s.sum()], rtol=1e-10)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="inspects a tf.function graph (TensorFlow-only by nature)")
def test_masked_conv_inverse_compiles_to_one_loop():
    import tensorflow as tf

    layer = built(tff.MaskedConv(dtype="float64"), (8, 8, 2), seed=4)
    y = np.random.default_rng(4).normal(size=(5, 8, 8, 2))
    compiled = tf.function(layer.inverse)
    graph = compiled.get_concrete_function(tf.TensorSpec((None, 8, 8, 2), tf.float64)).graph
    op_types = [op.type for op in graph.get_operations()]
    assert sum(t in ("While", "StatelessWhile") for t in op_types) == 1
    assert len(op_types) < 200  # not unrolled over the 64 pixels
    x = compiled(y).numpy()
    np.testing.assert_allclose(x, to_np(layer.inverse(y)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_np(layer.forward(x)), y, rtol=1e-9, atol=1e-9)


# ----- MultiScale ----------------------------------------------------------------------------
def test_multiscale_factors_out_half_the_channels():
    dt = "float64"
    inner = tff.ConvAffineCoupling(hidden_channels=8, num_blocks=1, dtype=dt)
    transform = tff.Chain([tff.ConvAffineCoupling(mask="channel", hidden_channels=8, num_blocks=1, dtype=dt),
                           tff.Invertible1x1Conv(dtype=dt)], dtype=dt)
    layer = built(tff.MultiScale(transform, inner=inner, dtype=dt), (8, 8, 1), seed=5)
    x = np.random.default_rng(5).normal(size=(3, 8, 8, 1))
    y = layer.forward(x)
    assert tuple(y.shape) == x.shape
    h = to_np(transform.forward(tff.Squeeze(dtype=dt).forward(x)))
    y_squeezed = to_np(tff.Squeeze(dtype=dt).forward(y))
    np.testing.assert_allclose(y_squeezed[..., :2], h[..., :2], rtol=1e-12)  # factored out, untouched
    np.testing.assert_allclose(y_squeezed[..., 2:], to_np(inner.forward(h[..., 2:])), rtol=1e-12)
    np.testing.assert_allclose(to_np(layer.inverse(y)), x, rtol=1e-9, atol=1e-10)


# ----- preprocessing -------------------------------------------------------------------------
def test_dequantize_and_logit_bookkeeping_give_log2_levels_bits_per_dim():
    """Dequantize + Logit(alpha=0) + a standard logistic base is exactly the uniform density
    on [0, L)^D, so bits/dim in pixel space must be log2(L)."""
    flow = tff.Flow(tff.Chain([tff.Dequantize(17), tff.Logit(0.0)]), base=tff.StandardLogistic(),
                    event_shape=(8, 8, 1))
    v = tff.dequantize(np.random.default_rng(6).integers(0, 17, size=(4, 8, 8, 1)), 17, seed=0)
    np.testing.assert_allclose(to_np(flow.bits_per_dim(v)), math.log2(17), rtol=1e-5)
    np.testing.assert_allclose(to_np(flow.log_prob(v)), -64 * math.log(17), rtol=1e-5)


def test_dequantize_resamples_noise_only_in_training():
    layer = tff.Dequantize(17, seed=0)
    k = np.random.default_rng(7).integers(0, 17, size=(64, 4, 4, 1)).astype("float32")
    y1, ld = layer.forward_and_log_det(k, training=True)
    y2 = to_np(layer.forward_and_log_det(k + 0.5, training=True)[0])
    y1 = to_np(y1)
    np.testing.assert_array_equal(np.floor(y1 * 17), k)  # same levels, fresh fractional part
    np.testing.assert_array_equal(np.floor(y2 * 17), k)
    assert 0.3 < np.mean(y1 * 17 - k) < 0.7 and not np.allclose(y1, y2)
    np.testing.assert_allclose(to_np(ld), -16 * math.log(17), rtol=1e-6)
    np.testing.assert_allclose(to_np(layer.forward(k + 0.5)), (k + 0.5) / 17, rtol=1e-6)  # inference: fixed


def test_dequantize_function_and_quantize():
    k = np.random.default_rng(8).integers(0, 17, size=(10, 8, 8, 1))
    v = tff.dequantize(k, 17, seed=1)
    assert v.dtype == np.float32 and np.all(np.floor(v) == k)
    np.testing.assert_array_equal(tff.quantize(v, 17), k)
    assert tff.quantize(np.array([-0.5, 16.9, 40.0]), 17).tolist() == [0, 16, 16]
    with pytest.raises(ValueError, match="0..16"):
        tff.dequantize(k + 1, 17)


def test_logit_forward_matches_formula():
    y = np.random.default_rng(9).uniform(size=(3, 4, 4, 1))
    z, ld = tff.Logit(0.05, dtype="float64").forward_and_log_det(y)
    p = 0.05 + 0.9 * y
    np.testing.assert_allclose(to_np(z), np.log(p / (1 - p)), rtol=1e-12)
    np.testing.assert_allclose(to_np(ld), np.sum(np.log(0.9 / (p * (1 - p))), axis=(1, 2, 3)), rtol=1e-12)


# ----- presets -------------------------------------------------------------------------------
SMALL = dict(hidden_channels=8, num_blocks=1, steps_per_scale=1, num_levels=17)


@pytest.mark.parametrize("preset", [tff.ImageRealNVP, tff.Glow,
                                    lambda shape, **kw: tff.Glow(shape, network="glow", **kw)])
def test_image_presets_density_sampling_and_save(preset, tmp_path):
    model = preset((8, 8, 1), **SMALL)
    v = tff.dequantize(tff.datasets.digits()[0][:16], 17, seed=0)
    model.transform.initialize_from_data(v)
    log_prob = to_np(model.log_prob(v))
    assert log_prob.shape == (16,) and np.all(np.isfinite(log_prob))
    np.testing.assert_allclose(to_np(model.bits_per_dim(v)), -log_prob / (64 * math.log(2)), rtol=1e-6)
    z = model.encode(v)
    np.testing.assert_allclose(to_np(model.decode(z)), v, atol=1e-3)
    samples = to_np(model.sample(5, seed=0))
    assert samples.shape == (5, 8, 8, 1) and np.all(np.isfinite(samples))
    path = str(tmp_path / "image.keras")
    model.save(path)
    clone = keras.saving.load_model(path)
    np.testing.assert_allclose(to_np(clone.log_prob(v)), log_prob, rtol=1e-5)


def test_glow_network_is_the_papers_three_convolutions():
    """network="glow": conv 3x3 (C/2 -> hidden), conv 1x1 (hidden -> hidden), conv 3x3
    (hidden -> 2 * C/2), so its parameter count is known in closed form, and a fresh
    coupling is the identity (zero-initialized last convolution)."""
    c, hidden = 4, 8
    layer = tff.ConvAffineCoupling(mask="channel", network="glow", hidden_channels=hidden)
    layer.build((None, 4, 4, c))
    half = c // 2
    expected = (9 * half * hidden + hidden) + (hidden * hidden + hidden) + (9 * hidden * 2 * half + 2 * half)
    assert layer.count_params() == expected
    x = np.random.default_rng(3).normal(size=(2, 4, 4, c)).astype("float32")
    np.testing.assert_allclose(to_np(layer.forward(x)), x)
    with pytest.raises(ValueError, match="network must be 'resnet' or 'glow'"):
        tff.ConvAffineCoupling(network="unet")


def test_glow_saved_before_the_network_argument_keeps_resnet_couplings():
    config = tff.Glow((8, 8, 1), network="glow", **SMALL).get_config()
    del config["network"]  # as written before the argument existed
    assert tff.Glow.from_config(config).get_config()["network"] == "resnet"


def test_image_presets_check_data():
    model = tff.Glow((8, 8, 1), **SMALL)
    with pytest.raises(TypeError, match="dequantize"):
        model.log_prob(np.zeros((2, 8, 8, 1), "int64"))
    with pytest.raises(ValueError, match=r"pixel levels in \[0, 17\)"):
        model.log_prob(np.full((2, 8, 8, 1), 17.0, "float32"))
    with pytest.raises(ValueError, match="multiples of 4"):
        tff.Glow((6, 6, 1))
    with pytest.raises(ValueError, match=r"image shape \(H, W, C\)"):
        tff.ImageRealNVP((64,))


def test_image_preset_fits_on_float_levels():
    images = tff.datasets.digits()[0][:128].astype("float32")
    model = tff.ImageRealNVP((8, 8, 1), **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(images, batch_size=64, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_latent_interpolation_of_a_conditional_flow_ends_at_the_two_images():
    """The path's ends decode back to the two images when they are encoded and decoded
    under the pair's context; the middle differs from both."""
    from tfflows.plot.images import latent_interpolation

    flow = tff.Glow((8, 8, 1), num_scales=1, steps_per_scale=2, hidden_channels=8, num_levels=16,
                    context_features=2)
    rng = np.random.default_rng(0)
    x = tff.dequantize(rng.integers(0, 16, size=(4, 8, 8, 1)), 16, seed=1)
    context = np.eye(2, dtype="float32")[[0, 1]]
    flow.log_prob(x[:2], context)  # builds the weights
    randomize_weights(flow, np.random.default_rng(3), scale=0.05)
    strips = latent_interpolation(flow, x[:2], x[2:], steps=5, spherical=True, context=context)
    assert strips.shape == (2, 5, 8, 8, 1)
    np.testing.assert_allclose(strips[:, 0], x[:2], atol=2e-3)
    np.testing.assert_allclose(strips[:, -1], x[2:], atol=2e-3)
    assert np.abs(strips[:, 2] - x[:2]).max() > 0.1 and np.abs(strips[:, 2] - x[2:]).max() > 0.1
