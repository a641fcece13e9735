"""ROIs from where labs get them: a template-space atlas, fMRIPrep's aseg/aparcaseg, unions.

The resampled atlas is checked against nilearn's ``resample_to_img`` (nearest neighbour), the
labels table against fMRIPrep's real ``desc-aseg_dseg.tsv`` (bids-examples, ds000001-fmriprep).
"""

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_to_img

from brainalign.errors import BIDSInputError, ConfigError
from brainalign.fmri.checks import check_atlas, read_roi_labels
from brainalign.fmri.masks import atlas_on_grid, roi_definitions, roi_label_map
from tests.conftest import SHARED_DATA

FMRIPREP = SHARED_DATA / "bids_examples_subset" / "ds000001-fmriprep"
BOLD_SHAPE = (20, 24, 18, 5)
BOLD_AFFINE = np.array([[3.0, 0, 0, -30], [0, 3.0, 0, -40], [0, 0, 3.2, -25], [0, 0, 0, 1]])


def _needs(path: Path) -> None:
    if not path.exists():  # with CI=true a skip fails (tests/ci_no_skips.py)
        pytest.skip(f"{path} is missing (../shared/data)")


def _template_atlas(tmp_path, rng):
    """A 1.5 mm, rotated, shifted atlas covering the BOLD: blocks of labels 1..4 plus noise."""
    theta = np.deg2rad(7)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                    [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot * 1.5
    affine[:3, 3] = [-40, -50, -32]
    data = np.zeros((60, 70, 50), dtype=np.int16)
    data[10:25, 10:30, 10:30] = 1
    data[30:45, 10:30, 10:30] = 2
    data[10:25, 35:55, 15:35] = 3
    data[30:45, 35:55, 15:35] = 4
    path = tmp_path / "tpl-Test_res-1p5_atlas-demo_dseg.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    labels = tmp_path / "atlas-demo_dseg.tsv"
    labels.write_text("index\tname\n0\tbackground\n1\tLeft-A\n2\tRight-A\n3\tLeft-B\n"
                      "4\tRight-B\n")
    bold = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(rng.random(BOLD_SHAPE).astype(np.float32), BOLD_AFFINE), bold)
    return path, labels, bold


def test_template_atlas_resampled_like_nilearn_nearest(tmp_path, rng):
    atlas, _, bold = _template_atlas(tmp_path, rng)
    ours = atlas_on_grid(nib.load(atlas), nib.load(bold))
    ref = resample_to_img(nib.load(atlas), nib.load(bold).slicer[..., 0],
                          interpolation="nearest", force_resample=True, copy_header=True)
    assert ours.shape == BOLD_SHAPE[:3]
    np.testing.assert_allclose(ours.affine, BOLD_AFFINE)
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(ref.dataobj))
    values = np.unique(np.asanyarray(ours.dataobj))
    assert set(values) == {0, 1, 2, 3, 4}  # nearest neighbour: labels only, no blends


def test_template_atlas_passes_the_dag_check(tmp_path, rng, caplog):
    atlas, labels, bold = _template_atlas(tmp_path, rng)
    cache: dict = {}
    with caplog.at_level(logging.INFO):
        check_atlas(atlas, read_roi_labels(labels), ["Left-A", {"B": ["Left-B", "Right-B"]}],
                    str(bold), subject="01", labels_path=labels, cache=cache)
    assert "resampled to the BOLD grid" in caplog.text
    on_grid = np.asanyarray(atlas_on_grid(nib.load(atlas), nib.load(bold)).dataobj)
    (counts,) = cache.values()  # one resampling, kept for the next subject on this grid
    assert counts[1] == int((on_grid == 1).sum()) > 0


def test_atlas_outside_the_bold_field_of_view_is_an_error(tmp_path, rng):
    atlas, labels, bold = _template_atlas(tmp_path, rng)
    img = nib.load(atlas)
    far = img.affine.copy()
    far[:3, 3] += [300.0, 0, 0]  # another space: 30 cm away
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), far), atlas)
    with pytest.raises(BIDSInputError, match=r"sub-01: ROI\(s\) \['Left-A', 'Right-B'\] of the "
                       r"atlas .* lie outside the BOLD's field of view .*Resample the atlas to "
                       r"the BOLD grid .*or give an atlas in the BOLD's space"):
        check_atlas(atlas, read_roi_labels(labels), ["Left-A", "Right-B"], str(bold),
                    subject="01", labels_path=labels)


def test_roi_smaller_than_a_bold_voxel_is_an_error(tmp_path, rng):
    atlas, labels, bold = _template_atlas(tmp_path, rng)
    img = nib.load(atlas)
    data = np.asanyarray(img.dataobj).copy()
    data[data == 4] = 0
    # one 1.5 mm atlas voxel, placed where no BOLD voxel centre picks it
    world = np.array([-30 + 3.0 * 5 + 1.5, -40 + 3.0 * 5 + 1.5, -25 + 3.2 * 5 + 1.6, 1.0])
    ijk = np.rint(np.linalg.solve(img.affine, world)[:3]).astype(int)
    data[tuple(ijk)] = 4
    nib.save(nib.Nifti1Image(data, img.affine), atlas)
    on_grid = np.asanyarray(atlas_on_grid(nib.load(atlas), nib.load(bold)).dataobj)
    assert not (on_grid == 4).any()  # the planted case: nilearn's nearest drops the voxel
    with pytest.raises(BIDSInputError, match=r"ROI\(s\) \['Right-B \(1 atlas voxels\)'\] .* keep "
                       r"no voxel once the atlas is resampled"):
        check_atlas(atlas, read_roi_labels(labels), ["Right-B"], str(bold), subject="01",
                    labels_path=labels)


