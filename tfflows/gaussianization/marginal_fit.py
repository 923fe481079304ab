"""Fitting the marginal maps of `MarginalGaussianization` from data (NumPy, no gradients):
the knots of Phi^-1 o F_hat for a kernel-smoothed empirical CDF F_hat, and the
maximum-likelihood mixture of logistics."""

import numpy as np
from scipy import special


def inverse_softplus(v):
    v = np.asarray(v, dtype="float64")
    return np.where(v > 20.0, v, np.log(np.expm1(np.maximum(v, 1e-30))))


class SampleSummary:
    """What the smoothed-CDF fit reads of the columns of x (n, d), exactly: size, moments,
    quantiles, and the Gaussian-kernel CDF and density at given points. The streamed fit
    reads the same from a mergeable histogram (`tfflows.gaussianization.sketches`).

    Args:
        x: the rows (n, d).
    """

    def __init__(self, x):
        # (n, d), each column contiguous in memory: sorting contiguous rows of x^T is ~1.5x faster
        self.sorted = np.sort(np.ascontiguousarray(np.asarray(x).T, dtype="float64"), axis=1).T
        self.n = len(self.sorted)
        self.mean, self.std = self.sorted.mean(axis=0), self.sorted.std(axis=0)

    def quartile_spread(self):
        x, n = self.sorted, self.n
        return (x[int(0.75 * (n - 1))] - x[int(0.25 * (n - 1))]) / 1.349

    def quantile(self, levels):
        """np.quantile's default (linear between order statistics), read off the sorted columns."""
        rank = np.asarray(levels, dtype="float64") * (self.n - 1)
        below = np.minimum(np.floor(rank).astype("int64"), self.n - 1)
        above = np.minimum(below + 1, self.n - 1)
        weight = (rank - below)[:, None]
        return ((1 - weight) * self.sorted[below] + weight * self.sorted[above]).T  # (d, K)

    # Above this many rows the kernel sums run on a linear binning of each column onto a
    # uniform grid of spacing h / GRID_PER_BANDWIDTH (Wand 1994, J. Comput. Graph. Stat.
    # 3:433): each row's unit mass is split between its two neighbouring grid points, which
    # keeps the mean exactly and moves the kernel sums by O((spacing / h)^2); only the grid
    # points within KERNEL_REACH h of a knot are summed (the rest add exactly 0 or their
    # whole mass to the CDF, to 1e-15). On the columns of benchmarks/bench_kernel_sums.py at
    # n = 1e4 (normal, t3, exponential, spiky, the suite's 64-D synthetic sets) the knots
    # stay within 7e-4 (y) and 1.1% (slope) of the exact sums', closer on every set than
    # the 4,096-bin asinh histogram used before, at a third of its time. Below BINNED_ABOVE
    # rows the sums are exact. Columns whose range spans more than MAX_GRID grid steps (far
    # outliers, e.g. lognormal) are summed on that histogram (`sketches.HistogramSketch`),
    # whose bins widen in the tails.
    BINNED_ABOVE = 4096
    GRID_PER_BANDWIDTH = 16
    KERNEL_REACH = 8.0
    MAX_GRID = 16384

    def kernel_cdf_pdf(self, points, h):
        """mean_i Phi((p - x_i) / h) and mean_i phi((p - x_i) / h) / h at points (d, K)."""
        x, n = self.sorted, self.n
        if n <= self.BINNED_ABOVE:
            return self._exact_kernel_sums(points, h)
        spacing = h / self.GRID_PER_BANDWIDTH
        on_grid = (x[-1] - x[0]) / spacing < self.MAX_GRID
        if np.all(on_grid):  # (a boolean column selection would copy x into a slower layout)
            return _linear_binned_kernel_sums(x, points, h, spacing, self.KERNEL_REACH)
        cdf, pdf = self._histogram_kernel_sums(points, h, ~on_grid)
        if np.any(on_grid):
            cdf[on_grid], pdf[on_grid] = _linear_binned_kernel_sums(
                np.ascontiguousarray(x[:, on_grid]),
                points[on_grid],
                h[on_grid],
                spacing[on_grid],
                self.KERNEL_REACH,
            )
        return cdf, pdf

    def _histogram_kernel_sums(self, points, h, columns):
        """The kernel sums of the selected columns on a 4,096-bin `HistogramSketch` (arrays
        shaped like points; the other rows are left unset)."""
        from tfflows.gaussianization.sketches import HistogramSketch

        cdf, pdf = np.empty_like(points), np.empty_like(points)
        scale = np.where(self.std[columns] > 0, self.std[columns], 1.0)
        rows = self.sorted[:, columns]
        reach = float(np.max(np.abs(rows - self.mean[columns]) / scale)) * 1.001 + 1e-9
        sketch = HistogramSketch(self.mean[columns], scale, bins=4096, value_range=reach)
        sketch.add(rows)
        cdf[columns], pdf[columns] = sketch.kernel_cdf_pdf(points[columns], h[columns])
        return cdf, pdf

    def _exact_kernel_sums(self, points, h):
        x, n = self.sorted, self.n
        cdf, pdf = np.empty_like(points), np.empty_like(points)
        step = max(1, int(4e6 // (points.shape[1] * n)))  # columns per chunk, bounding memory
        for j in range(0, x.shape[1], step):
            z = (points[j : j + step, :, None] - x.T[j : j + step, None, :]) / h[
                j : j + step, None, None
            ]  # (c, K, n)
            cdf[j : j + step] = special.ndtr(z).mean(axis=2)
            pdf[j : j + step] = np.exp(-0.5 * z**2).mean(axis=2) / (
                np.sqrt(2 * np.pi) * h[j : j + step, None]
            )
        return cdf, pdf


def _linear_binned_kernel_sums(x, points, h, spacing, reach):
    """`SampleSummary.kernel_cdf_pdf` on the linear binning of the sorted columns x (n, d)
    onto grids low_j + spacing_j * m, m = 0..size_j - 1 (stored one after the other)."""
    n, d = x.shape
    low = x[0]
    size = np.maximum(np.ceil((x[-1] - low) / spacing).astype("int64") + 1, 2)
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    # (in place where possible: at 1e4 x 64 rows, fresh arrays cost as much as the arithmetic)
    share = np.subtract(x, low)
    share /= spacing  # position on the grid
    below = share.astype("int64")
    np.minimum(below, size - 2, out=below)
    share -= below  # the share of each row's mass that goes to the grid point above
    below += offset
    below, share = below.ravel("K"), share.ravel("K")  # the same (memory) order for both, no copy
    upper = np.bincount(below, share, minlength=int(size.sum()))
    mass = np.bincount(below, minlength=len(upper)) - upper
    mass[1:] += upper[:-1]
    mass /= n
    mass_before = np.concatenate([[0.0], np.cumsum(mass)])  # mass of the grid points before each
    # The grid points within `reach` h of each knot: a fixed-length window from `first`.
    width = int(np.ceil(2 * reach * np.max(h / spacing))) + 2
    first = np.floor((points - reach * h[:, None] - low[:, None]) / spacing[:, None])
    first = np.clip(first, 0, size[:, None]).astype("int64")  # (d, K)
    index = first[..., None] + np.arange(width)  # (d, K, width)
    inside = index < size[:, None, None]
    index = np.minimum(index, size[:, None, None] - 1)
    weight = np.where(inside, mass[index + offset[:, None, None]], 0.0)
    z = (points[..., None] - (low[:, None, None] + spacing[:, None, None] * index)) / h[
        :, None, None
    ]
    cdf = (
        mass_before[first + offset[:, None]]
        - mass_before[offset][:, None]
        + np.sum(special.ndtr(z) * weight, -1)
    )
    pdf = np.sum(np.exp(-0.5 * z**2) * weight, axis=-1) / (np.sqrt(2 * np.pi) * h[:, None])
    return cdf, pdf


def smoothed_cdf_knots(x, num_knots, bandwidth, shrinkage, max_tail_slope=None):
    """Knots (x_k, y_k, d_k), each (d, K), of Phi^-1(F_hat) for the columns of x (n, d)
    (or of a summary with `SampleSummary`'s interface), F_hat the Gaussian-kernel-smoothed
    empirical CDF of each column.

    x_k are empirical quantiles at levels evenly spaced in Gaussian space (from the
    smallest to the largest data point); y_k = Phi^-1(F_hat(x_k)), taken from the smaller
    of F_hat and 1 - F_hat; d_k = f_hat(x_k) / phi(y_k), the exact slope of the smoothed
    map. `shrinkage` blends the map toward the standardizing affine map (x - mean) / std.
    `max_tail_slope` (None: no limit) caps the slopes at the two outer knots, which are
    the slopes of the linear tails, at max_tail_slope / std (relaxed in narrow outer
    bins: `_cap_tail_slopes`).
    """
    summary = x if hasattr(x, "kernel_cdf_pdf") else SampleSummary(x)
    n, mean = summary.n, summary.mean
    std = np.where(summary.std > 0, summary.std, 1.0)
    iqr = summary.quartile_spread()
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    h = (bandwidth * 0.9 * n**-0.2) * spread  # Silverman's rule, times `bandwidth`
    edge = special.ndtri(1.0 - 0.5 / n)
    levels = special.ndtr(np.linspace(-edge, edge, num_knots))
    xk = summary.quantile(levels)  # (d, K)
    gaps = np.maximum(np.diff(xk, axis=1), 1e-4 * std[:, None])
    xk = xk[:, :1] + np.concatenate([np.zeros((len(xk), 1)), np.cumsum(gaps, axis=1)], axis=1)
    if bandwidth == 0:  # no kernel: the spline interpolates the empirical quantiles
        yk = np.broadcast_to(np.linspace(-edge, edge, num_knots), xk.shape)
        secant = np.diff(yk, axis=1) / np.diff(xk, axis=1)
        inner = 2.0 / (
            1.0 / secant[:, 1:] + 1.0 / secant[:, :-1]
        )  # harmonic mean (Fritsch-Carlson)
        dk = np.concatenate([secant[:, :1], inner, secant[:, -1:]], axis=1)
    else:
        cdf, pdf = summary.kernel_cdf_pdf(xk, h)
        sf = 1.0 - cdf  # exact enough: F_hat lies in [1/(2n), 1 - 1/(2n)] at the knots
        yk = np.where(
            cdf < sf, special.ndtri(np.minimum(cdf, 0.5)), -special.ndtri(np.minimum(sf, 0.5))
        )
        dk = pdf * np.sqrt(2 * np.pi) * np.exp(0.5 * yk**2)
    xk, yk, dk = _shrink(xk, yk, dk, mean, std, shrinkage)
    return xk, yk, _cap_tail_slopes(xk, dk, std, max_tail_slope)


def _shrink(xk, yk, dk, mean, std, shrinkage):
    if shrinkage > 0:
        yk = (1 - shrinkage) * yk + shrinkage * (xk - mean[:, None]) / std[:, None]
        dk = (1 - shrinkage) * dk + shrinkage / std[:, None]
    gaps = np.maximum(np.diff(yk, axis=1), 1e-6)
    yk = yk[:, :1] + np.concatenate([np.zeros((len(yk), 1)), np.cumsum(gaps, axis=1)], axis=1)
    return xk, yk, np.maximum(dk, 1e-6)


# Outer bins narrower than this fraction of the column's std relax the tail-slope cap.
CAP_RELAX_WIDTH = 0.01


def _cap_tail_slopes(xk, dk, std, max_tail_slope):
    # The slope at an outer knot is set by the few most extreme rows (the kernel of one
    # isolated point can make it several times 1 / std), and the linear tail repeats it
    # without limit: a row beyond the training range is stretched by it in every block,
    # so its latent grows geometrically with the depth. Capped, the map extrapolates no
    # steeper than max_tail_slope times the standardization (BENCHMARKS.md, "Tail slopes").
    # In an outer bin of width w the cap changes the slope by at most a factor
    # exp(w / (CAP_RELAX_WIDTH std)): forced in a bin of a few float32 ulps (two nearly
    # equal extreme rows), it would put a kink where rounding decides the log-det.
    if max_tail_slope is None:
        return dk
    cap = float(max_tail_slope) / std
    dk = dk.copy()
    for edge, inner in ((0, 1), (-1, -2)):
        width = np.abs(xk[:, inner] - xk[:, edge])
        relaxed = dk[:, edge] * np.exp(-width / (CAP_RELAX_WIDTH * std))
        dk[:, edge] = np.maximum(np.minimum(dk[:, edge], cap), relaxed)
    return dk


def logistic_mixture_em(x, k, bandwidth, iterations=30):
    """Maximum-likelihood mixture of k logistics per column of x (n, d), by EM started from
    centres at quantiles; component scales never fall below the kernel width of the
    spline fit (Silverman's rule times `bandwidth`), which keeps the CDF smooth.
    Returns (loc, log_scale, logits), each (d, k)."""
    x = np.asarray(x, dtype="float64").T[:, :, None]  # (d, n, 1)
    n = x.shape[1]
    std = x.std(axis=1) + 1e-6  # (d, 1)
    iqr = np.subtract(*np.percentile(x, [75, 25], axis=1)) / 1.349
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    floor = (
        np.maximum(max(bandwidth, 0.05) * 0.9 * spread * n**-0.2, 1e-3 * std) * np.sqrt(3.0) / np.pi
    )
    loc = np.quantile(x[..., 0], (np.arange(k) + 0.5) / k, axis=1).T  # (d, k)
    padded = np.concatenate([loc[:, :1], loc, loc[:, -1:]], axis=1)
    scale = np.maximum(0.5 * (padded[:, 2:] - padded[:, :-2]) * np.sqrt(3.0) / np.pi, floor)
    log_w = np.full(loc.shape, -np.log(k))
    for _ in range(iterations):
        z = (x - loc[:, None, :]) / scale[:, None, :]  # (d, n, k)
        log_r = (
            log_w[:, None, :] - np.logaddexp(0, z) - np.logaddexp(0, -z) - np.log(scale[:, None, :])
        )
        log_r -= special.logsumexp(log_r, axis=2, keepdims=True)
        r = np.exp(log_r)
        mass = r.sum(axis=1) + 1e-12  # (d, k)
        log_w = np.log(mass / n)
        loc = (r * x).sum(axis=1) / mass
        var = (r * (x - loc[:, None, :]) ** 2).sum(axis=1) / mass
        scale = np.maximum(np.sqrt(var) * np.sqrt(3.0) / np.pi, floor)
    return loc, np.log(scale), log_w - log_w.mean(axis=1, keepdims=True)
