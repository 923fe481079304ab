"""Checks at the public boundary (never inside compiled steps): the data rules of DESIGN.md."""

import numpy as np


def _as_numpy(x):
    """x as a NumPy array; a symbolic tensor (inside `tf.function` or `jax.jit`) is
    returned as it is, so that only its dtype and static shape are checked."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    except Exception:  # noqa: BLE001 - graph tensors and JAX tracers have no values yet
        return x


def _numpy_dtype(x):
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.asarray(x).dtype
    return np.dtype(getattr(dtype, "as_numpy_dtype", dtype))


def check_dtype(x, what="data"):
    dtype = _numpy_dtype(x)
    if dtype == np.bool_ or np.issubdtype(dtype, np.integer):
        raise TypeError(
            f"{what} has dtype {dtype.name}, but flows model continuous data. Integer or boolean "
            "values have no density: dequantize them first (add uniform noise: "
            "`tfflows.dequantize(x)`, the `tfflows.Dequantize` layer, or "
            "`x + np.random.uniform(size=x.shape)`)."
        )
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{what} has dtype {dtype.name}; expected a floating-point array.")


def check_event_shape(x, event_shape, what="data"):
    shape = tuple(np.shape(x))
    if event_shape is None:
        return
    expected = tuple(int(s) for s in event_shape)
    if len(shape) != len(expected) + 1 or shape[1:] != expected:
        raise ValueError(
            f"{what} has shape {shape}, but this flow expects (batch,) + {expected}, "
            f"i.e. events of shape {expected}; got events of shape {shape[1:]}."
        )


def check_finite_rows(x, what="data"):
    x = _as_numpy(x)
    if not isinstance(x, np.ndarray):
        return  # symbolic: values are unknown while tracing
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    count = int(bad.sum())
    if count:
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what} has {count} row(s) containing NaN or Inf; the first is row {first}. "
            "Remove or impute them before fitting."
        )


def check_not_empty(x, what="data"):
    if np.shape(x)[0] == 0:  # None (unknown) for a symbolic batch
        raise ValueError(f"{what} is empty (shape {np.shape(x)}); expected at least one row.")


def check_array(x, event_shape=None, what="data", finite=False):
    """All checks for an array given to the public API; returns it as a NumPy array."""
    if np.ndim(x) == 0:
        raise ValueError(f"{what} must be an array of shape (batch, ...), got a scalar.")
    check_dtype(x, what)
    check_not_empty(x, what)
    check_event_shape(x, event_shape, what)
    if finite:
        check_finite_rows(x, what)
    return _as_numpy(x)


def check_sample_count(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"The number of samples must be a non-negative integer; got {n!r}.")
    return int(n)


def constant_columns(x):
    """0-based indices of the columns of a 2-D array x that hold one value only (NaN
    cells ignored): such a column has no density, and a flow's likelihood diverges on it."""
    x = np.asarray(x, dtype="float64")
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(x, axis=0) - np.nanmin(x, axis=0) if len(x) else np.zeros(x.shape[1])
    return [int(j) for j in np.flatnonzero(~(spread > 0))]


def duplicate_columns(x):
    """Pairs (j, k), k < j, of the columns of a 2-D array x where column j repeats the
    earlier column k exactly (the pair has no density in the plane)."""
    x = np.ascontiguousarray(np.asarray(x).T)
    first, pairs = {}, []
    for j, column in enumerate(x):
        k = first.setdefault(column.tobytes(), j)
        if k != j:
            pairs.append((j, k))
    return pairs


def integer_columns(x):
    """0-based indices of the columns of a 2-D float array x whose every finite value is
    a whole number (counts, levels, ids): the Python API refuses integer arrays, and a
    text table of whole numbers is the same data."""
    x = np.asarray(x, dtype="float64")
    finite = np.isfinite(x)
    whole = np.where(finite, x == np.round(x), True).all(axis=0) & finite.any(axis=0)
    return [int(j) for j in np.flatnonzero(whole)]
