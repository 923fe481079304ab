"""Data on disk larger than memory: `TextBatches` reads delimited text files (one or many
shards, e.g. `big/*.csv`) in batches of rows, again at every pass, in memory bounded by
the batch size. It feeds `RBIG.fit_greedy` / `GaussianizationFlow.initialize_greedy`
(which read the data twice per block) and `Flow.fit` (which reads them again at every
epoch) directly; `as_dataset()` is the same rows as a `tf.data.Dataset`.

Rows are split into training and validation without reading them all: row i (counted
over all shards, in order) is a validation row when i % validation_every == 0.
"""

import csv
import glob
import os

import numpy as np

from tfflows.data.tables import MISSING, read_table


class TextBatches:
    """Batches (batch_size, features) float32 of the numeric columns of text files.

    Rows with a missing cell are skipped (`skipped` counts them, per pass).

    Args:
        paths: a file, a glob pattern or a list of them (shards are read in sorted order).
        batch_size: rows per batch.
        columns: names or 0-based positions to keep (default: the numeric columns of the
            first shard's first 1,000 rows).
        delimiter: of the cells (default: sniffed from the first shard).
        part: "all", "train" or "validation" (see the module docstring).
        validation_every: row i is a validation row when i % validation_every == 0.
    """

    def __init__(
        self, paths, batch_size=65536, columns=None, delimiter=None, part="all", validation_every=10
    ):
        patterns = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        self.paths = sorted(
            {
                p
                for pattern in patterns
                for p in (glob.glob(os.fspath(pattern)) or [os.fspath(pattern)])
            }
        )
        missing = [p for p in self.paths if not os.path.isfile(p)]
        if missing:
            raise ValueError(f"No such file: {missing[0]}.")
        if part not in ("all", "train", "validation"):
            raise ValueError(f"part must be 'all', 'train' or 'validation'; got {part!r}.")
        self.batch_size, self.part, self.validation_every = (
            int(batch_size),
            part,
            int(validation_every),
        )
        head = _head(self.paths[0], 1000)
        table = read_table(head, columns=columns, delimiter=delimiter)
        os.remove(head)
        self.columns = table.columns
        with open(self.paths[0], newline="") as handle:
            sample = handle.read(65536)
        self.delimiter = delimiter or _sniff(sample)
        first = next(csv.reader(sample.splitlines(), delimiter=self.delimiter))
        self.header = not all(_is_number(cell) for cell in first)
        self.features = len(self.columns)
        self.skipped = 0

    def _rows(self):
        index = 0
        for path in self.paths:
            with open(path, newline="") as handle:
                reader = csv.reader(handle, delimiter=self.delimiter)
                header = [c.strip() for c in next(reader)] if self.header else []
                positions = [header.index(c) if c in header else int(c) for c in self.columns]
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    keep = self.part == "all" or (
                        (index % self.validation_every == 0) == (self.part == "validation")
                    )
                    index += 1
                    if not keep:
                        continue
                    cells = [row[p].strip() for p in positions]
                    if any(cell.lower() in MISSING for cell in cells):
                        self.skipped += 1
                        continue
                    yield [float(cell) for cell in cells]

    def __iter__(self):
        self.skipped = 0
        batch = []
        for row in self._rows():
            batch.append(row)
            if len(batch) == self.batch_size:
                yield np.asarray(batch, dtype="float32")
                batch = []
        if batch:
            yield np.asarray(batch, dtype="float32")

    def as_dataset(self, batch_size=None, shuffle_buffer=0, seed=0):
        """The rows as a `tf.data.Dataset` of batches (`batch_size`, default this object's),
        re-read from disk at every epoch; `shuffle_buffer` > 0 shuffles within a buffer of
        that many rows."""
        import tensorflow as tf

        def rows():
            for batch in self:
                yield from batch

        dataset = tf.data.Dataset.from_generator(
            rows, output_signature=tf.TensorSpec((self.features,), tf.float32)
        )
        if shuffle_buffer:
            dataset = dataset.shuffle(int(shuffle_buffer), seed=seed)
        return dataset.batch(batch_size or self.batch_size)


def _is_number(cell):
    text = cell.strip()
    if text.lower() in MISSING:
        return True
    try:
        float(text)
        return True
    except ValueError:
        return False


def _sniff(sample):
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t| ").delimiter
    except csv.Error:
        return ","


def _head(path, lines):
    """A temporary file with the first `lines` lines of `path` (to detect columns)."""
    import tempfile

    handle, name = tempfile.mkstemp(suffix=".csv")
    with os.fdopen(handle, "w") as out, open(path, newline="") as source:
        for i, line in enumerate(source):
            if i > lines:
                break
            out.write(line)
    return name
