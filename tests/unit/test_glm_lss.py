"""Single-trial GLM (LSA and LSS): our fits against nilearn's on the same designs, and truth.

References: nilearn's ``FirstLevelModel`` fitted with ``design_matrices=`` on a NIfTI of the data
(signal scaling off: our data are already in percent signal change), and nilearn's ``run_glm``.
The LSS reference designs are built independently with ``make_first_level_design_matrix``
from events whose ``trial_type`` is the trial versus "others".
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix, run_glm

from brainalign.errors import BIDSInputError, ConfigError, DataShapeError
from brainalign.fmri.glm import (
    ar1_levels,
    fit_lsa,
    fit_single_trial_betas,
    lss_design,
    single_trial_design,
)
from brainalign.fmri.steps import read_sample_mask, sample_mask_table, step_glm

T_R = 2.0


def _simulate(rng, *, n_vol=120, n_vox=60, n_trials=14, noise=1.0, ar=(0.0, 0.6),
              spacing=None):
    """Events, confounds, LSA design, planted amplitudes and AR(1)-noise data."""
    if spacing is None:
        onsets = np.sort(rng.uniform(6.0, n_vol * T_R - 30.0, n_trials))
    else:
        onsets = 6.0 + spacing * np.arange(n_trials)
    events = pd.DataFrame({"onset": onsets, "duration": 1.0,
                           "trial_type": np.array(["face", "house", "chair"])[
                               np.arange(n_trials) % 3]})
    confounds = pd.DataFrame(rng.standard_normal((n_vol, 2)), columns=["c1", "c2"])
    design, cols = single_trial_design(events, n_vol, T_R, confounds=confounds)
    amp = rng.standard_normal((n_trials, n_vox))
    rho = rng.uniform(*ar, n_vox)
    z = rng.standard_normal((n_vol, n_vox)) * noise
    e = np.zeros_like(z)
    for t in range(n_vol):
        e[t] = z[t] + (rho * e[t - 1] if t else 0.0)
    data = design[cols].to_numpy() @ amp + design.to_numpy()[:, len(cols):] @ rng.standard_normal(
        (design.shape[1] - len(cols), n_vox)) + e
    return events, confounds, design, cols, amp, data


def _flm_betas(data, designs, column, noise_model, sample_mask=None):
    """Betas of ``column`` (one name, or one per design... see below) from FirstLevelModel.

    One ``FirstLevelModel`` fit per design, on a NIfTI of ``data``; returns, per design, the
    coefficients of every column named in ``column`` (a str or a list), read from the fitted
    model's per-voxel AR labels and regression results.
    """
    n_vol, n_vox = data.shape
    img = nib.Nifti1Image(data.T.reshape(n_vox, 1, 1, n_vol), np.eye(4))
    mask = nib.Nifti1Image(np.ones((n_vox, 1, 1), np.uint8), np.eye(4))
    names = [column] if isinstance(column, str) else list(column)
    out = []
    for design in designs:
        flm = FirstLevelModel(mask_img=mask, noise_model=noise_model, signal_scaling=False)
        kwargs = {} if sample_mask is None else {"sample_masks": [np.flatnonzero(sample_mask)]}
        flm.fit(img, design_matrices=[design], **kwargs)
        theta = np.zeros((design.shape[1], n_vox))
        for label, res in flm.results_[0].items():
            theta[:, flm.labels_[0] == label] = res.theta
        out.append(theta[[design.columns.get_loc(c) for c in names]])
    return np.array(out)


def _flm_contrast(data, design, column, noise_model):
    """Effect size of one column through FirstLevelModel.compute_contrast."""
    n_vol, n_vox = data.shape
    img = nib.Nifti1Image(data.T.reshape(n_vox, 1, 1, n_vol), np.eye(4))
    mask = nib.Nifti1Image(np.ones((n_vox, 1, 1), np.uint8), np.eye(4))
    flm = FirstLevelModel(mask_img=mask, noise_model=noise_model, signal_scaling=False)
    flm.fit(img, design_matrices=[design])
    eff = flm.compute_contrast(column, output_type="effect_size")
    return np.asanyarray(eff.dataobj).reshape(n_vox)


def _run_glm_theta(data, design, noise_model):
    labels, results = run_glm(data, design, noise_model=noise_model)
    theta = np.zeros((design.shape[1], data.shape[1]))
    for label, res in results.items():
        theta[:, labels == label] = res.theta
    return theta


def _nilearn_lss_design(events, confounds, n_vol, trial, by_condition):
    """Trial ``trial`` against the others, built by nilearn from events (independent of ours)."""
    ev = events[["onset", "duration"]].copy()
    if by_condition:
        ev["trial_type"] = "others_" + events["trial_type"]
    else:
        ev["trial_type"] = "others"
    ev.loc[trial, "trial_type"] = "trial"
    return make_first_level_design_matrix(
        np.arange(n_vol) * T_R, ev, hrf_model="spm", drift_model="cosine", high_pass=0.01,
        add_regs=confounds.to_numpy(), add_reg_names=list(confounds.columns))


@pytest.mark.parametrize("noise_model", ["ols", "ar1"])
def test_lsa_equals_nilearn_first_level_model(rng, noise_model):
    _, _, design, cols, _, data = _simulate(rng)
    ours = fit_single_trial_betas(data, design, cols, noise_model=noise_model)
    want = _flm_betas(data, [design], cols, noise_model)[0]
    np.testing.assert_allclose(ours, want, rtol=0, atol=1e-6)
    # the reference really is the model fitted through compute_contrast's path too
    flm_eff = _flm_contrast(data, design, cols[2], noise_model)
    np.testing.assert_allclose(ours[2], flm_eff, rtol=0, atol=1e-6)
    # AR(1): several levels of the noise model are really used, so the binning is exercised
    if noise_model == "ar1":
        labels, _ = run_glm(data, design.to_numpy(), noise_model="ar1")
        assert len(np.unique(labels)) > 10


@pytest.mark.parametrize("noise_model", ["ols", "ar1"])
@pytest.mark.parametrize("by_condition", [False, True])
def test_lss_equals_nilearn_fits_of_each_trial_design(rng, noise_model, by_condition):
    events, confounds, design, cols, _, data = _simulate(rng, n_trials=7)
    conditions = events["trial_type"].tolist() if by_condition else None
    ours = fit_single_trial_betas(data, design, cols, noise_model=noise_model, method="lss",
                                  conditions=conditions)
    designs = [_nilearn_lss_design(events, confounds, data.shape[0], i, by_condition)
               for i in range(len(cols))]
    # nilearn's design has the same nuisance columns and the trial/others regressors built
    # from the events: our own per-trial design helper agrees with it
    mine = lss_design(design, cols, 3, conditions)
    np.testing.assert_allclose(mine["trial"], designs[3]["trial"], atol=1e-10)
    if by_condition and noise_model == "ar1":  # FirstLevelModel is slow: once is enough
        want = _flm_betas(data, designs, "trial", noise_model)[:, 0]
    else:
        want = np.array([_run_glm_theta(data, d.to_numpy(), noise_model)[
            d.columns.get_loc("trial")] for d in designs])
    np.testing.assert_allclose(ours, want, rtol=0, atol=1e-6)


def test_lss_by_condition_with_a_single_trial_condition(rng):
    events, confounds, design, cols, _, data = _simulate(rng, n_trials=7)
    conditions = ["a", "b", "a", "b", "a", "b", "solo"]
    events = events.assign(trial_type=conditions)
    ours = fit_single_trial_betas(data, design, cols, noise_model="ar1", method="lss",
                                  conditions=conditions)
    want = []
    for i in range(len(cols)):
        d = _nilearn_lss_design(events, confounds, data.shape[0], i, True)
        want.append(_run_glm_theta(data, d.to_numpy(), "ar1")[d.columns.get_loc("trial")])
    np.testing.assert_allclose(ours, np.array(want), rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["lsa", "lss"])
def test_sample_mask_equals_first_level_model_sample_masks(rng, method):
    events, confounds, design, cols, _, data = _simulate(rng, n_trials=5)
    keep = np.ones(data.shape[0], bool)
    keep[[5, 6, 7, 40, 41, 90]] = False
    ours = fit_single_trial_betas(data, design, cols, noise_model="ar1", method=method,
                                  sample_mask=keep)
    if method == "lsa":
        want = _flm_betas(data, [design], cols, "ar1", keep)[0]
    else:
        designs = [_nilearn_lss_design(events, confounds, data.shape[0], i, False)
                   for i in range(len(cols))]
        want = _flm_betas(data, designs, "trial", "ar1", keep)[:, 0]
    np.testing.assert_allclose(ours, want, rtol=0, atol=1e-6)
    # censoring changes the answer (the mask is really applied)
    full = fit_single_trial_betas(data, design, cols, noise_model="ar1", method=method)
    assert np.abs(full - ours).max() > 1e-3


@pytest.mark.parametrize("method", ["lsa", "lss"])
def test_planted_trial_amplitudes_are_recovered(rng, method):
    _, _, design, cols, amp, data = _simulate(rng, n_vol=200, n_vox=200, n_trials=20,
                                              noise=0.05, spacing=8.0)
    betas = fit_single_trial_betas(data, design, cols, noise_model="ar1", method=method)
    r = np.corrcoef(betas.ravel(), amp.ravel())[0, 1]
    assert r > 0.85  # about 0.96 (LSA) and 0.92 (LSS, which shrinks towards the others)


def test_lss_is_less_variable_than_lsa_for_closely_spaced_noisy_trials(rng):
    # Mumford et al. (2012): with short inter-trial intervals and noise, LSA betas are highly
    # variable (collinear regressors) and LSS betas correlate better with the true amplitudes
    _, _, design, cols, amp, data = _simulate(rng, n_vol=150, n_vox=200, n_trials=60,
                                              noise=0.5, spacing=4.0)
    r = {m: np.corrcoef(fit_single_trial_betas(data, design, cols, noise_model="ols",
                                               method=m).ravel(), amp.ravel())[0, 1]
         for m in ("lsa", "lss")}
    assert r["lss"] > r["lsa"] + 0.1  # about 0.33 against 0.12


@pytest.mark.parametrize("noise_model", ["ols", "ar1"])
def test_lsa_rank_deficient_design_equals_run_glm(rng, noise_model):
    # a duplicated column: nilearn's pinv gives the minimum-norm solution, and so do we
    _, _, design, _, _, data = _simulate(rng, n_trials=6)
    x = np.column_stack([design.to_numpy(), design.to_numpy()[:, -1]])
    np.testing.assert_allclose(fit_lsa(data, x, noise_model=noise_model),
                               _run_glm_theta(data, x, noise_model), rtol=0, atol=1e-6)


def test_ar1_levels_truncate_as_nilearn():
    rho = np.array([0.129999, -0.129999, 0.5, 0.0])
    assert ar1_levels(rho).tolist() == [12, -12, 50, 0]


def test_sample_mask_table_round_trip_and_errors(tmp_path):
    path = tmp_path / "mask.tsv"
    sample_mask_table(None, 4).to_csv(path, sep="\t", index=False)
    assert read_sample_mask(str(path), 4) is None  # every volume kept
    keep = np.array([True, False, True, True])
    sample_mask_table(keep, 4).to_csv(path, sep="\t", index=False)
    assert read_sample_mask(str(path), 4).tolist() == keep.tolist()
    with pytest.raises(BIDSInputError, match="one per volume"):
        read_sample_mask(str(path), 5)
    with pytest.raises(BIDSInputError, match="one entry per volume"):
        sample_mask_table(keep, 5)
    with pytest.raises(DataShapeError, match="too few"):
        design = pd.DataFrame(np.ones((4, 3)), columns=["trial0000", "a", "b"])
        fit_single_trial_betas(np.ones((4, 2)), design, ["trial0000"], sample_mask=~keep)


def _write_run(tmp_path, rng, *, with_trial_type=True):
    events, confounds, design, cols, amp, data = _simulate(rng, n_vol=100, n_vox=8, n_trials=9)
    ev = events.assign(stim_file=[f"s{i}.png" for i in range(len(events))])
    if not with_trial_type:
        ev = ev.drop(columns="trial_type")
    paths = {k: tmp_path / k for k in ("bold.nii.gz", "mask.nii.gz", "conf.tsv", "events.tsv",
                                       "keep.tsv", "betas.nii.gz", "trials.tsv")}
    nib.save(nib.Nifti1Image(data.T.reshape(8, 1, 1, -1), np.eye(4)), paths["bold.nii.gz"])
    nib.save(nib.Nifti1Image(np.ones((8, 1, 1), np.uint8), np.eye(4)), paths["mask.nii.gz"])
    confounds.to_csv(paths["conf.tsv"], sep="\t", index=False)
    ev.to_csv(paths["events.tsv"], sep="\t", index=False)
    keep = np.ones(100, bool)
    keep[[10, 11, 50]] = False
    sample_mask_table(keep, 100).to_csv(paths["keep.tsv"], sep="\t", index=False)
    return paths, design, cols, data, keep, events


def test_step_glm_lss_by_condition_honours_the_sample_mask(tmp_path, rng):
    paths, design, cols, data, keep, events = _write_run(tmp_path, rng)
    glm = {"hrf_model": "spm", "drift_model": "cosine", "high_pass_hz": 0.01,
           "noise_model": "ar1", "slice_time_ref": 0.0, "method": "lss",
           "lss_others": "by_condition"}
    step_glm(str(paths["bold.nii.gz"]), str(paths["mask.nii.gz"]), str(paths["conf.tsv"]),
             str(paths["events.tsv"]), sample_mask=str(paths["keep.tsv"]), t_r_s=T_R, glm=glm,
             betas_out=str(paths["betas.nii.gz"]), trials_out=str(paths["trials.tsv"]))
    got = nib.load(paths["betas.nii.gz"]).get_fdata().reshape(8, -1).T
    want = fit_single_trial_betas(data, design, cols, noise_model="ar1", method="lss",
                                  conditions=events["trial_type"].tolist(), sample_mask=keep)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # float32 on disk


def test_step_glm_by_condition_needs_trial_type(tmp_path, rng):
    paths, *_ = _write_run(tmp_path, rng, with_trial_type=False)
    glm = {"hrf_model": "spm", "drift_model": "cosine", "high_pass_hz": 0.01,
           "noise_model": "ols", "slice_time_ref": 0.0, "method": "lss",
           "lss_others": "by_condition"}
    with pytest.raises(BIDSInputError, match="trial_type"):
        step_glm(str(paths["bold.nii.gz"]), str(paths["mask.nii.gz"]), str(paths["conf.tsv"]),
                 str(paths["events.tsv"]), sample_mask=str(paths["keep.tsv"]), t_r_s=T_R,
                 glm=glm, betas_out=str(paths["betas.nii.gz"]),
                 trials_out=str(paths["trials.tsv"]))


def test_step_preprocess_writes_a_sample_mask_keeping_every_volume(tmp_path, rng):
    # the light path without scrubbing keeps every volume: one row per volume, all 1
    from brainalign.fmri.steps import step_preprocess
    from tests.unit.test_fmri_masks import _atlas, _bold

    img, _ = _bold(rng, background=True)
    _, dseg, labels = _atlas(tmp_path)
    bold = tmp_path / "bold.nii.gz"
    nib.save(img, bold)
    out = {k: str(tmp_path / k) for k in ("b.nii.gz", "m.nii.gz", "m.json", "c.tsv", "k.tsv")}
    step_preprocess(str(bold), method="light", params={"fwhm_mm": 0.0, "n_confounds": 2},
                    mask={"method": "data", "path": None}, dseg=str(dseg), labels=str(labels),
                    roi_names=[], run="sub-01 run-1", bold_out=out["b.nii.gz"],
                    mask_out=out["m.nii.gz"], mask_json_out=out["m.json"],
                    confounds_out=out["c.tsv"], sample_mask_out=out["k.tsv"])
    table = pd.read_csv(out["k.tsv"], sep="\t")
    assert list(table.columns) == ["keep"]
    assert len(table) == img.shape[3] and (table["keep"] == 1).all()


def test_step_glm_lss_refuses_derivative_hrf_models(tmp_path, rng):
    paths, *_ = _write_run(tmp_path, rng)
    glm = {"hrf_model": "spm + derivative", "drift_model": "cosine", "high_pass_hz": 0.01,
           "noise_model": "ols", "slice_time_ref": 0.0, "method": "lss", "lss_others": "all"}
    with pytest.raises(ConfigError, match="fmri.glm.hrf_model"):
        step_glm(str(paths["bold.nii.gz"]), str(paths["mask.nii.gz"]), str(paths["conf.tsv"]),
                 str(paths["events.tsv"]), t_r_s=T_R, glm=glm,
                 betas_out=str(paths["betas.nii.gz"]), trials_out=str(paths["trials.tsv"]))
