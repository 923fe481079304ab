"""`tfflows.sklearn.RBIG` as a scikit-learn estimator: check_estimator (with its documented
exceptions), Pipeline, clone, GridSearchCV scored by held-out log-likelihood, pickling,
and the information measures."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from tfflows.sklearn import EXPECTED_FAILED_CHECKS, RBIG


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(600, 3))
    return np.c_[z[:, 0], z[:, 0] ** 2 + 0.3 * z[:, 1], np.exp(0.5 * z[:, 2])] * [1.0, 3.0, 10.0]


def test_passes_check_estimator_but_the_documented_checks():
    results = check_estimator(RBIG(max_blocks=3, patience=2), expected_failed_checks=EXPECTED_FAILED_CHECKS,
                              on_fail=None, on_skip=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert all(name in {r["check_name"] for r in results} for name in EXPECTED_FAILED_CHECKS)


def test_scores_and_latents_do_not_depend_on_the_row_order_beyond_float32_rounding(x):
    # (scikit-learn's own order check asks 1e-7, the last bit of float32: EXPECTED_FAILED_CHECKS)
    model = RBIG(max_blocks=5, patience=2).fit(x[:400])
    order = np.random.default_rng(3).permutation(200)
    rows = x[400:]
    np.testing.assert_allclose(model.score_samples(rows[order]), model.score_samples(rows)[order], rtol=1e-6)
    np.testing.assert_allclose(model.transform(rows[order]), model.transform(rows)[order], rtol=1e-6, atol=1e-6)


def test_fit_transform_inverse_score_and_sample(x):
    model = RBIG(max_blocks=20).fit(x[:400])
    z = model.transform(x[400:])
    assert z.shape == (200, 3) and abs(z.mean()) < 0.3 and abs(z.std() - 1) < 0.3
    np.testing.assert_allclose(model.inverse_transform(z), x[400:], rtol=1e-3, atol=1e-3)
    assert np.isclose(model.score(x[400:]), model.score_samples(x[400:]).mean())
    assert model.sample(7, random_state=0).shape == (7, 3)
    with pytest.raises(TypeError, match="dequantize"):
        model.fit(np.ones((30, 3), dtype="int64"))


def test_pipeline_clone_pickle_and_grid_search(x):
    pipeline = make_pipeline(StandardScaler(), RBIG(max_blocks=10))
    pipeline.fit(x[:400])
    assert np.isfinite(pipeline.score(x[400:]))
    fitted = pipeline[-1]
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.score_samples(x[:5]), fitted.score_samples(x[:5]), rtol=1e-6)
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params() and not hasattr(fresh, "flow_")
    search = GridSearchCV(RBIG(max_blocks=10), {"shrinkage": [0.0, 0.5]}, cv=3).fit(x)
    assert search.best_params_["shrinkage"] in (0.0, 0.5)
    assert np.isfinite(search.best_score_)  # mean held-out log-likelihood per row


def test_information_measures_with_intervals(x):
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])
    g = rng.multivariate_normal(np.zeros(2), cov, size=4000)
    model = RBIG()
    tc = model.total_correlation(g, n_boot=50)
    assert abs(tc.value - (-0.5 * np.log(1 - 0.36))) < 0.03 and tc.ci_low <= tc.value <= tc.ci_high
    mi = model.mutual_information(g[:, :1], g[:, 1:], n_boot=0)
    assert abs(mi.value - (-0.5 * np.log(1 - 0.36))) < 0.03
