"""Unit tests of brainalign.fmri: reliability formulas, GLM betas on simulated BOLD, light
preprocessing of a synthetic image, and ROI labelling."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import compute_regressor
from nilearn.masking import compute_epi_mask

from brainalign.errors import BIDSInputError, DataShapeError
from brainalign.fmri import (
    average_repeats,
    edge_mask,
    fit_single_trial_betas,
    noise_ceiling_from_reliability,
    preprocess_light,
    single_trial_design,
    spearman_brown,
    split_half_reliability,
)
from brainalign.fmri.masks import atlas_on_grid, roi_label_map
from brainalign.io import read_tsv

# ---------------------------------------------------------------------------------------------
# Reliability formulas


def test_spearman_brown_hand_computed():
    # r = 0.5, factor 2: 2 * 0.5 / 1.5 = 2/3; factor 3: 1.5 / 2 = 0.75; r = 0 and r = 1 are fixed
    np.testing.assert_allclose(spearman_brown(0.5), 2 / 3, rtol=1e-12)
    np.testing.assert_allclose(spearman_brown(0.5, factor=3.0), 0.75, rtol=1e-12)
    np.testing.assert_allclose(
        spearman_brown(np.array([0.0, 1.0, 0.2])), [0.0, 1.0, 0.4 / 1.2], rtol=1e-12
    )
    # factor 1 leaves the reliability unchanged
    np.testing.assert_allclose(spearman_brown(np.array([0.1, 0.7]), factor=1.0), [0.1, 0.7])


def test_noise_ceiling_is_sqrt_of_spearman_brown():
    r = np.array([0.1, 0.5, 0.9, 0.0, -0.3, -0.9999])
    ceiling = noise_ceiling_from_reliability(r)
    np.testing.assert_allclose(ceiling[:3], np.sqrt(2 * r[:3] / (1 + r[:3])), rtol=1e-12)
    np.testing.assert_array_equal(ceiling[3:], 0.0)  # zero and negative reliability -> 0
    assert np.all(np.isfinite(ceiling))


def test_split_half_reliability_matches_corrcoef(rng):
    h1 = rng.standard_normal((20, 5))
    h2 = 0.7 * h1 + rng.standard_normal((20, 5)) + 2.0
    expected = [np.corrcoef(h1[:, j], h2[:, j])[0, 1] for j in range(5)]
    np.testing.assert_allclose(split_half_reliability(h1, h2), expected, rtol=1e-12)


def test_split_half_reliability_constant_voxel_is_zero(rng):
    h1 = rng.standard_normal((10, 2))
    h2 = rng.standard_normal((10, 2))
    h2[:, 0] = 1.0
    assert split_half_reliability(h1, h2)[0] == 0.0


# ---------------------------------------------------------------------------------------------
# average_repeats


def test_average_repeats_hand_computed():
    stim_files = ["a", "b", "a", "c", "b", "a", "c", "a"]
    betas = np.arange(16, dtype=float).reshape(8, 2) ** 2  # distinct rows
    mean, h1, h2, n_rep = average_repeats(betas, stim_files, ["c", "a", "b"])
    rows = {"a": [0, 2, 5, 7], "b": [1, 4], "c": [3, 6]}
    for i, s in enumerate(["c", "a", "b"]):
        r = rows[s]
        np.testing.assert_allclose(mean[i], betas[r].mean(0))
        np.testing.assert_allclose(h1[i], betas[r[0::2]].mean(0))  # 1st, 3rd, ... repeat
        np.testing.assert_allclose(h2[i], betas[r[1::2]].mean(0))  # 2nd, 4th, ... repeat
    np.testing.assert_array_equal(n_rep, [2, 4, 2])
    # explicit numbers for stimulus 'a', voxel 0: betas rows 0, 2, 5, 7 -> 0, 16, 100, 196
    assert mean[1, 0] == pytest.approx((0 + 16 + 100 + 196) / 4)
    assert h1[1, 0] == pytest.approx((0 + 100) / 2)
    assert h2[1, 0] == pytest.approx((16 + 196) / 2)


def test_average_repeats_rejects_single_trial():
    betas = np.ones((3, 2))
    with pytest.raises(BIDSInputError, match=r"Stimulus 'lonely\.png' was shown 1 time"):
        average_repeats(betas, ["x.png", "lonely.png", "x.png"], ["x.png", "lonely.png"])
    with pytest.raises(BIDSInputError, match=r"Stimulus 'absent\.png' was shown 0 time"):
        average_repeats(betas, ["x.png", "x.png", "x.png"], ["absent.png"])


# ---------------------------------------------------------------------------------------------
# single-trial GLM on simulated BOLD

N_VOL, TR = 120, 2.0


@pytest.fixture
def trial_events() -> pd.DataFrame:
    onsets = 10.0 + 6.0 * np.arange(20)  # one trial every 6 s; last onset 124 s < 240 s
    return pd.DataFrame(
        {"onset": onsets, "duration": 1.0, "stim_file": [f"s{i}" for i in range(20)]}
    )


def test_single_trial_design_columns(rng, trial_events):
    confounds = pd.DataFrame(rng.standard_normal((N_VOL, 2)), columns=["mot_x", "mot_y"])
    design, cols = single_trial_design(trial_events, N_VOL, TR, confounds=confounds)
    assert cols == [f"trial{i:04d}" for i in range(20)]
    assert design.shape[0] == N_VOL
    assert set(cols) <= set(design.columns)
    assert "constant" in design.columns
    assert any(c.startswith("drift") for c in design.columns)
    np.testing.assert_array_equal(design["mot_x"].to_numpy(), confounds["mot_x"].to_numpy())
    np.testing.assert_allclose(design.index.to_numpy(), np.arange(N_VOL) * TR)
    # each trial column is nilearn's SPM-HRF regressor of that trial alone
    frame_times = np.arange(N_VOL) * TR
    for i in (0, 7, 19):
        cond = np.array([[trial_events.onset[i]], [1.0], [1.0]])
        ref = compute_regressor(cond, "spm", frame_times)[0][:, 0]
        np.testing.assert_allclose(design[cols[i]].to_numpy(), ref, rtol=1e-10, atol=1e-12)


def test_single_trial_design_keeps_event_row_order(rng, trial_events):
    # trial columns follow the rows of `events`, even when rows are not chronological
    shuffled = trial_events.iloc[rng.permutation(len(trial_events))].reset_index(drop=True)
    design, cols = single_trial_design(shuffled, N_VOL, TR)
    frame_times = np.arange(N_VOL) * TR
    for i in range(len(shuffled)):
        cond = np.array([[shuffled.onset[i]], [1.0], [1.0]])
        ref = compute_regressor(cond, "spm", frame_times)[0][:, 0]
        np.testing.assert_allclose(design[cols[i]].to_numpy(), ref, rtol=1e-10, atol=1e-12)


def test_single_trial_design_slice_time_ref(trial_events):
    design, _ = single_trial_design(trial_events, N_VOL, TR, slice_time_ref=0.5)
    np.testing.assert_allclose(design.index.to_numpy(), (np.arange(N_VOL) + 0.5) * TR)


def _simulate(rng, design, cols, n_vox=30, noise_sd=0.005):
    # trial regressors of a 1 s event peak at ~0.2 and overlap (6 s apart): the design's
    # smallest singular value is ~0.05, so the noise must be small for betas to be recovered
    beta = rng.standard_normal((design.shape[1], n_vox))
    trial_idx = [design.columns.get_loc(c) for c in cols]
    planted = 1.0 + rng.standard_normal((len(cols), n_vox))
    beta[trial_idx] = planted
    y = design.to_numpy() @ beta + noise_sd * rng.standard_normal((design.shape[0], n_vox))
    return y, planted


def test_fit_single_trial_betas_recovers_planted_amplitudes(rng, trial_events):
    design, cols = single_trial_design(trial_events, N_VOL, TR)
    y, planted = _simulate(rng, design, cols)
    betas = fit_single_trial_betas(y, design, cols)  # AR(1) default
    assert betas.shape == planted.shape
    assert np.corrcoef(betas.ravel(), planted.ravel())[0, 1] > 0.99
    for v in range(planted.shape[1]):
        assert np.corrcoef(betas[:, v], planted[:, v])[0, 1] > 0.99


def test_fit_single_trial_betas_ols_equals_lstsq(rng, trial_events):
    design, cols = single_trial_design(trial_events, N_VOL, TR)
    y, planted = _simulate(rng, design, cols, noise_sd=0.01)
    betas = fit_single_trial_betas(y, design, cols, noise_model="ols")
    ref = np.linalg.lstsq(design.to_numpy(), y, rcond=None)[0]
    idx = [design.columns.get_loc(c) for c in cols]
    np.testing.assert_allclose(betas, ref[idx], rtol=1e-6, atol=1e-6)
    assert np.corrcoef(betas.ravel(), planted.ravel())[0, 1] > 0.95


def test_fit_single_trial_betas_rejects_volume_mismatch(rng, trial_events):
    design, cols = single_trial_design(trial_events, N_VOL, TR)
    with pytest.raises(
        DataShapeError,
        match=rf"BOLD has {N_VOL - 1} volumes but the design has "
        rf"{N_VOL} rows",
    ):
        fit_single_trial_betas(rng.standard_normal((N_VOL - 1, 3)), design, cols)


# ---------------------------------------------------------------------------------------------
# preprocess_light and edge_mask on a synthetic image

SHAPE, N_T = (16, 16, 12), 40
CENTRE = (8, 8, 6)


@pytest.fixture
def synthetic_bold(rng):
    """A sphere of positive signal in zeros; interior voxels carry a 'stimulus' series, the
    outer shell a 'motion' series, and the centre voxel exactly a +-1 % square wave."""
    g = np.stack(np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in SHAPE], indexing="ij"))
    radius = np.sqrt((g**2).sum(0))
    sphere = radius <= 5.5
    stim = rng.standard_normal(N_T)
    motion = rng.standard_normal(N_T)
    psc = 0.5 * rng.standard_normal((*SHAPE, N_T))
    # the EPI mask's 2-voxel shell (6-connected erosion) reaches in to radius ~2.6 along the
    # diagonals: the 'stimulus' core stays inside radius 2.5, the 'motion' shell outside 4
    psc[radius < 2.5] += 3.0 * stim
    psc[radius > 4.0] += 3.0 * motion
    square = np.where(np.arange(N_T) % 2, 1.0, -1.0)  # mean 0, +-1 % of baseline
    psc[CENTRE] = square
    baseline = 1000.0 + 100.0 * rng.random(SHAPE)
    data = np.where(sphere[..., None], baseline[..., None] * (1 + psc / 100), 0.0)
    img = nib.Nifti1Image(data.astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0]))
    img.header.set_zooms((3.0, 3.0, 3.0, 2.0))  # TR 2 s
    return {"img": img, "sphere": sphere, "stim": stim, "motion": motion, "square": square}


def test_preprocess_light_percent_signal_change(synthetic_bold):
    img = synthetic_bold["img"]
    pre, mask_img, confounds, info = preprocess_light(img, n_confounds=3)
    assert info["data_mask"] == "EPI mask (dark background)"
    assert not info["nonfinite"].any()
    mask = np.asanyarray(mask_img.dataobj) > 0
    # the mask is nilearn's EPI mask of the raw image, inside the planted sphere
    np.testing.assert_array_equal(mask, compute_epi_mask(img).get_fdata() > 0)
    assert mask[CENTRE]
    assert not np.any(mask & ~synthetic_bold["sphere"])
    assert mask.sum() > 0.8 * synthetic_bold["sphere"].sum()

    data = pre.get_fdata()
    assert pre.shape == (*SHAPE, N_T)
    assert pre.get_data_dtype() == np.float32
    assert pre.header.get_zooms() == (3.0, 3.0, 3.0, 2.0)  # voxel size and TR are kept
    np.testing.assert_allclose(pre.affine, img.affine)
    np.testing.assert_allclose(data[mask].mean(axis=1), 0.0, atol=1e-4)  # float32 round-off
    np.testing.assert_array_equal(data[~mask], 0.0)
    # a known +-1 % modulation comes out as +-1 percent signal change
    np.testing.assert_allclose(data[CENTRE], synthetic_bold["square"], atol=1e-4)


def test_preprocess_light_confounds_capture_edge_not_interior(synthetic_bold):
    _, _, confounds, _ = preprocess_light(synthetic_bold["img"], n_confounds=3)
    assert isinstance(confounds, pd.DataFrame)
    assert confounds.shape == (N_T, 3)
    assert list(confounds.columns) == ["hv_00", "hv_01", "hv_02"]
    r_motion = [abs(np.corrcoef(confounds[c], synthetic_bold["motion"])[0, 1]) for c in confounds]
    r_stim = [abs(np.corrcoef(confounds[c], synthetic_bold["stim"])[0, 1]) for c in confounds]
    assert max(r_motion) > 0.9  # the edge 'motion' series is found
    assert max(r_stim) < 0.5  # interior stimulus signal stays out of the confounds


def test_preprocess_light_no_confounds_and_smoothing(synthetic_bold):
    pre, _, confounds, _ = preprocess_light(synthetic_bold["img"], n_confounds=0, fwhm_mm=6.0)
    assert confounds.shape == (N_T, 0)
    # smoothing comes first, then percent signal change: equal to nilearn's smooth_img of the
    # raw image, scaled independently here; it mixes the square wave with its neighbours
    from nilearn.image import smooth_img

    raw = smooth_img(synthetic_bold["img"], 6.0).get_fdata()[CENTRE]
    want = 100.0 * (raw - raw.mean()) / raw.mean()
    np.testing.assert_allclose(pre.get_fdata()[CENTRE], want, atol=1e-3)
    assert np.abs(want - synthetic_bold["square"]).max() > 0.1


def test_preprocess_light_rejects_3d_image():
    img = nib.Nifti1Image(np.ones((4, 4, 4), dtype=np.float32), np.eye(4))
    with pytest.raises(DataShapeError, match=r"BOLD image must be 4D, got shape \(4, 4, 4\)"):
        preprocess_light(img)


def test_edge_mask_subset_of_mask_and_excludes_centre(synthetic_bold):
    _, mask_img, _, _ = preprocess_light(synthetic_bold["img"], n_confounds=0)
    mask = np.asanyarray(mask_img.dataobj) > 0
    edge = np.asanyarray(edge_mask(mask_img).dataobj) > 0
    assert edge.any()
    assert not np.any(edge & ~mask)
    assert not edge[CENTRE]
    assert edge.sum() < mask.sum()


@pytest.mark.parametrize(("width", "n_inner"), [(1, 5**3), (2, 3**3)])
def test_edge_mask_of_a_cube_hand_counted(width, n_inner):
    # a 7x7x7 cube eroded `width` times (6-connected) keeps a (7 - 2 width)^3 core
    cube = np.zeros((11, 11, 11), dtype=np.uint8)
    cube[2:9, 2:9, 2:9] = 1
    edge = edge_mask(nib.Nifti1Image(cube, np.eye(4)), width_vox=width)
    data = np.asanyarray(edge.dataobj)
    assert data.sum() == 7**3 - n_inner
    assert data[5, 5, 5] == 0 and data[2, 2, 2] == 1


# ---------------------------------------------------------------------------------------------
# ROI labels on the BOLD grid (brainalign.fmri.masks)


def _roi_images(affine=None):
    affine = np.diag([3.0, 3.0, 3.0, 1.0]) if affine is None else affine
    mask = np.zeros((6, 6, 4), dtype=np.uint8)
    mask[1:5, 1:5, :] = 1
    dseg = np.zeros((6, 6, 4), dtype=np.int16)
    dseg[1:3, 1:3, :] = 1  # early
    dseg[3:5, 1:3, :2] = 2  # late
    dseg[1:3, 3:5, :] = 3  # null
    dseg[0, 0, 0] = 4  # 'outside': not in the mask
    return nib.Nifti1Image(dseg, affine), nib.Nifti1Image(mask, affine)


@pytest.fixture
def labels_tsv(tmp_path):
    path = tmp_path / "desc-test_dseg.tsv"
    path.write_text("index\tname\n1\tearly\n2\tlate\n3\tnull\n4\toutside\n")
    return path


def test_roi_label_map_null_roi(labels_tsv):
    # regression: pandas' default reader turns the ROI name "null" into NaN
    assert pd.read_csv(labels_tsv, sep="\t")["name"].isna().any()
    labels = read_tsv(labels_tsv)
    assert labels["name"].tolist() == ["early", "late", "null", "outside"]

    dseg_img, _ = _roi_images()
    rois = roi_label_map(dseg_img, labels, ["early", "late", "null"])
    assert list(rois) == ["early", "late", "null"]  # label 4 is not selected
    dseg = np.asanyarray(dseg_img.dataobj)
    for value, name in enumerate(["early", "late", "null"], start=1):
        np.testing.assert_array_equal(rois[name], dseg == value)
    assert rois["null"].sum() == 2 * 2 * 4
    assert rois["late"].sum() == 2 * 2 * 2
    # empty names: every non-zero label
    assert list(roi_label_map(dseg_img, labels, [])) == ["early", "late", "null", "outside"]


def test_roi_label_map_unknown_name(labels_tsv):
    dseg_img, _ = _roi_images()
    with pytest.raises(BIDSInputError, match=r"ROI\(s\) \['V9'\] are not defined .*early"):
        roi_label_map(dseg_img, read_tsv(labels_tsv), ["early", "V9"])


def test_atlas_on_grid_resamples_finer_atlas(labels_tsv):
    # the atlas at twice the resolution: voxel (i, j, k) of the mask sits on (2i, 2j, 2k)
    dseg_img, mask_img = _roi_images()
    fine = np.asanyarray(dseg_img.dataobj)
    fine = fine.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    fine_img = nib.Nifti1Image(fine, np.diag([1.5, 1.5, 1.5, 1.0]))
    on_grid = atlas_on_grid(fine_img, mask_img)
    assert on_grid.shape == mask_img.shape
    np.testing.assert_array_equal(np.asanyarray(on_grid.dataobj), np.asanyarray(dseg_img.dataobj))
    assert atlas_on_grid(dseg_img, mask_img) is dseg_img  # same grid: untouched
