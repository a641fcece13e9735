"""fMRIPrep derivatives in: finding each run's files with pybids, confounds through nilearn.

Real formats from ../shared/data: the bids-examples ``ds000001-fmriprep`` tree (real fMRIPrep
names and sidecars, empty data files) for the lookup, and the fMRIPrep confounds tables that
ship with nilearn (``nilearn_fmriprep_confounds``) for the confounds. The column set each
strategy selects and the censored volumes are derived here from the tables' column names and
values (the documented rules), not by calling nilearn.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.config import validate_config
from brainalign.errors import BIDSInputError, ConfigError
from brainalign.fmri.confounds import check_confounds_options, load_fmriprep_confounds
from brainalign.fmri.derivatives import (
    find_fmriprep_runs,
    fmriprep_run_files,
    fmriprep_run_inputs,
    split_space,
)
from brainalign.ingest.bids import Run
from tests.conftest import SHARED_DATA

EXAMPLES = SHARED_DATA / "bids_examples_subset"
FMRIPREP = EXAMPLES / "ds000001-fmriprep"
CONFOUNDS = SHARED_DATA / "nilearn_fmriprep_confounds"
TASK = "balloonanalogrisktask"
MNI = "MNI152NLin2009cAsym"

needs_examples = pytest.mark.skipif(not FMRIPREP.is_dir(), reason=f"{FMRIPREP} absent")
needs_confounds = pytest.mark.skipif(not CONFOUNDS.is_dir(), reason=f"{CONFOUNDS} absent")


def _raw_runs(subjects=("10", "11", "13", "16")) -> list[Run]:
    """The raw runs of ds001 (run-01 .. run-03), as the ingest step records them."""
    return [Run(subject=s, task=TASK, run=f"0{i}", events="", t_r_s=2.0, shape=(64, 64, 34, 300),
                bold=str(EXAMPLES / "ds001" / f"sub-{s}" / "func" /
                         f"sub-{s}_task-{TASK}_run-0{i}_bold.nii.gz"))
            for s in subjects for i in (1, 2, 3)]


@needs_examples
def test_pybids_lookup_finds_every_runs_files_in_real_fmriprep_tree():
    runs = _raw_runs()
    found = find_fmriprep_runs(FMRIPREP, runs, MNI)
    assert len(found) == 12
    for r in runs:
        files = found[(r.subject, r.key)]
        n = int(r.run)  # raw run-01 is fMRIPrep's run-1
        func = FMRIPREP / f"sub-{r.subject}" / "func"
        stem = f"sub-{r.subject}_task-{TASK}_run-{n}"
        assert files == {
            "bold": str(func / f"{stem}_space-{MNI}_res-2_desc-preproc_bold.nii.gz"),
            "mask": str(func / f"{stem}_space-{MNI}_res-2_desc-brain_mask.nii.gz"),
            "confounds": str(func / f"{stem}_desc-confounds_timeseries.tsv"),
            "confounds_json": str(func / f"{stem}_desc-confounds_timeseries.json"),
        }
        assert all(Path(p).is_file() for p in files.values())
    # naming the resolution gives the same files
    assert find_fmriprep_runs(FMRIPREP, runs[:3], f"{MNI}:res-2") == {
        k: v for k, v in found.items() if k[0] == "10"}


@needs_examples
def test_wrong_space_lists_available_spaces_and_the_fix():
    with pytest.raises(BIDSInputError) as err:
        find_fmriprep_runs(FMRIPREP, _raw_runs(("10",)), "T1w")
    msg = str(err.value)
    assert "lack files for 3 of 3 runs" in msg
    assert "sub-10 task-balloonanalogrisktask_run-01: no preprocessed BOLD in space 'T1w'" in msg
    assert f"Available spaces for this run: ['{MNI}:res-2']" in msg
    assert "fmri.fmriprep.space" in msg and "--output-spaces T1w" in msg
    # a resolution that is not there
    with pytest.raises(BIDSInputError, match=r"Available spaces .*res-2"):
        find_fmriprep_runs(FMRIPREP, _raw_runs(("10",)), f"{MNI}:res-1")


@needs_examples
def test_missing_subject_and_missing_confounds_are_named(tmp_path):
    with pytest.raises(BIDSInputError, match=r"sub-01 task-balloonanalogrisktask_run-01: .*none"):
        find_fmriprep_runs(FMRIPREP, _raw_runs(("01",)), MNI)
    copy = tmp_path / "fmriprep"
    shutil.copytree(FMRIPREP / "sub-10", copy / "sub-10")
    shutil.copy(FMRIPREP / "dataset_description.json", copy)
    (copy / "sub-10" / "func" / f"sub-10_task-{TASK}_run-2_desc-confounds_timeseries.tsv").unlink()
    with pytest.raises(BIDSInputError) as err:
        find_fmriprep_runs(copy, _raw_runs(("10",)), MNI)
    assert "1 of 3 runs" in str(err.value)
    assert f"run-02: no confounds file(s) next to sub-10_task-{TASK}_run-2_space-" in str(err.value)


@needs_examples
def test_confounds_json_is_optional(tmp_path):
    """nilearn reads the confounds JSON only for anatomical CompCor: a tree without it is used."""
    copy = tmp_path / "fmriprep"
    shutil.copytree(FMRIPREP / "sub-10", copy / "sub-10")
    shutil.copy(FMRIPREP / "dataset_description.json", copy)
    (copy / "sub-10" / "func" / f"sub-10_task-{TASK}_run-2_desc-confounds_timeseries.json").unlink()
    found = find_fmriprep_runs(copy, _raw_runs(("10",)), MNI)
    assert found[("10", f"task-{TASK}_run-02")]["confounds_json"] is None
    assert found[("10", f"task-{TASK}_run-01")]["confounds_json"].endswith(
        f"sub-10_task-{TASK}_run-1_desc-confounds_timeseries.json")


@needs_examples
def test_two_resolutions_need_the_space_to_name_one(tmp_path):
    copy = tmp_path / "fmriprep"
    shutil.copytree(FMRIPREP / "sub-10", copy / "sub-10")
    shutil.copy(FMRIPREP / "dataset_description.json", copy)
    func = copy / "sub-10" / "func"
    for f in list(func.glob(f"*run-1_space-{MNI}_res-2_desc-*")):
        shutil.copy(f, func / f.name.replace("res-2", "res-1"))
    with pytest.raises(BIDSInputError) as err:
        find_fmriprep_runs(copy, _raw_runs(("10",))[:1], MNI)
    assert "2 preprocessed BOLD files match space 'MNI152NLin2009cAsym'" in str(err.value)
    assert f"e.g. '{MNI}:res-1'" in str(err.value)
    got = find_fmriprep_runs(copy, _raw_runs(("10",))[:1], f"{MNI}:res-1")
    [files] = got.values()
    assert "_res-1_desc-preproc_bold" in files["bold"] and "_res-1_desc-brain_mask" in files["mask"]


def test_folder_without_dataset_description_is_refused(tmp_path):
    (tmp_path / "out" / "fmriprep").mkdir(parents=True)
    (tmp_path / "out" / "fmriprep" / "dataset_description.json").write_text("{}")
    with pytest.raises(BIDSInputError, match=r"No dataset_description.json .*subfolder.*fmriprep"):
        find_fmriprep_runs(tmp_path / "out", [], MNI)
    with pytest.raises(BIDSInputError, match="does not describe a derivative dataset"):
        find_fmriprep_runs(tmp_path / "out" / "fmriprep", [], MNI)
    with pytest.raises(BIDSInputError, match="does not exist"):
        find_fmriprep_runs(tmp_path / "nowhere", [], MNI)


def test_paths_of_the_workflows_own_fmriprep_run():
    runs = _raw_runs(("10",))
    got = fmriprep_run_inputs(runs, "/d", f"{MNI}:res-2", existing=False)
    assert split_space(f"{MNI}:res-2") == (MNI, "2") and split_space("T1w") == ("T1w", None)
    want = fmriprep_run_files("/d", "10", TASK, "01", MNI, res="2")
    assert got[("10", f"task-{TASK}_run-01")]["bold"] == str(want["bold"])
    assert got[("10", f"task-{TASK}_run-01")]["bold"].endswith(
        f"sub-10_task-{TASK}_run-01_space-{MNI}_res-2_desc-preproc_bold.nii.gz")


# --- confounds -------------------------------------------------------------------------------

MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


def _layout(tmp_path: Path, table: str, n_volumes: int = 30) -> Path:
    """A tiny run in fMRIPrep's names: a 30-volume BOLD next to a real confounds table."""
    import nibabel as nib

    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    stem = "sub-01_task-x_run-1"
    shutil.copy(CONFOUNDS / f"{table}.tsv", func / f"{stem}_desc-confounds_timeseries.tsv")
    shutil.copy(CONFOUNDS / f"{table}.json", func / f"{stem}_desc-confounds_timeseries.json")
    bold = func / f"{stem}_space-{MNI}_desc-preproc_bold.nii.gz"
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(100 + rng.random((3, 3, 3, n_volumes)).astype(np.float32),
                             np.eye(4)), bold)
    return bold


