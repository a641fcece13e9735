"""RDM comparisons of brainalign.rsa.compare against rsatoolbox.rdm.compare and scipy.stats.

Every method is compared on the same stacks of RDMs (with tied values, and with missing
pairs as produced by a bootstrap over stimuli) with rsatoolbox 0.3 at 1e-12.
"""

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from brainalign import rsa
from brainalign.errors import DataShapeError

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.rdm import RDMs, compare  # noqa: E402

RSATOOLBOX_NAMES = {
    "spearman": "spearman",
    "pearson": "corr",
    "kendall_tau_a": "tau-a",
    "rho_a": "rho-a",
    "cosine": "cosine",
    "corr_cov": "corr_cov",
    "cosine_cov": "cosine_cov",
}


@pytest.fixture
def stacks(rng):
    n_pairs = 14 * 13 // 2
    truth = rng.random(n_pairs)
    a = truth + 0.5 * rng.random((3, n_pairs))
    a[1] = np.round(a[1] * 3)  # a categorical model: many ties
    b = truth + 0.8 * rng.random((4, n_pairs))
    b[2] = np.round(b[2] * 20) / 20  # some ties in the data too
    return a, b


def test_registry_names_match_rsatoolbox():
    assert {k: v.rsatoolbox_name for k, v in rsa.COMPARISONS.items()} == RSATOOLBOX_NAMES


@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_compare_rdms_matches_rsatoolbox(stacks, method):
    a, b = stacks
    ours = rsa.compare_rdms(a, b, method=method)
    ref = compare(RDMs(a), RDMs(b), method=RSATOOLBOX_NAMES[method])
    assert ours.shape == (3, 4)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_compare_rdms_with_missing_pairs_matches_rsatoolbox(stacks, method):
    a, b = stacks
    a, b = a.copy(), b.copy()
    missing = [0, 5, 17, 40]  # e.g. pairs of a stimulus with its own bootstrap copy
    a[:, missing] = np.nan
    b[:, missing] = np.nan
    ours = rsa.compare_rdms(a, b, method=method)
    ref = compare(RDMs(a), RDMs(b), method=RSATOOLBOX_NAMES[method])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_compare_rdms_returns_float_for_two_vectors(stacks):
    a, b = stacks
    r = rsa.compare_rdms(a[0], b[0], method="pearson")
    assert isinstance(r, float)
    assert r == pytest.approx(pearsonr(a[0], b[0])[0], abs=1e-12)
    assert rsa.compare_rdms(a[0], b, method="pearson").shape == (1, 4)


def test_rank_methods_match_scipy(rng):
    x = rng.random(66)
    y = x + rng.random(66)
    assert rsa.compare_rdms(x, y, method="spearman") == pytest.approx(spearmanr(x, y)[0],
                                                                       abs=1e-12)
    # without ties Kendall tau-a equals tau-b (scipy's default)
    assert rsa.compare_rdms(x, y, method="kendall_tau_a") == pytest.approx(
        kendalltau(x, y)[0], abs=1e-12)
    # without ties rho-a equals Spearman's rho
    assert rsa.compare_rdms(x, y, method="rho_a") == pytest.approx(spearmanr(x, y)[0],
                                                                    abs=1e-12)


def test_tau_a_with_ties_is_exact(rng):
    x = rng.integers(0, 3, 45).astype(float)
    y = rng.integers(0, 4, 45).astype(float)
    i, j = np.triu_indices(45, 1)
    expected = np.sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])) / (45 * 44 / 2)
    assert rsa.compare_rdms(x, y, method="kendall_tau_a") == expected  # exact, not approx
    # tau-a is below tau-b in magnitude when there are ties
    assert abs(expected) < abs(kendalltau(x, y)[0])


def test_tau_a_chunks_do_not_change_the_result(rng, monkeypatch):
    from brainalign.rsa import compare as compare_module

    a, b = rng.random((2, 300)), rng.integers(0, 5, (3, 300)).astype(float)
    full = rsa.compare_rdms(a, b, method="kendall_tau_a")
    monkeypatch.setattr(compare_module, "_TAU_CHUNK_ELEMENTS", 5 * 300 * 7)  # 7-row chunks
    np.testing.assert_array_equal(rsa.compare_rdms(a, b, method="kendall_tau_a"), full)


def test_cosine_cov_of_squared_euclidean_rdms_is_linear_cka(rng):
    # -D/2 double-centred is the centred Gram matrix Xc Xc' for squared Euclidean RDMs, so the
    # whitened cosine equals linear CKA of the patterns (Diedrichsen et al. 2021)
    x1 = rng.standard_normal((12, 30))
    x2 = x1 @ rng.standard_normal((30, 20)) + rng.standard_normal((12, 20))
    d1, d2 = (rsa.calc_rdm(x, metric="sqeuclidean") for x in (x1, x2))
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    cka = np.linalg.norm(c1.T @ c2) ** 2 / (np.linalg.norm(c1.T @ c1)
                                             * np.linalg.norm(c2.T @ c2))
    assert rsa.compare_rdms(d1, d2, method="cosine_cov") == pytest.approx(cka, abs=1e-12)
    # a translation of all patterns changes nothing; plain cosine is not CKA
    d1_shift = rsa.calc_rdm(x1 + 5.0, metric="sqeuclidean")
    assert rsa.compare_rdms(d1_shift, d2, method="cosine_cov") == pytest.approx(cka, abs=1e-12)
    assert abs(rsa.compare_rdms(d1, d2, method="cosine") - cka) > 0.01


def test_constant_rdm_gives_zero_like_rsatoolbox(rng):
    x = rng.random(10)
    for method in ("spearman", "pearson", "cosine"):
        assert rsa.compare_rdms(np.ones(10), x, method=method) == pytest.approx(
            float(compare(RDMs(np.ones(10)), RDMs(x), method=RSATOOLBOX_NAMES[method])[0, 0]),
            abs=1e-12)


def test_compare_errors():
    with pytest.raises(ValueError, match=r"Unknown value for method: .*got 'kendall'"):
        rsa.compare_rdms(np.ones(10), np.ones(10), method="kendall")
    with pytest.raises(DataShapeError, match=r"RDMs differ in size: \(2, 10\) vs \(15,\)"):
        rsa.compare_rdms(np.ones((2, 10)), np.ones(15))
    a = np.arange(10.0)
    b = a.copy()
    b[3] = np.nan
    with pytest.raises(ValueError, match=r"NaN pairs differ between a and b"):
        rsa.compare_rdms(a, b)
    with pytest.raises(DataShapeError, match=r"Bad shape for a"):
        rsa.compare_rdms(np.ones((2, 2, 3)), np.ones(3))
