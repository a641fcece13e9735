"""Brain masks (brainalign.fmri.masks) and the fMRI steps that use them, without Snakemake.

Ground truth is planted in synthetic images: which voxels carry signal, which hold NaN, which
belong to which ROI; the masks are checked against those, and the EPI mask against nilearn's.
"""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.masking import compute_epi_mask

from brainalign.errors import BIDSInputError
from brainalign.fmri import preprocess_light
from brainalign.fmri.masks import (
    compute_data_mask,
    has_dark_background,
    roi_label_map,
    roi_voxel_counts,
)
from brainalign.fmri.steps import ROI_VOXEL_COLUMNS, step_preprocess, step_responses
from brainalign.io import read_tsv

SHAPE, N_T = (12, 12, 8), 30
AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])


def _bold(rng, *, background: bool, nan_voxels=()):
    """BOLD with a sphere of signal; outside it zeros (background) or signal too (none)."""
    g = np.stack(np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in SHAPE], indexing="ij"))
    sphere = np.sqrt((g**2).sum(0)) <= 4.5
    base = 900 + 200 * rng.random(SHAPE)
    data = base[..., None] * (1 + 0.01 * rng.standard_normal((*SHAPE, N_T)))
    if background:
        data[~sphere] = 5 * rng.random(((~sphere).sum(), N_T))
    for v in nan_voxels:
        data[v][N_T // 2] = np.nan
    img = nib.Nifti1Image(data.astype(np.float32), AFFINE)
    img.header.set_zooms((3.0, 3.0, 3.0, 2.0))
    return img, sphere


def _atlas(tmp_path):
    dseg = np.zeros(SHAPE, dtype=np.int16)
    dseg[4:6, 4:6, 3:5] = 1  # early: 8 voxels in the centre
    dseg[0:2, 0:2, 0:2] = 2  # corner: 8 voxels, outside the sphere
    dseg_path = tmp_path / "dseg.nii.gz"
    nib.save(nib.Nifti1Image(dseg, AFFINE), dseg_path)
    labels = tmp_path / "labels.tsv"
    labels.write_text("index\tname\n1\tearly\n2\tcorner\n")
    return dseg, dseg_path, labels


def test_dark_background_gives_nilearns_epi_mask(rng):
    img, sphere = _bold(rng, background=True)
    assert has_dark_background(img.get_fdata().mean(-1))
    mask_img, how = compute_data_mask(img)
    assert how == "EPI mask (dark background)"
    np.testing.assert_array_equal(np.asanyarray(mask_img.dataobj) > 0,
                                  compute_epi_mask(img).get_fdata() > 0)
    assert not np.any((np.asanyarray(mask_img.dataobj) > 0) & ~sphere)


@pytest.mark.filterwarnings("ignore:Computed an empty mask")
def test_no_background_keeps_every_voxel_with_signal(rng):
    # the failure: without a dark background nilearn's EPI mask thresholds somewhere
    # inside the signal and keeps an arbitrary part of the volume
    img, _ = _bold(rng, background=False)
    assert not has_dark_background(img.get_fdata().mean(-1))
    epi = compute_epi_mask(img).get_fdata() > 0
    assert epi.sum() < 0.9 * np.prod(SHAPE)
    mask_img, how = compute_data_mask(img)
    assert how.startswith("finite, positive, non-constant signal")
    assert (np.asanyarray(mask_img.dataobj) > 0).all()


def test_nan_voxels_are_dropped_and_counted(rng):
    bad = [(5, 5, 4), (6, 5, 4), (0, 0, 0)]
    img, _ = _bold(rng, background=False, nan_voxels=bad)
    pre, mask_img, _, info = preprocess_light(img, n_confounds=2)
    mask = np.asanyarray(mask_img.dataobj) > 0
    assert info["nonfinite"].sum() == 3
    for v in bad:
        assert info["nonfinite"][v] and not mask[v]
    assert mask.sum() == np.prod(SHAPE) - 3
    assert np.isfinite(pre.get_fdata()).all()


def test_roi_voxel_counts_hand_counted():
    rois = {"a": np.zeros((3, 3), bool), "b": np.zeros((3, 3), bool)}
    rois["a"][0, :] = True  # 3 voxels
    rois["b"][1:, 1:] = True  # 4 voxels
    mask = np.ones((3, 3), bool)
    mask[0, 0] = mask[2, 2] = False
    nonfinite = np.zeros((3, 3), bool)
    nonfinite[2, 2] = True
    constant = np.zeros((3, 3), bool)
    constant[0, 0] = True
    counts = roi_voxel_counts(rois, mask, nonfinite, constant)
    assert counts == {
        "a": {"atlas": 3, "in_mask": 2, "nonfinite": 0, "constant": 1, "outside_mask": 0},
        "b": {"atlas": 4, "in_mask": 3, "nonfinite": 1, "constant": 0, "outside_mask": 0}}


def _preprocess(tmp_path, img, *, method, name, mask_file=None):
    _, dseg_path, labels = _atlas(tmp_path)
    bold = tmp_path / f"{name}_bold.nii.gz"
    nib.save(img, bold)
    out = {k: tmp_path / f"{name}_{k}" for k in ("bold.nii.gz", "mask.nii.gz", "mask.json",
                                                 "confounds.tsv")}
    step_preprocess(str(bold), method="light", params={"fwhm_mm": 0.0, "n_confounds": 2},
                    mask={"method": method, "path": mask_file}, dseg=str(dseg_path),
                    labels=str(labels), roi_names=[], mask_file=mask_file,
                    run=f"sub-01 {name}", bold_out=out["bold.nii.gz"],
                    mask_out=out["mask.nii.gz"], mask_json_out=out["mask.json"],
                    confounds_out=out["confounds.tsv"])
    return out


def test_step_preprocess_rois_method_masks_the_roi_union(tmp_path, rng):
    img, _ = _bold(rng, background=True, nan_voxels=[(4, 4, 3)])
    out = _preprocess(tmp_path, img, method="rois", name="run-1")
    dseg, _, _ = _atlas(tmp_path)
    mask = np.asanyarray(nib.load(out["mask.nii.gz"]).dataobj) > 0
    expected = dseg > 0
    expected[4, 4, 3] = False  # its NaN drops it even from an ROI mask
    np.testing.assert_array_equal(mask, expected)
    side = json.loads(out["mask.json"].read_text())
    assert side["MaskMethod"] == "rois (union of the selected ROIs)"
    assert side["NonFiniteVoxels"] == 1
    assert side["ROIVoxels"]["early"] == {"atlas": 8, "in_mask": 7, "nonfinite": 1,
                                          "constant": 0, "outside_mask": 0}
    # the confounds never come from ROI voxels, and exist
    assert read_tsv(out["confounds.tsv"]).shape == (N_T, 2)


def test_step_preprocess_file_method_resamples_a_finer_mask(tmp_path, rng):
    img, _ = _bold(rng, background=True)
    fine = np.zeros(tuple(2 * n for n in SHAPE), dtype=np.uint8)
    fine[6:18, 6:18, 4:12] = 1  # voxels 3..8, 3..8, 2..5 of the BOLD grid
    path = tmp_path / "mask_fine.nii.gz"
    nib.save(nib.Nifti1Image(fine, np.diag([1.5, 1.5, 1.5, 1.0])), path)
    out = _preprocess(tmp_path, img, method="file", name="run-1", mask_file=str(path))
    mask = np.asanyarray(nib.load(out["mask.nii.gz"]).dataobj) > 0
    expected = np.zeros(SHAPE, bool)
    expected[3:9, 3:9, 2:6] = True
    np.testing.assert_array_equal(mask, expected)
    side = json.loads(out["mask.json"].read_text())
    assert side["MaskMethod"] == f"file ({path})"
    assert side["ROIVoxels"]["corner"]["outside_mask"] == 8


def _run_glm_free_responses(tmp_path, masks, sidecars, *, roi_names):
    """step_responses on hand-made betas: 2 runs x 2 stimuli, each shown once per run."""
    dseg, dseg_path, labels = _atlas(tmp_path)
    betas, trials = [], []
    for k in range(2):
        b = np.zeros((*SHAPE, 2), dtype=np.float32)
        b[..., 0] = 1.0 + k  # stimulus a: 1 in run 1, 2 in run 2
        b[..., 1] = -1.0
        path = tmp_path / f"betas{k}.nii.gz"
        nib.save(nib.Nifti1Image(b, AFFINE), path)
        betas.append(str(path))
        t = tmp_path / f"trials{k}.tsv"
        pd.DataFrame({"volume": [0, 1], "onset": [0.0, 5.0], "duration": [1.0, 1.0],
                      "stim_file": ["a.png", "b.png"]}).to_csv(t, sep="\t", index=False)
        trials.append(str(t))
    stim = tmp_path / "stimuli.tsv"
    pd.DataFrame({"stim_id": [0, 1], "stim_file": ["a.png", "b.png"]}).to_csv(
        stim, sep="\t", index=False)
    out, table = tmp_path / "responses.npz", tmp_path / "roivoxels.tsv"
    step_responses(betas, trials, masks, sidecars, subject="01",
                   runs=["task-x_run-1", "task-x_run-2"], stimuli_table=str(stim),
                   dseg=str(dseg_path), labels=str(labels), roi_names=roi_names, out=str(out),
                   voxels_out=str(table))
    return out, table


def _mask_files(tmp_path, rng, *, drop_in_run2):
    """Two runs' masks (every voxel) with sidecars; run 2 drops the given voxels."""
    dseg, _, _ = _atlas(tmp_path)
    rois = {"early": dseg == 1, "corner": dseg == 2}
    paths, sides = [], []
    for k in range(2):
        mask = np.ones(SHAPE, bool)
        if k == 1:
            for v in drop_in_run2:
                mask[v] = False
        path = tmp_path / f"mask{k}.nii.gz"
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), AFFINE), path)
        side = tmp_path / f"mask{k}.json"
        side.write_text(json.dumps({
            "MaskMethod": "data (EPI mask (dark background))",
            "ROIVoxels": roi_voxel_counts(rois, mask, np.zeros(SHAPE, bool))}))
        paths.append(str(path))
        sides.append(str(side))
    return paths, sides


