"""Keras callbacks that keep flow training honest."""

import math
import warnings

import keras

from tfflows.interop.backend import feeder


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` at the first NaN/Inf batch loss and restores the last good weights.

    The weights are snapshotted at the end of every epoch that finished with a finite
    loss and finite weights (and once before training), so a blow-up never leaves a NaN
    model behind. With `steps_per_execution` > 1 the loss is seen once per execution (a
    running mean, which turns NaN/Inf with any of its steps).
    `Flow.fit` adds this callback automatically. After a stop, `stopped_at` holds
    (epoch, batch) and the History has a `"nonfinite_loss"` entry.
    """

    def __init__(self):
        super().__init__()
        self._good_weights = None
        self.stopped_at = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self._snapshot = feeder().snapshot_function(self.model)
        self._good_weights = self._snapshot()[0]
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped_at = (self._epoch, batch)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_at is None:
            weights, finite = self._snapshot()
            # A last step with a finite loss can still leave NaN weights (NaN gradients).
            if finite:
                self._good_weights = weights
        elif logs is not None:
            logs["nonfinite_loss"] = 1.0

    def on_train_end(self, logs=None):
        if self.stopped_at is not None:
            for variable, value in zip(self.model.weights, self._good_weights):
                variable.assign(value)
            epoch, batch = self.stopped_at
            warnings.warn(
                f"Training stopped: the loss became NaN or Inf at epoch {epoch + 1}, "
                f"batch {batch}. "
                f"The weights of the last epoch with a finite loss were restored. Try a lower "
                f"learning rate, gradient clipping "
                f"(compile(optimizer=keras.optimizers.Adam(clipnorm=1.0))) "
                f"or standardizing the data.",
                RuntimeWarning,
                stacklevel=2,
            )


class EpochProgbarLogger(keras.callbacks.ProgbarLogger):
    """Keras's progress bar with the step count clipped to the epoch's length.

    With `steps_per_execution` > 1, Keras reports a partial last execution as if it were
    full, and its bar would read e.g. "32/25"; `Flow.fit` uses this logger instead."""

    def on_train_batch_end(self, batch, logs=None):
        if self.target is not None:
            batch = min(batch, self.target - 1)
        super().on_train_batch_end(batch, logs)
