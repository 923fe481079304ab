"""The forms of data `Flow.fit`, `evaluate` and `predict` accept, as Keras users write
them, reduced in one place (`check_data`) to one checked value, `Data`: in-memory rows
(checked whole, here, once) or a stream (`tfflows.data.source.is_stream`), whose first
batch is checked here: a dataset, a Python generator or a `keras.utils.PyDataset`, whose
batches Keras reads, or a re-readable stream (a list of batches, `TextBatches`, a function
returning an iterable of batches), a `tfflows.data.source.Source` that the backend's
feeder reads again at every epoch.

Arrays:     x | {"x": x, "context": c} | (x,) | (x, None) | (x, None, sample_weight)
Streams:    batches of any of the array forms above (of x alone when re-readable).

Flows have no targets: a second tuple element other than None is refused, as are
`class_weight` and a `y` argument. A backend tensor is checked as a tensor (dtype and
shape, finiteness on its device): it never makes a trip through NumPy.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from tfflows.data import source, validation

# Rows of in-memory data that initialize data-dependent layers (ActNorm, fitted marginals).
HEAD_ROWS = 256


@dataclasses.dataclass(frozen=True)
class Data:
    """Checked data. In memory: `x` (N, ...) rows and optional `context` (N, c), as NumPy
    arrays (or the backend tensors given) of the flow's dtype, and `weights` (N,) rescaled
    to mean 1. A stream: `stream`, what Keras iterates (a generator with its checked first
    batch put back in front). `first` is (x, context) of checked rows for building and
    initializing the flow: the arrays' first `HEAD_ROWS` or the stream's first batch."""

    x: object = None
    context: object = None
    weights: object = None
    stream: object = None
    first: tuple = (None, None)

    @property
    def inputs(self):
        """What the model is called on: x, or {"x": x, "context": context}."""
        return self.x if self.context is None else {"x": self.x, "context": self.context}

    @property
    def rows(self):
        return int(self.x.shape[0])

    def split(self, fraction):
        """Keras's `validation_split`: (the first rows, the last `fraction` of the rows)."""
        if not 0.0 < float(fraction) < 1.0:
            raise ValueError(f"validation_split must be in (0, 1); got {fraction}.")
        if self.stream is not None:
            raise ValueError(
                "validation_split needs array data; for a dataset or generator pass "
                "validation_data."
            )
        cut = int(self.rows * (1.0 - float(fraction)))
        if cut < 1 or cut >= self.rows:
            raise ValueError(
                f"validation_split={fraction} leaves no training or no validation "
                f"rows of {self.rows}."
            )
        return _rows_of(self, slice(0, cut)), _rows_of(self, slice(cut, None))


def _rows_of(data, rows):
    def part(value):
        return None if value is None else value[rows]

    x, context = part(data.x), part(data.context)
    return Data(x, context, part(data.weights), first=_head(x, context))


def _head(x, context):
    return x[:HEAD_ROWS], None if context is None else context[:HEAD_ROWS]


def unpack(data, what, sample_weight=None):
    """(inputs, sample_weight) from x, a dict, or a Keras-style tuple (x, None[, weights])."""
    if not isinstance(data, tuple):
        return data, sample_weight
    if not 1 <= len(data) <= 3:
        raise ValueError(
            f"{what} as a tuple must be (x,), (x, None) or (x, None, sample_weight); "
            f"got a tuple of {len(data)} elements."
        )
    if len(data) >= 2 and data[1] is not None:
        raise ValueError(
            f"{what}: flows are trained without targets, so the second element of "
            "(x, y[, sample_weight]) must be None. For a conditional flow pass "
            "{'x': data, 'context': context} as x."
        )
    if len(data) == 3:
        if sample_weight is not None:
            raise ValueError(
                f"{what}: sample weights given twice (in the tuple and as sample_weight)."
            )
        sample_weight = data[2]
    return data[0], sample_weight


def check_data(data, check_x, dtype, sample_weight=None, what="x", finite=True):
    """Data in any form `fit` takes, checked once (arrays whole, a stream's first batch):
    a `Data`. `check_x(x, what, finite)` checks the rows of x (a flow's data rules);
    `dtype` None keeps the rows' own float dtype. `Data` are returned as they are."""
    if isinstance(data, Data):
        return data
    if source.is_rereadable(data):
        if sample_weight is not None:
            raise ValueError(f"{what}: a stream of batches takes no sample_weight argument.")
        return _rereadable(data, check_x, what, dtype, finite)
    if source.is_stream(data):
        if sample_weight is not None:
            raise ValueError(
                f"{what}: with a dataset or generator, put the sample weights in its "
                "batches as (x, None, sample_weight)."
            )
        reader, batch = _first_batch(data)
        batch = unpack(batch, f"{what} (first batch)")[0]
        x, context = _checked_rows(batch, check_x, what, dtype, finite)
        return Data(stream=reader, first=(x, context))
    inputs, sample_weight = unpack(data, what, sample_weight)
    x, context = _checked_rows(inputs, check_x, what, dtype, finite)
    weights = None
    if sample_weight is not None:
        weights = normalized_weights(check_weights(sample_weight, int(x.shape[0]), what), dtype)
    return Data(x, context, weights, first=_head(x, context))


