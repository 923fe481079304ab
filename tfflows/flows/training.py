"""`Flow`'s training API (`KerasTraining`: compile, fit, evaluate, predict over Keras's) and
its data path once the data are checked (`Data`): what Keras reads (the stream itself, or
the backend feeder's `Feed` of the arrays), the data-dependent initialization, and fit's
callbacks."""

import keras
from keras import ops

from tfflows.data import source
from tfflows.flows.callbacks import EpochProgbarLogger, StopOnNonFiniteLoss
from tfflows.interop.backend import feeder
from tfflows.interop.feed import Feed

# Training steps per call of the train function when `compile` is given
# steps_per_execution="auto" (the default): Keras's per-call overhead is a large part of
# a small flow's training step (BENCHMARKS.md, "fit input").
AUTO_STEPS_PER_EXECUTION = 32


class KerasTraining:
    """Keras's training methods of a `Flow` (a mixin before `keras.Model`): no targets, the
    flow's own negative log-likelihood, data checked once (`Flow.check_data`)."""

    def compile(
        self, optimizer="adam", loss=None, metrics=None, *, steps_per_execution="auto", **kwargs
    ):
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
            raise ValueError(
                "Flows train on their own negative log-likelihood; compile(loss=...) would be "
                "ignored, so it is refused. Remove the loss argument."
            )
        if metrics:
            raise ValueError(
                "compile(metrics=...) is not supported: flows have no targets to compare. "
                "The loss (mean NLL in nats) is reported; use evaluate(x) or log_prob(x)."
            )
        if steps_per_execution == "auto":
            multi_step = feeder().multi_step_supported(self, kwargs)
            steps_per_execution = AUTO_STEPS_PER_EXECUTION if multi_step else 1
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

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        **kwargs,
    ):
        """Maximum-likelihood training; the loss is the (weighted) mean negative
        log-likelihood in nats. Data, as Keras takes it (without targets): an array, a dict
        {"x", "context"}, a tuple (x,), (x, None) or (x, None, sample_weight), or a
        `tf.data.Dataset`, Python generator or `keras.utils.PyDataset` of such batches,
        or batches of x read again at every epoch (a list of batches, `TextBatches`, a
        function returning an iterable): these are shuffled within a window of rows and
        batched again to `batch_size`.
        `validation_data` takes the same forms; `validation_split`, `sample_weight`
        (weighted maximum likelihood: a row of weight 0 is removed exactly), `shuffle`,
        `initial_epoch`, `steps_per_epoch` and the callbacks work as in Keras."""
        if y is not None:
            raise ValueError(
                "Flows are trained without targets (y must be None); for a conditional flow pass "
                "x={'x': data, 'context': context}."
            )
        if class_weight is not None:
            raise ValueError(
                "class_weight is not supported: flows have no classes. For weighted maximum "
                "likelihood pass sample_weight (one weight per row)."
            )
        train, val = train_and_validation(self, x, sample_weight, validation_data, validation_split)
        prepare_training(self, train.first)
        callbacks = training_callbacks(callbacks, verbose)
        feed = keras_feed(train, batch_size, shuffle, callbacks, training=True)
        feeds = [feed]
        if val is not None:
            val_batch_size = kwargs.get("validation_batch_size") or batch_size
            feeds.append(keras_feed(val, val_batch_size, False))
            validation_data = feeds[-1].as_validation_data()
        self._inside_fit = True  # Keras's validation pass calls evaluate on fed data
        try:
            return self._keras_fit(feed, epochs, verbose, callbacks, validation_data, kwargs)
        except Exception:
            for fed in feeds:  # a bad batch of a re-readable source: the source's own error
                fed.raise_source_error()
            raise
        finally:
            self._inside_fit = False

    def _keras_fit(self, feed, epochs, verbose, callbacks, validation_data, kwargs):
        return super().fit(
            feed.x,
            feed.y,
            batch_size=feed.batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_data=validation_data,
            shuffle=feed.shuffle,
            sample_weight=feed.sample_weight,
            **kwargs,
        )

    def evaluate(
        self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, **kwargs
    ):
        """The mean negative log-likelihood of the data, in nats (weighted by
        `sample_weight`: sum(w nll) / sum(w)); data in any form `fit` takes."""
        if getattr(self, "_inside_fit", False):  # fit's validation pass: checked by fit
            return super().evaluate(
                x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight, **kwargs
            )
        if y is not None:
            raise ValueError("Flows are evaluated without targets (y must be None).")
        data = checked(self, x, sample_weight, "x")
        build_for(self, data.first[0])
        if not self.compiled:  # nothing to train: the loss alone
            self.compile()
        feed = keras_feed(data, batch_size, shuffle=False)
        try:
            return super().evaluate(
                feed.x,
                feed.y,
                batch_size=feed.batch_size,
                verbose=verbose,
                sample_weight=feed.sample_weight,
                **kwargs,
            )
        except Exception:
            feed.raise_source_error()
            raise

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Per-row log p(x) in nats (a NumPy array of shape (batch,)), like `log_prob`
        batched by Keras; x is an array, a dict {"x", "context"} or a stream of them."""
        if source.is_stream(x) and not source.is_rereadable(x):
            return super().predict(x, batch_size=batch_size, verbose=verbose, **kwargs)
        data = self.check_data(x, what="x", finite=False)
        build_for(self, data.first[0])
        inputs = data.inputs if data.stream is None else keras_feed(data, batch_size, False).x
        return super().predict(inputs, batch_size=batch_size, verbose=verbose, **kwargs)

    def make_train_function(self, force=False):
        # under a mirrored strategy, tfflows's loop (`tf_training.step_function`)
        if not feeder().own_step_function(self, "train", force):
            super().make_train_function(force)
        return self.train_function

    def make_test_function(self, force=False):
        if not feeder().own_step_function(self, "test", force):
            super().make_test_function(force)
        return self.test_function


def checked(flow, data, sample_weight, what):
    """`flow.check_data` of data to train or evaluate on, refused where the backend
    cannot feed its form under the flow's strategy."""
    data = flow.check_data(data, sample_weight, what)
    feeder().refuse(flow, data, what)
    return data


