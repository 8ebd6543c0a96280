"""The error-aware mixture's EM: with the term weights at 0 it is a plain Gaussian mixture and follows
scikit-learn's GaussianMixture step for step from the same start; its log-density matches scipy's; with weighted
hard terms every EM step raises the weighted objective; Domino's confusion start, computed by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

from audit.slices.mixture import (
    Term,
    cell_start,
    confusion_start,
    fit_mixture,
    hard_start,
    responsibilities,
    weighted_log_prob,
)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    z = np.concatenate([rng.normal(0, 1, (90, 3)), rng.normal(3, 0.5, (70, 3)), rng.normal([0, 4, 0], 1, (60, 3))])
    start = hard_start(rng.integers(0, 3, len(z)), 3, 0.2, rng)
    return z, start


def _hand_m_step(z: np.ndarray, r: np.ndarray, covariance: str, reg: float):
    """Weighted means / covariances written out sample by sample (the textbook M-step)."""
    k, d = r.shape[1], z.shape[1]
    w, means, covs = np.zeros(k), np.zeros((k, d)), []
    for j in range(k):
        nk = sum(r[i, j] for i in range(len(z)))
        w[j] = nk / len(z)
        means[j] = sum(r[i, j] * z[i] for i in range(len(z))) / nk
        c = sum(r[i, j] * np.outer(z[i] - means[j], z[i] - means[j]) for i in range(len(z))) / nk + reg * np.eye(d)
        covs.append(np.diag(c) if covariance == "diag" else c)
    return w, means, np.array(covs)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_zero_weights_follow_sklearn(blobs, covariance: str) -> None:
    z, start = blobs
    reg = 1e-6
    w0, m0, c0 = _hand_m_step(z, start, covariance, reg)
    prec = 1.0 / c0 if covariance == "diag" else np.linalg.inv(c0)
    noise_term = Term("label", np.eye(2)[np.arange(len(z)) % 2], 0.0)  # present but weightless
    for iters in (1, 25):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol=0: sklearn says it did not converge
            gm = GaussianMixture(3, covariance_type=covariance, weights_init=w0, means_init=m0,
                                 precisions_init=prec, max_iter=iters, tol=0.0, reg_covar=reg).fit(z)
        fit = fit_mixture(z, [noise_term], start, covariance, reg, max_iter=iters, tol=-1.0)
        assert fit.n_iter == gm.n_iter_ == iters
        np.testing.assert_allclose(fit.weights, gm.weights_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fit.means, gm.means_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fit.covariances, gm.covariances_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(responsibilities(fit, z), gm.predict_proba(z), atol=1e-9)
        np.testing.assert_allclose(responsibilities(fit, z, [noise_term]), gm.predict_proba(z), atol=1e-9)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_weighted_log_prob_is_the_definition(blobs, covariance: str) -> None:
    z, start = blobs
    rng = np.random.default_rng(1)
    label = Term("label", np.eye(3)[rng.integers(0, 3, len(z))], 10.0)
    soft = rng.dirichlet(np.ones(3), len(z))
    pred = Term("prediction", soft, 2.5)
    fit = fit_mixture(z, [label, pred], start, covariance, max_iter=5)
    lp = weighted_log_prob(fit, z, [label, pred])
    for k in range(3):
        cov = np.diag(fit.covariances[k]) if covariance == "diag" else fit.covariances[k]
        ref = (np.log(fit.weights[k]) + multivariate_normal(fit.means[k], cov).logpdf(z)
               + 10.0 * np.log(label.values @ fit.probs_of("label")[k] + np.finfo(float).eps)
               + 2.5 * np.log(soft @ fit.probs_of("prediction")[k] + np.finfo(float).eps))
        np.testing.assert_allclose(lp[:, k], ref, rtol=1e-10)
    # the M-step's term probabilities are the responsibility-weighted frequencies
    r = responsibilities(fit, z, [label, pred])
    assert np.allclose(fit.probs_of("label").sum(1), 1.0)
    assert np.all((fit.probs_of("prediction") >= 0) & (fit.probs_of("prediction") <= 1))
    assert r.shape == (len(z), 3)


def test_em_never_lowers_the_weighted_objective(blobs) -> None:
    z, start = blobs
    rng = np.random.default_rng(2)
    y = Term("label", np.eye(2)[rng.integers(0, 2, len(z))], 10.0)
    e = Term("error", np.eye(2)[(rng.random(len(z)) < 0.2).astype(int)], 4.0)
    objectives = [fit_mixture(z, [y, e], start, "diag", max_iter=i, tol=-1.0).objective for i in range(1, 16)]
    assert np.all(np.diff(objectives) >= -1e-10), objectives
    assert objectives[-1] > objectives[0]


def test_confusion_start_by_hand() -> None:
    # labels 0,0,1 ; predictions 0,1,1 -> cells (0,0)=0, (0,1)=1, (1,1)=3 of the 2x2 = 4 cells
    y = np.eye(2)[[0, 0, 1]]
    p = np.eye(2)[[0, 1, 1]]
    r = confusion_start(y, p, 6, 0.0, np.random.default_rng(0))  # components take cells 0,1,2,3,0,1
    expected = np.array([[0.5, 0, 0, 0, 0.5, 0], [0, 0.5, 0, 0, 0, 0.5], [0, 0, 0, 1, 0, 0]])
    np.testing.assert_allclose(r, expected)
    noisy = confusion_start(y, p, 6, 1e-3, np.random.default_rng(0))
    np.testing.assert_allclose(noisy.sum(1), 1.0)
    assert np.abs(noisy - expected).max() <= 6e-3  # six U(0, 1e-3) terms per row, then normalised


def test_cell_start_keeps_cells_pure_and_sizes_proportional() -> None:
    rng = np.random.default_rng(0)
    cell = np.repeat([0, 1, 2], [80, 15, 5])
    z = rng.normal(size=(100, 4))
    r = cell_start(np.eye(3)[cell], z, 10, 0.0, rng)
    comp = r.argmax(1)
    for c in range(3):  # no component spans two cells
        assert all(len(set(cell[comp == k])) == 1 for k in np.unique(comp[cell == c]))
    per_cell = [len(np.unique(comp[cell == c])) for c in range(3)]
    # one each, the other 7 by size: shares 5.6, 1.05, 0.35 -> floors 5, 1, 0, the last one to the largest remainder
    assert per_cell == [7, 2, 1]
