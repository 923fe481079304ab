"""Mutual-information families with closed-form or numerically exact truth (issue 28).

The task definitions follow the "Beyond Normal" benchmark (Czyz, Grabowski, Otto,
Marx & Beerenwinkel 2023; PyPI `benchmark-mi` 0.1.3, import `bmi`), re-written here in
NumPy because that package pins numpy < 2 and jax < 0.5 (it cannot share the project's
environment): swiss roll 2 x 1 (`bmi.transforms.swissroll2d` on the normal-CDF of a
correlated Gaussian pair), spirals (`bmi.transforms.Spiral`, exp(speed / d ||x||^2 G)
with G the (0, 1) resp. (1, 2) generator of so(d)) on the "2-pair" Gaussian, Student-t
with identity or dense dispersion (MI of Arellano-Valle et al. 2013, as bmi computes it),
additive uniform noise (I = eps - log 2 eps for eps <= 1/2, 1 / (4 eps) above), half-cube
and asinh warps. Added here, each with its truth by quadrature (numerically exact to the
printed digits): the swiss roll and a circle with Gaussian noise off the curve, multiplicative
uniform noise, additive Gaussian noise on uniforms, a Gaussian scale mixture with log-normal
shared scale, and invertible marginal warps of each family (MI is invariant to them).

A case is `Case(family, name, dx, dy, truth, sample)`, `sample(seed, n) -> (x, y)`.
"""

import math
from typing import Callable, NamedTuple

import numpy as np
from scipy import integrate, special, stats

HALF_LOG_2PIE = 0.5 * math.log(2 * math.pi * math.e)


class Case(NamedTuple):
    family: str
    name: str
    dx: int
    dy: int
    truth: float
    sample: Callable


# ----- Gaussian bases ----------------------------------------------------------------------------
def gaussian_mi(cov, dx):
    return 0.5 * (
        np.linalg.slogdet(cov[:dx, :dx])[1]
        + np.linalg.slogdet(cov[dx:, dx:])[1]
        - np.linalg.slogdet(cov)[1]
    )


def dense_cov(dx, dy, off=0.5):
    return np.eye(dx + dy) * (1 - off) + off


def two_pair_cov(dx, dy, strength=2.0):
    """bmi's task_multinormal_2pair: X_i = 2 Z_i + E_i, Y_i = 2 Z_i + F_i for i < 2, the other
    coordinates E_i + 2 V_i, independent; as bmi samples it, standardized (correlation 0.8)."""
    cov = np.eye(dx + dy)
    for i in range(2):
        cov[i, dx + i] = cov[dx + i, i] = strength**2 / (1.0 + strength**2)
    return cov


def gaussian_sampler(cov, dx):
    chol = np.linalg.cholesky(cov)

    def sample(seed, n):
        z = np.random.default_rng(seed).normal(size=(n, len(cov))) @ chol.T
        return z[:, :dx], z[:, dx:]

    return sample


# ----- radial (elliptical with a shared scale) ---------------------------------------------------
def t_entropy(k, df):
    """Differential entropy of the standard multivariate t in k dimensions."""
    h = 0.5 * (df + k)
    return (
        special.gammaln(0.5 * df)
        - special.gammaln(h)
        + 0.5 * k * math.log(df * math.pi)
        + h * (special.digamma(h) - special.digamma(0.5 * df))
    )


def student_mi(dx, dy, df, dispersion):
    return (
        gaussian_mi(dispersion, dx) + t_entropy(dx, df) + t_entropy(dy, df) - t_entropy(dx + dy, df)
    )


def scale_mixture_sampler(cov, dx, scale):
    """Rows z / s... scaled by one random factor shared by x and y."""
    chol = np.linalg.cholesky(cov)

    def sample(seed, n):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, len(cov))) @ chol.T * scale(rng, n)[:, None]
        return z[:, :dx], z[:, dx:]

    return sample


