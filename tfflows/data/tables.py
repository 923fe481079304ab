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
    `skipped` names of non-numeric columns that were left out; `lines` the 1-based line
    of the file each row was read from (blank lines are skipped, so rows and lines
    differ after one); `header` whether the first line names the columns."""

    values: np.ndarray
    columns: list
    skipped: list
    lines: np.ndarray = None
    header: bool = False


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
    and named in `skipped`; a mostly numeric column with a stray text cell is an error),
    or a list of names or 0-based positions to keep (a listed column must be numeric).
    delimiter: None (sniffed from the first lines, "," if that fails) or a one-character
    string. Raises ValueError with the file, line and column
    of the first problem."""
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"the delimiter must be one character; got {delimiter!r}.")
    with open(path, newline="") as handle:
        sample = handle.read(65536)
        handle.seek(0)
        if delimiter is None:
            try:
                delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t| ").delimiter
            except csv.Error:
                delimiter = ","
        reader = csv.reader(handle, delimiter=delimiter)
        numbered = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    if not numbered:
        raise ValueError(f"{path} is empty.")
    header = not all(_is_number(cell) for cell in numbered[0][1])
    first = numbered[0][1]
    names = [c.strip() for c in first] if header else [str(i) for i in range(len(first))]
    numbered = numbered[1:] if header else numbered
    body = [row for _, row in numbered]
    if not body:
        raise ValueError(f"{path} has a header but no rows.")
    for number, row in numbered:
        if len(row) != len(names):
            raise ValueError(f"{path}, line {number}: {len(row)} columns, expected {len(names)}.")
    numeric = []
    for j in range(len(names)):
        bad = [(number, row[j]) for number, row in numbered if not _is_number(row[j])]
        text = bad and not _is_number(body[0][j]) and len(bad) >= 0.5 * len(body)
        if bad and not text:  # a numeric column with a stray cell: say where
            raise ValueError(f"{path}, line {bad[0][0]}: non-numeric value {bad[0][1]!r} "
                             f"in column {names[j]!r}.")
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
    values = values.reshape(len(body), len(keep))
    skipped = [names[j] for j in range(len(names)) if j not in keep and not numeric[j]]
    lines = np.array([number for number, _ in numbered], dtype="int64")
    kept = [names[j] for j in keep]
    return Table(values, kept, skipped if columns is None else [], lines, header)


def _column_index(column, names, path):
    text = str(column).strip()
    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise ValueError(f"{path} has no column {text!r}; its columns are {', '.join(names)}.")