def test_space_entities_must_agree(tmp_path, rng):
    atlas, labels, _ = _template_atlas(tmp_path, rng)
    bold = tmp_path / "sub-01_task-x_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(BOLD_SHAPE, np.float32), BOLD_AFFINE), bold)
    other = tmp_path / "sub-01_space-T1w_desc-aseg_dseg.nii.gz"
    other.write_bytes(atlas.read_bytes())
    with pytest.raises(BIDSInputError, match=r"in space 'T1w' but the BOLD .* is in space "
                       r"'MNI152NLin2009cAsym'"):
        check_atlas(other, read_roi_labels(labels), ["Left-A"], str(bold), subject="01",
                    labels_path=labels)


def test_fmriprep_aseg_tsv_parses_and_names_map_to_indices():
    tsv = FMRIPREP / "desc-aseg_dseg.tsv"
    _needs(tsv)
    labels = read_roi_labels(tsv)
    raw = [ln.split("\t") for ln in tsv.read_text().splitlines()[1:] if ln.strip()]
    assert labels["index"].tolist() == [int(r[0]) for r in raw]
    assert labels["name"].tolist() == [r[1].strip('"') for r in raw]  # quotes removed
    lut = dict(zip(labels["name"], labels["index"], strict=True))
    assert lut["Left-Cerebral-Cortex"] == 3 and lut["Unknown"] == 0
    for name in ("desc-aparcaseg_dseg.tsv",):
        assert len(read_roi_labels(FMRIPREP / name)) == len(raw)
    # an aseg-labelled image: names select their index
    data = np.array(labels["index"].tolist() * 2, dtype=np.int16).reshape(2, -1, 1)
    rois = roi_label_map(nib.Nifti1Image(data, np.eye(4)), labels,
                         ["Left-Cerebral-Cortex", {"wm": ["Left-Cerebral-White-Matter"]}])
    np.testing.assert_array_equal(rois["Left-Cerebral-Cortex"], data == 3)
    np.testing.assert_array_equal(rois["wm"], data == 2)


def test_freesurfer_color_lut_format(tmp_path):
    lut = tmp_path / "FreeSurferColorLUT.txt"
    lut.write_text("#$Id: FreeSurferColorLUT.txt\n\n#No. Label Name:   R   G   B   A\n"
                   "0   Unknown                  0   0   0   0\n"
                   "17  Left-Hippocampus         220 216 20  0\n"
                   "53  Right-Hippocampus        220 216 20  0\n")
    labels = read_roi_labels(lut)
    assert labels.to_dict("list") == {"index": [0, 17, 53],
                                      "name": ["Unknown", "Left-Hippocampus", "Right-Hippocampus"]}


def test_combined_roi_is_the_union_of_its_labels(tmp_path, rng):
    atlas, labels_path, bold = _template_atlas(tmp_path, rng)
    img = atlas_on_grid(nib.load(atlas), nib.load(bold))
    values = np.asanyarray(img.dataobj)
    labels = read_roi_labels(labels_path)
    rois = roi_label_map(img, labels, ["Left-A", {"B": ["Left-B", "Right-B"]}])
    assert list(rois) == ["Left-A", "B"]
    np.testing.assert_array_equal(rois["B"], (values == 3) | (values == 4))
    np.testing.assert_array_equal(rois["Left-A"], values == 1)
    assert rois["B"].sum() == (values == 3).sum() + (values == 4).sum()
    # the simple list form still works; empty = every label but index 0
    assert list(roi_label_map(img, labels, [])) == ["Left-A", "Right-A", "Left-B", "Right-B"]


def test_combined_roi_validation_messages():
    names = ["Left-A", "Right-A", "Left-B"]
    with pytest.raises(ConfigError, match=r"\['Left-Hipocampus'\] are not defined in x.tsv.*"
                       r"Did you mean: 'Left-Hipocampus' -> 'Left-Hippocampus'"):
        roi_definitions([{"hc": ["Left-Hipocampus"]}], [*names, "Left-Hippocampus"],
                        labels_path="x.tsv", error=ConfigError)
    with pytest.raises(BIDSInputError, match=r"label 'Left-A' is in the ROIs 'Left-A' and 'A'"):
        roi_definitions(["Left-A", {"A": ["Left-A", "Right-A"]}], names)
    with pytest.raises(BIDSInputError, match=r"names the ROI 'A' twice"):
        roi_definitions([{"A": ["Left-A"]}, {"A": ["Right-A"]}], names)
    with pytest.raises(BIDSInputError, match=r"expected a label name or a mapping of one ROI"):
        roi_definitions([{"A": []}], names)
    assert roi_definitions([{"A": ["Left-A", "Right-A"]}, "Left-B"], names) == {
        "A": ["Left-A", "Right-A"], "Left-B": ["Left-B"]}