def _full(names):
    return {f"{n}{s}" for n in names for s in ("", "_derivative1", "_power2",
                                                "_derivative1_power2")}


def _keep_rule(raw: pd.DataFrame, fd_thr: float, dvars_thr: float, scrub: int) -> np.ndarray:
    """Scrubbing written out: FD / std DVARS outliers, short segments, non-steady volumes."""
    out = np.array(raw["framewise_displacement"].fillna(0) > fd_thr)
    out |= (raw["std_dvars"].fillna(0) > dvars_thr).to_numpy()
    keep = ~out
    runs, start = [], None
    for i, k in enumerate([*keep, False]):
        if k and start is None:
            start = i
        elif not k and start is not None:
            runs.append((start, i))
            start = None
    if out.any():
        for a, b in runs:
            if b - a < scrub:
                keep[a:b] = False
    for col in raw.columns:
        if col.startswith("non_steady_state_outlier"):
            keep &= raw[col].to_numpy() == 0
    return keep


@needs_confounds
def test_simple_strategy_selects_motion_wm_csf_and_cosines(tmp_path):
    bold = _layout(tmp_path, "test-v21_desc-confounds_timeseries")
    raw = pd.read_csv(CONFOUNDS / "test-v21_desc-confounds_timeseries.tsv", sep="\t")
    conf, keep = load_fmriprep_confounds(str(bold), {"strategy": "simple"}, n_volumes=30)
    cosines = {c for c in raw.columns if c.startswith("cosine")}
    assert cosines
    assert set(conf.columns) == _full(MOTION) | {"csf", "white_matter"} | cosines
    assert conf.shape == (30, len(conf.columns)) and not conf.isna().any().any()
    # non-steady-state volumes (fMRIPrep's outlier columns) are censored, nothing else
    nss = [c for c in raw.columns if c.startswith("non_steady_state_outlier")]
    assert len(nss) == 3
    np.testing.assert_array_equal(keep, (raw[nss] == 0).all(axis=1).to_numpy())
    np.testing.assert_allclose(conf[keep].mean(), 0, atol=1e-8)  # demeaned over kept volumes


