"""Bootstrap, permutation and FDR inference of brainalign.rsa.inference.

The bootstrap is compared with rsatoolbox 0.3 (eval_bootstrap_pattern / eval_bootstrap_rdm /
eval_bootstrap) on the SAME resampling indices: rsatoolbox's samplers are replaced (monkeypatch)
by ones that hand out our index rows, so every bootstrap sample can be compared one by one.
"""

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import squareform
from scipy.stats import false_discovery_control

from brainalign import rsa
from brainalign.errors import DataShapeError
from brainalign.rsa import inference

rsatoolbox = pytest.importorskip("rsatoolbox")
import rsatoolbox.inference.evaluate as rtb_evaluate  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402

RSATOOLBOX_NAMES = {name: c.rsatoolbox_name for name, c in rsa.COMPARISONS.items()}
RSATOOLBOX_EVAL = {
    "stimuli": rtb_evaluate.eval_bootstrap_pattern,
    "subjects": rtb_evaluate.eval_bootstrap_rdm,
    "both": rtb_evaluate.eval_bootstrap,
}
N_STIM, N_SUBJ, N_BOOT = 9, 5, 12


def _data(seed=7):
    rng = np.random.default_rng(seed)
    n_pairs = N_STIM * (N_STIM - 1) // 2
    truth = rng.random(n_pairs)
    subjects = truth + 0.5 * rng.random((N_SUBJ, n_pairs))
    models = np.vstack([truth + 0.3 * rng.random((2, n_pairs)), rng.random(n_pairs),
                        np.round(truth * 2)])  # the last model is categorical (ties)
    return models, subjects


def _indices(over, seed=3):
    idx = rsa.draw_bootstrap_indices(N_STIM, N_SUBJ, n_boot=N_BOOT, over=over, rng=seed)
    if "stimuli" in idx:
        idx["stimuli"][4] = [2, 2, 2, 2, 5, 5, 5, 5, 5]  # < 3 distinct stimuli: a NaN sample
        idx["stimuli"][5] = [0, 0, 1, 1, 2, 2, 3, 3, 3]  # many stimulus copies
    if "subjects" in idx:
        idx["subjects"][6] = [1, 1, 1, 1, 1]  # a single distinct subject
    return idx


