"""Encoding scores of pure-noise responses: no bias, and the design's null offset.

Ground truth is planted outside the code under test: responses are drawn with numpy from a
known covariance (identity, or one built from the features), betas are fitted with
``numpy.linalg.lstsq`` or the GLS formula, repeats are averaged with ``fmri.average_repeats``.
"""

import numpy as np
import pytest

from brainalign.encoding import cross_validated_ridge, pearson_columns
from brainalign.encoding.null import (
    averaged_noise_covariance,
    beta_noise_covariance,
    null_scores,
    roi_null_sd,
)
from brainalign.errors import DataShapeError

ALPHAS = [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]  # the workflow's default grid


def _features(rng, n, p=600, rank=40):
    """Correlated Gaussian features with a decaying spectrum (as DNN layers have)."""
    z = rng.standard_normal((n, rank)) * np.arange(1, rank + 1) ** -1.0
    return z @ rng.standard_normal((rank, p)) + 0.05 * rng.standard_normal((n, p))


def test_null_roi_score_is_unbiased_and_small():
    # 40 null datasets x one 32-voxel ROI, 92 stimuli, fresh features each: the mean ROI score
    # is 0 within Monte Carlo error and a pure-noise ROI averages |score| < 0.05
    rng = np.random.default_rng(2024)
    roi, roi_concat = [], []
    for k in range(40):
        X = _features(rng, 92)
        Y = rng.standard_normal((92, 32))
        res = cross_validated_ridge(X, Y, alphas=ALPHAS, seed=k)
        roi.append(res["r"].mean())
        # the estimator that correlates concatenated held-out predictions (each fold's own
        # training mean anti-correlates with its test data): negatively biased
        roi_concat.append(pearson_columns(res["predictions"], Y).mean())
    roi, roi_concat = np.array(roi), np.array(roi_concat)
    se = roi.std(ddof=1) / np.sqrt(roi.size)
    assert abs(roi.mean()) < 3 * se + 0.005
    assert np.abs(roi).mean() < 0.05
    assert roi.std(ddof=1) < 0.05
    # the test can see a bias of this kind: the concatenated estimator fails it
    assert roi_concat.mean() < -5 * roi_concat.std(ddof=1) / np.sqrt(roi.size)


def test_null_scores_match_planted_noise_covariance():
    # noise whose covariance across stimuli resembles (or opposes) the feature similarity
    # gives pure-noise voxels a nonzero mean score; null_scores predicts it from the
    # covariance alone, and subtracting it centres the scores on 0
    rng = np.random.default_rng(7)
    n = 60
    X = _features(rng, n, p=300)
    xs = (X - X.mean(0)) / X.std(0)
    k = xs @ xs.T / xs.shape[1]
    k /= np.abs(np.linalg.eigvalsh(k)).max()
    for sign in (1.0, -1.0):
        cov = np.eye(n) + sign * 0.9 * k
        chol = np.linalg.cholesky(cov)
        Y = chol @ rng.standard_normal((n, 1500))  # independent of null_scores' sampler
        observed = cross_validated_ridge(X, Y, alphas=ALPHAS, seed=3)["r"]
        null = null_scores(X, cov, alphas=ALPHAS, seed=3, n_samples=1500, random_state=11)
        se = np.hypot(observed.std() / np.sqrt(observed.size), null["se"])
        assert sign * observed.mean() > 6 * se, "planted offset not visible"
        assert abs(observed.mean() - null["mean"]) < 4 * se
    iid = null_scores(X, None, alphas=ALPHAS, seed=3, n_samples=1500, random_state=12)
    assert abs(iid["mean"]) < 4 * iid["se"]
    assert 0.75 < iid["sd"] * np.sqrt(n) / 1.42 < 1.3  # voxel null SD about 1.42 / sqrt(n)


def test_beta_noise_covariance_matches_the_gls_formula_and_monte_carlo():
    rng = np.random.default_rng(3)
    n_t, rho = 80, 0.4
    t = np.arange(n_t)
    onsets = np.arange(5, 70, 6)
    hrf = lambda x: np.where(x > 0, x**5 * np.exp(-x) / 120, 0.0)  # noqa: E731
    trials = np.stack([hrf((t - o) / 1.0) for o in onsets], axis=1)
    design = np.column_stack([trials, np.cos(np.pi * t / n_t), np.ones(n_t)])
    idx = np.arange(trials.shape[1])
    v = rho ** np.abs(np.subtract.outer(t, t)).astype(float)
    gls = np.linalg.inv(design.T @ np.linalg.solve(v, design))[np.ix_(idx, idx)]
    np.testing.assert_allclose(beta_noise_covariance(design, idx, ar1_rho=rho), gls,
                               rtol=1e-8, atol=1e-10)
    # OLS on AR(1) noise: Monte Carlo with numpy's lstsq
    noise = np.linalg.cholesky(v) @ rng.standard_normal((n_t, 20000))
    betas = np.linalg.lstsq(design, noise, rcond=None)[0][idx]
    ols = beta_noise_covariance(design, idx, ar1_rho=rho, whiten_rho=0.0)
    np.testing.assert_allclose(np.cov(betas), ols, atol=0.03 * np.abs(ols).max())


def test_averaged_noise_covariance_matches_average_repeats():
    from brainalign.fmri import average_repeats

    rng = np.random.default_rng(5)
    stim_runs = [["a", "b", "c"], ["c", "a", "b", "b"]]
    covs = []
    for run in stim_runs:
        m = rng.standard_normal((len(run), len(run)))
        covs.append(m @ m.T)
    stim_files = [s for run in stim_runs for s in run]
    stimuli = ["b", "a", "c"]
    cov = averaged_noise_covariance(covs, stim_files, stimuli)
    # exact: average_repeats applied to a square root of the block-diagonal trial covariance
    from scipy.linalg import block_diag

    root = np.linalg.cholesky(block_diag(*covs))
    mean = average_repeats(root, stim_files, stimuli)[0]
    np.testing.assert_allclose(cov, mean @ mean.T, rtol=1e-12, atol=1e-12)
    with pytest.raises(DataShapeError, match="stim_files"):
        averaged_noise_covariance(covs, stim_files[:-1], stimuli)


def test_roi_null_sd_formula_matches_simulation():
    rng = np.random.default_rng(9)
    n, v, rho = 92, 32, 0.5
    X = _features(rng, n)
    shared = rng.standard_normal((n, 400, 1))
    Y = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal((n, 400, v))
    r = cross_validated_ridge(X, Y.reshape(n, -1), alphas=ALPHAS, seed=1)["r"].reshape(400, v)
    roi = r.mean(1)
    voxel_sd = r.std()
    c = np.corrcoef(r[:, 0], r[:, 1])[0, 1]
    # shared noise keeps the ROI mean's spread far above voxel_sd / sqrt(v)
    assert roi.std() > 2.5 * voxel_sd / np.sqrt(v)
    assert rho**2 - 0.15 < c < rho + 0.15
    predicted = roi_null_sd(voxel_sd, v, score_correlation=np.mean(
        [np.corrcoef(r[:, i], r[:, j])[0, 1] for i in range(4) for j in range(i + 1, 5)]))
    assert roi.std() == pytest.approx(predicted, rel=0.3)
    assert abs(roi.mean()) < 4 * roi.std() / np.sqrt(roi.size)
