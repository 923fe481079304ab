"""Information measures by Gaussianization against closed forms (10-D Gaussians with
5,000 samples: within 5%) and non-Gaussian cases with known answers."""

import numpy as np
import pytest

from tfflows.gaussianization import information

D, N = 10, 5000


def _gaussian(seed=0, rho=0.5):
    """N samples of a 10-D Gaussian with equicorrelation rho and unequal scales."""
    rng = np.random.default_rng(seed)
    corr = np.full((D, D), rho) + (1 - rho) * np.eye(D)
    scales = np.linspace(0.5, 3.0, D)
    cov = corr * np.outer(scales, scales)
    return rng.multivariate_normal(np.zeros(D), cov, size=N), cov, corr


def test_total_correlation_of_a_gaussian():
    x, _, corr = _gaussian()
    expected = -0.5 * np.linalg.slogdet(corr)[1]
    assert information.total_correlation(x) == pytest.approx(expected, rel=0.05)


def test_entropy_of_a_gaussian():
    x, cov, _ = _gaussian(seed=1)
    expected = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]
    assert information.entropy(x) == pytest.approx(expected, rel=0.05)


def test_mutual_information_of_gaussians():
    x, cov, _ = _gaussian(seed=2, rho=0.6)
    a, b = x[:, :5], x[:, 5:]
    expected = 0.5 * (np.linalg.slogdet(cov[:5, :5])[1] + np.linalg.slogdet(cov[5:, 5:])[1]
                      - np.linalg.slogdet(cov)[1])
    assert information.mutual_information(a, b) == pytest.approx(expected, rel=0.05)


def test_mutual_information_is_invariant_to_monotone_maps():
    # Non-Gaussian marginals with a known answer: MI of the underlying Gaussian pair.
    rng = np.random.default_rng(3)
    rho = 0.8
    g = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=N)
    a, b = np.exp(g[:, :1]), g[:, 1:] ** 3 + g[:, 1:]
    expected = -0.5 * np.log(1 - rho**2)
    assert information.mutual_information(a, b) == pytest.approx(expected, rel=0.05)


def test_entropy_of_mixed_uniforms_and_total_correlation_of_independent_exponentials():
    rng = np.random.default_rng(4)
    mixing = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 1.5]])
    u = rng.uniform(0, 1, size=(N, 3))
    expected = np.log(abs(np.linalg.det(mixing)))  # H(U[0,1]^3) = 0, plus log|det A|
    assert information.entropy(u @ mixing.T) == pytest.approx(expected, abs=0.1)
    independent = rng.exponential(size=(N, 4))
    # exactly 0; the joint and the four marginal estimates carry different biases (about 0.1 nats)
    assert abs(information.total_correlation(independent)) < 0.15


def test_kl_divergence_between_gaussians():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, 3))
    y = rng.normal(loc=0.5, scale=1.5, size=(N, 3))
    # KL(N(0, 1) || N(0.5, 1.5^2)) per dimension
    per_dim = np.log(1.5) + (1 + 0.25) / (2 * 1.5**2) - 0.5
    assert information.kl_divergence(x, y) == pytest.approx(3 * per_dim, rel=0.1, abs=0.03)


def test_input_checks():
    with pytest.raises(ValueError, match="same number of rows"):
        information.mutual_information(np.zeros((10, 1)), np.zeros((11, 1)))
    with pytest.raises(TypeError, match="dequantize"):
        information.entropy(np.ones((100, 2), dtype="int64"))


def test_marginal_entropy_neighbours_grow_with_the_rows_and_lower_the_error():
    from tfflows.gaussianization.information_terms import marginal_entropy_rows, neighbours

    assert neighbours(50) == neighbours(500) == 3 and neighbours(2000) == 6 and neighbours(5000) == neighbours(10**6) == 10
    rng = np.random.default_rng(0)
    samples = [rng.random((5000, 2)) for _ in range(12)]  # uniforms: entropy 0
    default = np.array([marginal_entropy_rows(x).mean(axis=0) for x in samples])
    three = np.array([marginal_entropy_rows(x, k=3).mean(axis=0) for x in samples])
    assert np.sqrt(np.mean(default**2)) < 0.75 * np.sqrt(np.mean(three**2))
    assert np.abs(default.mean()) < 0.005
