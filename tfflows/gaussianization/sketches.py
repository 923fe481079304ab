"""Mergeable summaries of data seen in batches, for the streamed greedy fit: memory that does
not grow with the number of rows, and sums that add across batches and across workers (an
all-reduce of `state()` arrays gives the sketch of all the data).

- `HistogramSketch`: per feature, counts on a fine grid in u = asinh((x - c) / s) (c, s a
  location and scale known before the pass), plus exact min, max and moments. It answers
  what the smoothed-CDF marginal fit reads (`marginal_fit.SampleSummary`'s interface):
  quantiles, interpolated within a bin, are off by at most one bin width
  w(x) = s cosh(u) du (du = 2 * asinh(range) / bins; with the defaults w = 0.0012 s near
  the centre and 0.0038 s at 3 s); the kernel CDF and density take every bin's count at
  its centre, which moves each point by at most w / 2, so they are off by at most
  w / (2 h sqrt(2 pi)) (CDF) and w / (2 h^2 sqrt(2 pi e)) (density) for kernel width h, and
  in practice by the much smaller midpoint-rule error O((w / h)^2).
- `MomentSketch`: count, sum and sum of outer products (exact mean and covariance: the
  PCA rotation is the in-memory one up to rounding).
- `Reservoir`: a uniform random sample of at most `size` rows (Vitter's algorithm R,
  seeded), for the rotations fitted on a subsample anyway (max-sliced-Wasserstein, ICA).
"""

import numpy as np
from scipy import special


class HistogramSketch:
    """Per-feature counts on a grid in u = asinh((x - center) / scale), |u| <= asinh(range).

    Args:
        center, scale: (d,) the location and scale of the grid.
        bins: grid cells per feature.
        value_range: the grid covers |x - center| <= value_range * scale (wider values
            fall in the outer cells).
    """

    def __init__(self, center, scale, bins=16384, value_range=1e4):
        self.center = np.asarray(center, dtype="float64")
        self.scale = np.where(np.asarray(scale, dtype="float64") > 0, scale, 1.0)
        self.bins = int(bins)
        self.u_max = float(np.arcsinh(value_range))
        d = len(self.center)
        self.counts = np.zeros((d, self.bins))
        self.low = np.full(d, np.inf)
        self.high = np.full(d, -np.inf)
        self.moments = np.zeros((3, d))  # count, sum, sum of squares

    def add(self, x):
        x = np.asarray(x, dtype="float64")
        u = np.arcsinh((x - self.center) / self.scale)
        index = np.clip(
            ((u + self.u_max) / (2 * self.u_max) * self.bins).astype("int64"), 0, self.bins - 1
        )
        d = x.shape[1]
        flat = index + self.bins * np.arange(d)[None, :]
        self.counts += np.bincount(flat.ravel(), minlength=d * self.bins).reshape(d, self.bins)
        self.low = np.minimum(self.low, x.min(axis=0))
        self.high = np.maximum(self.high, x.max(axis=0))
        self.moments += [np.full(d, len(x)), x.sum(axis=0), np.square(x).sum(axis=0)]

    # ----- merging (across workers: sum the counts and moments, min/max the extremes) -------
    def state(self):
        return {"counts": self.counts, "moments": self.moments, "low": self.low, "high": self.high}

    def set_state(self, state):
        """Take the (all-reduced) state: the sketch of every worker's rows."""
        self.counts, self.moments = np.asarray(state["counts"]), np.asarray(state["moments"])
        self.low, self.high = np.asarray(state["low"]), np.asarray(state["high"])
        return self

    def merge(self, other):
        self.counts = self.counts + other["counts"]
        self.moments = self.moments + other["moments"]
        self.low = np.minimum(self.low, other["low"])
        self.high = np.maximum(self.high, other["high"])
        return self

    # ----- SampleSummary's interface -------------------------------------------------------
    @property
    def n(self):
        return float(self.moments[0, 0])

    @property
    def mean(self):
        return self.moments[1] / self.n

    @property
    def std(self):
        return np.sqrt(np.maximum(self.moments[2] / self.n - self.mean**2, 0.0))

    def _edges(self):
        """Bin edges in x, (d, bins + 1), the outer ones at the exact min and max."""
        u = np.linspace(-self.u_max, self.u_max, self.bins + 1)
        edges = self.center[:, None] + self.scale[:, None] * np.sinh(u)[None, :]
        return np.clip(edges, self.low[:, None], self.high[:, None])

    def _centers(self):
        edges = self._edges()
        return 0.5 * (edges[:, 1:] + edges[:, :-1])

    def quantile(self, levels):
        """Quantiles (d, K) as np.quantile defines them (linear between order statistics),
        each order statistic placed within its bin (at most one bin width off)."""
        levels = np.asarray(levels, dtype="float64")
        edges = self._edges()
        cumulative = np.concatenate(
            [np.zeros((len(edges), 1)), np.cumsum(self.counts, axis=1)], axis=1
        )
        target = levels * (self.n - 1)  # np.quantile's linear convention: rank in 0..n-1
        out = np.empty((len(edges), len(levels)))
        below = np.floor(target)
        weight = target - below
        for j in range(len(edges)):
            lower = self._order_statistic(j, below, cumulative[j], edges[j])
            upper = self._order_statistic(
                j, np.minimum(below + 1, self.n - 1), cumulative[j], edges[j]
            )
            out[j] = (1 - weight) * lower + weight * upper
        return np.clip(out, self.low[:, None], self.high[:, None])

    def _order_statistic(self, j, k, cumulative, edges):
        """The k-th smallest value (0-based) of feature j: the k-th unit of count placed at
        its share of its bin (bin b with cumulative[b] <= k + 1/2 < cumulative[b + 1])."""
        rank = k + 0.5
        b = np.clip(np.searchsorted(cumulative, rank, side="right") - 1, 0, self.bins - 1)
        fraction = np.clip((rank - cumulative[b]) / np.maximum(self.counts[j][b], 1e-300), 0.0, 1.0)
        return edges[b] + fraction * (edges[b + 1] - edges[b])

    def quartile_spread(self):
        quartiles = self.quantile([0.25, 0.75])
        return (quartiles[:, 1] - quartiles[:, 0]) / 1.349

    def kernel_cdf_pdf(self, points, h):
        """Kernel CDF and density at points (d, K), every count at its bin's centre."""
        centers, weights = self._centers(), self.counts / self.n
        cdf, pdf = np.empty_like(points), np.empty_like(points)
        for j in range(len(points)):
            used = weights[j] > 0
            z = (points[j][:, None] - centers[j][used][None, :]) / h[j]  # (K, used bins)
            cdf[j] = special.ndtr(z) @ weights[j][used]
            pdf[j] = (np.exp(-0.5 * z**2) @ weights[j][used]) / (np.sqrt(2 * np.pi) * h[j])
        return cdf, pdf


