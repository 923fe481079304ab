"""The one split-and-standardize helper of the package (datasets, command line,
information measures and benchmarks use it)."""

import numpy as np


def split(x, fractions=(0.8, 0.2), seed=0):
    """Shuffle the rows of x (seeded) and cut them into consecutive parts of the given
    fractions (the last part takes the remainder); returns the parts as a list.
    Every part but the first has at least one row when x has enough rows."""
    x = np.asarray(x)
    fractions = [float(f) for f in fractions]
    if any(f < 0 for f in fractions) or not 0 < sum(fractions) <= 1 + 1e-9:
        raise ValueError(f"fractions must be non-negative and sum to at most 1; got {fractions}.")
    order = np.random.default_rng(seed).permutation(len(x))
    sizes = [max(1, int(f * len(x))) if i else int(f * len(x))
             for i, f in enumerate(fractions[:-1])]
    cuts = np.cumsum(sizes)
    return [x[index] for index in np.split(order, cuts)]


def standardize(train, *others, dtype="float32"):
    """Standardize with the training mean and standard deviation (constant features get
    std 1); returns (train, *others, mean, std)."""
    train = np.asarray(train, dtype="float64")
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scaled = [((np.asarray(part, dtype="float64") - mean) / std).astype(dtype)
              for part in (train, *others)]
    return (*scaled, mean, std)


def split_standardize(x, seed=0, fractions=(0.6, 0.2, 0.2)):
    """Shuffle, split (60/20/20 by default) and standardize with the training statistics;
    returns the parts as float32 arrays (train, validation, test)."""
    return tuple(standardize(*split(np.asarray(x, dtype="float64"), fractions, seed))[:-2])
