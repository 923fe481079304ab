"""`Flow`: a normalizing flow as a `keras.Model`, trained by maximum likelihood with `fit`.

The bijector maps data x to latent z ("normalizing direction"):
    log p(x) = log p_Z(f(x)) + log|det df/dx|
`call(x)` returns log p(x) per row; `fit(x)` minimizes its negative mean (no targets).

Every public method checks its inputs once, here (the data rules of DESIGN.md), and
converts them to tensors of the flow's compute dtype; the layers below never re-check.
"""

import contextlib
import math

import keras
import numpy as np
from keras import ops

from tfflows.bijectors.base import precision_policies
from tfflows.data import validation
from tfflows.distributions import StandardNormal
from tfflows.flows import inputs, training
from tfflows.flows.training import split_inputs

# Training steps per call of the train function when `compile` is given
# steps_per_execution="auto" (the default): Keras's per-call overhead is a large part of
# a small flow's training step (BENCHMARKS.md, "fit input").
AUTO_STEPS_PER_EXECUTION = 32


def _tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package="tfflows")
class Flow(keras.Model):
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
        kwargs["dtype"] = precision_policies(kwargs.get("dtype"))[0]  # float32 under mixed precision
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
        if _tensorflow_backend():
            from tfflows.interop.tf_training import CheckpointVariables

            self.checkpoint_variables = CheckpointVariables(self)

    def _ensure_built(self):
        if not self.built:
            if self.event_shape is None:
                raise ValueError("This flow has not seen data yet: pass event_shape= or call it on data first.")
            self.build((None,) + self.event_shape)

    def _ensure_built_for(self, x):
        if not self.built:
            self.build((None,) + tuple(np.shape(x)[1:]))  # any batch size (saved signatures)

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
        return tuple(int(s) for s in self.transform.compute_output_shape((None,) + self.event_shape)[1:])

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
        if _tensorflow_backend():  # each replica's share of the global batch under tf.distribute
            from tfflows.interop.tf_training import replica_loss

            return replica_loss(log_p, extra)
        return -ops.mean(log_p) if extra is None else extra - ops.mean(log_p)

    # ----- the boundary: checks and conversion, once ------------------------------------
    def _check_rows(self, x, what="x", finite=False, event_shape="data"):
        """x checked against the data rules (and the event shape, once known) as an array;
        symbolic tensors are checked by dtype and static shape only."""
        expected = self.event_shape if event_shape == "data" else event_shape
        return validation.check_array(x, expected, what, finite=finite)

    def _prepare(self, x, context=None, what="x", finite=False, latent=False):
        """(x, context) checked and converted to tensors of the compute dtype."""
        if latent:
            self._ensure_built()
            x = self._check_rows(x, what, finite, event_shape=self.latent_shape)
        else:
            x = self._check_rows(x, what, finite)
            self._ensure_built_for(x)
        if context is not None:
            context = validation.check_array(context, None, "context", finite=finite)
            if np.shape(context)[0] != np.shape(x)[0]:
                raise ValueError(f"context has {np.shape(context)[0]} rows but {what} has {np.shape(x)[0]}.")
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
        context = ops.convert_to_tensor(validation.check_array(context, None, "context"), self.compute_dtype)
        if context.shape[0] == 1:
            return ops.repeat(context, n, axis=0)
        if context.shape[0] != n:
            raise ValueError(f"context has {context.shape[0]} rows; expected 1 or n={n}.")
        return context

    # ----- training -------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None, *, steps_per_execution="auto", **kwargs):
        """Keras's `compile`; the loss is always the model's own negative log-likelihood.

        `steps_per_execution="auto"` runs up to `AUTO_STEPS_PER_EXECUTION` (32) training
        steps per call of the train function (on TensorFlow one compiled loop; on JAX a
        Python loop over the compiled step); batch-level callbacks then see every 32nd
        batch (and the running mean loss). Under MirroredStrategy and
        MultiWorkerMirroredStrategy the loop is tfflows's own (Keras 3.15's fails there
        with more than one step, its nested step function's collectives inside a
        `tf.cond`: the failure of keras-team/keras#19246; and under multi-worker with any
        count, tensorflow/tensorflow#72388; see `tfflows.interop.tf_training`); under
        other strategies (TPU) or with `jit_compile=True` it is Keras's, and "auto" is 1.
        Pass `steps_per_execution=1` for per-batch callbacks. Under the global policy
        "mixed_float16" the optimizer is wrapped in `keras.optimizers.LossScaleOptimizer`
        (the conditioner networks compute in float16)."""
        if loss is not None:
            raise ValueError("Flows train on their own negative log-likelihood; compile(loss=...) would be "
                             "ignored, so it is refused. Remove the loss argument.")
        if metrics:
            raise ValueError("compile(metrics=...) is not supported: flows have no targets to compare. "
                             "The loss (mean NLL in nats) is reported; use evaluate(x) or log_prob(x).")
        if steps_per_execution == "auto":
            steps_per_execution = AUTO_STEPS_PER_EXECUTION if training.multi_step_supported(self, kwargs) else 1
        if keras.config.dtype_policy().name == "mixed_float16":
            optimizer = keras.optimizers.get(optimizer)
            if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        super().compile(optimizer, steps_per_execution=steps_per_execution, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compile() when loading a model whose class overrides it; this
        # override only adds a default, so compile as Keras's own method would.
        config = keras.saving.deserialize_keras_object(config)
        config = {k: v for k, v in config.items() if k not in ("loss", "metrics") or v}
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            **kwargs):
        """Maximum-likelihood training; the loss is the (weighted) mean negative
        log-likelihood in nats. Data, as Keras takes it (without targets): an array, a dict
        {"x", "context"}, a tuple (x,), (x, None) or (x, None, sample_weight), or a
        `tf.data.Dataset`, Python generator or `keras.utils.PyDataset` of such batches.
        `validation_data` takes the same forms; `validation_split`, `sample_weight`
        (weighted maximum likelihood: a row of weight 0 is removed exactly), `shuffle`,
        `initial_epoch`, `steps_per_epoch` and the callbacks work as in Keras."""
        if y is not None:
            raise ValueError("Flows are trained without targets (y must be None); for a conditional flow pass "
                             "x={'x': data, 'context': context}.")
        if class_weight is not None:
            raise ValueError("class_weight is not supported: flows have no classes. For weighted maximum "
                             "likelihood pass sample_weight (one weight per row).")
        requested_batch_size = batch_size
        train, val = training.train_and_validation(self, x, sample_weight, validation_data, validation_split)
        training.prepare_training(self, train.first)
        callbacks = training.training_callbacks(callbacks, verbose)
        if train.stream is not None:
            x = train.stream
        else:
            x, more = training.array_source(train, batch_size, shuffle, callbacks)
            kwargs.update(more)
            batch_size = kwargs.pop("batch_size", None) if "batch_size" in more else None
        if val is not None:
            validation_data = training.validation_source(val, kwargs.get("validation_batch_size")
                                                         or requested_batch_size)
        return super().fit(x, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                           validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, **kwargs):
        """The mean negative log-likelihood of the data, in nats (weighted by
        `sample_weight`: sum(w nll) / sum(w)); data in any form `fit` takes."""
        if y is not None and y is not sample_weight:  # fit's validation on JAX passes y = the weights
            raise ValueError("Flows are evaluated without targets (y must be None).")
        if training.is_checked_dataset(x) or (y is not None and y is sample_weight):  # built by fit from checked arrays (its validation data)
            return super().evaluate(x, y=y, verbose=verbose, sample_weight=sample_weight, batch_size=batch_size,
                                    **kwargs)
        data = training.checked(self, x, sample_weight, "x")
        self._ensure_built_for(training.split_inputs(data.first)[0])
        if not self.compiled:  # nothing to train: the loss alone
            self.compile()
        if data.stream is not None:
            return super().evaluate(data.stream, verbose=verbose, **kwargs)
        source, more = training.array_source(data, batch_size, shuffle=False)
        more.pop("shuffle", None)
        return super().evaluate(source, verbose=verbose, **{**more, **kwargs})

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Per-row log p(x) in nats (a NumPy array of shape (batch,)), like `log_prob`
        batched by Keras; x is an array, a dict {"x", "context"} or a stream of them."""
        if inputs.is_stream(x):
            return super().predict(x, batch_size=batch_size, verbose=verbose, **kwargs)
        data = inputs.checked_rows(inputs.unpack(x, "x")[0], self._check_rows, "x", self.compute_dtype,
                                   finite=False)
        self._ensure_built_for(training.split_inputs(data)[0])
        return super().predict(data, batch_size=batch_size, verbose=verbose, **kwargs)

    def make_train_function(self, force=False):
        # under a mirrored strategy, tfflows's loop (see `training.distributed_function`)
        if not training.distributed_function(self, "train", force):
            super().make_train_function(force)
        return self.train_function

    def make_test_function(self, force=False):
        if not training.distributed_function(self, "test", force):
            super().make_test_function(force)
        return self.test_function

    def _strategy_scope(self):
        strategy = getattr(self, "distribute_strategy", None)  # TensorFlow backend only
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

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
        return Flow(bijector, base=base, event_shape=self.event_shape, context_features=self.context_features,
                    name=self.name)

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

    # ----- export -----------------------------------------------------------------------
    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Write a SavedModel for TF Serving with the signatures serving_default,
        log_prob, encode, decode and sample (see `tfflows.interop.export`). Any other
        `format` (e.g. "onnx", "openvino") or an explicit `input_signature` is Keras's own
        `Model.export` of `call` (log p(x)), with its arguments passed through."""
        if format == "tf_saved_model" and input_signature is None and not kwargs:
            from tfflows.interop.export import export_saved_model

            return export_saved_model(self, filepath, verbose=bool(verbose))
        self._ensure_built()
        return super().export(filepath, format=format, verbose=True if verbose is None else verbose,
                              input_signature=input_signature, **kwargs)

    # ----- TFP views ------------------------------------------------------------------
    @property
    def bijector(self):
        """The flow's map data -> latent as a `tfp.bijectors.Bijector`."""
        return self.transform.bijector

    @property
    def distribution(self):
        """The flow as a `tfd.TransformedDistribution` (base pushed through the inverse)."""
        from tfflows.interop.tfp import flow_distribution

        return flow_distribution(self)