@needs_confounds
@pytest.mark.parametrize("fd_thr, scrub", [(3.0, 5), (1.0, 0), (4.0, 3)])
def test_scrubbing_censors_volumes_above_fd_threshold(tmp_path, fd_thr, scrub):
    bold = _layout(tmp_path, "test-v21_desc-confounds_timeseries")
    raw = pd.read_csv(CONFOUNDS / "test-v21_desc-confounds_timeseries.tsv", sep="\t")
    opts = {"strategy": "scrubbing", "fd_threshold": fd_thr, "std_dvars_threshold": 100,
            "scrub": scrub}
    conf, keep = load_fmriprep_confounds(str(bold), opts, n_volumes=30)
    want = _keep_rule(raw, fd_thr, 100, scrub)
    assert 0 < (~want).sum() < 30
    np.testing.assert_array_equal(keep, want)
    assert set(conf.columns) == (_full(MOTION) | _full(["csf", "white_matter"])
                                 | {c for c in raw.columns if c.startswith("cosine")})
    assert len(conf) == 30  # every volume: the GLM drops the censored ones


@needs_confounds
def test_compcor_and_custom_component_lists(tmp_path):
    bold = _layout(tmp_path, "test-v21_desc-confounds_timeseries")
    raw = pd.read_csv(CONFOUNDS / "test-v21_desc-confounds_timeseries.tsv", sep="\t")
    meta = json.loads((CONFOUNDS / "test-v21_desc-confounds_timeseries.json").read_text())
    conf, _ = load_fmriprep_confounds(str(bold), {"strategy": "compcor", "n_compcor": 5},
                                      n_volumes=30)
    # anat_combined: the first 5 retained aCompCor components of the combined WM+CSF mask
    combined = sorted(c for c, m in meta.items()
                      if c.startswith("a_comp_cor") and m.get("Mask") == "combined"
                      and m.get("Retained", True))[:5]
    assert len(combined) == 5 and set(combined) <= set(raw.columns)
    cosines = {c for c in raw.columns if c.startswith("cosine")}
    assert set(conf.columns) == _full(MOTION) | set(combined) | cosines
    conf, keep = load_fmriprep_confounds(
        str(bold), {"strategy": ["motion", "global_signal"], "motion": "basic",
                    "global_signal": "derivatives"}, n_volumes=30)
    assert set(conf.columns) == set(MOTION) | {"global_signal", "global_signal_derivative1"}
    # no scrub component: only fMRIPrep's non-steady-state volumes are censored
    np.testing.assert_array_equal(keep, [False] * 3 + [True] * 27)


