"""The non-Gaussian part of mutual information by k nearest neighbours in the Gaussianized
space (`tfflows.gaussianization.information`, `mutual_information*`; NumPy).

MI is invariant under invertible maps of x and of y separately, so it is measured on the
normal scores of each feature, whitened within each block and rotated to canonical pairs
(canonical correlation analysis): there the Gaussian-copula part is -1/2 sum log(1 - rho_i^2)
and a k-NN estimator sees round blocks whose only cross-dependence beyond the rho_i is the
non-Gaussian one. The Kraskov-Stoegbauer-Grassberger estimator (KSG, algorithm 1; Kraskov,
Stoegbauer & Grassberger 2004) is run with the Euclidean norm in each block and the larger
of the two across them (the product norm the algorithm needs), on the data and on Gaussian
reference samples with the same canonical correlations; the difference, its mean over rows,
is the non-Gaussian remainder:

    I = I_G(rho_hat) + KSG(scores) - mean KSG(Gaussian references with rho_hat).        (2)

For Gaussian (copula) data the two KSG terms have the same law, so (2) keeps the Gaussian
part's exact bias correction whatever KSG's own bias in many dimensions; for dependence no
Gaussian copula has (a curve, a shared scale, a spiral) the KSG term carries it, with the
usual small-sample bias of KSG of the part beyond the Gaussian one.
"""

import math

import numpy as np
from scipy import special

_CHUNK = 512
NEIGHBOURS = 5  # k of the KSG remainder
RADIAL = 4.0  # weight of the log-radius coordinate (bench_information_families: 2, 4, 8)


def _distances(a, rows):
    """Euclidean distances from a[rows] to every row of a."""
    sq = np.einsum("ij,ij->i", a, a)
    d2 = sq[rows, None] + sq[None, :] - 2.0 * a[rows] @ a.T
    return np.sqrt(np.maximum(d2, 0.0))


def ksg_rows(a, b, k):
    """Per-row terms psi(k) + psi(n) - psi(n_a + 1) - psi(n_b + 1) of KSG algorithm 1 (their
    mean is the estimate), Euclidean within a and b, max-norm across."""
    n = len(a)
    na, nb = np.empty(n), np.empty(n)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(n, start + _CHUNK))
        da, db = _distances(a, rows), _distances(b, rows)
        joint = np.maximum(da, db)
        joint[np.arange(len(rows)), rows] = np.inf
        eps = np.partition(joint, k - 1, axis=1)[:, k - 1]
        na[rows] = (da < eps[:, None]).sum(axis=1) - 1  # strictly inside, self excluded
        nb[rows] = (db < eps[:, None]).sum(axis=1) - 1
    return (
        special.digamma(k) + special.digamma(n) - special.digamma(na + 1) - special.digamma(nb + 1)
    )


def _inverse_sqrt(c):
    values, vectors = np.linalg.eigh(c)
    return vectors @ np.diag(np.maximum(values, 1e-12) ** -0.5) @ vectors.T


def canonical(u, dx):
    """(a, b, rho): the blocks u[:, :dx], u[:, dx:] whitened and rotated to canonical pairs,
    and the canonical correlations (a's first min(dx, dy) columns pair with b's)."""
    u = u - u.mean(axis=0)
    c = u.T @ u / len(u)
    wx, wy = _inverse_sqrt(c[:dx, :dx]), _inverse_sqrt(c[dx:, dx:])
    left, rho, right = np.linalg.svd(wx @ c[:dx, dx:] @ wy)
    a = u[:, :dx] @ wx @ left
    b = u[:, dx:] @ wy @ right.T
    return a, b, np.clip(rho, 0.0, 1.0 - 1e-9)


def reference(rho, n, dx, dy, seed):
    """A Gaussian sample with canonical correlations rho (blocks of dx and dy features)."""
    rng = np.random.default_rng(seed)
    a, e = rng.normal(size=(n, dx)), rng.normal(size=(n, dy))
    b = e.copy()
    m = len(rho)
    b[:, :m] = rho * a[:, :m] + np.sqrt(1 - rho**2) * e[:, :m]
    return a, b


def with_radius(a, weight):
    """a with its log-norm appended as one more coordinate, scaled to s.d. weight sqrt(d)
    (an injective map of a: the MI is unchanged, and neighbours in the joint space are near
    in radius, which a shared scale makes dependent); a itself when it has one column."""
    d = a.shape[1]
    if d < 2 or weight <= 0:
        return a
    r = 0.5 * np.log(np.einsum("ij,ij->i", a, a) + 1e-300)
    return np.concatenate(
        [a, weight * math.sqrt(d) * (r - r.mean())[:, None] / max(r.std(), 1e-12)], axis=1
    )


class KnnRemainder:
    """KSG(scores) - KSG(Gaussian references), per row, on the canonical blocks of the
    normal scores u (features :dx against dx:)."""

    def __init__(self, u, dx, k=NEIGHBOURS, references=2, seed=0, radial=RADIAL):
        n, dy = len(u), u.shape[1] - dx
        a, b, rho = canonical(u, dx)
        self.k, self.rho = int(min(k, n - 1)), rho

        def run(a, b):
            return ksg_rows(with_radius(a, radial), with_radius(b, radial), self.k)

        self.rows = run(a, b)
        refs = [run(*reference(rho, n, dx, dy, [seed, 4231, r])).mean() for r in range(references)]
        self.ref = float(np.mean(refs))
        self.ref_se = float(np.std(refs, ddof=1) / math.sqrt(len(refs))) if len(refs) > 1 else 0.0

        # s.e. of the difference: the rows' own, and the references' (each as noisy as the rows)
        self.se = float(np.std(self.rows) / math.sqrt(n) * math.sqrt(1 + 1 / references))

    def raw(self, w=None):
        """KSG(scores) - KSG(references), the rows reweighted by bootstrap weights w."""
        mean = self.rows.mean() if w is None else float(w @ self.rows / len(self.rows))
        return float(mean - self.ref)

    def value(self, w=None, gate=2.0):
        """The remainder, counted where the full sample's is significant (> gate s.e.): else 0,
        exact for Gaussian copulas (as the flows' remainder in `information_terms`)."""
        return self.raw(w) if self.raw() > gate * self.se else 0.0
