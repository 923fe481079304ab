"""Distiller: KL(student || teacher) falls under fit; one-pass samples carry exact log-densities."""

import keras
import numpy as np
import pytest

import tfflows as tff
from tests.helpers import randomize_weights


def _teacher(features=2, context_features=0, seed=0):
    teacher = tff.MAF(features, num_layers=2, hidden_units=(16,), context_features=context_features)
    teacher._ensure_built()
    randomize_weights(teacher, np.random.default_rng(seed), scale=0.4)
    return teacher


def test_student_samples_report_their_log_density():
    student = tff.IAF(3, num_layers=2, hidden_units=(16,))
    student._ensure_built()
    randomize_weights(student, np.random.default_rng(1), scale=0.4)
    distiller = tff.Distiller(student, _teacher(3), seed=0)
    x, log_q = distiller.sample_and_log_prob(64)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(student.log_prob(x)), keras.ops.convert_to_numpy(log_q),
                               rtol=1e-4, atol=1e-4)


def test_fit_lowers_the_kl_and_records_it():
    teacher = _teacher()
    student = tff.IAF(2, num_layers=2, hidden_units=(16,))
    distiller = tff.Distiller(student, teacher, samples_per_step=128, seed=0)
    before, _ = distiller.kl_divergence(4000)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    history = distiller.fit(epochs=3, steps_per_epoch=40, verbose=0)
    after, stderr = distiller.kl_divergence(4000)
    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()
    assert after < 0.5 * before, (before, after)
    assert after > -4 * stderr  # a KL estimate is non-negative up to Monte Carlo error
    for old, new in zip(teacher_weights, teacher.get_weights()):
        np.testing.assert_array_equal(old, new)  # the teacher is frozen


def test_conditional_distillation_uses_the_context():
    teacher = _teacher(context_features=2, seed=3)
    student = tff.IAF(2, num_layers=2, hidden_units=(16,), context_features=2)
    distiller = tff.Distiller(student, teacher, seed=1)
    rng = np.random.default_rng(0)
    contexts = rng.normal(size=(512, 2)).astype("float32")
    before, _ = distiller.kl_divergence(context=contexts)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    distiller.fit(contexts, batch_size=128, epochs=6, verbose=0)
    after, _ = distiller.kl_divergence(context=contexts)
    assert after < before, (before, after)
    x, log_q = distiller.sample_and_log_prob(context=contexts[:16])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(student.log_prob(x, context=contexts[:16])),
                               keras.ops.convert_to_numpy(log_q), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="contexts"):
        distiller.fit(epochs=1)


def test_event_shapes_must_match():
    with pytest.raises(ValueError, match="event shape"):
        tff.Distiller(tff.IAF(3, num_layers=1), _teacher(2))