def _run_rsatoolbox(monkeypatch, models, subjects, method, over, idx):
    """rsatoolbox's evaluation with its samplers replaced by our index rows."""
    rows = {k: iter(v) for k, v in idx.items()}

    def sample_pattern(rdms, pattern_descriptor="index"):
        p = next(rows["stimuli"])
        return rdms.subsample_pattern(pattern_descriptor, p), p

    def sample_rdm(rdms, rdm_descriptor="index"):
        r = next(rows["subjects"])
        return rdms.subsample(rdm_descriptor, r), r

    def sample_both(rdms, rdm_descriptor="index", pattern_descriptor="index"):
        r, p = next(rows["subjects"]), next(rows["stimuli"])
        return (rdms.subsample(rdm_descriptor, r).subsample_pattern(pattern_descriptor, p),
                r, p)

    monkeypatch.setattr(rtb_evaluate, "bootstrap_sample_pattern", sample_pattern)
    monkeypatch.setattr(rtb_evaluate, "bootstrap_sample_rdm", sample_rdm)
    monkeypatch.setattr(rtb_evaluate, "bootstrap_sample", sample_both)
    mods = [ModelFixed(f"m{i}", m) for i, m in enumerate(models)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RSATOOLBOX_EVAL[over](mods, RDMs(subjects), method=RSATOOLBOX_NAMES[method],
                                     N=N_BOOT)


@pytest.mark.parametrize("over", ["stimuli", "subjects", "both"])
@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_bootstrap_matches_rsatoolbox_on_same_indices(monkeypatch, method, over):
    models, subjects = _data()
    idx = _indices(over)
    ref = _run_rsatoolbox(monkeypatch, models, subjects, method, over, idx)
    for test_type in ("t-test", "bootstrap"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tau-a noise ceilings pool ranks
            ours = rsa.bootstrap_compare(models, subjects, method=method, over=over,
                                         indices=idx, test_type=test_type)
        # tolerance 1e-12: same definitions; rounding differs (matrix products, weights)
        np.testing.assert_allclose(ours.samples, ref.evaluations, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours.noise_ceiling_samples, ref.noise_ceiling.T,
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours.mean, ref.get_means(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours.sem, ref.get_sem(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.p_zero, ref.test_zero(test_type), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(ours.p_pairwise, ref.test_pairwise(test_type), rtol=1e-9,
                                   atol=1e-12)
        if test_type == "t-test":
            p_noise_ref = ref.test_noise(test_type)
        else:  # rsatoolbox 0.3 raises here (reshapes the lower bounds to (2, 1)); its formula:
            p_noise_ref = ((ref.noise_ceiling[0][:, None] - ref.evaluations <= 0).sum(0)
                           + 1) / N_BOOT
        np.testing.assert_allclose(ours.p_noise, p_noise_ref, rtol=1e-9, atol=1e-12)
    assert ours.samples.shape == (N_BOOT, 4)
    assert np.isnan(ours.samples[4]).all() == ("stimuli" in idx)


@pytest.mark.parametrize("over", ["stimuli", "subjects", "both"])
def test_bootstrap_percentile_ci_matches_rsatoolbox(monkeypatch, over):
    models, subjects = _data(seed=11)
    idx = rsa.draw_bootstrap_indices(N_STIM, N_SUBJ, n_boot=N_BOOT, over=over, rng=5)
    ref = _run_rsatoolbox(monkeypatch, models, subjects, "spearman", over, idx)
    ours = rsa.bootstrap_compare(models, subjects, indices=idx, over=over, ci_level=0.8)
    # rsatoolbox frames the samples with -inf and +inf before taking quantiles
    np.testing.assert_allclose(ours.ci, np.array(ref.get_ci(0.8, test_type="bootstrap")),
                               rtol=1e-12, atol=1e-12)


def test_point_estimates_match_eval_fixed():
    from rsatoolbox.inference import eval_fixed

    models, subjects = _data()
    ours = rsa.bootstrap_compare(models, subjects, n_boot=3, rng=0)
    ref = eval_fixed([ModelFixed(f"m{i}", m) for i, m in enumerate(models)], RDMs(subjects),
                     method="spearman")
    np.testing.assert_allclose(ours.point, ref.get_means(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.noise_ceiling, ref.noise_ceiling, rtol=1e-12)


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine", "rho_a"])
@pytest.mark.parametrize("over", ["stimuli", "subjects", "both"])
def test_weighted_engine_equals_materialised_samples(method, over):
    # the fast path never builds a resampled RDM; the generic path does, like rsatoolbox
    models, subjects = _data(seed=2)
    n_stim = N_STIM
    weighted = inference._WeightedEngine(inference._WEIGHTED_KERNELS[method], models,
                                         subjects, n_stim)
    generic = inference._GenericEngine(rsa.COMPARISONS[method], models, subjects, n_stim)
    idx = rsa.draw_bootstrap_indices(n_stim, N_SUBJ, n_boot=15, over=over, rng=1)
    for i in range(15):
        args = (idx["stimuli"][i] if "stimuli" in idx else None,
                idx["subjects"][i] if "subjects" in idx else None)
        e1, lo1, up1 = weighted.sample(*args)
        e2, lo2, up2 = generic.sample(*args)
        np.testing.assert_allclose(e1, e2, rtol=1e-12, atol=1e-12)
        assert (lo1, up1) == pytest.approx((lo2, up2), abs=1e-12)


def _population(rng, n_pop=240):
    """Stimuli with 3 latent features; data = features + stimulus-level distortion."""
    f = rng.standard_normal((n_pop, 3))
    data_feat = f + 0.6 * rng.standard_normal((n_pop, 3))
    return f, data_feat


def test_bootstrap_ci_covers_population_value(rng):
    # planted truth: the model-data Spearman correlation over the whole stimulus population;
    # each replicate draws 24 stimuli and bootstraps over them (n_boot 60, 90% CI)
    f, data_feat = _population(rng)
    population_value = rsa.compare_rdms(rsa.calc_rdm(f, metric="euclidean"),
                                        rsa.calc_rdm(data_feat, metric="euclidean"))
    covered = []
    for _ in range(40):
        sel = rng.choice(len(f), 24, replace=False)
        model = rsa.calc_rdm(f[sel], metric="euclidean")
        subj = np.stack([rsa.calc_rdm(data_feat[sel] + 0.05 * rng.standard_normal((24, 3)),
                                      metric="euclidean") for _ in range(3)])
        res = rsa.bootstrap_compare(model, subj, n_boot=60, rng=rng, ci_level=0.9)
        covered.append(res.ci[0, 0] <= population_value <= res.ci[1, 0])
    # the stimulus bootstrap of RDM correlations is conservative; 40 replicates: SE ~ 0.05
    assert np.mean(covered) >= 0.8


def test_bootstrap_tests_separate_true_and_null_models(rng):
    f, data_feat = _population(rng, n_pop=30)
    subjects = np.stack([rsa.calc_rdm(data_feat + 0.2 * rng.standard_normal(f.shape),
                                      metric="euclidean") for _ in range(6)])
    models = np.stack([rsa.calc_rdm(f, metric="euclidean"),
                       rsa.calc_rdm(rng.standard_normal(f.shape), metric="euclidean")])
    for test_type in ("t-test", "bootstrap"):
        res = rsa.bootstrap_compare(models, subjects, n_boot=50, rng=1, over="both",
                                    test_type=test_type)
        assert res.p_zero[0] < 0.05 < res.p_zero[1]
        assert res.p_pairwise[0, 1] == res.p_pairwise[1, 0] < 0.05
        assert res.ci[0, 0] > res.ci[1, 1]  # true model's CI above the null model's
    table = res.summary()
    assert list(table["model"]) == ["model0", "model1"]
    assert {"point", "ci_low", "ci_high", "p_zero", "noise_ceiling_lower"} <= set(table)


def test_bootstrap_errors():
    models, subjects = _data()
    with pytest.raises(ValueError, match=r"Unknown value for over: .*got 'stimulus'"):
        rsa.bootstrap_compare(models, subjects, over="stimulus")
    with pytest.raises(ValueError, match=r"Missing key for indices: expected keys "
                                         r"\['subjects', 'stimuli'\]"):
        rsa.bootstrap_compare(models, subjects, over="both",
                              indices={"stimuli": np.zeros((3, N_STIM), int)})
    with pytest.raises(DataShapeError, match=r"indices\['stimuli'\]: expected integers in "
                                             r"\[0, 9\) shaped \(n_boot, 9\)"):
        rsa.bootstrap_compare(models, subjects, indices={"stimuli": np.zeros((3, 4), int)})
    with pytest.raises(ValueError, match=r"Conflicting n_boot"):
        rsa.bootstrap_compare(models, subjects, n_boot=5,
                              indices={"stimuli": np.zeros((3, N_STIM), int) + [np.arange(9)]})
    with pytest.raises(DataShapeError, match=r"RDMs differ in size for model_rdms"):
        rsa.bootstrap_compare(models[:, :-1], subjects)
    with pytest.raises(DataShapeError, match=r"Too little data for over='subjects'"):
        rsa.bootstrap_compare(models, subjects[:1], over="subjects")
    bad = subjects.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"Non-finite dissimilarities in subject_rdms"):
        rsa.bootstrap_compare(models, bad)


def test_draw_bootstrap_indices_is_seeded():
    a = rsa.draw_bootstrap_indices(10, 4, n_boot=6, over="both", rng=3)
    b = rsa.draw_bootstrap_indices(10, 4, n_boot=6, over="both", rng=3)
    assert a.keys() == b.keys() == {"subjects", "stimuli"}
    assert a["stimuli"].shape == (6, 10) and a["subjects"].shape == (6, 4)
    np.testing.assert_array_equal(a["stimuli"], b["stimuli"])
    assert a["stimuli"].max() < 10 and a["subjects"].max() < 4


def test_permutation_test_null_matches_explicit_relabelling():
    rng = np.random.default_rng(0)
    n = 8
    model, data = rng.random(n * (n - 1) // 2), rng.random((2, n * (n - 1) // 2))
    res = rsa.permutation_test(model, data, method="pearson", n_perm=20, rng=5)
    perms = np.argsort(np.random.default_rng(5).random((20, n)), axis=1)  # same draws
    m = squareform(model)
    expected = [rsa.compare_rdms(squareform(m[np.ix_(p, p)], checks=False), data,
                                 method="pearson").mean() for p in perms]
    np.testing.assert_allclose(res.null, expected, rtol=1e-12, atol=1e-12)
    assert res.observed == pytest.approx(rsa.compare_rdms(model, data, method="pearson").mean())
    assert res.p_value == (1 + np.sum(res.null >= res.observed)) / 21


def test_permutation_test_planted_effect_and_null_calibration(rng):
    n = 12
    f = rng.standard_normal((n, 4))
    model = rsa.calc_rdm(f, metric="euclidean")
    data = rsa.calc_rdm(f + 0.1 * rng.standard_normal(f.shape), metric="euclidean")
    assert rsa.permutation_test(model, data, n_perm=199, rng=rng).p_value == 1 / 200
    # under the null (independent stimuli) p-values are uniform: P(p <= 0.2) ~ 0.2
    p = [rsa.permutation_test(rng.random(66), rng.random(66), n_perm=49, rng=rng).p_value
         for _ in range(300)]
    assert 0.13 < np.mean(np.array(p) <= 0.2) < 0.27  # 300 draws: SE 0.023


@pytest.mark.parametrize("method", ["bh", "by"])
def test_correct_fdr_matches_scipy(rng, method):
    p = rng.random(40) ** 3
    p[5] = p[6]  # ties
    rejected, adjusted = rsa.correct_fdr(p, alpha=0.1, method=method)
    # tolerance 1e-12: same step-up formula
    np.testing.assert_allclose(adjusted, false_discovery_control(p, method=method),
                               rtol=1e-12)
    np.testing.assert_array_equal(rejected, adjusted <= 0.1)
    grid = p.reshape(5, 8)  # the family is every entry, whatever the shape
    np.testing.assert_allclose(rsa.correct_fdr(grid, method=method)[1],
                               false_discovery_control(p, method=method).reshape(5, 8))


def test_correct_fdr_controls_false_discoveries(rng):
    # 10 true effects among 50 tests; the mean false discovery proportion stays below alpha
    from scipy.stats import norm

    fdp = []
    for _ in range(400):
        z = rng.standard_normal(50)
        z[:10] += 3.0
        rejected, _ = rsa.correct_fdr(norm.sf(z), alpha=0.1)
        fdp.append(rejected[10:].sum() / max(rejected.sum(), 1))
    assert np.mean(fdp) <= 0.1 * 40 / 50 + 0.02  # BH: FDR = alpha * m0 / m; 400 families


def test_correct_fdr_errors():
    with pytest.raises(ValueError, match=r"Bad p_values: expected a non-empty array"):
        rsa.correct_fdr(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match=r"Unknown value for method"):
        rsa.correct_fdr(np.array([0.1]), method="holm")
