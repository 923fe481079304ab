"""Information measures against closed forms: bias, copula invariance and interval coverage
(the full n = 5,000 sweep over d = 2..32 is benchmarks/bench_information.py)."""

import math

import numpy as np
import pytest
from scipy import special


from tfflows.gaussianization import information as info


def equicorrelated(d, rho):
    s = np.full((d, d), rho)
    np.fill_diagonal(s, 1.0)
    return s


def gaussian(s, n, seed):
    return np.random.default_rng(seed).normal(size=(n, len(s))) @ np.linalg.cholesky(s).T


def gaussian_tc(s):
    return -0.5 * np.linalg.slogdet(s)[1]


def within_target(value, truth):
    return abs(value - truth) <= max(0.05 * abs(truth), 0.02)


# ----- closed forms ------------------------------------------------------------------------------
def test_tc_weak_gaussian_8d_is_unbiased():
    """The old estimator is ~+16% (+0.017 nats) here; the new one is unbiased to ~0.004."""
    s = equicorrelated(8, 0.1)
    values = [info.total_correlation(gaussian(s, 5000, seed), seed=seed) for seed in range(3)]
    assert abs(np.mean(values) - gaussian_tc(s)) < 0.01, values


def test_tc_of_independent_gaussians_is_zero():
    """No plug-in bias d(d-1)/(4n) = 0.035 nats left at d = 24, n = 4,000 (null s.d. 0.003)."""
    x = np.random.default_rng(0).normal(size=(4000, 24))
    assert abs(info.total_correlation(x)) < 0.01


@pytest.mark.parametrize("d, rho", [(4, 0.9), (16, 0.5)])
def test_tc_gaussian_within_target(d, rho):
    s = equicorrelated(d, rho)
    assert within_target(info.total_correlation(gaussian(s, 2000, 1)), gaussian_tc(s))


def test_tc_invariant_under_marginal_maps():
    """A Gaussian copula with exponential, uniform, log-normal and cubed marginals."""
    s = equicorrelated(8, 0.5)
    z = gaussian(s, 2000, 2)
    maps = [lambda v: -special.log_ndtr(-v), special.ndtr, lambda v: np.exp(0.5 * v), lambda v: v**3]
    x = np.stack([maps[j % 4](z[:, j]) for j in range(8)], axis=1)
    assert within_target(info.total_correlation(x), gaussian_tc(s))
    tc_x, tc_z = info.total_correlation(x, remainder=False), info.total_correlation(z, remainder=False)
    assert tc_x == pytest.approx(tc_z, abs=1e-9)  # ranks are invariant: the same estimate


def test_mutual_information_gaussian_pair_and_invariance():
    rho = 0.6
    xy = gaussian(equicorrelated(2, rho), 5000, 3)
    truth = -0.5 * math.log(1 - rho**2)
    assert within_target(info.mutual_information(xy[:, :1], xy[:, 1:]), truth)
    assert within_target(info.mutual_information(np.exp(xy[:, :1]), xy[:, 1:] ** 3), truth)


def test_mutual_information_of_blocks():
    s = equicorrelated(6, 0.4)
    xy = gaussian(s, 3000, 4)
    truth = gaussian_tc(s) - 2 * gaussian_tc(s[:3, :3])
    assert within_target(info.mutual_information(xy[:, :3], xy[:, 3:]), truth)


def test_entropy_gaussian():
    s = equicorrelated(8, 0.5)
    truth = 0.5 * np.linalg.slogdet(2 * math.pi * math.e * s)[1]
    assert abs(info.entropy(gaussian(s, 2000, 5)) - truth) < 0.1


def test_kl_divergence_of_gaussians():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3000, 2)), 1.5 * rng.normal(size=(3000, 2)) + 0.5
    truth = 2 * (math.log(1.5) + (1 + 0.25) / (2 * 2.25) - 0.5)
    e = info.kl_divergence_with_interval(x, y, n_boot=50)
    assert abs(e.value - truth) < 0.05 and e.ci_low <= truth <= e.ci_high