class MomentSketch:
    """Count, sum and sum of outer products of rows: the exact mean and covariance.

    Args:
        d: the number of columns.
    """

    def __init__(self, d):
        self.count, self.total, self.outer = 0.0, np.zeros(d), np.zeros((d, d))

    def add(self, x):
        x = np.asarray(x, dtype="float64")
        self.count += len(x)
        self.total += x.sum(axis=0)
        self.outer += x.T @ x

    def state(self):
        return {"count": np.array([self.count]), "total": self.total, "outer": self.outer}

    def set_state(self, state):
        self.count = float(np.asarray(state["count"]).ravel()[0])
        self.total, self.outer = np.asarray(state["total"]), np.asarray(state["outer"])
        return self

    def merge(self, other):
        self.count += float(np.asarray(other["count"]).ravel()[0])
        self.total = self.total + other["total"]
        self.outer = self.outer + other["outer"]
        return self

    @property
    def mean(self):
        return self.total / self.count

    @property
    def covariance(self):
        return self.outer / self.count - np.outer(self.mean, self.mean)


class Reservoir:
    """A uniform random sample of at most `size` rows of a stream (algorithm R).

    Args:
        d: the number of columns.
        size: the largest sample kept.
        seed: of the sampling.
    """

    def __init__(self, d, size=5000, seed=0):
        self.rows = np.empty((0, d))
        self.size, self.seen = int(size), 0
        self.rng = np.random.default_rng(seed)

    def add(self, x):
        x = np.asarray(x, dtype="float64")
        room = self.size - len(self.rows)
        if room > 0:
            self.rows = np.concatenate([self.rows, x[:room]])
            self.seen += min(room, len(x))
            x = x[room:]
        if len(x):
            slots = self.rng.integers(0, self.seen + np.arange(1, len(x) + 1))
            keep = slots < self.size
            self.rows[slots[keep]] = x[keep]
            self.seen += len(x)
