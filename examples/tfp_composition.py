"""tfflows inside TFP code, as TFP users write it (about a minute on 2 CPU cores):

1. Variational inference: a RealNVP's `flow.distribution` is the surrogate posterior of
   `tfp.vi.fit_surrogate_posterior` for a banana-shaped posterior with known moments.
2. Flow-preconditioned HMC: the fitted flow's bijector inside
   `tfp.mcmc.TransformedTransitionKernel`, so HMC runs in the flow's latent space, where
   the banana is nearly Gaussian; effective sample sizes beside plain HMC, same budget.
3. The flow distribution inside `tfd.Sample` and `tfd.JointDistributionNamed`.

    python examples/tfp_composition.py [--steps 600]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402

import tfflows as tff  # noqa: E402

tfd, tfb = tfp.distributions, tfp.bijectors


def banana_log_prob(x):
    """x1 ~ N(0, 1), x2 | x1 ~ N((x1^2 - 1) / 2, 1/4): mean (0, 0), variances (1, 0.75)."""
    x1, x2 = x[..., 0], x[..., 1]
    return tfd.Normal(0.0, 1.0).log_prob(x1) + tfd.Normal(0.5 * (x1**2 - 1.0), 0.5).log_prob(x2)


def hmc_ess(bijector, steps, seed):
    inner = tfp.mcmc.HamiltonianMonteCarlo(banana_log_prob, step_size=0.3, num_leapfrog_steps=5)
    kernel = inner if bijector is None else tfp.mcmc.TransformedTransitionKernel(inner, bijector=bijector)

    @tf.function(autograph=False, jit_compile=True)
    def run():
        return tfp.mcmc.sample_chain(steps, tf.zeros((4, 2)), kernel=kernel, num_burnin_steps=200,
                                     trace_fn=None, seed=seed)

    samples = run()
    return samples.numpy(), tfp.mcmc.effective_sample_size(samples, cross_chain_dims=1).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="VI optimization steps")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    flow = tff.RealNVP(2, num_layers=6, hidden_units=(32, 32), normalization=None)
    flow.build((None, 2))
    q = flow.distribution  # a tfd.TransformedDistribution whose trainable_variables are the flow's
    start = time.time()
    losses = tfp.vi.fit_surrogate_posterior(banana_log_prob, q, optimizer=tf_keras.optimizers.Adam(1e-2),
                                            num_steps=args.steps, sample_size=256, seed=(1, 2), jit_compile=True)
    x = q.sample(50000, seed=(3, 4)).numpy()
    print(f"1. VI: {args.steps} steps in {time.time() - start:.0f} s, final -ELBO {losses[-1]:.3f} nats "
          f"(a Monte Carlo estimate of KL(q || p) >= 0: p is normalized)")
    print(f"   surrogate mean {x.mean(0).round(3)}, variances {x.var(0).round(3)}; exact (0, 0) and (1, 0.75)")

    for name, bijector in (("plain HMC", None), ("flow-preconditioned HMC", tfb.Invert(flow.bijector))):
        start = time.time()
        samples, ess = hmc_ess(bijector, 1000, seed=(5, 6))
        print(f"2. {name}: ESS {ess.round(0)} of {samples.shape[0] * samples.shape[1]} draws, "
              f"mean {samples.reshape(-1, 2).mean(0).round(3)} ({time.time() - start:.0f} s)")

    grid = tfd.Sample(q, 3)  # three iid draws per event
    joint = tfd.JointDistributionNamed({"z": q, "y": lambda z: tfd.Normal(tf.reduce_sum(z, -1), 0.1)})
    draw = joint.sample(4, seed=(7, 8))
    print(f"3. tfd.Sample event shape {grid.event_shape}; joint log_prob {joint.log_prob(draw).numpy().round(2)}")


if __name__ == "__main__":
    main()
