"""Loading a data set by name or path, for the command line and scripts: the embedded sets
of `tfflows.data.datasets`, `.npy` / `.npz` arrays, and delimited text tables
(`tfflows.data.tables`)."""

import dataclasses
import os

import numpy as np

from tfflows.data import datasets
from tfflows.data.tables import read_table

TEXT = (".csv", ".tsv", ".txt")


class DataError(ValueError):
    """A data set that cannot be read as asked (a missing file, a bad cell, a bad column)."""


@dataclasses.dataclass
class Loaded:
    """`values` as read; `name` (the file's stem or the dataset's name); `columns` the
    names of the columns of a 2-D table (0-based positions for arrays); `rows` where each
    row came from: the 1-based lines of a text file, or None (an array's row i is x[i])."""

    values: np.ndarray
    name: str
    columns: list
    rows: np.ndarray = None

    def describe_row(self, i):
        """Row i as the user counts it: 'line 19, data row 18' in a text file (1-based,
        after the header), 'x[18]' in an array (0-based, as NumPy indexes it)."""
        if self.rows is None:
            return f"x[{int(i)}]"
        line, data_row = self.rows[i]
        return f"line {int(line)}, data row {int(data_row)}"


def load_data(spec, n=4000, seed=0, columns=None, delimiter=None, keep_missing=False, report=None):
    """An embedded dataset name, or a .csv / .npy / .npz file of numbers; returns (array, name).

    A delimited text file is read with Python's csv reader (`tfflows.data.tables`): quoted
    numbers, a detected header, `columns` by name or position (default: every numeric
    column), missing cells (empty, NA, NaN, null), whose rows are dropped with a note
    (kept as NaN rows with `keep_missing`). `report` (e.g. print) receives notes on what
    was left out. Problems raise `DataError` naming the file, line and column."""
    loaded = load(spec, n, seed, columns, delimiter, keep_missing, report)
    return loaded.values, loaded.name


def load(spec, n=4000, seed=0, columns=None, delimiter=None, keep_missing=False, report=None):
    """`load_data`, returning a `Loaded` (values, name, column names, row origins).
    `columns` (names or 0-based positions) also selects the columns of a 2-D array."""
    report = report or (lambda message: None)
    if spec in datasets.TOY_2D:
        return _array(datasets.toy_2d(spec, n=n, seed=seed), spec, columns, spec)
    if spec == "digits":
        return _array(datasets.digits()[0], spec, columns, spec)
    if spec == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        return _array(load_breast_cancer().data.astype("float32"), spec, columns, spec)
    if not os.path.exists(spec):
        names = ", ".join(datasets.TOY_2D + ("breast_cancer", "digits"))
        raise DataError(f"'{spec}' is neither an embedded dataset ({names}) nor an existing file.")
    if os.path.isdir(spec):
        raise DataError(f"{spec} is a folder; give a .csv/.tsv/.txt, .npy or .npz file.")
    ext = os.path.splitext(spec)[1].lower()
    name = os.path.splitext(os.path.basename(spec))[0]
    try:
        if ext in TEXT:
            return _read_table(spec, name, columns, delimiter, keep_missing, report)
        if ext == ".npy":
            data = np.load(spec, allow_pickle=False)
        elif ext == ".npz":
            with np.load(spec, allow_pickle=False) as archive:
                if not archive.files:
                    raise DataError(f"{spec} holds no arrays.")
                data = archive[archive.files[0]]
        else:
            raise DataError(f"Unsupported file type '{ext}' for {spec}: use .csv/.tsv/.txt, "
                            ".npy or .npz.")
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as err:  # UnicodeDecodeError is a ValueError
        raise DataError(f"Could not read {spec}: {err}") from None
    if data.dtype.kind not in "fiub":
        raise DataError(f"{spec} holds {data.dtype} values; expected numbers.")
    return _array(data, name, columns, spec)


def _array(data, name, columns, spec):
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    names = [str(j) for j in range(data.shape[1])] if data.ndim == 2 else []
    if columns is not None:
        if data.ndim != 2:
            raise DataError(f"--columns selects columns of a table; {spec} has shape {data.shape}.")
        keep = []
        for column in columns:
            text = str(column).strip()
            if not (text.isdigit() and int(text) < data.shape[1]):
                raise DataError(f"{spec} has no column {text!r}; its columns are the positions "
                                f"0 to {data.shape[1] - 1}.")
            keep.append(int(text))
        data, names = data[:, keep], [names[j] for j in keep]
    return Loaded(data, name, names)


def _read_table(path, name, columns, delimiter, keep_missing, report):
    try:
        table = read_table(path, columns=columns, delimiter=delimiter)
    except ValueError as err:
        raise DataError(str(err)) from None
    if table.skipped:
        report(f"Left out the non-numeric column(s) {', '.join(table.skipped)} "
               "(choose columns with --columns).")
    origin = np.stack([table.lines, np.arange(1, len(table.lines) + 1)], axis=1)
    loaded = Loaded(table.values.astype("float32"), name, table.columns, origin)
    if keep_missing:
        return loaded
    missing = np.isnan(table.values).any(axis=1)
    if missing.all():
        raise DataError(f"Every row of {path} has a missing value.")
    if missing.any():
        first = loaded.describe_row(int(np.flatnonzero(missing)[0]))
        report(f"Dropped {int(missing.sum())} row(s) with missing values (the first is {first}).")
    return Loaded(loaded.values[~missing], name, table.columns, origin[~missing])


def head(path, lines=1000, columns=None, delimiter=None):
    """The first `lines` lines of a text file (header included) as a `Loaded`, rows with a
    missing cell left out, and whether that was the whole file: the checks a file too
    large to read at once gets before it is streamed."""
    import itertools
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        copy = os.path.join(folder, os.path.basename(path))
        with open(path, newline="") as source, open(copy, "w", newline="") as out:
            out.writelines(itertools.islice(source, lines))
            complete = not source.readline()
        try:
            loaded = _read_table(copy, os.path.splitext(os.path.basename(path))[0], columns,
                                 delimiter, False, lambda message: None)
        except DataError as err:  # name the user's file, not the copy
            raise DataError(str(err).replace(copy, path)) from None
    return loaded, complete