@needs_confounds
def test_confounds_errors_are_clear(tmp_path):
    bold = _layout(tmp_path, "test-v21_desc-confounds_timeseries", n_volumes=31)
    with pytest.raises(BIDSInputError, match="30 rows, but the BOLD has 31 volumes"):
        load_fmriprep_confounds(str(bold), {"strategy": "simple"}, n_volumes=31)
    with pytest.raises(BIDSInputError, match="every volume is censored"):
        load_fmriprep_confounds(str(bold), {"strategy": "scrubbing", "fd_threshold": 0.0,
                                            "std_dvars_threshold": 0.0}, n_volumes=30)


def test_confounds_options_are_checked_against_nilearn():
    check_confounds_options({"strategy": "scrubbing", "fd_threshold": 0.3, "scrub": 0})
    with pytest.raises(ConfigError, match=r"'fmri.fmriprep.confounds.fd_treshold'.*Did you mean "
                                          r"'fmri.fmriprep.confounds.fd_threshold'"):
        check_confounds_options({"strategy": "scrubbing", "fd_treshold": 0.3})
    with pytest.raises(ConfigError, match=r"fd_threshold' for strategy 'simple'"):
        check_confounds_options({"strategy": "simple", "fd_threshold": 0.3})
    with pytest.raises(ConfigError, match=r"'scrubing'.*Did you mean 'scrubbing'"):
        check_confounds_options({"strategy": "scrubing"})
    with pytest.raises(ConfigError, match=r"lists \['motions'\]"):
        check_confounds_options({"strategy": ["motions"]})


def _cfg(**fmri):
    base = {"bids": {"bids_dir": "bids", "tasks": ["demo"]}, "output_dir": "out",
            "fmri": {"preprocessing": "light", "glm": {},
                     "rois": {"dseg": "a.nii.gz", "labels": "a.tsv"}},
            "features": {"models": {"m": {"architecture": "efficientnet_lite0",
                                          "weights": "shipped", "layers": ["stage2"]}}}}
    base["fmri"].update(fmri)
    return base


@pytest.mark.parametrize("fmri, want", [
    ({}, 0.0),
    ({"preprocessing": "fmriprep"}, 0.5),
    ({"preprocessing": "fmriprep", "glm": {"slice_time_ref": 0.25}}, 0.25),
    ({"glm": {"slice_time_ref": 1.0}}, 1.0),
])
def test_slice_time_ref_auto_depends_on_preprocessing(tmp_path, fmri, want):
    cfg = validate_config(_cfg(**fmri), base_dir=tmp_path)
    assert cfg["fmri"]["glm"]["slice_time_ref"] == want
    if fmri.get("preprocessing") == "fmriprep":
        assert cfg["fmri"]["fmriprep"]["confounds"] == {"strategy": "simple"}


def test_bad_confounds_key_stops_config_validation(tmp_path):
    with pytest.raises(ConfigError, match="fd_treshold"):
        validate_config(_cfg(preprocessing="fmriprep",
                             fmriprep={"confounds": {"strategy": "scrubbing",
                                                     "fd_treshold": 0.2}}), base_dir=tmp_path)


# --- the import step -------------------------------------------------------------------------

def _import_inputs(tmp_path: Path):
    """A tiny fMRIPrep run (4x4x3 voxels, 30 volumes) with a brain mask, an atlas and labels."""
    import nibabel as nib

    bold = _layout(tmp_path, "test-v21_desc-confounds_timeseries")
    rng = np.random.default_rng(1)
    data = 500 + 50 * rng.standard_normal((4, 4, 3, 30))
    data[0, 0, 0] = 0.0  # outside the brain: fMRIPrep leaves zeros
    data[1, 1, 1] = 700.0  # constant inside the brain mask
    data[2, 2, 1, 4] = np.nan  # one non-finite value
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), bold)
    mask = np.ones((4, 4, 3), np.uint8)
    mask[0, 0, 0] = mask[3, 3, 2] = 0
    mask_path = bold.parent / bold.name.replace("desc-preproc_bold", "desc-brain_mask")
    nib.save(nib.Nifti1Image(mask, np.eye(4)), mask_path)
    dseg = np.zeros((4, 4, 3), np.int16)
    dseg[1:3, 1:3, 1] = 1  # 'a': 4 voxels, one constant and one with a NaN
    dseg[3, 3, 2] = 2  # 'b': outside fMRIPrep's mask
    dseg[0, 1, 0] = 2
    nib.save(nib.Nifti1Image(dseg, np.eye(4)), tmp_path / "dseg.nii.gz")
    (tmp_path / "labels.tsv").write_text("index\tname\n1\ta\n2\tb\n")
    return bold, mask_path, data, mask


