"""tfflows and TensorFlow Probability, both ways.

    python examples/tfp_interop.py        # about half a minute on 2 CPU cores

1. A flow with a heavy-tailed TFP base (`tfd.StudentT`, wrapped in `TFPDistribution` so
   that it is saved) and a TFP bijector as its first layer (`TFPBijector(tfb.SinhArcsinh)`
   with trainable skewness and tail weight), fitted to skewed, heavy-tailed 2-D data.
2. The fitted flow used as TFP objects: `flow.distribution` (a TransformedDistribution)
   inside a `tfd.Mixture` with a broad Gaussian (an outlier model), and `flow.bijector`
   inside `tfb.Chain` with a TFP bijector.
3. Saved and reloaded in safe mode: the TFP parts come back, with their trained values.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import tfflows as tff  # noqa: E402

tfb, tfd = tfp.bijectors, tfp.distributions


def data(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.standard_t(df=5, size=(n, 2))
    return np.stack([np.sinh(0.5 * t[:, 0] + 0.3), t[:, 1] + 0.5 * t[:, 0]], axis=1).astype("float32")


def main():
    x = data()
    train, test = x[:3000], x[3000:]

    # TFP -> tfflows: a TFP bijector as a layer, a TFP distribution as the base.
    marginal = tff.TFPBijector(tfb.SinhArcsinh(
        skewness=tf.Variable(tf.zeros(2)),
        tailweight=tfp.util.TransformedVariable(tf.ones(2), tfb.Softplus())), name="sinh_arcsinh")
    base = tff.TFPDistribution(tfd.Independent(
        tfd.StudentT(df=tfp.util.TransformedVariable(5.0 * tf.ones(2), tfb.Softplus()), loc=tf.zeros(2),
                     scale=tf.ones(2)), 1))
    flow = tff.Flow(tff.Chain([tff.ActNorm(), marginal, tff.AffineCoupling(hidden_units=(32, 32)),
                               tff.AffineCoupling(hidden_units=(32, 32), flip=True)]),
                    base=base, event_shape=(2,))
    flow.fit(train, epochs=30, batch_size=128, verbose=0)
    print(f"test NLL: {-flow.log_prob(test).numpy().mean():.3f} nats")
    print("trained StudentT df:", base.distribution.distribution.df.numpy().round(2))

    # tfflows -> TFP: the model as a TransformedDistribution and as a bijector.
    dist = flow.distribution
    print("distribution:", dist)
    print("max |flow.log_prob - distribution.log_prob|:",
          float(np.abs(flow.log_prob(test).numpy() - dist.log_prob(test).numpy()).max()))
    robust = tfd.Mixture(tfd.Categorical(probs=[0.98, 0.02]),
                         [dist, tfd.MultivariateNormalDiag(tf.zeros(2), 10 * tf.ones(2))])
    print("mixture with an outlier component, mean log-lik:", float(tf.reduce_mean(robust.log_prob(test))))
    pipeline = tfb.Chain([flow.bijector, tfb.Shift([1.0, -1.0])])  # tfb.Chain applies right to left
    z = pipeline.forward(test[:2])
    print("tfb.Chain([flow.bijector, Shift]) forward:", z.numpy().astype(float).round(3).tolist())
    same_seed = np.allclose(flow.sample(3, seed=4).numpy(), dist.sample(3, seed=tf.constant([4, 0])).numpy())
    print("flow.sample(3, seed=4) == distribution.sample(3, seed=(4, 0)):", same_seed)

    # Saving: the TFP parts are rebuilt from their class names and parameters (safe mode).
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tfp_flow.keras")
        flow.save(path)
        loaded = tff.load_model(path)
    print("reloaded base:", loaded.base.distribution)
    print("reloaded log_prob identical:", np.array_equal(loaded.log_prob(test).numpy(), flow.log_prob(test).numpy()))


if __name__ == "__main__":
    main()