def _first_batch(stream):
    """(the source Keras will read, the first batch of `stream`)."""
    if isinstance(stream, keras.utils.PyDataset):
        return stream, stream[0]
    if hasattr(stream, "element_spec"):  # a tf.data.Dataset
        return stream, next(iter(stream))
    batch = next(stream)
    return _chained(batch, stream), batch


def _rereadable(data, check_x, what, dtype, finite):
    """`Data` of a stream read again at every pass (`source.is_rereadable`: a list of
    batches, `TextBatches`, a function returning an iterable): its first batch checked
    here, every batch checked as it is read (`source.Source`). Rows x alone."""
    first = next(iter(data() if callable(data) else data), None)
    if first is None:
        raise ValueError(f"{what} holds no batches.")
    first, weights = unpack(first, f"{what} (first batch)")
    if weights is not None or isinstance(first, dict):
        raise ValueError(
            f"{what}: a list of batches, TextBatches or a function of batches carries rows "
            "x alone; for sample weights or a context pass a tf.data.Dataset of "
            "(x, None, sample_weight) or {'x', 'context'} batches."
        )
    x, _ = _checked_rows(first, check_x, what, dtype, finite)
    return Data(stream=source.Source(data, tuple(x.shape[1:]), what), first=(x, None))


def _chained(first, rest):
    """A generator (which Keras's adapters accept, unlike other iterators) that yields
    `first`, then the rest, each as a tuple (Keras's generator adapter wants (x,))."""
    yield first if isinstance(first, tuple) else (first,)
    for batch in rest:
        yield batch if isinstance(batch, tuple) else (batch,)


def _checked_rows(inputs, check_x, what, dtype, finite):
    """(x, context) of array inputs (x or {"x", "context"}), checked and cast to `dtype`."""
    if isinstance(inputs, dict):
        unknown = set(inputs) - {"x", "context"}
        if unknown or "x" not in inputs:
            raise ValueError(
                f"{what}: a dict of inputs has the keys 'x' and (optionally) "
                f"'context'; got {sorted(inputs)}."
            )
        x, context = inputs["x"], inputs.get("context")
    else:
        x, context = inputs, None
    x = cast(check_x(x, what, finite), dtype)
    if context is None:
        return x, None
    context = cast(check_rows(context, None, f"{what} context", finite), dtype)
    if int(context.shape[0]) != int(x.shape[0]):
        raise ValueError(f"{what}: context has {context.shape[0]} rows but x has {x.shape[0]}.")
    return x, context


def cast(x, dtype):
    """Checked rows in `dtype`: a NumPy array stays NumPy, a tensor stays a tensor."""
    if dtype is None:
        return x
    return ops.cast(x, dtype) if ops.is_tensor(x) else np.asarray(x, dtype=dtype)


def check_rows(x, event_shape=None, what="x", finite=False):
    """x checked against the data rules (DESIGN.md). A backend tensor is checked as a
    tensor: dtype and static shape, and with `finite` its rows on its device (a symbolic
    tensor, while tracing, by dtype and shape only); anything else goes through
    `tfflows.data.validation.check_array` and comes back as a NumPy array."""
    if not ops.is_tensor(x):
        return validation.check_array(x, event_shape, what, finite=finite)
    if len(x.shape) == 0:
        raise ValueError(f"{what} must be an array of shape (batch, ...), got a scalar.")
    validation.check_dtype(x, what)
    validation.check_not_empty(x, what)
    validation.check_event_shape(x, event_shape, what)
    if finite:
        _check_finite_tensor(x, what)
    return x


def _check_finite_tensor(x, what):
    bad = ops.logical_not(ops.all(ops.isfinite(ops.reshape(x, (ops.shape(x)[0], -1))), axis=1))
    bad = ops.cast(bad, "int32")
    try:
        count = int(ops.sum(bad))  # one scalar to the host, not the rows
    except TypeError:  # symbolic (tf.function, jax.jit): values unknown while tracing
        return
    if count:
        first = int(ops.argmax(bad))
        raise ValueError(
            f"{what} has {count} row(s) containing NaN or Inf; the first is row "
            f"{first}. Remove or impute them before fitting."
        )


def check_weights(sample_weight, rows, what):
    """Sample weights as a float64 vector: finite, non-negative, one per row, not all zero."""
    weights = np.asarray(ops.convert_to_numpy(sample_weight), dtype="float64").reshape(-1)
    if len(weights) != rows:
        raise ValueError(f"{what}: {len(weights)} sample weights for {rows} rows.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"{what}: sample weights must be finite and non-negative.")
    if not weights.any():
        raise ValueError(f"{what}: every sample weight is zero; there is nothing to fit.")
    return weights


def normalized_weights(weights, dtype):
    """Weights rescaled to mean 1 over the data set. With them the per-batch loss
    mean(w * nll) averages, over an epoch, to the weighted mean NLL sum(w nll) / sum(w)
    (exactly so for `evaluate`), a batch of zero weights contributes 0 (never 0 / 0), and
    a row of weight 0 is removed exactly."""
    return (weights * (len(weights) / weights.sum())).astype(dtype)
