"""How checked data reach Keras: the feeder interface and its generic implementation.

`KerasFeeder` is Keras's generic path (any backend: the arrays handed to Keras's own
adapters); `tfflows.interop.tf_training.TensorFlowFeeder` overrides it on TensorFlow
(a `tf.data` pipeline over the checked arrays, tf.distribute support).
`tfflows.interop.backend.feeder()` chooses one, once; `tfflows.flows` calls only this
interface, so it holds no backend branch.
"""

import contextlib
import dataclasses

import keras
import numpy as np

from tfflows._math import draw_seed


@dataclasses.dataclass(frozen=True)
class Feed:
    """What `keras.Model.fit`/`evaluate` receive for checked data: `x` (arrays or a
    dataset), `y` and `sample_weight` (Keras's generic path drops sample weights whose y
    is None, so there y is the weights; the loss ignores y), `batch_size`, `shuffle`."""

    x: object
    y: object = None
    sample_weight: object = None
    batch_size: object = None
    shuffle: bool = False
    source_errors: list = None  # errors of a re-readable source, raised by `raise_source_error`

    def raise_source_error(self):
        """Raise the first error of the source being read, if any (a data error in a
        batch that a backend pipeline reported as its own, less readable, error)."""
        if self.source_errors:
            raise self.source_errors[0] from None

    def as_validation_data(self):
        """The form of `fit(validation_data=...)`."""
        if self.y is None and self.sample_weight is None:
            return self.x
        return self.x, self.y, self.sample_weight


class KerasFeeder:
    """Keras's generic path (any backend): arrays to Keras's adapters, no distribution."""

    def scope(self, model):
        """The context under which `model`'s variables must be created."""
        return contextlib.nullcontext()

    def on_build(self, model):
        """Backend extras attached to a newly built model (none here)."""

    def loss(self, log_p, extra=None):
        """The mean negative log-likelihood -mean(log_p) (+ `extra`)."""
        loss = -keras.ops.mean(log_p)
        return loss if extra is None else loss + extra

    def refuse(self, model, data, what):
        """Raise for data forms the backend cannot feed under `model`'s strategy."""

    def feed(self, data, batch_size, shuffle, callbacks=None, training=False):
        """A `Feed` of checked in-memory `tfflows.flows.inputs.Data` (`training`: the
        feed `fit` trains on; Keras's adapters batch it as they do any data)."""
        return Feed(
            data.inputs,
            y=data.weights,
            sample_weight=data.weights,
            batch_size=batch_size,
            shuffle=shuffle,
        )

    def feed_source(self, batches, batch_size, shuffle, dtype):
        """A `Feed` of a re-readable `tfflows.data.source.Source` of rows x: the tf.data
        pipeline of `tfflows.interop.source_dataset`, read again at every epoch."""
        from tfflows.interop.source_dataset import source_dataset

        errors = []
        dataset = source_dataset(
            batches, batch_size or 32, shuffle, dtype, seed=draw_seed(), errors=errors
        )
        return Feed(dataset, source_errors=errors)

    def multi_step_supported(self, model, compile_kwargs):
        """Whether `steps_per_execution > 1` works for `model`."""
        return True

    def own_step_function(self, model, kind, force=False):
        """Set `model.{kind}_function` to a loop of tfflows's own where Keras's fails;
        returns False where Keras's own function is used."""
        return False

    def snapshot_function(self, model):
        """A function () -> (copies of the model's weights, whether all are finite)."""

        def snapshot():
            values = model.get_weights()
            finite = all(
                np.all(np.isfinite(w)) for w, v in zip(values, model.weights) if _is_float(v)
            )
            return values, finite

        return snapshot


def _is_float(variable):
    return keras.backend.standardize_dtype(variable.dtype).startswith(("float", "bfloat"))
