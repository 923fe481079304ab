"""Reading tables of numbers from delimited text files (the command line's `.csv` input),
with Python's `csv` reader: quoted fields, any delimiter, a header row (detected), missing
cells, and columns chosen by name or position."""

import csv
import dataclasses

import numpy as np

MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}


@dataclasses.dataclass
class Table:
    """`values` (rows, columns) float64 with NaN for missing cells; `columns` their names;
    `skipped` names of non-numeric columns that were left out."""

    values: np.ndarray
    columns: list
    skipped: list


def _number(cell):
    text = cell.strip()
    if text.lower() in MISSING:
        return np.nan
    return float(text)


def _is_number(cell):
    try:
        _number(cell)
        return True
    except ValueError:
        return False


def read_table(path, columns=None, delimiter=None):
    """The numeric table in a delimited text file.

    columns: None (every numeric column; text columns, such as string ids, are left out
    and named in `skipped`; a mostly numeric column with a stray text cell is an error), or a list of names or 0-based positions to keep (a listed
    column must be numeric). delimiter: None (sniffed from the first lines, "," if that
    fails) or a one-character string. Raises ValueError with the file, line and column
    of the first problem."""
    with open(path, newline="") as handle:
        sample = handle.read(65536)
        handle.seek(0)
        if delimiter is None:
            try:
                delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t| ").delimiter
            except csv.Error:
                delimiter = ","
        rows = [row for row in csv.reader(handle, delimiter=delimiter) if any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path} is empty.")
    header = not all(_is_number(cell) for cell in rows[0])
    names = [c.strip() for c in rows[0]] if header else [str(i) for i in range(len(rows[0]))]
    body = rows[1:] if header else rows
    if not body:
        raise ValueError(f"{path} has a header but no rows.")
    for number, row in enumerate(body, start=2 if header else 1):
        if len(row) != len(names):
            raise ValueError(f"{path}, line {number}: {len(row)} columns, expected {len(names)}.")
    numeric = []
    for j in range(len(names)):
        bad = [(number, row[j]) for number, row in enumerate(body, start=2 if header else 1) if not _is_number(row[j])]
        text = bad and not _is_number(body[0][j]) and len(bad) >= 0.5 * len(body)
        if bad and not text:  # a numeric column with a stray cell: say where
            raise ValueError(f"{path}, line {bad[0][0]}: non-numeric value {bad[0][1]!r} in column {names[j]!r}.")
        numeric.append(not bad)
    if columns is None:
        keep = [j for j in range(len(names)) if numeric[j]]
        if not keep:
            raise ValueError(f"{path} has no numeric column (columns: {', '.join(names)}).")
    else:
        keep = [_column_index(c, names, path) for c in columns]
        for j in keep:
            if not numeric[j]:
                bad = next(row[j] for row in body if not _is_number(row[j]))
                raise ValueError(f"{path}: column {names[j]!r} is not numeric (value {bad!r}).")
    values = np.array([[_number(row[j]) for j in keep] for row in body], dtype="float64")
    skipped = [names[j] for j in range(len(names)) if j not in keep and not numeric[j]]
    return Table(values, [names[j] for j in keep], skipped if columns is None else [])


def _column_index(column, names, path):
    text = str(column).strip()
    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise ValueError(f"{path} has no column {text!r}; its columns are {', '.join(names)}.")
