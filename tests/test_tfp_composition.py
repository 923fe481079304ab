"""TFP code as TFP users write it, with tfflows inside: a flow's distribution as the
surrogate posterior of `tfp.vi.fit_surrogate_posterior`, a flow's bijector inside
`tfp.mcmc.TransformedTransitionKernel`, flow distributions inside `tfd.Sample`,
`tfd.Independent` and `tfd.JointDistributionNamed`, any TFP distribution as a base and
TFP bijectors inside a `Chain`, saved and loaded (examples/tfp_composition.py)."""

import keras
import numpy as np
import pytest

import tfflows as tff

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TFP runs on TensorFlow")


def banana_log_prob(x):
    """x1 ~ N(0, 1), x2 | x1 ~ N((x1^2 - 1) / 2, 1/4): E = (0, 0), Var = (1, 3/4), Cov = 0."""
    from tensorflow_probability import distributions as tfd

    x1, x2 = x[..., 0], x[..., 1]
    return tfd.Normal(0.0, 1.0).log_prob(x1) + tfd.Normal(0.5 * (x1**2 - 1.0), 0.5).log_prob(x2)


def banana_samples(n, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return np.stack([x1, 0.5 * (x1**2 - 1) + 0.5 * rng.normal(size=n)], 1).astype("float32")


def test_flow_distribution_is_a_variational_posterior_with_the_known_moments():
    import tensorflow_probability as tfp
    import tf_keras

    keras.utils.set_random_seed(0)
    flow = tff.RealNVP(2, num_layers=4, hidden_units=(32, 32), normalization=None)
    flow.build((None, 2))
    q = flow.distribution
    assert len(q.trainable_variables) == len(flow.trainable_variables) > 0
    losses = tfp.vi.fit_surrogate_posterior(banana_log_prob, q, optimizer=tf_keras.optimizers.Adam(1e-2),
                                            num_steps=400, sample_size=128, seed=(1, 2), jit_compile=True)
    assert np.isfinite(losses.numpy()).all() and losses.numpy()[-50:].mean() < 0.15  # KL(q || p) in nats
    x = q.sample(20000, seed=(3, 4)).numpy()
    np.testing.assert_allclose(x.mean(axis=0), [0.0, 0.0], atol=0.08)
    np.testing.assert_allclose(x.var(axis=0), [1.0, 0.75], atol=0.2)
    # the Keras flow is the same model: its own log_prob after TFP trained it
    np.testing.assert_allclose(keras.ops.convert_to_numpy(flow.log_prob(x[:8])), q.log_prob(x[:8]).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_flow_preconditioned_hmc_reports_its_effective_sample_size():
    import tensorflow as tf
    import tensorflow_probability as tfp
    from tensorflow_probability import bijectors as tfb

    keras.utils.set_random_seed(0)
    flow = tff.RealNVP(2, num_layers=4, hidden_units=(32, 32))
    flow.fit(banana_samples(4000), epochs=15, batch_size=256, verbose=0)
    kernel = tfp.mcmc.TransformedTransitionKernel(
        tfp.mcmc.HamiltonianMonteCarlo(banana_log_prob, step_size=0.4, num_leapfrog_steps=4),
        bijector=tfb.Invert(flow.bijector))  # HMC runs in the flow's latent space

    @tf.function(autograph=False)
    def chain():
        return tfp.mcmc.sample_chain(300, tf.zeros((4, 2)), kernel=kernel, num_burnin_steps=100,
                                     trace_fn=lambda _, results: results.inner_results.is_accepted, seed=(5, 6))

    samples, accepted = chain()
    ess = tfp.mcmc.effective_sample_size(samples, cross_chain_dims=1).numpy()
    assert accepted.numpy().mean() > 0.5 and np.all(ess > 100)
    flat = samples.numpy().reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(axis=0), [0.0, 0.0], atol=0.2)


def test_flow_distribution_inside_sample_independent_and_joint_distributions():
    from tensorflow_probability import distributions as tfd

    flow = tff.MAF(3, num_layers=2, hidden_units=(8,))
    flow.fit(np.random.default_rng(0).normal(size=(64, 3)).astype("float32"), epochs=1, verbose=0)
    x = np.random.default_rng(1).normal(size=(5, 4, 3)).astype("float32")
    per_row = keras.ops.convert_to_numpy(flow.log_prob(x.reshape(-1, 3))).reshape(5, 4)
    np.testing.assert_allclose(tfd.Sample(flow.distribution, 4).log_prob(x).numpy(), per_row.sum(1), rtol=1e-5)
    independent = tfd.Independent(tfd.Sample(flow.distribution, 4), reinterpreted_batch_ndims=0)
    assert independent.event_shape == (4, 3)
    joint = tfd.JointDistributionNamed({"z": flow.distribution,
                                        "y": lambda z: tfd.Normal(tf_sum(z), 1.0)})
    draw = joint.sample(6, seed=(7, 8))
    expected = keras.ops.convert_to_numpy(flow.log_prob(draw["z"].numpy())) + \
        tfd.Normal(draw["z"].numpy().sum(-1), 1.0).log_prob(draw["y"]).numpy()
    np.testing.assert_allclose(joint.log_prob(draw).numpy(), expected, rtol=1e-5, atol=1e-5)


def tf_sum(z):
    import tensorflow as tf

    return tf.reduce_sum(z, axis=-1)


def test_any_tfp_base_and_tfp_bijectors_in_a_chain_save_and_load(tmp_path):
    from tensorflow_probability import bijectors as tfb
    from tensorflow_probability import distributions as tfd

    x = (np.random.default_rng(0).standard_t(3, size=(256, 2)) + 3.0).astype("float32")
    flow = tff.Flow(tff.Chain([tff.TFPBijector(tfb.Shift(np.float32(-3.0))), tff.ActNorm(),
                               tff.AffineCoupling(hidden_units=(8,)), tff.TFPBijector(tfb.SinhArcsinh())]),
                    base=tfd.StudentT(df=3.0, loc=0.0, scale=1.0))  # a scalar law: iid in every entry
    history = flow.fit(x, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert flow.sample(5, seed=0).shape == (5, 2)
    flow.save(tmp_path / "t.keras")
    again = tff.load_model(tmp_path / "t.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.log_prob(x[:9])),
                               keras.ops.convert_to_numpy(flow.log_prob(x[:9])), rtol=1e-5, atol=1e-5)
    raw = tff.Flow(tfb.Softplus(), base=tfd.Normal(0.0, 1.0))  # a raw TFP bijector is wrapped too
    assert np.isfinite(keras.ops.convert_to_numpy(raw.log_prob(np.ones((3, 2), "float32")))).all()
    with pytest.raises(TypeError, match="TFPBijector"):
        tff.Chain([tff.ActNorm(), tfb.Softplus()])
    with pytest.raises(ValueError, match="event shape"):
        tff.Flow(tff.ActNorm(), base=tfd.MultivariateNormalDiag(np.zeros(3, "float32")),
                 event_shape=(2,)).log_prob(x[:2])


def test_distribution_trainable_variables_train_in_a_custom_tape_loop():
    import tensorflow as tf

    flow = tff.MAF(2, num_layers=1, hidden_units=(8,))
    flow.build((None, 2))
    q = flow.distribution
    before = [v.numpy().copy() for v in q.trainable_variables]
    x = tf.constant(banana_samples(128))
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(q.log_prob(x))
        grads = tape.gradient(loss, q.trainable_variables)
        for v, g in zip(q.trainable_variables, grads):
            v.assign_sub(0.1 * g)
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(before, q.trainable_variables))
    assert any(not np.allclose(a, b) for a, b in zip(before, flow.get_weights()))  # the Keras weights moved
