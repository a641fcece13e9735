"""Noise ceiling of brainalign.rsa.noise_ceiling against rsatoolbox.inference.boot_noise_ceiling
(the ceiling rsatoolbox's eval_fixed / eval_bootstrap* report) and planted truth."""

import warnings

import numpy as np
import pytest

from brainalign import rsa

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import boot_noise_ceiling  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402
from rsatoolbox.util.inference_util import pool_rdm  # noqa: E402

RSATOOLBOX_NAMES = {name: c.rsatoolbox_name for name, c in rsa.COMPARISONS.items()}


@pytest.fixture
def subjects(rng):
    n_pairs = 16 * 15 // 2
    truth = rng.random(n_pairs)
    subj = truth + 0.6 * rng.random((6, n_pairs))
    subj[3] = np.round(subj[3] * 4)  # a subject with tied dissimilarities
    return subj


@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_noise_ceiling_matches_rsatoolbox(subjects, method):
    lower, upper = rsa.noise_ceiling(subjects, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox warns that tau pools ranks
        ref = boot_noise_ceiling(RDMs(subjects), method=RSATOOLBOX_NAMES[method])
    assert lower == pytest.approx(ref[0], abs=1e-12)
    assert upper == pytest.approx(ref[1], abs=1e-12)
    assert lower < upper


@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_pool_rdms_matches_rsatoolbox(subjects, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pool_rdm(RDMs(subjects), method=RSATOOLBOX_NAMES[method]).get_vectors()[0]
    np.testing.assert_allclose(rsa.pool_rdms(subjects, method=method), ref, rtol=1e-12,
                               atol=1e-12)


def test_noise_ceiling_single_subject_is_self_similarity(subjects):
    lower, upper = rsa.noise_ceiling(subjects[:1], method="spearman")
    assert lower == upper == pytest.approx(1.0)
    ref = boot_noise_ceiling(RDMs(subjects[:1]), method="spearman")
    assert (lower, upper) == pytest.approx(ref, abs=1e-12)


def test_noise_ceiling_brackets_the_true_model(rng):
    # subjects = truth + independent noise: the true RDM's mean correlation with the subjects
    # lies between the lower and upper bound (Nili et al. 2014), and less noise raises both
    n_pairs = 30 * 29 // 2
    truth = rng.standard_normal(n_pairs)
    for noise, expect_high in ((2.0, False), (0.3, True)):
        subj = truth + noise * rng.standard_normal((8, n_pairs))
        lower, upper = rsa.noise_ceiling(subj, method="pearson")
        true_score = rsa.compare_rdms(truth, subj, method="pearson").mean()
        assert lower < true_score < upper
        assert (lower > 0.9) == expect_high


def test_noise_ceiling_errors(subjects):
    with pytest.raises(ValueError, match=r"Unknown value for method"):
        rsa.noise_ceiling(subjects, method="corr")
    bad = subjects.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN pairs differ between subjects"):
        rsa.noise_ceiling(bad)