def _radial_entropy(k, log_scale_pdf, lo, hi):
    """Entropy of x = s g, g ~ N(0, I_k), log s with density log_scale_pdf on [lo, hi]:
    H = -E log p(x), p(x) = E_s N(x; 0, s^2 I); by quadrature over r = |x| and log s."""
    t = np.linspace(lo, hi, 801)
    w = np.exp(log_scale_pdf(t))
    w /= integrate.trapezoid(w, t)
    r = np.exp(np.linspace(lo - 6, hi + 3, 1601))
    s = np.exp(t)
    log_phi = (
        -0.5 * (r[:, None] / s[None, :]) ** 2
        - k * np.log(s)[None, :]
        - 0.5 * k * math.log(2 * math.pi)
    )
    log_p = special.logsumexp(
        log_phi + np.log(w * np.gradient(t))[None, :], axis=1
    )  # p(x) at |x| = r
    log_area = math.log(2) + 0.5 * k * math.log(math.pi) - special.gammaln(0.5 * k)
    density_r = np.exp(log_p + log_area + (k - 1) * np.log(r))  # density of |x|
    return float(-integrate.trapezoid(density_r * log_p * r, np.log(r)))


def lognormal_scale_mi(dx, dy, sigma):
    """MI of a Gaussian scale mixture with log s ~ N(0, sigma^2) and identity dispersion."""

    def log_pdf(t):
        return -0.5 * (t / sigma) ** 2

    bounds = (-7 * sigma, 7 * sigma)
    return (
        _radial_entropy(dx, log_pdf, *bounds)
        + _radial_entropy(dy, log_pdf, *bounds)
        - _radial_entropy(dx + dy, log_pdf, *bounds)
    )


# ----- manifolds ---------------------------------------------------------------------------------
def swiss_roll(u):
    t = 1.5 * np.pi * (1 + 2 * u)
    return np.stack([t * np.cos(t), t * np.sin(t)], axis=-1) / 21.0


def circle(u):
    return np.stack([np.cos(2 * np.pi * u), np.sin(2 * np.pi * u)], axis=-1) / 2.0


def manifold_sampler(curve, rho, noise):
    """a, b a Gaussian pair with correlation rho; x = curve(Phi(a)) + noise N(0, I_2),
    y = b (bmi's swiss roll 2 x 1 at noise 0, y there is Phi(b): the same MI)."""

    def sample(seed, n):
        rng = np.random.default_rng(seed)
        a = rng.normal(size=n)
        b = rho * a + math.sqrt(1 - rho**2) * rng.normal(size=n)
        x = curve(special.ndtr(a)) + noise * rng.normal(size=(n, 2))
        return x, b[:, None]

    return sample


def manifold_mi(curve, rho, noise, rows=20000, grid=6001, seed=12345):
    """I(x; y) = E log p(x | y) / p(x) by Monte Carlo over `rows` exact samples, the 1-D
    integrals over the latent a by quadrature on `grid` points (s.e. ~0.003 nats)."""
    base = -0.5 * math.log(1 - rho**2)
    if noise == 0:
        return base  # x is an invertible map of a
    x, y = manifold_sampler(curve, rho, noise)(seed, rows)
    a = np.linspace(-6, 6, grid)
    log_w = stats.norm.logpdf(a) + math.log(a[1] - a[0])
    c = curve(special.ndtr(a))
    out = []
    for chunk in np.array_split(np.arange(rows), 40):
        d2 = ((x[chunk, None, :] - c[None]) ** 2).sum(-1)
        log_px_a = -0.5 * d2 / noise**2 - math.log(2 * math.pi * noise**2)
        log_py_a = stats.norm.logpdf(y[chunk], rho * a[None], math.sqrt(1 - rho**2))
        log_pxy = special.logsumexp(log_px_a + log_py_a + log_w, axis=1)
        log_px = special.logsumexp(log_px_a + log_w, axis=1)
        out.append(log_pxy - log_px - stats.norm.logpdf(y[chunk, 0]))
    return float(np.mean(np.concatenate(out)))


# ----- spirals (bmi.transforms.Spiral) -----------------------------------------------------------
def spiral(z, i, j, speed):
    """x -> expm(speed |x|^2 G_ij) x; G_ij rotates the (i, j) plane, so the map is a rotation
    of that plane by the angle speed |x|^2."""
    angle = speed * (z**2).sum(axis=1)
    out = z.copy()
    c, s = np.cos(angle), np.sin(angle)
    out[:, i] = c * z[:, i] - s * z[:, j]
    out[:, j] = s * z[:, i] + c * z[:, j]
    return out


