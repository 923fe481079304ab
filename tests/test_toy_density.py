"""The true densities of the embedded 2-D generators (tfflows.data.toy_density), checked
against the generators themselves: each integrates to 1 on a grid, a histogram of fresh
draws agrees with it bin by bin (chi-square), and the mean log-density of fresh draws
matches a fine-histogram estimate of the same expectation."""

import numpy as np
import pytest
from scipy import stats

from tfflows.data import toy_density
from tfflows.data.datasets import TOY_2D, toy_2d
from tfflows.data.toy_density import toy_2d_log_prob

# Known values (nats): the moons figure, and the exact entropy log 32 of the
# checkerboard (uniform on 8 squares of area 4).
KNOWN_NLL = {"moons": 1.674, "checkerboard": np.log(32.0)}


def _grid(lo=-8.0, hi=8.0, cells=200):
    """Cell centres of a square grid and the cell area. Cells 0.08 wide: the midpoint rule
    is spectrally accurate on the smooth sets (noise >= 0.1), and the checkerboard's edges
    (even integers) fall on cell edges, so its integral is exact."""
    edges = np.linspace(lo, hi, cells + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    xx, yy = np.meshgrid(centres, centres)
    return np.stack([xx.ravel(), yy.ravel()], axis=1), (edges[1] - edges[0]) ** 2


@pytest.mark.parametrize("name", TOY_2D)
def test_integrates_to_one(name):
    points, area = _grid()
    total = np.exp(toy_2d_log_prob(name, points)).sum() * area
    assert abs(total - 1) < 1e-3, total


@pytest.mark.parametrize("name", TOY_2D)
def test_histogram_of_fresh_draws_agrees(name):
    """Counts of 200,000 fresh draws in 0.25-wide bins vs n x (the density integrated over
    each bin by an 8 x 8 midpoint rule); chi-square over the bins expecting >= 20 rows."""
    n, width, sub = 200_000, 0.25, 8
    x = toy_2d(name, n, seed=2024)
    edges = np.arange(-5.0, 5.0 + width / 2, width)
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    fine = edges[0] + (np.arange((len(edges) - 1) * sub) + 0.5) * width / sub
    xx, yy = np.meshgrid(fine, fine, indexing="ij")
    p = np.exp(toy_2d_log_prob(name, np.stack([xx.ravel(), yy.ravel()], axis=1)))
    cells = len(edges) - 1
    mass = p.reshape(cells, sub, cells, sub).sum(axis=(1, 3)) * (width / sub) ** 2
    expected = n * mass
    used = expected >= 20
    assert counts[used].sum() > 0.99 * n  # the bins cover the data
    chi2 = ((counts[used] - expected[used]) ** 2 / expected[used]).sum()
    dof = used.sum() - 1
    assert stats.chi2.sf(chi2, dof) > 1e-4, (chi2, dof)


@pytest.mark.parametrize("name", TOY_2D)
def test_mean_log_density_matches_histogram_estimate(name):
    """-mean log p over fresh draws (the entropy) vs the plug-in estimate from a fine
    histogram of a second, independent sample: log(count / (n area)) at each draw's bin.
    The histogram blurs the density over 0.05-wide bins (a bias of order
    width^2 E|grad log p|^2 / 24, ~0.01 nats for noise 0.1) and log counts are biased by
    about 1 / (2 count) (~0.01 here; the checkerboard, flat, takes 0.25-wide bins aligned
    with its edges to keep counts high); the tolerance is 0.03."""
    n, width = 200_000, 0.25 if name == "checkerboard" else 0.05
    x = toy_2d(name, 50_000, seed=7)
    reference = toy_2d(name, n, seed=8)
    edges = np.arange(-8.0, 8.0 + width / 2, width)
    counts, _, _ = np.histogram2d(reference[:, 0], reference[:, 1], bins=[edges, edges])
    i = np.clip(np.searchsorted(edges, x[:, 0], side="right") - 1, 0, len(edges) - 2)
    j = np.clip(np.searchsorted(edges, x[:, 1], side="right") - 1, 0, len(edges) - 2)
    hit = counts[i, j] > 0  # both estimates over the draws whose bin the reference sample hit
    assert hit.mean() > 0.99
    histogram_nll = -np.mean(np.log(counts[i, j][hit] / (n * width ** 2)))
    true_nll = -np.mean(toy_2d_log_prob(name, x[hit]))
    assert abs(histogram_nll - true_nll) < 0.03, (histogram_nll, true_nll)
    if name in KNOWN_NLL:
        assert abs(-np.mean(toy_2d_log_prob(name, x)) - KNOWN_NLL[name]) < 0.005


@pytest.mark.parametrize("name, attribute, fine", [("moons", "MOONS_PANELS", 512),
                                                    ("spirals", "SPIRALS_PANELS", 2000),
                                                    ("pinwheel", "PINWHEEL_GRID", 3000)])
def test_numerical_integration_has_converged(name, attribute, fine, monkeypatch):
    """The quadrature / root-finding resolution in use agrees with a much finer one, on the
    data and off it (including the pinwheel's folds, where preimages multiply)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([toy_2d(name, 2000, seed=3), rng.uniform(-6, 6, (2000, 2))])
    coarse = toy_2d_log_prob(name, x)
    monkeypatch.setattr(toy_density, attribute, fine)
    reference = toy_2d_log_prob(name, x)
    relevant = reference > -30
    np.testing.assert_allclose(coarse[relevant], reference[relevant], atol=1e-8)


def test_checkerboard_is_exact_and_zero_off_its_squares():
    inside = np.array([[0.5, 0.5], [-3.5, -2.5], [2.5, -1.5], [-0.5, -0.5]])
    outside = np.array([[0.5, -0.5], [-0.5, 0.5], [4.5, 0.5], [0.0, 4.1]])
    np.testing.assert_allclose(toy_2d_log_prob("checkerboard", inside), -np.log(32.0))
    assert np.all(toy_2d_log_prob("checkerboard", outside) == -np.inf)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shape"):
        toy_2d_log_prob("moons", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="choose one of"):
        toy_2d_log_prob("swiss_roll", np.zeros((3, 2)))
