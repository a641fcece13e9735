"""Unit tests of brainalign.rsa against scipy references and planted structure."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, spearmanr, zscore

from brainalign.errors import DataShapeError
from brainalign.rsa import COMPARISONS, calc_rdm, compare_rdms, rdm_reliability, zscore_features


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_calc_rdm_matches_pdist(rng, metric):
    patterns = rng.standard_normal((9, 30))
    rdm = calc_rdm(patterns, metric=metric)
    assert rdm.shape == (9 * 8 // 2,)
    np.testing.assert_allclose(rdm, pdist(patterns, metric=metric), rtol=1e-12, atol=1e-14)


def test_calc_rdm_correlation_matches_explicit_loop(rng):
    patterns = rng.standard_normal((7, 20)) + rng.standard_normal((7, 1))
    corr = np.corrcoef(patterns)
    expected = [1 - corr[i, j] for i in range(7) for j in range(i + 1, 7)]  # row-major triangle
    np.testing.assert_allclose(calc_rdm(patterns), expected, rtol=1e-12, atol=1e-14)


def test_calc_rdm_identical_patterns_have_zero_distance(rng):
    p = rng.standard_normal((4, 15))
    patterns = np.vstack([p, p[0]])  # pattern 4 repeats pattern 0
    rdm = calc_rdm(patterns, metric="euclidean")
    pair_0_4 = 3  # pdist order: (0,1), (0,2), (0,3), (0,4), ...
    assert rdm[pair_0_4] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.delete(rdm, pair_0_4) > 0.1)


@pytest.mark.parametrize("shape", [(2, 10), (10,), (3, 4, 5)])
def test_calc_rdm_rejects_bad_shapes(shape):
    with pytest.raises(DataShapeError, match=r"n_stimuli >= 3"):
        calc_rdm(np.ones(shape))


def test_compare_rdms_spearman_matches_scipy(rng):
    a = rng.random(45)
    b = a + 0.5 * rng.random(45)
    b[:5] = b[5]  # ties: average ranks, as in scipy
    assert compare_rdms(a, b, method="spearman") == pytest.approx(spearmanr(a, b)[0], abs=1e-12)
    assert compare_rdms(a, b) == pytest.approx(spearmanr(a, b)[0], abs=1e-12)  # the default


def test_compare_rdms_pearson_matches_scipy(rng):
    a = rng.random(36)
    b = a**3 + 0.2 * rng.random(36)
    assert compare_rdms(a, b, method="pearson") == pytest.approx(pearsonr(a, b)[0], abs=1e-12)
    # monotone but non-linear: spearman is 1, pearson is not
    assert compare_rdms(a, np.exp(5 * a), method="spearman") == pytest.approx(1.0, abs=1e-12)
    assert compare_rdms(a, np.exp(5 * a), method="pearson") < 0.99


def test_compare_rdms_methods_registry():
    # the original two methods stay; the rsatoolbox family was added with the rsa subpackage
    assert {"spearman", "pearson"} <= set(COMPARISONS)
    assert set(COMPARISONS) == {
        "spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "corr_cov", "cosine_cov"
    }


def test_compare_rdms_rejects_size_mismatch():
    with pytest.raises(DataShapeError, match=r"RDMs differ in size: \(10,\) vs \(15,\)"):
        compare_rdms(np.ones(10), np.ones(15))


def test_zscore_features_drops_constant_columns(rng):
    x = rng.standard_normal((12, 6)) * 5 + 3
    x[:, 2] = 7.0
    x[:, 4] = 0.0
    z = zscore_features(x)
    assert z.shape == (12, 4)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        z, zscore(x[:, [0, 1, 3, 5]], axis=0, ddof=0), rtol=1e-12, atol=1e-12
    )


def test_zscore_features_all_constant_gives_empty():
    assert zscore_features(np.ones((5, 3))).shape == (5, 0)


def test_rdm_reliability_planted(rng):
    n_stim, n_chan = 30, 100
    # strong pattern with a wide range of dissimilarities: stimuli mix 3 latent prototypes
    pattern = 3.0 * rng.standard_normal((n_stim, 3)) @ rng.standard_normal((3, n_chan))
    half1 = pattern + rng.standard_normal((n_stim, n_chan))
    half2 = pattern + rng.standard_normal((n_stim, n_chan))
    assert rdm_reliability(half1, half2) > 0.9
    assert rdm_reliability(half1, half2, metric="euclidean", method="pearson") > 0.9

    # independent noise: the two RDMs share nothing (average over 5 draws, SE ~ 0.02)
    null = [
        rdm_reliability(
            rng.standard_normal((n_stim, n_chan)), rng.standard_normal((n_stim, n_chan))
        )
        for _ in range(5)
    ]
    assert abs(np.mean(null)) < 0.1
    assert max(abs(r) for r in null) < 0.25


def test_rdm_reliability_equals_compare_of_rdms(rng):
    h1, h2 = rng.standard_normal((8, 10)), rng.standard_normal((8, 10))
    expected = spearmanr(pdist(h1, "cosine"), pdist(h2, "cosine"))[0]
    assert rdm_reliability(h1, h2, metric="cosine") == pytest.approx(expected, abs=1e-12)
