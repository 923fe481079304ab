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
    reads the same from a mergeable histogram (`tfflows.gaussianization.sketches`)."""

    def __init__(self, x):
        self.sorted = np.sort(np.asarray(x, dtype="float64"), axis=0)
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

    # Above this many rows the kernel sums are binned (a 4,096-bin `HistogramSketch` on an
    # asinh grid: each row moves by at most half a bin, under 0.3% of h at n = 1e4 and
    # bandwidth 1.5; midpoint-rule error O((w / h)^2)); below it they are exact. (2,048
    # bins fit twice as fast but quadruple the log-density error in the tails: 0.05 nats
    # at the worst test row of tests/test_streaming.py's data, against 0.0125.)
    BINNED_ABOVE = 4096

    def kernel_cdf_pdf(self, points, h):
        """mean_i Phi((p - x_i) / h) and mean_i phi((p - x_i) / h) / h at points (d, K)."""
        x, n = self.sorted, self.n
        if n > self.BINNED_ABOVE:
            from tfflows.gaussianization.sketches import HistogramSketch

            scale = np.where(self.std > 0, self.std, 1.0)
            reach = float(np.max(np.abs(x - self.mean) / scale)) * 1.001 + 1e-9
            sketch = HistogramSketch(self.mean, scale, bins=4096, value_range=reach)
            sketch.add(x)
            return sketch.kernel_cdf_pdf(points, h)
        cdf, pdf = np.empty_like(points), np.empty_like(points)
        step = max(1, int(4e6 // (points.shape[1] * n)))  # columns per chunk, bounding memory
        for j in range(0, x.shape[1], step):
            z = (points[j:j + step, :, None] - x.T[j:j + step, None, :]) / h[j:j + step, None, None]  # (c, K, n)
            cdf[j:j + step] = special.ndtr(z).mean(axis=2)
            pdf[j:j + step] = np.exp(-0.5 * z**2).mean(axis=2) / (np.sqrt(2 * np.pi) * h[j:j + step, None])
        return cdf, pdf


def smoothed_cdf_knots(x, num_knots, bandwidth, shrinkage):
    """Knots (x_k, y_k, d_k), each (d, K), of Phi^-1(F_hat) for the columns of x (n, d)
    (or of a summary with `SampleSummary`'s interface), F_hat the Gaussian-kernel-smoothed
    empirical CDF of each column.

    x_k are empirical quantiles at levels evenly spaced in Gaussian space (from the
    smallest to the largest data point); y_k = Phi^-1(F_hat(x_k)), taken from the smaller
    of F_hat and 1 - F_hat; d_k = f_hat(x_k) / phi(y_k), the exact slope of the smoothed
    map. `shrinkage` blends the map toward the standardizing affine map (x - mean) / std.
    """
    summary = x if hasattr(x, "kernel_cdf_pdf") else SampleSummary(x)
    n, mean = summary.n, summary.mean
    std = np.where(summary.std > 0, summary.std, 1.0)
    iqr = summary.quartile_spread()
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    h = (bandwidth * 0.9 * n ** -0.2) * spread  # Silverman's rule, times `bandwidth`
    edge = special.ndtri(1.0 - 0.5 / n)
    levels = special.ndtr(np.linspace(-edge, edge, num_knots))
    xk = summary.quantile(levels)  # (d, K)
    gaps = np.maximum(np.diff(xk, axis=1), 1e-4 * std[:, None])
    xk = xk[:, :1] + np.concatenate([np.zeros((len(xk), 1)), np.cumsum(gaps, axis=1)], axis=1)
    if bandwidth == 0:  # no kernel: the spline interpolates the empirical quantiles
        yk = np.broadcast_to(np.linspace(-edge, edge, num_knots), xk.shape)
        secant = np.diff(yk, axis=1) / np.diff(xk, axis=1)
        inner = 2.0 / (1.0 / secant[:, 1:] + 1.0 / secant[:, :-1])  # harmonic mean (Fritsch-Carlson)
        dk = np.concatenate([secant[:, :1], inner, secant[:, -1:]], axis=1)
        return _shrink(xk, yk, dk, mean, std, shrinkage)
    cdf, pdf = summary.kernel_cdf_pdf(xk, h)
    sf = 1.0 - cdf  # exact enough: F_hat lies in [1/(2n), 1 - 1/(2n)] at the knots
    yk = np.where(cdf < sf, special.ndtri(np.minimum(cdf, 0.5)), -special.ndtri(np.minimum(sf, 0.5)))
    dk = pdf * np.sqrt(2 * np.pi) * np.exp(0.5 * yk**2)
    return _shrink(xk, yk, dk, mean, std, shrinkage)


def _shrink(xk, yk, dk, mean, std, shrinkage):
    if shrinkage > 0:
        yk = (1 - shrinkage) * yk + shrinkage * (xk - mean[:, None]) / std[:, None]
        dk = (1 - shrinkage) * dk + shrinkage / std[:, None]
    gaps = np.maximum(np.diff(yk, axis=1), 1e-6)
    yk = yk[:, :1] + np.concatenate([np.zeros((len(yk), 1)), np.cumsum(gaps, axis=1)], axis=1)
    return xk, yk, np.maximum(dk, 1e-6)


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
    floor = np.maximum(max(bandwidth, 0.05) * 0.9 * spread * n ** -0.2, 1e-3 * std) * np.sqrt(3.0) / np.pi
    loc = np.quantile(x[..., 0], (np.arange(k) + 0.5) / k, axis=1).T  # (d, k)
    padded = np.concatenate([loc[:, :1], loc, loc[:, -1:]], axis=1)
    scale = np.maximum(0.5 * (padded[:, 2:] - padded[:, :-2]) * np.sqrt(3.0) / np.pi, floor)
    log_w = np.full(loc.shape, -np.log(k))
    for _ in range(iterations):
        z = (x - loc[:, None, :]) / scale[:, None, :]  # (d, n, k)
        log_r = log_w[:, None, :] - np.logaddexp(0, z) - np.logaddexp(0, -z) - np.log(scale[:, None, :])
        log_r -= special.logsumexp(log_r, axis=2, keepdims=True)
        r = np.exp(log_r)
        mass = r.sum(axis=1) + 1e-12  # (d, k)
        log_w = np.log(mass / n)
        loc = (r * x).sum(axis=1) / mass
        var = (r * (x - loc[:, None, :]) ** 2).sum(axis=1) / mass
        scale = np.maximum(np.sqrt(var) * np.sqrt(3.0) / np.pi, floor)
    return loc, np.log(scale), log_w - log_w.mean(axis=1, keepdims=True)
