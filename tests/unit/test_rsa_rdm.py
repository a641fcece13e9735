"""RDM measures of brainalign.rsa.rdm and noise covariances of brainalign.rsa.noise.

Oracles: scipy.spatial.distance.pdist and rsatoolbox 0.3 (calc_rdm with 'euclidean',
'correlation', 'mahalanobis', 'crossnobis'; calc_rdm_movie; cov_from_residuals) on the same
inputs. rsatoolbox divides Euclidean, Mahalanobis and crossnobis RDMs by n_channels.
"""

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brainalign import rsa
from brainalign.errors import DataShapeError

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset, TemporalDataset  # noqa: E402
from rsatoolbox.data.noise import cov_from_residuals, prec_from_residuals  # noqa: E402
from rsatoolbox.rdm import calc_rdm as rtb_calc_rdm  # noqa: E402
from rsatoolbox.rdm import calc_rdm_movie  # noqa: E402

COV_METHODS = ["shrinkage_diag", "shrinkage_eye", "diag", "full"]


def test_calc_rdm_matches_rsatoolbox_correlation_and_euclidean(rng):
    patterns = rng.standard_normal((11, 25))
    ds = Dataset(patterns)
    # tolerance 1e-12: same formulas, different summation order
    np.testing.assert_allclose(
        rsa.calc_rdm(patterns, metric="correlation"),
        rtb_calc_rdm(ds, method="correlation").get_vectors()[0], rtol=1e-12, atol=1e-12)
    # rsatoolbox 'euclidean' is the squared Euclidean distance divided by n_channels
    np.testing.assert_allclose(
        rsa.calc_rdm(patterns, metric="sqeuclidean") / patterns.shape[1],
        rtb_calc_rdm(ds, method="euclidean").get_vectors()[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", COV_METHODS)
def test_calc_noise_cov_matches_rsatoolbox(rng, method):
    residuals = rng.standard_normal((40, 12)) @ rng.standard_normal((12, 12)) + 3.0
    # vectorised sums instead of rsatoolbox's loop over rows: tolerance 1e-12
    np.testing.assert_allclose(rsa.calc_noise_cov(residuals, method=method),
                               cov_from_residuals(residuals, method=method), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(rsa.calc_noise_cov(residuals, method=method, dof=30),
                               cov_from_residuals(residuals, method=method, dof=30),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rsa.calc_noise_prec(residuals, method=method),
                               prec_from_residuals(residuals, method=method), rtol=1e-9)


def test_calc_noise_cov_shrinkage_planted(rng):
    # few samples, many channels, true covariance = identity: shrinkage must pull the sample
    # covariance towards the truth
    residuals = rng.standard_normal((15, 40))
    truth = np.eye(40)
    err_full = np.linalg.norm(rsa.calc_noise_cov(residuals, method="full") - truth)
    for method in ("shrinkage_diag", "shrinkage_eye"):
        err = np.linalg.norm(rsa.calc_noise_cov(residuals, method=method) - truth)
        assert err < 0.6 * err_full


def test_calc_rdm_mahalanobis_matches_rsatoolbox(rng):
    patterns = rng.standard_normal((9, 15))
    residuals = rng.standard_normal((60, 15)) * np.linspace(0.5, 2, 15)
    cov = rsa.calc_noise_cov(residuals, method="shrinkage_diag")
    ref = rtb_calc_rdm(Dataset(patterns), method="mahalanobis",
                       noise=np.linalg.inv(cov)).get_vectors()[0]
    np.testing.assert_allclose(rsa.calc_rdm_mahalanobis(patterns, noise_cov=cov), ref,
                               rtol=1e-10)
    np.testing.assert_allclose(rsa.calc_rdm_mahalanobis(patterns, residuals=residuals), ref,
                               rtol=1e-10)
    # identity noise: squared Euclidean / n_channels
    np.testing.assert_allclose(rsa.calc_rdm_mahalanobis(patterns, noise_cov=np.eye(15)),
                               pdist(patterns, "sqeuclidean") / 15, rtol=1e-12)


def _crossnobis_dataset(run_patterns):
    n_runs, n_stim, n_chan = run_patterns.shape
    return Dataset(run_patterns.reshape(-1, n_chan),
                   obs_descriptors={"stim": np.tile(np.arange(n_stim), n_runs),
                                    "run": np.repeat(np.arange(n_runs), n_stim)})


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # inside rsatoolbox
@pytest.mark.parametrize("cov_method", ["shrinkage_diag", "shrinkage_eye"])
def test_calc_rdm_crossnobis_matches_rsatoolbox(rng, cov_method):
    n_runs, n_stim, n_chan = 4, 8, 20
    signal = rng.standard_normal((n_stim, n_chan))
    run_patterns = signal + rng.standard_normal((n_runs, n_stim, n_chan))
    residuals = rng.standard_normal((80, n_chan)) @ rng.standard_normal((n_chan, n_chan)) / 4
    prec = prec_from_residuals(residuals, method=cov_method)
    ref = rtb_calc_rdm(_crossnobis_dataset(run_patterns), method="crossnobis",
                       descriptor="stim", cv_descriptor="run", noise=prec).get_vectors()[0]
    ours = rsa.calc_rdm_crossnobis(run_patterns, residuals=residuals, cov_method=cov_method)
    # rsatoolbox loops over leave-one-run-out folds; we use run sums: tolerance 1e-10
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    ours_cov = rsa.calc_rdm_crossnobis(run_patterns, noise_cov=np.linalg.inv(prec))
    np.testing.assert_allclose(ours_cov, ref, rtol=1e-9, atol=1e-12)
    # no noise model: identity, as rsatoolbox's default
    ref_eye = rtb_calc_rdm(_crossnobis_dataset(run_patterns), method="crossnobis",
                           descriptor="stim", cv_descriptor="run").get_vectors()[0]
    np.testing.assert_allclose(rsa.calc_rdm_crossnobis(run_patterns), ref_eye, rtol=1e-10)


def test_calc_rdm_crossnobis_is_unbiased_planted(rng):
    # two identical stimuli (true distance 0) and a distinct one; pure-noise runs
    n_runs, n_chan, n_rep = 2, 30, 2000
    signal = np.zeros((3, n_chan))
    signal[2] = 1.0  # true squared distance per channel to stimulus 2: 1
    est = np.array([rsa.calc_rdm_crossnobis(signal + rng.standard_normal((n_runs, 3, n_chan)))
                    for _ in range(n_rep)])
    # pairs (0,1), (0,2), (1,2): expected 0, 1, 1; per-estimate SD <= sqrt(8 / 30) = 0.52,
    # so the SE of the mean is <= 0.012 and atol = 0.05 is > 4 SE
    np.testing.assert_allclose(est.mean(0), [0.0, 1.0, 1.0], atol=0.05)
    assert (est[:, 0] < 0).mean() > 0.3  # unbiased: the null pair is often negative


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_calc_rdm_timeseries_matches_per_time_pdist(rng, metric):
    x = rng.standard_normal((10, 16, 7)) + rng.standard_normal((10, 1, 1))
    ours = rsa.calc_rdm_timeseries(x, metric=metric)
    assert ours.shape == (7, 45)
    ref = np.stack([pdist(x[:, :, t], metric) for t in range(7)])
    # Gram-matrix distances: tolerance 1e-10
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_calc_rdm_timeseries_matches_rsatoolbox_movie(rng):
    x = rng.standard_normal((6, 9, 5))
    ds = TemporalDataset(x, time_descriptors={"time": np.arange(5)})
    ref = calc_rdm_movie(ds, method="euclidean").get_vectors()
    np.testing.assert_allclose(rsa.calc_rdm_timeseries(x, metric="sqeuclidean") / 9, ref,
                               rtol=1e-10, atol=1e-12)


def test_rdm_errors():
    with pytest.raises(ValueError, match=r"Unknown value for metric: .*got 'corelation'.*"
                                         r"Did you mean 'correlation'"):
        rsa.calc_rdm(np.ones((4, 3)), metric="corelation")
    with pytest.raises(DataShapeError, match=r"noise_cov: expected \(3, 3\), got \(2, 2\)"):
        rsa.calc_rdm_mahalanobis(np.ones((4, 3)), noise_cov=np.eye(2))
    with pytest.raises(ValueError, match=r"expected noise_cov or residuals, got neither"):
        rsa.calc_rdm_mahalanobis(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"expected one of them, got both"):
        rsa.calc_rdm_crossnobis(np.ones((2, 4, 3)), noise_cov=np.eye(3),
                                residuals=np.ones((5, 3)))
    with pytest.raises(DataShapeError, match=r"run_patterns: expected \(n_runs >= 2"):
        rsa.calc_rdm_crossnobis(np.ones((1, 4, 3)))
    with pytest.raises(DataShapeError, match=r"expected \(n_stimuli >= 3, n_channels, n_times\)"):
        rsa.calc_rdm_timeseries(np.ones((4, 3)))
    with pytest.raises(DataShapeError, match=r"residuals: expected \(n_residuals >= 2"):
        rsa.calc_noise_cov(np.ones(5))
    with pytest.raises(ValueError, match=r"Unknown value for method"):
        rsa.calc_noise_cov(np.ones((5, 2)), method="ledoit")