def train_and_validation(flow, x, sample_weight, validation_data, validation_split):
    """(training `Data`, validation `Data` or None) from fit's arguments."""
    train = checked(flow, x, sample_weight, "training data")
    if not validation_split:
        if validation_data is None:
            return train, None
        return train, checked(flow, validation_data, None, "validation_data")
    if validation_data is not None and train.stream is None:
        raise ValueError("Give validation_data or validation_split, not both.")
    return train.split(validation_split)


def keras_feed(data, batch_size, shuffle, callbacks=None, training=False):
    """What Keras reads for checked `data`: a stream as it is, arrays through the
    backend's feeder (which may add a callback to `callbacks`; `training`: the feed
    `fit` trains on)."""
    if isinstance(data.stream, source.Source):  # re-readable: read again every epoch
        dtype = keras.backend.standardize_dtype(data.first[0].dtype)
        return feeder().feed_source(data.stream, batch_size, shuffle, dtype)
    if data.stream is not None:
        return Feed(data.stream, batch_size=batch_size, shuffle=shuffle)
    return feeder().feed(data, batch_size, shuffle, callbacks, training=training)


def build_for(flow, x):
    """Build an unbuilt `flow` for rows like x (any batch size: saved signatures)."""
    if not flow.built:
        flow.build((None,) + tuple(x.shape[1:]))


def prepare_training(flow, first):
    """Build, initialize from data (ActNorm, fitted layers) and compile, under the
    backend's scope (the strategy's); build the optimizer before the first trace."""
    with feeder().scope(flow):  # variables made here must be mirrored under tf.distribute
        x, context = first
        build_for(flow, x)
        flow.transform.initialize_from_data(
            ops.convert_to_tensor(x, flow.compute_dtype),
            None if context is None else ops.convert_to_tensor(context, flow.compute_dtype),
        )
        if not flow.compiled:
            flow.compile(optimizer="adam")
        if flow.optimizer is not None and not flow.optimizer.built:
            # Built now, not lazily inside the first traced train step (Keras's default
            # without a distribution strategy): variables created during a trace make
            # tf.function trace the whole train step a second time.
            flow.optimizer.build(flow.trainable_variables)


def training_callbacks(callbacks, verbose):
    """`fit`'s callbacks with `StopOnNonFiniteLoss` and (unless silent) the epoch progress bar."""
    callbacks = list(callbacks or [])
    if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
        callbacks.append(StopOnNonFiniteLoss())
    if verbose != 0 and not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(EpochProgbarLogger())
    return callbacks
