"""Long-run training stability (issue 9): every preset, tiny, 2,000 Adam steps at a high
learning rate on heavy-tailed data, with plain `fit`; and a deliberately unstable run that
must stop with a clear message and keep the last finite weights.

The full-size figures (two learning rates, image presets on digits and on Student-t
pixels, RBIG's greedy fit) are benchmarks/bench_stability.py ->
benchmarks/results/stability.md. RBIG has no gradient training, so it is not here;
GaussianizationFlow is its greedy start followed by gradient steps.
"""

import math

import keras
import numpy as np
import pytest

import tfflows as tff

STEPS, BATCH, STEPS_PER_EPOCH = 2000, 16, 500  # 4 epochs, one execution per epoch
LR = 1e-2


@pytest.fixture(scope="module")
def student_t():
    # 4-D Student-t with 2 degrees of freedom (infinite variance), raw, not standardized.
    return np.random.default_rng(0).standard_t(2.0, size=(BATCH * STEPS_PER_EPOCH, 4)).astype("float32")


@pytest.fixture(scope="module")
def digits():
    images, _ = tff.datasets.digits()
    index = np.random.default_rng(1).integers(0, len(images), BATCH * STEPS_PER_EPOCH)
    return images[index].astype("float32")  # levels; the presets' Dequantize adds noise per step


TINY = dict(num_layers=2, hidden_units=(8,))
ONE = dict(num_layers=1, hidden_units=(8,))  # the costliest graphs to compile: one layer each
IMAGE = dict(num_levels=17, num_scales=1, steps_per_scale=1, hidden_channels=4, num_blocks=1)
PRESETS = {
    "NICE": (lambda: tff.NICE(4, **TINY), "t"),
    "RealNVP": (lambda: tff.RealNVP(4, **TINY), "t"),
    "MAF": (lambda: tff.MAF(4, **TINY), "t"),
    "IAF": (lambda: tff.IAF(4, **ONE), "t"),
    "NSF-autoregressive": (lambda: tff.NSF(4, kind="autoregressive", bins=4, **ONE), "t"),
    "NSF-coupling": (lambda: tff.NSF(4, kind="coupling", bins=4, **ONE), "t"),
    "GaussianizationFlow": (lambda: tff.GaussianizationFlow(4, num_knots=8), "t"),
    "ImageRealNVP": (lambda: tff.RealNVP((8, 8, 1), **IMAGE), "digits"),
    "Glow": (lambda: tff.Glow((8, 8, 1), **IMAGE), "digits"),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_trains_2000_steps_at_high_learning_rate_on_heavy_tails(name, student_t, digits):
    make, kind = PRESETS[name]
    x = student_t if kind == "t" else digits
    keras.utils.set_random_seed(0)
    flow = make()
    if isinstance(flow, tff.GaussianizationFlow):
        flow.initialize_greedy(x, max_blocks=1)  # the greedy RBIG start, then gradient steps at LR
    flow.compile(optimizer=keras.optimizers.Adam(LR), steps_per_execution=STEPS_PER_EPOCH)
    stopper = tff.StopOnNonFiniteLoss()
    history = flow.fit(x, batch_size=BATCH, epochs=STEPS // STEPS_PER_EPOCH, verbose=0, callbacks=[stopper])
    assert stopper.stopped_at is None  # StopOnNonFiniteLoss never fired
    assert int(flow.optimizer.iterations.numpy()) == STEPS
    # The logged loss is the running mean of the epoch's batch losses: finite only if each was.
    assert all(math.isfinite(v) for v in history.history["loss"]), history.history["loss"]
    assert all(np.all(np.isfinite(w)) for w in flow.get_weights())
    assert np.all(np.isfinite(np.asarray(flow.log_prob(x[:4000]))))
    if kind == "t":  # a heavy-tailed point far out still has a finite density
        assert np.all(np.isfinite(np.asarray(flow.log_prob(np.full((1, 4), 1e4, "float32")))))


class _Snapshots(keras.callbacks.Callback):
    """Blows the learning rate up at epoch `blow_up` and records weights at each finite epoch end."""

    def __init__(self, blow_up):
        super().__init__()
        self.blow_up, self.finite_weights = blow_up, []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.blow_up:
            self.model.optimizer.learning_rate.assign(1e30)

    def on_epoch_end(self, epoch, logs=None):
        if math.isfinite(logs["loss"]):
            self.finite_weights.append(self.model.get_weights())


def test_an_absurd_learning_rate_stops_fit_with_a_message_and_keeps_the_last_finite_weights(student_t):
    keras.utils.set_random_seed(0)
    flow = tff.RealNVP(4, **TINY)
    flow.compile(optimizer=keras.optimizers.Adam(LR), steps_per_execution=1)  # stop at the exact batch
    snapshots, stopper = _Snapshots(blow_up=2), tff.StopOnNonFiniteLoss()
    with pytest.warns(RuntimeWarning, match=r"NaN or Inf at epoch 3, batch 1.*restored.*learning rate"):
        history = flow.fit(student_t[:640], batch_size=BATCH, epochs=10, verbose=0,
                           callbacks=[snapshots, stopper])
    # Step 0 of epoch 3 is computed with the good weights, then updated at the absurd rate;
    # step 1's loss is the first non-finite one, and fit stops right there.
    assert stopper.stopped_at == (2, 1)
    assert int(flow.optimizer.iterations.numpy()) == 2 * 40 + 2
    assert history.history["nonfinite_loss"] == [1.0]
    assert len(snapshots.finite_weights) == 2
    for kept, good in zip(flow.get_weights(), snapshots.finite_weights[-1]):
        np.testing.assert_array_equal(kept, good)  # exactly the weights after epoch 2
    assert np.all(np.isfinite(np.asarray(flow.log_prob(student_t[:640]))))