def test_step_responses_lists_voxels_removed_by_a_runs_mask(tmp_path, rng, caplog):
    masks, sides = _mask_files(tmp_path, rng, drop_in_run2=[(4, 4, 3), (5, 5, 4)])
    out, table = _run_glm_free_responses(tmp_path, masks, sides, roi_names=["early", "corner"])
    t = read_tsv(table)
    assert list(t.columns) == ROI_VOXEL_COLUMNS
    early = t.set_index("roi").loc["early"]
    assert (early["n_voxels_atlas"], early["n_voxels_analysed"], early["n_voxels_removed"]) \
        == (8, 6, 2)
    assert early["removed_runs"] == "task-x_run-2"
    assert "2 outside the brain mask (data (EPI mask (dark background)))" in early["reason"]
    corner = t.set_index("roi").loc["corner"]
    assert corner["n_voxels_removed"] == 0 and pd.isna(corner["removed_runs"])
    assert "sub-01 ROI early: 2 of 8 voxels removed by masking" in caplog.text
    with np.load(out) as z:
        assert z["responses"].shape == (2, 14)
        assert (z["roi"] == "early").sum() == 6
        # planted: stimulus a = mean(1, 2), b = -1, in every voxel
        np.testing.assert_allclose(z["responses"][0], 1.5)
        np.testing.assert_allclose(z["responses"][1], -1.0)


def test_step_responses_roi_without_voxels_names_cause_and_keys(tmp_path, rng):
    corner = [(i, j, k) for i in range(2) for j in range(2) for k in range(2)]
    masks, sides = _mask_files(tmp_path, rng, drop_in_run2=corner)
    with pytest.raises(BIDSInputError) as err:
        _run_glm_free_responses(tmp_path, masks, sides, roi_names=[])
    msg = str(err.value)
    assert "sub-01: ROI 'corner' loses all 8 atlas voxels" in msg
    assert "task-x_run-2: 8 outside the brain mask" in msg
    assert "fmri.mask.method" in msg and "'rois'" in msg
    # the voxel table is written before the error, for the user to read
    t = read_tsv(tmp_path / "roivoxels.tsv")
    assert t.set_index("roi").loc["corner", "n_voxels_analysed"] == 0


def test_roi_label_map_selected_names_only(tmp_path):
    dseg, dseg_path, labels = _atlas(tmp_path)
    rois = roi_label_map(nib.load(dseg_path), read_tsv(labels), ["corner"])
    assert list(rois) == ["corner"] and rois["corner"].sum() == 8