def spiral_sampler(base, dx, dy, speed=1.0):
    def sample(seed, n):
        x, y = base(seed, n)
        return spiral(x, 0, 1, speed / dx), spiral(y, 1, 2, speed / dy)

    return sample


# ----- noise -------------------------------------------------------------------------------------
def additive_uniform_mi(eps):
    return 0.25 / eps if eps > 0.5 else eps - math.log(2 * eps)


def additive_uniform_sampler(eps):
    def sample(seed, n):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 1, (n, 1))
        return x, x + rng.uniform(-eps, eps, (n, 1))

    return sample


def _entropy_1d(log_pdf, lo, hi, points=200001):
    t = np.linspace(lo, hi, points)
    lp = log_pdf(t)
    p = np.exp(lp)
    return float(-integrate.trapezoid(np.where(p > 0, p * lp, 0.0), t))


def additive_gaussian_mi(sigma, d):
    """x ~ U(0, 1)^d, y = x + N(0, sigma^2 I): d [h(x_1 + n) - h(n)]."""

    def log_pdf(t):
        return np.log(np.maximum(special.ndtr(t / sigma) - special.ndtr((t - 1) / sigma), 1e-300))

    h = _entropy_1d(log_pdf, -8 * sigma, 1 + 8 * sigma)
    return d * (h - 0.5 * math.log(2 * math.pi * math.e * sigma**2))


def additive_gaussian_sampler(sigma, d):
    def sample(seed, n):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 1, (n, d))
        return x, x + sigma * rng.normal(size=(n, d))

    return sample


def multiplicative_mi(eps):
    """x ~ U(0, 1), y = x exp(m), m ~ U(-eps, eps): log y = -E + m, E ~ Exp(1), so
    I = h(-E + m) - log(2 eps); the density of -E + m is (F(t + eps) - F(t - eps)) / (2 eps)
    with F the CDF of -E (exp(min(t, 0)))."""

    def log_pdf(t):
        f = np.exp(np.minimum(t + eps, 0)) - np.exp(np.minimum(t - eps, 0))
        return np.log(np.maximum(f / (2 * eps), 1e-300))

    return _entropy_1d(log_pdf, -40.0, eps) - math.log(2 * eps)


def multiplicative_sampler(eps):
    def sample(seed, n):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 1, (n, 1))
        return x, x * np.exp(rng.uniform(-eps, eps, (n, 1)))

    return sample


# ----- invertible marginal warps -----------------------------------------------------------------
def half_cube(v):
    return v * np.sqrt(np.abs(v))


WARPS = {
    "half-cube": half_cube,
    "asinh": np.arcsinh,
    "normal-cdf": special.ndtr,
    "exp": lambda v: np.exp(np.clip(v, -50, 50)),
}


def warped(sample, name):
    g = WARPS[name]

    def out(seed, n):
        x, y = sample(seed, n)
        return g(x), g(y)

    return out


def _warp_name(case, warp):
    return Case(
        case.family + " (warped)",
        f"{warp}({case.name})",
        case.dx,
        case.dy,
        case.truth,
        warped(case.sample, warp),
    )


def _student(dx, dy, df, off=0.0):
    disp = dense_cov(dx, dy, off)
    chol = np.linalg.cholesky(disp)

    def sample(seed, n):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, dx + dy)) @ chol.T / np.sqrt(rng.chisquare(df, (n, 1)) / df)
        return z[:, :dx], z[:, dx:]

    label = f"Student-t {dx}x{dy} df={df}" + (f" dense {off}" if off else "")
    return Case("radial", label, dx, dy, student_mi(dx, dy, df, disp), sample)


