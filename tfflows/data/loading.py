"""Loading a data set by name or path, for the command line and scripts: the embedded sets
of `tfflows.data.datasets`, `.npy` / `.npz` arrays, and delimited text tables
(`tfflows.data.tables`)."""

import os

import numpy as np

from tfflows.data import datasets
from tfflows.data.tables import read_table


class DataError(ValueError):
    """A data set that cannot be read as asked (a missing file, a bad cell, a bad column)."""


def load_data(spec, n=4000, seed=0, columns=None, delimiter=None, keep_missing=False, report=None):
    """An embedded dataset name, or a .csv / .npy / .npz file of numbers; returns (array, name).

    A delimited text file is read with Python's csv reader (`tfflows.data.tables`): quoted
    numbers, a detected header, `columns` by name or position (default: every numeric
    column), missing cells (empty, NA, NaN, null), whose rows are dropped with a note
    (kept as NaN rows with `keep_missing`). `report` (e.g. print) receives notes on what
    was left out. Problems raise `DataError` naming the file, line and column."""
    report = report or (lambda message: None)

    if spec in datasets.TOY_2D:
        return datasets.toy_2d(spec, n=n, seed=seed), spec
    if spec == "digits":
        return datasets.digits()[0], spec
    if spec == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        return load_breast_cancer().data.astype("float32"), spec
    if not os.path.exists(spec):
        names = ", ".join(datasets.TOY_2D + ("breast_cancer",))
        raise DataError(f"'{spec}' is neither an embedded dataset ({names}) nor an existing file.")
    ext = os.path.splitext(spec)[1].lower()
    try:
        if ext in (".csv", ".tsv", ".txt"):
            data = _read_table(spec, columns, delimiter, keep_missing, report)
        elif ext == ".npy":
            data = np.load(spec, allow_pickle=False)
        elif ext == ".npz":
            with np.load(spec, allow_pickle=False) as archive:
                if not archive.files:
                    raise DataError(f"{spec} holds no arrays.")
                data = archive[archive.files[0]]
        else:
            raise DataError(f"Unsupported file type '{ext}' for {spec}: use .csv/.tsv/.txt, .npy or .npz.")
    except DataError:
        raise
    except (OSError, ValueError) as err:
        raise DataError(f"Could not read {spec}: {err}") from None
    if data.dtype.kind not in "fiub":
        raise DataError(f"{spec} holds {data.dtype} values; expected numbers.")
    if data.ndim == 1:
        data = data[:, None]
    return data, os.path.splitext(os.path.basename(spec))[0]


def _read_table(path, columns, delimiter, keep_missing, report):
    table = read_table(path, columns=columns, delimiter=delimiter)
    if table.skipped:
        report(f"Left out the non-numeric column(s) {', '.join(table.skipped)} (choose columns with --columns).")
    missing = np.isnan(table.values).any(axis=1)
    if keep_missing:
        return table.values.astype("float32")
    if missing.all():
        raise DataError(f"Every row of {path} has a missing value.")
    if missing.any():
        report(f"Dropped {int(missing.sum())} row(s) with missing values (the first is data row "
              f"{int(np.flatnonzero(missing)[0]) + 1}).")
    return table.values[~missing].astype("float32")
