"""The forms of data `Flow.fit`, `evaluate` and `predict` accept, as Keras users write them,
reduced to one of two cases: in-memory arrays (checked here, once) or a stream (a
`tf.data.Dataset`, a Python generator or a `keras.utils.PyDataset`, whose first batch is
checked and whose batches Keras reads).

Arrays:     x | {"x": x, "context": c} | (x,) | (x, None) | (x, None, sample_weight)
Streams:    batches of any of the array forms above.

Flows have no targets: a second tuple element other than None is refused, as are
`class_weight` and a `y` argument.
"""

import types

import keras
import numpy as np

from tfflows.data import validation


class Stream:
    """A dataset, generator or PyDataset, with its first batch already checked. `source`
    is what Keras iterates (a generator gets its first batch put back in front)."""

    def __init__(self, source, first_batch):
        self.source = source
        self.first_batch = first_batch


def is_tf_dataset(x):
    if keras.backend.backend() != "tensorflow":
        return False
    from tfflows.interop.tf_training import is_dataset

    return is_dataset(x)


def is_stream(x):
    return (is_tf_dataset(x) or isinstance(x, (types.GeneratorType, keras.utils.PyDataset))
            or (hasattr(x, "__next__") and not isinstance(x, (np.ndarray, dict, tuple, list))))


def unpack(data, what, sample_weight=None):
    """(inputs, sample_weight) from x, a dict, or a Keras-style tuple (x, None[, weights])."""
    if isinstance(data, tuple):
        if not 1 <= len(data) <= 3:
            raise ValueError(f"{what} as a tuple must be (x,), (x, None) or (x, None, sample_weight); "
                             f"got a tuple of {len(data)} elements.")
        if len(data) >= 2 and data[1] is not None:
            raise ValueError(f"{what}: flows are trained without targets, so the second element of "
                             "(x, y[, sample_weight]) must be None. For a conditional flow pass "
                             "{'x': data, 'context': context} as x.")
        if len(data) == 3:
            if sample_weight is not None:
                raise ValueError(f"{what}: sample weights given twice (in the tuple and as sample_weight).")
            sample_weight = data[2]
        data = data[0]
    return data, sample_weight


def first_batch(stream, what):
    """The first batch of a stream (inputs, sample_weight) and the source Keras will read."""
    if is_tf_dataset(stream) or isinstance(stream, keras.utils.PyDataset):
        batch = stream[0] if isinstance(stream, keras.utils.PyDataset) else next(iter(stream))
        source = stream
    else:
        batch = next(stream)
        source = _chained(batch, stream)
    inputs, weights = unpack(batch, f"{what} (first batch)")
    if isinstance(inputs, dict):
        inputs = {key: np.asarray(value) for key, value in inputs.items()}
    else:
        inputs = np.asarray(inputs)
    return Stream(source, (inputs, weights))


def _chained(first, rest):
    """A generator (which Keras's adapters accept, unlike other iterators) that yields
    `first`, then the rest, each as a tuple (Keras's generator adapter wants (x,))."""
    yield first if isinstance(first, tuple) else (first,)
    for batch in rest:
        yield batch if isinstance(batch, tuple) else (batch,)


def check_weights(sample_weight, rows, what):
    """Sample weights as a float64 vector: finite, non-negative, one per row, not all zero."""
    weights = np.asarray(sample_weight, dtype="float64").reshape(-1)
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


def split_for_validation(inputs, weights, fraction):
    """Keras's `validation_split`: the last `fraction` of the rows (before shuffling)."""
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"validation_split must be in (0, 1); got {fraction}.")
    rows = len(inputs["x"] if isinstance(inputs, dict) else inputs)
    cut = int(rows * (1.0 - float(fraction)))
    if cut < 1 or cut >= rows:
        raise ValueError(f"validation_split={fraction} leaves no training or no validation rows of {rows}.")

    def part(value, s):
        if value is None:
            return None
        if isinstance(value, dict):
            return {key: v[s] for key, v in value.items()}
        return value[s]

    head, tail = slice(0, cut), slice(cut, None)
    return (part(inputs, head), part(weights, head)), (part(inputs, tail), part(weights, tail))


def checked_rows(inputs, check_x, what, dtype, finite=True):
    """Array inputs (x or {"x", "context"}) checked once and cast to `dtype`."""
    if isinstance(inputs, dict):
        unknown = set(inputs) - {"x", "context"}
        if unknown or "x" not in inputs:
            raise ValueError(f"{what}: a dict of inputs has the keys 'x' and (optionally) 'context'; "
                             f"got {sorted(inputs)}.")
        data, context = inputs["x"], inputs.get("context")
    else:
        data, context = inputs, None
    data = np.asarray(check_x(data, what, finite), dtype=dtype)
    if context is None:
        return data
    context = np.asarray(validation.check_array(context, None, f"{what} context", finite=finite), dtype=dtype)
    if len(context) != len(data):
        raise ValueError(f"{what}: context has {len(context)} rows but x has {len(data)}.")
    return {"x": data, "context": context}


def rows(inputs):
    return len(inputs["x"] if isinstance(inputs, dict) else inputs)


def head(inputs, n):
    if isinstance(inputs, dict):
        return {key: value[:n] for key, value in inputs.items()}
    return inputs[:n]