def test_one_feature_has_zero_total_correlation():
    assert info.total_correlation(np.random.default_rng(7).normal(size=500)) == 0.0


def test_non_gaussian_dependence_is_added():
    """Uncorrelated but dependent features (a Gaussian scale mixture, multivariate t with 3
    degrees of freedom): the Gaussian part is ~0 and the flow must find the remainder."""
    rng = np.random.default_rng(8)
    nu, d = 3, 3
    x = rng.normal(size=(4000, d)) / np.sqrt(rng.chisquare(nu, size=(4000, 1)) / nu)

    def h(k):  # entropy of a standard multivariate t in k dimensions
        return (0.5 * k * math.log(nu * math.pi) + special.gammaln(nu / 2) - special.gammaln((nu + k) / 2)
                + 0.5 * (nu + k) * (special.digamma((nu + k) / 2) - special.digamma(nu / 2)))

    truth = d * h(1) - h(d)
    e = info.total_correlation_with_interval(x, n_boot=20)
    assert e.parts["non_gaussian"] > 0.5 * truth
    assert abs(e.value - truth) < abs(e.parts["gaussian"] - truth)


# ----- intervals -------------------------------------------------------------------------------------
def test_estimate_fields():
    s = equicorrelated(4, 0.3)
    e = info.total_correlation_with_interval(gaussian(s, 1000, 9), n_boot=50, remainder=False)
    assert float(e) == e.value and e.ci_low <= e.value <= e.ci_high and e.stderr > 0
    assert e.confidence == 0.95 and e.n == 1000
    assert e.bias == pytest.approx(info.wishart_bias(4, 1000))
    assert e.parts["gaussian_bias"] == e.bias and "bias" in e.note.lower()
    assert "CI" in str(e)


def test_interval_coverage_gaussian_part():
    s = equicorrelated(4, 0.3)
    truth = gaussian_tc(s)
    hits = [(lambda e: e.ci_low <= truth <= e.ci_high)(
        info.total_correlation_with_interval(gaussian(s, 500, 100 + r), n_boot=100, remainder=False, seed=r))
        for r in range(40)]
    assert np.mean(hits) >= 0.85  # nominal 0.95; 40 runs


def test_interval_coverage_with_remainder_and_entropy():
    s = equicorrelated(3, 0.5)
    tc, h = gaussian_tc(s), 0.5 * np.linalg.slogdet(2 * math.pi * math.e * s)[1]
    tc_hits, h_hits = [], []
    for r in range(8):
        x = gaussian(s, 800, 200 + r)
        e = info.total_correlation_with_interval(x, n_boot=60, seed=r)
        tc_hits.append(e.ci_low <= tc <= e.ci_high)
        e = info.entropy_with_interval(x, n_boot=60, seed=r, remainder=False)
        h_hits.append(e.ci_low <= h <= e.ci_high)
    assert sum(tc_hits) >= 6 and sum(h_hits) >= 6


# ----- data rules -----------------------------------------------------------------------------------
def test_rejects_integer_and_boolean_data_with_a_hint():
    for bad in (np.ones((100, 2), dtype="int64"), np.ones((100, 2), dtype=bool)):
        with pytest.raises(TypeError, match="dequantize"):
            info.total_correlation(bad)


def test_rejects_nan_rows_with_count_and_first_row():
    x = np.random.default_rng(10).normal(size=(100, 3))
    x[[7, 20], 1] = np.nan
    x[50, 0] = np.inf
    with pytest.raises(ValueError, match=r"3 row\(s\).*row 7"):
        info.entropy(x)


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="shape"):
        info.total_correlation(np.zeros((10, 2, 2)))
    x = np.random.default_rng(11).normal(size=(100, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        info.mutual_information(x, x[:50])
    with pytest.raises(ValueError, match="same number of features"):
        info.kl_divergence(x, x[:, :1])
    with pytest.raises(ValueError, match="at least"):
        info.total_correlation(x[:3])