@needs_confounds
@pytest.mark.parametrize("method", ["data", "rois"])
def test_import_step_writes_psc_mask_confounds_and_sample_mask(tmp_path, method):
    import nibabel as nib

    from brainalign.fmri.steps import step_import_fmriprep
    from brainalign.io import read_tsv

    bold, mask_path, data, mask = _import_inputs(tmp_path)
    out = {k: str(tmp_path / f"out_{k}") for k in ("bold", "mask", "json", "conf", "keep")}
    out["bold"] += ".nii.gz"
    out["mask"] += ".nii.gz"
    step_import_fmriprep(
        str(bold), str(mask_path), confounds_options={"strategy": "simple"},
        mask={"method": method, "path": None}, dseg=str(tmp_path / "dseg.nii.gz"),
        labels=str(tmp_path / "labels.tsv"), roi_names=[], run="sub-01 task-x_run-1",
        bold_out=out["bold"], mask_out=out["mask"], mask_json_out=out["json"],
        confounds_out=out["conf"], sample_mask_out=out["keep"])
    keep = read_tsv(out["keep"])["keep"].to_numpy().astype(bool)
    np.testing.assert_array_equal(keep, [False] * 3 + [True] * 27)  # non-steady-state
    # expected mask: the given mask without the constant and the NaN voxel
    given = mask.astype(bool) if method == "data" else (
        np.asanyarray(nib.load(tmp_path / "dseg.nii.gz").dataobj) > 0)
    want = given & np.isfinite(data).all(-1) & (data[..., keep].std(-1) > 0)
    got_mask = np.asanyarray(nib.load(out["mask"]).dataobj) > 0
    np.testing.assert_array_equal(got_mask, want)
    psc = nib.load(out["bold"]).get_fdata()
    mean = data[..., keep].mean(-1)
    np.testing.assert_allclose(psc[want], (100 * (data[want] - mean[want, None])
                                           / mean[want, None]), rtol=1e-4, atol=1e-4)
    assert (psc[~want] == 0).all()
    side = json.loads(Path(out["json"]).read_text())
    assert side["NumberOfVoxels"] == int(want.sum()) and side["NonFiniteVoxels"] == 1
    assert side["ROIVoxels"]["a"] == {"atlas": 4, "in_mask": 2, "nonfinite": 1, "constant": 1,
                                      "outside_mask": 0}
    if method == "data":
        assert side["MaskMethod"] == f"data (fMRIPrep desc-brain_mask: {mask_path.name})"
        assert side["ROIVoxels"]["b"]["outside_mask"] == 1  # (3, 3, 2) is outside the mask
    conf = read_tsv(out["conf"])
    assert len(conf) == 30 and "trans_x" in conf.columns


@needs_confounds
def test_import_step_demeans_bold_without_a_baseline(tmp_path):
    """Already centred BOLD (no positive baseline) is demeaned, not divided by ~0 means."""
    import nibabel as nib

    from brainalign.fmri.steps import step_import_fmriprep

    bold, mask_path, _, _ = _import_inputs(tmp_path)
    rng = np.random.default_rng(2)
    data = rng.standard_normal((4, 4, 3, 30)) + 0.05  # means near 0, both signs
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), bold)
    out = {k: str(tmp_path / f"out_{k}") for k in ("bold", "mask", "json", "conf", "keep")}
    out["bold"] += ".nii.gz"
    out["mask"] += ".nii.gz"
    step_import_fmriprep(
        str(bold), str(mask_path), confounds_options={"strategy": "simple"},
        mask={"method": "data", "path": None}, dseg=str(tmp_path / "dseg.nii.gz"),
        labels=str(tmp_path / "labels.tsv"), roi_names=[], run="sub-01 task-x_run-1",
        bold_out=out["bold"], mask_out=out["mask"], mask_json_out=out["json"],
        confounds_out=out["conf"], sample_mask_out=out["keep"])
    got_mask = np.asanyarray(nib.load(out["mask"]).dataobj) > 0
    want = np.asanyarray(nib.load(mask_path).dataobj) > 0  # every voxel varies: all kept
    np.testing.assert_array_equal(got_mask, want)
    keep = np.arange(30) >= 3  # the table's non-steady-state volumes
    psc = nib.load(out["bold"]).get_fdata()
    np.testing.assert_allclose(psc[want], data[want] - data[want][:, keep].mean(-1)[:, None],
                               atol=1e-5)
    assert json.loads(Path(out["json"]).read_text())["Scaling"] == "demeaned (no baseline)"
