"""One stream protocol for the package: data as batches of rows.

In memory:  an array (a NumPy array or a tensor), or a Keras form of one: a dict
            {"x", "context"} or a tuple (x,), (x, None), (x, None, sample_weight).
A stream:   a `tf.data.Dataset` (anything with `element_spec`), a `keras.utils.PyDataset`,
            a Python generator or iterator (read once), a function returning an iterable
            of batches, or a re-iterable of batches (a list of 2-D arrays,
            `tfflows.data.files.TextBatches`).
`is_stream` is the one test of which is which (`Flow.fit`, the greedy fits and the
command line use it); `Source` reads either as batches, an array being a one-batch source.
"""

import types

import keras
import numpy as np

from tfflows.data import validation


def is_stream(data):
    """True for the stream forms above, False for arrays, tensors and their Keras forms."""
    if data is None or isinstance(data, (np.ndarray, dict, tuple, str, bytes)):
        return False
    if hasattr(data, "element_spec") or isinstance(data, keras.utils.PyDataset):
        return True
    if hasattr(data, "__array__") or (hasattr(data, "shape") and hasattr(data, "dtype")):
        return False  # a tensor, a pandas DataFrame
    if isinstance(data, list):  # a list of batches, not a list of rows
        return bool(data) and _is_batch(data[0])
    return callable(data) or hasattr(data, "__iter__") or hasattr(data, "__next__")


def _is_batch(item):
    """Whether the first item of a list is a batch: a 2-D array of rows, or a Keras tuple
    (x, ...) or a dict {"x", ...} of batches."""
    if isinstance(item, tuple):
        return bool(item) and np.ndim(item[0]) >= 2
    if isinstance(item, dict):
        return np.ndim(item.get("x")) >= 2
    if hasattr(item, "shape"):  # an array or a tensor: its rank, without converting it
        return len(item.shape) == 2
    return np.ndim(item) == 2


def is_one_shot(data):
    """Whether a stream can be read only once (a generator or another iterator)."""
    return isinstance(data, types.GeneratorType) or hasattr(data, "__next__")


def is_rereadable(data):
    """Whether a stream is batches that `Source` reads again at every pass (a list of
    batches, `TextBatches`, a function returning an iterable), rather than a form Keras
    reads itself (a dataset, a `PyDataset`, a one-shot generator)."""
    return (
        is_stream(data)
        and not is_one_shot(data)
        and not hasattr(data, "element_spec")
        and not isinstance(data, keras.utils.PyDataset)
    )


class Source:
    """Re-readable batches (b, *event_shape) of rows as float64 arrays: `data` checked rows
    in memory (one batch, `array`) or a re-readable stream whose batches (arrays, or tuples
    (x, ...)) are checked as they come. A one-shot generator is refused: readers such as
    the greedy fit and `Flow.fit` read the data several times.

    Args:
        data: the rows (already checked) or a stream (`is_stream`).
        features: the number of columns every batch must have, or the event shape of
            every row (a tuple, e.g. (H, W, C) for images).
        what: the name of the data in error messages.
    """

    def __init__(self, data, features, what="training data"):
        shape = tuple(features) if isinstance(features, (tuple, list)) else (int(features),)
        self.event_shape, self.features, self.what = shape, shape[0], what
        self.array = None if is_stream(data) else data
        if self.array is None and is_one_shot(data):
            raise TypeError(
                f"{what} is a generator, which can be read only once; the greedy fit "
                "reads the data twice per block. Pass a function that returns a "
                "fresh generator, or a tf.data.Dataset."
            )
        self.data = data

    def __iter__(self):
        if self.array is not None:
            yield np.asarray(self.array, dtype="float64")
            return
        data = self.data() if callable(self.data) else self.data
        if hasattr(data, "as_numpy_iterator"):
            data = data.as_numpy_iterator()
        for batch in data:
            if isinstance(batch, tuple):
                if any(part is not None for part in batch[1:]):
                    raise ValueError(
                        f"{self.what}: a batch (x, y, sample_weight) with y or weights; "
                        "these batches carry rows x alone."
                    )
                batch = batch[0]
            batch = validation.check_array(
                np.asarray(batch), self.event_shape, self.what, finite=True
            )
            yield batch.astype("float64")
