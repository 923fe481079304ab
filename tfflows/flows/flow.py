"""`Flow`: a normalizing flow as a `keras.Model`, trained by maximum likelihood with `fit`.

The bijector maps data x to latent z ("normalizing direction"):
    log p(x) = log p_Z(f(x)) + log|det df/dx|
`call(x)` returns log p(x) per row; `fit(x)` minimizes its negative mean (no targets).

Every public method checks its inputs once, here (the data rules of DESIGN.md), and
converts them to tensors of the flow's compute dtype; the layers below never re-check.
"""

import math

import keras
import numpy as np
from keras import ops

from tfflows.bijectors.base import precision_policies
from tfflows.data import validation
from tfflows.distributions import StandardNormal
from tfflows.flows import inputs
from tfflows.flows.interop_views import InteropViews
from tfflows.flows.training import AUTO_STEPS_PER_EXECUTION, KerasTraining  # noqa: F401
from tfflows.interop.backend import feeder


def split_inputs(inputs):
    """`inputs` is x, or a dict {"x": x, "context": c} for conditional flows."""
    if isinstance(inputs, dict):
        return inputs["x"], inputs.get("context")
    return inputs, None


@keras.saving.register_keras_serializable(package="tfflows")
class Flow(KerasTraining, InteropViews, keras.Model):
    """A normalizing flow: `bijector` (data -> latent) on top of a `base` distribution.

    log_prob(x) = base.log_prob(bijector.forward(x)) + bijector.forward_log_det_jacobian(x)
    sample(n)   = bijector.inverse(z),  z ~ base
    encode(x)   = bijector.forward(x);  decode(z) = bijector.inverse(z)

    Args:
        bijector: a `tfflows.Bijector` (usually a `Chain`).
        base: a `tfflows` base distribution (default `StandardNormal`) or any TFP
            distribution with the matching event shape (wrapped in `TFPDistribution`,
            saved when its parameters are numbers, arrays, variables or nested TFP objects).
        event_shape: shape of one data point; inferred from the first batch if omitted.
        context_features: size of the conditioning vector of a conditional flow.
    """

    def __init__(self, bijector, base=None, event_shape=None, context_features=0, **kwargs):
        kwargs["dtype"] = precision_policies(kwargs.get("dtype"))[
            0
        ]  # float32 under mixed precision
        super().__init__(**kwargs)
        if type(bijector).__module__.startswith("tensorflow_probability"):
            from tfflows.interop.tfp import TFPBijector  # a raw TFP bijector as the whole transform

            bijector = TFPBijector(bijector)
        self.transform = bijector
        if base is not None and type(base).__module__.startswith("tensorflow_probability"):
            from tfflows.interop.tfp import TFPDistribution  # saveable; stateless integer seeds

            base = TFPDistribution(base)
        self.base = base if base is not None else StandardNormal()
        self.event_shape = None if event_shape is None else tuple(int(s) for s in event_shape)
        self.context_features = int(context_features)

    # ----- building -----------------------------------------------------------------
    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["x"]
        input_shape = tuple(input_shape)
        if self.event_shape is None:
            self.event_shape = tuple(int(s) for s in input_shape[1:])
        if not self.transform.built:
            self.transform.build((None,) + self.event_shape)
        feeder().on_build(self)  # TensorFlow: the variables as a tf.train.Checkpoint can see them

    def _ensure_built(self):
        if not self.built:
            if self.event_shape is None:
                raise ValueError(
                    "This flow has not seen data yet: pass event_shape= or call it on data first."
                )
            self.build((None,) + self.event_shape)

    def _ensure_built_for(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))  # any batch size (saved signatures)

    def get_build_config(self):
        if self.event_shape is None:
            return None
        return {"input_shape": (None,) + self.event_shape}

    def build_from_config(self, config):
        if config:
            self.build(config["input_shape"])

    @property
    def event_ndims(self):
        return len(self.event_shape)

    @property
    def latent_shape(self):
        """Event shape of z = encode(x) (differs from `event_shape` after image squeezes)."""
        self._ensure_built()
        return tuple(
            int(s) for s in self.transform.compute_output_shape((None,) + self.event_shape)[1:]
        )

    # ----- density --------------------------------------------------------------------
    def call(self, inputs, training=False):
        x, context = split_inputs(inputs)
        z, log_det = self.transform.forward_and_log_det(x, context, training=training)
        return self._base_log_prob(z) + log_det

    def _base_log_prob(self, z):
        return self.base.log_prob(z, event_ndims=len(z.shape) - 1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean negative log-likelihood in nats (plus any regularization losses)."""
        # Keras's "sum over batch size": with weights of mean 1 over the data (array
        # inputs are normalized so), the epoch mean is sum(w nll) / sum(w), and a batch
        # of zero weights contributes 0 (never 0 / 0)
        log_p = y_pred if sample_weight is None else y_pred * ops.cast(sample_weight, y_pred.dtype)
        extra = ops.sum(self.losses) if self.losses else None
        return feeder().loss(log_p, extra)  # under tf.distribute: each replica's share

    # ----- the boundary: checks and conversion, once ------------------------------------
    def check_data(self, data, sample_weight=None, what="x", finite=True):
        """`data` in any form `fit` takes, checked once against the data rules and this
        flow's event shape (arrays whole, a stream's first batch): a
        `tfflows.flows.inputs.Data`."""
        return inputs.check_data(
            data, self._check_rows, self.compute_dtype, sample_weight, what, finite
        )

    def _check_rows(self, x, what="x", finite=False, event_shape="data"):
        """x checked against the data rules (and the event shape, once known): an array
        as a NumPy array, a tensor as a tensor (`inputs.check_rows`)."""
        expected = self.event_shape if event_shape == "data" else event_shape
        return inputs.check_rows(x, expected, what, finite=finite)

    def _prepare(self, x, context=None, what="x", finite=False, latent=False):
        """(x, context) checked and converted to tensors of the compute dtype."""
        if latent:
            self._ensure_built()
            x = self._check_rows(x, what, finite, event_shape=self.latent_shape)
        else:
            x = self._check_rows(x, what, finite)
            self._ensure_built_for(x)
        if context is not None:
            context = inputs.check_rows(context, None, "context", finite=finite)
            if context.shape[0] != x.shape[0]:
                raise ValueError(
                    f"context has {context.shape[0]} rows but {what} has {x.shape[0]}."
                )
            context = ops.convert_to_tensor(context, self.compute_dtype)
        return ops.convert_to_tensor(x, self.compute_dtype), context

    def _inputs(self, x, context):
        return x if context is None else {"x": x, "context": context}

    def log_prob(self, x, context=None):
        """log p(x) per row, in nats."""
        x, context = self._prepare(x, context)
        return self(self._inputs(x, context))

    def bits_per_dim(self, x, context=None):
        """-log2 p(x) / D, the usual image metric (in the space of x)."""
        log_p = self.log_prob(x, context)  # builds the flow, so event_shape is known
        return -log_p / (int(np.prod(self.event_shape)) * math.log(2.0))

    def encode(self, x, context=None):
        """Data -> latent: z = f(x)."""
        x, context = self._prepare(x, context)
        return self.transform.forward(x, context)

    def decode(self, z, context=None):
        """Latent -> data: x = f^-1(z)."""
        z, context = self._prepare(z, context, what="z", latent=True)
        return self.transform.inverse(z, context)

    def sample(self, n, seed=None, context=None):
        """n samples x = f^-1(z), z ~ base. With a context, one sample per context row
        (a single context row is repeated n times). `seed`: None, an integer or a
        `keras.random.SeedGenerator`."""
        n = validation.check_sample_count(n)
        self._ensure_built()
        return self.draw(n, seed, self._sample_context(n, context), with_log_prob=False)[0]

    def sample_and_log_prob(self, n, seed=None, context=None):
        """n samples and their log-density from one pass: x = f^-1(z), z ~ base, and
        log p(x) = log p_Z(z) - log|det df^-1/dz| (cheap for flows whose inverse is
        their fast direction, e.g. IAF)."""
        n = validation.check_sample_count(n)
        self._ensure_built()
        return self.draw(n, seed, self._sample_context(n, context))

    def draw(self, n, seed=None, context=None, training=False, with_log_prob=True):
        """The sampling pass without the boundary checks (usable inside compiled steps,
        e.g. by `Distiller`): returns (x, log p(x)) for n draws z ~ base (n = the context
        rows when a context tensor is given), or (x, None) when `with_log_prob` is False."""
        if context is not None:
            n = ops.shape(context)[0]
        z = self.base.sample(n, self.latent_shape, seed=seed, dtype=self.compute_dtype)
        if not with_log_prob:
            return self.transform.inverse(z, context), None
        x, inverse_log_det = self.transform.inverse_and_log_det(z, context, training=training)
        return x, self._base_log_prob(z) - inverse_log_det

    def _sample_context(self, n, context):
        if context is None:
            return None
        context = ops.convert_to_tensor(
            inputs.check_rows(context, None, "context"), self.compute_dtype
        )
        if context.shape[0] == 1:
            return ops.repeat(context, n, axis=0)
        if context.shape[0] != n:
            raise ValueError(f"context has {context.shape[0]} rows; expected 1 or n={n}.")
        return context

    def summary(self, *args, **kwargs):
        """Keras's summary; a flow that knows its event shape is built first."""
        self._ensure_built()
        return super().summary(*args, **kwargs)

    def count_params(self):
        self._ensure_built()
        return super().count_params()

    def load_weights(self, filepath, *args, **kwargs):
        """Keras's `load_weights`; a flow that knows its event shape is built first."""
        self._ensure_built()
        return super().load_weights(filepath, *args, **kwargs)

    # ----- transforms -----------------------------------------------------------------
    def with_transform(self, bijector):
        """A new, unbuilt `Flow` with `bijector` as its transform and this flow's base,
        event shape, context size and name (compile it again before `fit`)."""
        base = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(self.base))
        return Flow(
            bijector,
            base=base,
            event_shape=self.event_shape,
            context_features=self.context_features,
            name=self.name,
        )

    # ----- serialization --------------------------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "bijector": keras.saving.serialize_keras_object(self.transform),
            "base": keras.saving.serialize_keras_object(self.base),
            "event_shape": None if self.event_shape is None else list(self.event_shape),
            "context_features": self.context_features,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["bijector"] = keras.saving.deserialize_keras_object(config["bijector"])
        config["base"] = keras.saving.deserialize_keras_object(config["base"])
        return cls(**config)
