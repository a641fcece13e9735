"""Single-subject RDM noise ceiling (brainalign.rsa.split_half) against planted truth.

Simulation: true patterns ``T`` (category structure of the 92-image set's layout: 6 categories),
``R`` repeats ``T + noise``; the data RDM comes from the mean of all repeats, the split-half
similarity from the odd/even repeat means (as ``fmri.average_repeats`` splits them), the
noiseless model is ``RDM(T)``. The ceiling must not fall below the noiseless model's expected
score; Spearman-Brown (the previous estimator) does, which the test also pins down so that it
fails if the simulation stops being able to tell them apart.
"""

import numpy as np
import pytest

from brainalign import rsa
from brainalign.errors import DataShapeError
from brainalign.rsa.split_half import (
    half_repeats,
    prophesy_rdm_reliability,
    rdm_split_half_ceiling,
    split_half_ceiling,
)


def _spearman_brown_ceiling(r_half: float) -> float:
    """The previous estimator, written out: sqrt(Spearman-Brown(r_half, 2)), clipped at 0."""
    r = min(max(r_half, -0.999), 1.0)
    return float(np.sqrt(max(2 * r / (1 + r), 0.0)))


def _truth(rng, n_stim=92, n_vox=32, n_cat=6):
    cat = np.arange(n_stim) % n_cat
    return rng.standard_normal((n_cat, n_vox))[cat] + rng.standard_normal((n_stim, n_vox))


def _simulate(rng, truth, *, sigma, n_rep, n_sim, metric="correlation", method="spearman"):
    model = rsa.calc_rdm(truth, metric=metric)
    out = np.empty((n_sim, 3))
    for k in range(n_sim):
        reps = truth[None] + sigma * rng.standard_normal((n_rep,) + truth.shape)
        score = rsa.compare_rdms(rsa.calc_rdm(reps.mean(0), metric=metric), model, method=method)
        ceil = rdm_split_half_ceiling(
            reps[0::2].mean(0),
            reps[1::2].mean(0),
            n_repeats=np.full(truth.shape[0], n_rep),
            metric=metric,
            method=method,
        )
        out[k] = score, ceil.upper, _spearman_brown_ceiling(ceil.r_half)
    return out


def test_linear_term_with_equal_halves_is_spearman_brown():
    for r in (0.01, 0.2, 0.5, 0.93):
        rel = prophesy_rdm_reliability(r, (2, 2), n_total=4, term="linear")
        assert rel == pytest.approx(2 * r / (1 + r), rel=1e-12)  # Spearman-Brown, factor 2
        # quadratic term, equal halves: 1 + b / n^2 = 1 / r  ->  1 / (1 + b / (2n)^2)
        rel_q = prophesy_rdm_reliability(r, (2, 2), n_total=4, term="quadratic")
        assert rel_q == pytest.approx(4 * r / (3 * r + 1), rel=1e-12)
        assert rel_q > rel


def test_unequal_halves_solve_the_error_model():
    # plant a, b; r_half and the ceiling follow from v(k) = a/k + b/k^2; each bound inverts
    # its own pure term exactly and brackets the mixed one
    for a, b in ((3.0, 0.0), (0.0, 20.0), (2.0, 10.0)):
        v = lambda k, a=a, b=b: a / k + b / k**2  # noqa: E731
        r_half = 1 / np.sqrt((1 + v(2)) * (1 + v(1)))
        truth = 1 / np.sqrt(1 + v(3))
        c = split_half_ceiling(r_half, n_repeats=np.full(10, 3))
        assert c.lower <= truth + 1e-12 <= c.upper + 2e-12
        if b == 0:
            assert c.lower == pytest.approx(truth, rel=1e-10)
        if a == 0:
            assert c.upper == pytest.approx(truth, rel=1e-10)
    # the old estimator misses the unequal halves of 3 repeats even without the b term
    r3 = 1 / np.sqrt((1 + 3.0 / 2) * (1 + 3.0))
    assert _spearman_brown_ceiling(r3) < 1 / np.sqrt(1 + 3.0 / 3) - 0.01


def test_half_repeats_match_average_repeats():
    from brainalign.fmri import average_repeats

    n_rep = np.array([2, 3, 4, 5])
    stim = np.repeat([f"s{i}" for i in range(4)], n_rep)
    betas = np.arange(stim.size, dtype=float)[:, None] * np.ones((1, 2))
    _, h1, h2, n = average_repeats(betas, stim, [f"s{i}" for i in range(4)])
    n1, n2 = half_repeats(n)
    np.testing.assert_array_equal(n, n_rep)
    np.testing.assert_array_equal(n1, [1, 2, 2, 3])
    np.testing.assert_array_equal(n2, [1, 1, 2, 2])


def test_nonpositive_split_half_gives_zero_ceiling():
    c = split_half_ceiling(-0.05, n_repeats=np.full(5, 2))
    assert c.lower == c.upper == 0.0
    assert split_half_ceiling(1.0, n_repeats=np.full(5, 2)).upper == 1.0


@pytest.mark.parametrize("bad", [np.array([2, 1]), np.array([]), np.array([2.5, 3])])
def test_bad_repeat_counts_are_rejected(bad):
    with pytest.raises(DataShapeError, match="n_repeats"):
        split_half_ceiling(0.3, n_repeats=bad)


@pytest.mark.parametrize("n_rep", [2, 3])
@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_ceiling_bounds_the_noiseless_model_in_expectation(n_rep, method):
    # mid SNR (sigma = 2: ceiling about 0.6-0.8), where Spearman-Brown is clearly too low
    rng = np.random.default_rng(11)
    truth = _truth(rng)
    out = _simulate(rng, truth, sigma=2.0, n_rep=n_rep, n_sim=40, method=method)
    score, upper, old = out.T
    gap_new, gap_old = upper - score, old - score
    se_new = gap_new.std(ddof=1) / np.sqrt(len(score))
    se_old = gap_old.std(ddof=1) / np.sqrt(len(score))
    assert gap_new.mean() > 3 * se_new, "new ceiling below the noiseless model's mean score"
    assert gap_old.mean() < -3 * se_old, "simulation no longer shows the Spearman-Brown deficit"
    assert np.mean(upper < score) < 0.1


def test_ceiling_is_not_below_the_noiseless_model_at_low_snr():
    # low SNR (ceiling about 0.3): the noise x noise term dominates and the upper ceiling is
    # nearly unbiased for the noiseless score; it must not lie below it beyond Monte Carlo error
    rng = np.random.default_rng(12)
    truth = _truth(rng)
    out = _simulate(rng, truth, sigma=3.0, n_rep=3, n_sim=120)
    score, upper, old = out.T
    gap = upper - score
    se = gap.std(ddof=1) / np.sqrt(len(gap))
    assert gap.mean() > -2 * se
    assert (old - score).mean() < -2 * se
