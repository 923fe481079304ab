"""Property-based abuse of every registry layer (hypothesis), in float32 as users run them.

For random parameters and inputs that include the extremes (|x| up to 1e4 standard
deviations, denormals, exact zeros, repeated rows, a single row, an empty batch):
outputs and log-dets are finite for finite inputs, the inverse gives the input back to
a tolerance relative to its size, and gradients (with respect to inputs and weights)
are finite.

Finiteness is promised for every parameter value (weights up to N(0, 3^2)). The round
trip is checked to a tolerance for weights at the scale of initialized and trained
networks (up to N(0, 0.1^2); Glorot's scale for these layer widths is 0.05-0.15): with
larger random weights the composed maps themselves become ill-conditioned (a multi-scale
image transform at N(0, 0.3^2) has condition number ~3e6, so even exact float64
arithmetic followed by one float32 rounding misses the tolerance), which is a property
of the parameters, not of the code. Layers that saturate in float32 state the input
range within which their inverse is recoverable (ROUND_TRIP_RANGE); beyond it only
finiteness is checked. RELIABILITY.md gives the figures.
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import randomize_weights
from tests.test_bijectors import NAMES, REGISTRY

EXAMPLES_PER_LAYER = 12
MAGNITUDES = (0.0, 1e-40, 1.0, 1e2, 1e4)  # 1e-40 is a float32 denormal
ROUND_TRIP_WEIGHT_SCALE = 0.1
# float32 sigmoid rounds to its edge beyond |z| ~ 17: the input is not recoverable there
# (Logit's docstring states the range; float64 recovers up to |z| ~ 34).
ROUND_TRIP_RANGE = {"Logit": 12.0}

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="gradients are taken with tf.GradientTape")

_layers = {}


def _layer(name):
    """One built float32 layer per registry entry (hypothesis varies weights and inputs)."""
    if name not in _layers:
        ctor, shape, ctx = REGISTRY[name]
        if name.startswith("TFPBijector") and keras.backend.backend() != "tensorflow":
            pytest.skip("TensorFlow only")
        layer = ctor("float32")
        layer.build((None,) + shape)
        _layers[name] = (layer, shape, ctx)
    return _layers[name]


def _inputs(shape, ctx, batch, magnitude, repeat, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch,) + shape) * magnitude
    if repeat and batch:
        x[:] = x[0]
    context = rng.normal(size=(batch, ctx)).astype("float32") if ctx else None
    return x.astype("float32"), context, rng


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=EXAMPLES_PER_LAYER, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), magnitude=st.sampled_from(MAGNITUDES), batch=st.sampled_from([0, 1, 5]),
       repeat=st.booleans(), weight_scale=st.sampled_from([0.0, 0.1, 0.3, 1.0, 3.0]))
def test_extreme_inputs_stay_finite_and_invertible(name, seed, magnitude, batch, repeat, weight_scale):
    import tensorflow as tf

    layer, shape, ctx = _layer(name)
    x, context, rng = _inputs(shape, ctx, batch, magnitude, repeat, seed)
    randomize_weights(layer, rng, scale=weight_scale)

    xt = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        y, log_det = layer.forward_and_log_det(xt, context)
        objective = tf.reduce_sum(log_det) + tf.reduce_sum(tf.reshape(y, (batch, -1)) * 1e-3)
    y, log_det = y.numpy(), log_det.numpy()
    assert log_det.shape == (batch,)
    assert np.all(np.isfinite(y)), f"non-finite output for |x| ~ {magnitude}"
    assert np.all(np.isfinite(log_det)), f"non-finite log-det for |x| ~ {magnitude}"

    x_back = layer.inverse(y, context).numpy()
    assert np.all(np.isfinite(x_back)), f"non-finite inverse for |x| ~ {magnitude}"
    if weight_scale <= ROUND_TRIP_WEIGHT_SCALE and magnitude * 4 <= ROUND_TRIP_RANGE.get(name, np.inf):
        scale = 1.0 + np.abs(x).max(initial=0.0)
        np.testing.assert_allclose(x_back, x, rtol=0, atol=2e-3 * scale)

    if batch:
        grads = tape.gradient(objective, [xt] + layer.trainable_weights)
        for g in grads:
            if g is not None:
                g = tf.convert_to_tensor(g).numpy()
                assert np.all(np.isfinite(g)), f"non-finite gradient for |x| ~ {magnitude}"