def cases(quick=False):
    """The sweep; `quick`: one case per family."""
    out = []
    # Gaussians (bmi's dense and 2-pair multinormals)
    for dx in (2,) if quick else (2, 5, 25, 50):
        cov = dense_cov(dx, dx)
        out.append(
            Case(
                "Gaussian",
                f"dense {dx}x{dx}",
                dx,
                dx,
                gaussian_mi(cov, dx),
                gaussian_sampler(cov, dx),
            )
        )
    for dx in () if quick else (5, 25):
        cov = two_pair_cov(dx, dx)
        out.append(
            Case(
                "Gaussian",
                f"2-pair {dx}x{dx}",
                dx,
                dx,
                gaussian_mi(cov, dx),
                gaussian_sampler(cov, dx),
            )
        )
    # manifolds
    for noise in (0.0, 0.05) if quick else (0.0, 0.02, 0.05, 0.1):
        truth = manifold_mi(swiss_roll, 0.75, noise)
        out.append(
            Case(
                "manifold",
                f"swiss roll 2x1 noise={noise}",
                2,
                1,
                truth,
                manifold_sampler(swiss_roll, 0.75, noise),
            )
        )
    for noise in () if quick else (0.05,):
        truth = manifold_mi(circle, 0.9, noise)
        out.append(
            Case(
                "manifold",
                f"circle 2x1 rho=0.9 noise={noise}",
                2,
                1,
                truth,
                manifold_sampler(circle, 0.9, noise),
            )
        )
    for dx in (3,) if quick else (3, 5, 25):
        cov = two_pair_cov(dx, dx)
        out.append(
            Case(
                "manifold",
                f"spiral 2-pair {dx}x{dx}",
                dx,
                dx,
                gaussian_mi(cov, dx),
                spiral_sampler(gaussian_sampler(cov, dx), dx, dx),
            )
        )
    # radial: shared scale
    student = [
        (1, 1, 1),
        (2, 2, 1),
        (3, 3, 2),
        (3, 3, 3),
        (5, 5, 2),
        (5, 5, 3),
        (10, 10, 3),
        (1, 1, 5),
        (10, 10, 10),
    ]
    for dx, dy, df in [(2, 2, 1), (5, 5, 3)] if quick else student:
        out.append(_student(dx, dy, df))
    if not quick:
        out.append(_student(3, 3, 3, off=0.5))
        for dx, sigma in ((2, 0.5), (5, 1.0)):
            cov = np.eye(2 * dx)
            out.append(
                Case(
                    "radial",
                    f"log-normal scale {dx}x{dx} sigma={sigma}",
                    dx,
                    dx,
                    lognormal_scale_mi(dx, dx, sigma),
                    scale_mixture_sampler(
                        cov, dx, lambda rng, n, s=sigma: np.exp(s * rng.normal(size=n))
                    ),
                )
            )
    # noise
    for eps in (0.1,) if quick else (0.1, 0.75):
        out.append(
            Case(
                "noise",
                f"additive uniform eps={eps}",
                1,
                1,
                additive_uniform_mi(eps),
                additive_uniform_sampler(eps),
            )
        )
    for sigma, d in () if quick else ((0.1, 1), (0.3, 5)):
        out.append(
            Case(
                "noise",
                f"additive Gaussian on U(0,1)^{d} sigma={sigma}",
                d,
                d,
                additive_gaussian_mi(sigma, d),
                additive_gaussian_sampler(sigma, d),
            )
        )
    for eps in (0.5,) if quick else (0.2, 1.0):
        out.append(
            Case(
                "noise",
                f"multiplicative exp(U(-{eps},{eps}))",
                1,
                1,
                multiplicative_mi(eps),
                multiplicative_sampler(eps),
            )
        )
    # invertible marginal warps of each family
    if not quick:
        pick = {
            "dense 5x5": "normal-cdf",
            "swiss roll 2x1 noise=0.0": "asinh",
            "spiral 2-pair 3x3": "half-cube",
            "Student-t 2x2 df=1": "asinh",
            "Student-t 5x5 df=3": "half-cube",
            "additive uniform eps=0.1": "exp",
            "multiplicative exp(U(-0.2,0.2))": "half-cube",
        }
        out += [_warp_name(c, pick[c.name]) for c in list(out) if c.name in pick]
    return out


def _check():
    """The truths against bmi's own values where bmi has the case (printed)."""
    print("swiss roll 0.413:", manifold_mi(swiss_roll, 0.75, 0.0))
    print(
        "t 2x2 df1 / 3x3 df2 / 5x5 df3:",
        [round(student_mi(d, d, f, np.eye(2 * d)), 4) for d, f in ((2, 1), (3, 2), (5, 3))],
    )
    print("additive 0.1 / 0.75:", additive_uniform_mi(0.1), additive_uniform_mi(0.75))
    print("log-normal scale sigma->0 ~ 0:", lognormal_scale_mi(2, 2, 0.05))
    print("2-pair:", gaussian_mi(two_pair_cov(3, 3), 3))


if __name__ == "__main__":
    _check()
