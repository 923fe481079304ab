"""TensorFlow Probability's own flows as benchmark peers.

- "TFP MAF": `num_layers` x `tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(
  params=2, hidden_units, activation="relu"))`, with a reversal `tfb.Permute` between
  layers (the usual TFP recipe; log-scales unbounded, as TFP ships them).
- "TFP RealNVP": `num_layers` x `tfb.RealNVP(num_masked=D // 2,
  shift_and_log_scale_fn=tfb.real_nvp_default_template(hidden_units))`, with a reversal
  `tfb.Permute` between layers so the two halves alternate.

Both sit on a standard normal base in a `tfd.TransformedDistribution` and train in a
compiled `tf.function` step with Keras' Adam, under `protocol.train_loop` (same batch
size, epoch cap and early stopping as the tfflows models).

Note: `real_nvp_default_template` builds TF1 `make_template` layers; under TF 2 their
variables are not tracked by `tf.Module`, so `distribution.trainable_variables` is empty.
They are collected from the template's own `trainable_variables` after a first eager
call instead. The template's last layer is Glorot-initialized and its log-scales are
unbounded, so on these data it can start from non-finite densities; "TFP RealNVP
(zero-init fn)" is the same bijector with an equivalent tf_keras network whose last
layer starts at zero (as tfflows' conditioners do), to compare speed on equal terms.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402


class TFPCandidate(protocol.Candidate):
    library = "tensorflow_probability"

    def __init__(self, name, make_bijector):
        self.name = name
        self._make_bijector = make_bijector  # (features, config) -> (bijector, variables_fn)

    def fit(self, train, val, config):
        import keras
        import tensorflow as tf
        import tensorflow_probability as tfp

        tfd = tfp.distributions
        keras.utils.set_random_seed(config.seed)
        features = train.shape[-1]
        bijector, variables_fn = self._make_bijector(features, config)
        base = tfd.Sample(tfd.Normal(np.float32(0), np.float32(1)), sample_shape=[features])
        self.distribution = dist = tfd.TransformedDistribution(base, bijector)
        dist.log_prob(train[:2])  # creates the variables eagerly
        variables = list(variables_fn(dist))
        if not variables:
            raise RuntimeError("the TFP flow exposes no trainable variables")
        self._variables = variables
        optimizer = keras.optimizers.Adam(config.learning_rate)
        spec = tf.TensorSpec([None, features], tf.float32)

        @tf.function(input_signature=[spec], jit_compile=config.tfp_jit_compile)
        def train_step(x):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(dist.log_prob(x))
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))
            return loss

        @tf.function(input_signature=[spec])
        def mean_nll(x):
            return -tf.reduce_mean(dist.log_prob(x))

        self._log_prob = tf.function(dist.log_prob, input_signature=[spec])
        return protocol.train_loop(
            step=lambda x: float(train_step(x)),
            val_nll=lambda x: float(mean_nll(x)),
            get_state=lambda: [v.numpy() for v in variables],
            set_state=lambda state: [v.assign(s) for v, s in zip(variables, state)],
            train=train, val=val, config=config,
        )

    def log_prob(self, x):
        return self._log_prob(x).numpy()

    def sample(self, n):
        return self.distribution.sample(n, seed=0).numpy()

    def count_params(self):
        return int(sum(np.prod(v.shape) for v in self._variables))


def _reverse(features):
    import tensorflow_probability as tfp

    return tfp.bijectors.Permute(permutation=list(range(features))[::-1])


def _maf(features, config):
    import tensorflow_probability as tfp

    tfb = tfp.bijectors
    layers = []
    for i in range(config.num_layers):
        if i:
            layers.append(_reverse(features))
        made = tfb.AutoregressiveNetwork(params=2, hidden_units=list(config.hidden_units), activation="relu")
        layers.append(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=made))
    return tfb.Chain(layers[::-1]), lambda dist: dist.trainable_variables


def _real_nvp_chain(features, config, make_net):
    """RealNVP couplings on alternating halves, each shift-and-log-scale network from
    make_net(i); returns the chain and the function listing its trainable variables."""
    import tensorflow_probability as tfp

    tfb = tfp.bijectors
    layers, nets = [], []
    for i in range(config.num_layers):
        if i:
            layers.append(_reverse(features))
        nets.append(make_net(i))
        layers.append(tfb.RealNVP(num_masked=features // 2, shift_and_log_scale_fn=nets[-1]))

    def variables(dist):
        return [v for net in nets for v in net.trainable_variables]

    return tfb.Chain(layers[::-1]), variables


def _real_nvp(features, config):
    import tensorflow_probability as tfp

    hidden = list(config.hidden_units)
    return _real_nvp_chain(features, config, lambda i: tfp.bijectors.real_nvp_default_template(
        hidden_layers=hidden, name=f"real_nvp_{i}"))


class _ZeroInitShiftAndLogScale:
    """The default template's network (ReLU MLP -> shift, log_scale) written with
    tf_keras layers, its last layer zero-initialized (each coupling starts as the
    identity, as tfflows' conditioners do)."""

    def __init__(self, hidden_units):
        import tf_keras

        self.hidden = [tf_keras.layers.Dense(h, activation="relu") for h in hidden_units]
        self.out = None

    def __call__(self, x, output_units, **condition_kwargs):
        import tensorflow as tf
        import tf_keras

        if self.out is None:
            self.out = tf_keras.layers.Dense(2 * output_units, kernel_initializer="zeros")
        for layer in self.hidden:
            x = layer(x)
        shift, log_scale = tf.split(self.out(x), 2, axis=-1)
        return shift, log_scale

    @property
    def trainable_variables(self):
        return [v for layer in self.hidden + [self.out] for v in layer.trainable_variables]


def _real_nvp_zero_init(features, config):
    return _real_nvp_chain(features, config, lambda i: _ZeroInitShiftAndLogScale(config.hidden_units))


def candidates():
    """name -> Candidate of the TFP peers."""
    return {
        "TFP MAF": TFPCandidate("TFP MAF", _maf),
        "TFP RealNVP": TFPCandidate("TFP RealNVP", _real_nvp),
        "TFP RealNVP (zero-init fn)": TFPCandidate("TFP RealNVP (zero-init fn)", _real_nvp_zero_init),
    }
