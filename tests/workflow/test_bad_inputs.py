"""The bad-input catalogue: each broken study stops with a named cause, or runs correctly.

Every case copies the demo study, breaks one thing, and runs the workflow the way a user would
(snakemake in a fresh working directory). It asserts where the problem is caught (at DAG
construction, before any job; or in the named job), that the message names the file / subject
/ run / key and the fix, and that the input folder is byte-identical afterwards. README.md's
"Bad input" table lists these cases; a test keeps the two in step.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from tests.conftest import REPO, make_config, run_snakemake

DAG, JOB, RUNS, WARNS = "DAG construction", "job", "runs", "runs, with a warning"


@dataclass
class Case:
    """One broken input: how to break the study, where it must be caught, what must be said."""

    id: str
    what: str
    where: str
    expect: list[str]
    breaks: Callable[[Path, dict], None] = lambda bids, cfg: None
    target: str | None = None  # the output a job-stage case asks for
    rule: str | None = None  # the rule whose job must fail (or log the warning)
    extra: list[str] = field(default_factory=list)
    inspect: Callable[[Path], str] | None = None  # more text to search, from the work folder


def _events(bids: Path, sub="02", run=3) -> Path:
    return bids / f"sub-{sub}" / "func" / f"sub-{sub}_task-demo_run-{run}_events.tsv"


def _edit_events(bids: Path, fn, sub="02", run=3) -> None:
    path = _events(bids, sub, run)
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    rows = [ln.split("\t") for ln in lines[1:]]
    fn(header, rows)
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")


def _set_cell(column: str, value: str, row: int = 4):
    def fn(header, rows):
        rows[row][header.index(column)] = value
    return lambda bids, cfg: _edit_events(bids, fn)


def _key(cfg: dict, dotted: str, value) -> None:
    node = cfg
    *parents, last = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def _config(dotted: str, value):
    return lambda bids, cfg: _key(cfg, dotted, value)


def _atlas(bids: Path, sub: str = "01") -> Path:
    return bids / "derivatives" / "rois" / f"sub-{sub}" / "anat" / \
        f"sub-{sub}_desc-demo_dseg.nii.gz"


def _labels(bids: Path) -> Path:
    return bids / "derivatives" / "rois" / "desc-demo_dseg.tsv"


def _rewrite_atlas(fn):
    def breaks(bids, cfg):
        img = nib.load(_atlas(bids))
        data, affine = fn(np.asanyarray(img.dataobj).copy(), img.affine.copy())
        nib.save(nib.Nifti1Image(data, affine), _atlas(bids))
    return breaks


def _shift_atlas(data, affine):
    affine[:3, 3] += 500.0  # another space: 50 cm away from the BOLD
    return data, affine


def _unlisted_label(data, affine):
    data[0, 0, 0] = 7  # a value the labels TSV does not define
    return data, affine


def _empty_roi(data, affine):
    data[data == 2] = 0  # 'late' has no voxel left in this subject's atlas
    return data, affine


def _roi_in_background(data, affine):
    # move 'null' into the corner of the volume, outside the brain (dark background): the
    # data-driven mask removes every one of its voxels
    data[data == 3] = 0
    data[:3, :3, :3] = 3
    return data, affine


def _corrupt_gzip_stream(bids, cfg):
    """Flip bytes in the middle of the compressed stream: the header still loads and the gzip
    trailer still gives the right size, so only reading the data can tell."""
    path = bids / "sub-01" / "func" / "sub-01_task-demo_run-1_bold.nii.gz"
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(64)
    path.write_bytes(bytes(raw))


def _nan_voxels(bids, cfg):
    path = bids / "sub-01" / "func" / "sub-01_task-demo_run-2_bold.nii.gz"
    img = nib.load(path)
    data = np.asanyarray(img.dataobj).copy()
    roi = np.asanyarray(nib.load(_atlas(bids)).dataobj) == 1  # 'early'
    first = tuple(np.argwhere(roi)[:3].T)
    data[first + (slice(5, 7),)] = np.nan
    data[0, 0, 0, 3] = np.inf  # one in the background too
    nib.save(nib.Nifti1Image(data, img.affine, img.header), path)


def _copy_subject(bids: Path, new: str) -> None:
    """A second copy of sub-01 under a folder (and file names) with another label."""
    src = bids / "sub-01"
    dst = bids / f"sub-{new}"
    shutil.copytree(src, dst)
    for f in list(dst.rglob("*")):
        if f.is_file():
            f.rename(f.with_name(f.name.replace("sub-01", f"sub-{new}")))


def _truncate_bold(bids, cfg):
    path = bids / "sub-02" / "func" / "sub-02_task-demo_run-1_bold.nii.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 2 // 3])


def _inherit_events(bids, cfg):
    """sub-01 run-1's events moved up to the subject folder (BIDS inheritance principle)."""
    own = _events(bids, "01", 1)
    own.rename(bids / "sub-01" / own.name)


def _fmriprep_tree(space: str, drop: str | None = None):
    """fMRIPrep derivatives of the study next to it (fMRIPrep's names; empty data files, as in
    bids-examples), in ``space``, without the file named ``drop``; the config points at it."""
    def breaks(bids, cfg):
        out = bids.parent / "fmriprep"
        out.mkdir()
        if drop != "dataset_description.json":
            (out / "dataset_description.json").write_text(json.dumps(
                {"Name": "fMRIPrep", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
                 "GeneratedBy": [{"Name": "fMRIPrep", "Version": "25.2.5"}]}))
        for raw in sorted(bids.glob("sub-*/func/*_bold.nii.gz")):
            stem = raw.name.removesuffix("_bold.nii.gz")
            func = out / raw.parent.relative_to(bids)
            func.mkdir(parents=True, exist_ok=True)
            for name in (f"{stem}_space-{space}_desc-preproc_bold.nii.gz",
                         f"{stem}_space-{space}_desc-brain_mask.nii.gz",
                         f"{stem}_desc-confounds_timeseries.tsv",
                         f"{stem}_desc-confounds_timeseries.json"):
                if name != drop:
                    (func / name).write_bytes(b"")
        _key(cfg, "fmri.preprocessing", "fmriprep")
        _key(cfg, "fmri.fmriprep.derivatives", str(out))
    return breaks


def _runs_table(work: Path) -> str:
    return (work / "results" / "manifest" / "runs.tsv").read_text()


CASES = [
    # --- configuration -------------------------------------------------------------------
    Case("misspelled-key", "a misspelled config key", DAG,
         [r"Unknown key 'encoding\.ridge\.alpha'", r"Did you mean 'encoding\.ridge\.alphas'\?"],
         lambda bids, cfg: cfg["encoding"]["ridge"].update(alpha=cfg["encoding"]["ridge"].pop(
             "alphas"))),
    Case("sub-prefix", "participant_label written with its sub- prefix", DAG,
         [r"'bids\.participant_label' lists 'sub-01'", r"without the 'sub-' prefix",
          r"Write '01'"], _config("bids.participant_label", ["sub-01"])),
    Case("output-empty", "output_dir empty", DAG,
         [r"'output_dir' is empty", r"e\.g\. 'results'"], _config("output_dir", "")),
    Case("output-root", "output_dir is /", DAG,
         [r"'output_dir' is '/', the filesystem root"], _config("output_dir", "/")),
    Case("output-in-bids", "output_dir inside bids_dir", DAG,
         [r"'output_dir' \(.*/bids/derivatives/brainalign\) is inside the input folder "
          r"'bids\.bids_dir'", r"overwrite its dataset_description\.json",
          r"Set output_dir to a separate folder"],
         lambda bids, cfg: _key(cfg, "output_dir", str(bids / "derivatives" / "brainalign"))),
    Case("unknown-layer", "a layer the architecture does not have", DAG,
         [r"stage9", r"features\.models\.efficientnet_lite0\.layers"],
         _config("features.models.efficientnet_lite0.layers", ["stage2", "stage9"])),
    Case("weights-missing", "a weights file that is not on this machine", DAG,
         [r"Weights file 'weights/vgg16\.pth'", r"features\.models\.vgg\.weights",
          r"Nothing is downloaded at run time"],
         _config("features.models.vgg", {"architecture": "vgg16",
                                         "weights": "weights/vgg16.pth",
                                         "layers": ["fc7"]})),
    Case("too-many-folds", "more folds than stimuli", DAG,
         [r"encoding\.ridge\.n_folds", r"48 stimuli", r"Lower them"],
         _config("encoding.ridge.n_folds", 60)),
    Case("impossible-batch", "an impossible resource (batch of 0 images)", DAG,
         [r"features\.batch_size", r"0 is less than the minimum of 1"],
         _config("features.batch_size", 0)),
    Case("mask-file-no-path", "mask method file without a path", DAG,
         [r"'fmri\.mask\.path' is empty but 'fmri\.mask\.method' is 'file'"],
         _config("fmri.mask", {"method": "file"})),
    # --- ROI atlas, labels, mask -----------------------------------------------------------
    Case("atlas-missing", "a subject's ROI atlas is missing", DAG,
         [r"sub-01: ROI atlas .*sub-01_desc-demo_dseg\.nii\.gz \(config key 'fmri\.rois\.dseg'\)"
          r" does not exist", r"Add the atlas or fix the path template"],
         lambda bids, cfg: _atlas(bids).unlink()),
    Case("labels-no-name", "labels TSV without a name column", DAG,
         [r"ROI labels file .*desc-demo_dseg\.tsv: expected columns index, name; got "
          r"\['index', 'label'\]"],
         lambda bids, cfg: _labels(bids).write_text(
             _labels(bids).read_text().replace("name", "label", 1))),
    Case("roi-not-in-labels", "fmri.rois.names lists an ROI the labels TSV lacks", DAG,
         [r"'fmri\.rois\.names' lists \['V9'\]", r"expected names from"],
         _config("fmri.rois.names", ["early", "V9"])),
    Case("atlas-unlisted-label", "atlas values missing from the labels TSV", DAG,
         [r"sub-01: ROI atlas .* holds label value\(s\) \[7\] that the labels table",
          r"Add rows for them"], _rewrite_atlas(_unlisted_label)),
    Case("atlas-empty-roi", "a selected ROI with no voxel in the atlas", DAG,
         [r"sub-01: ROI\(s\) \['late'\] have no voxel in the atlas",
          r"drop them from fmri\.rois\.names"], _rewrite_atlas(_empty_roi)),
    Case("atlas-other-space", "BOLD and atlas on different grids (another space)", DAG,
         [r"sub-01: ROI\(s\) \['early', 'late', 'null'\] of the atlas .* lie outside the "
          r"BOLD's field of view", r"Resample the atlas to the BOLD grid"],
         _rewrite_atlas(_shift_atlas)),
    Case("roi-union-unknown-label", "an ROI made of labels, one misspelt", DAG,
         [r"ROI\(s\) \['nul'\] are not defined in .*desc-demo_dseg\.tsv",
          r"Did you mean: 'nul' -> 'null'"],
         _config("fmri.rois.names", ["early", {"late_and_null": ["late", "nul"]}])),
    Case("roi-label-in-two-rois", "one label in two ROIs of fmri.rois.names", DAG,
         [r"label 'late' is in the ROIs 'late' and 'both'", r"Drop it from one of them"],
         _config("fmri.rois.names", ["late", {"both": ["late", "null"]}])),
    Case("mask-file-missing", "mask method file naming a missing image", DAG,
         [r"sub-01: mask image .*masks/sub-01_mask\.nii\.gz \(config key 'fmri\.mask\.path'\) "
          r"does not exist"],
         _config("fmri.mask", {"method": "file",
                               "path": "derivatives/masks/sub-{subject}_mask.nii.gz"})),
    # --- BIDS layout and events (brainalign.ingest.bids) ------------------------------------
    Case("stim-file-missing", "events name a stimulus file that is not in stimuli/", DAG,
         [r"sub-02 task-demo_run-3: events\.tsv names stim_file 'img_044\.png', which is not "
          r"in .*stimuli/", r"Add the file or drop the row"],
         _set_cell("stim_file", "img_044.png")),
    Case("tr-mismatch", "a sidecar TR that disagrees with the NIfTI header", DAG,
         [r"sub-01 task-demo_run-2", r"RepetitionTime 2\.5 s in the sidecar disagrees"],
         lambda bids, cfg: (bids / "sub-01" / "func" / "sub-01_task-demo_run-2_bold.json")
         .write_text('{"RepetitionTime": 2.5}\n')),
    Case("negative-duration", "a negative duration", DAG,
         [r"Negative duration on line 6 of events\.tsv for sub-02 task-demo_run-3",
          r"got -1 s", r"Fix the duration"], _set_cell("duration", "-1")),
    Case("empty-events", "an empty events.tsv", DAG,
         [r"Empty events\.tsv for sub-02 task-demo_run-3 \(.*_events\.tsv\)",
          r"or drop the run"], lambda bids, cfg: _events(bids).write_text("")),
    Case("header-only-events", "an events.tsv with a header and no rows", DAG,
         [r"No events in events\.tsv for sub-02 task-demo_run-3", r"got the header only"],
         lambda bids, cfg: _events(bids).write_text(
             _events(bids).read_text().splitlines()[0] + "\n")),
    Case("nan-onset", "an onset of n/a", DAG,
         [r"Invalid onset on line 6 of events\.tsv for sub-02 task-demo_run-3",
          r"expected a finite number of seconds, got a missing value"],
         _set_cell("onset", "n/a")),
    Case("text-onset", "a column of the wrong type (onset '12s')", DAG,
         [r"Invalid onset on line 6 of events\.tsv for sub-02 task-demo_run-3", r"'12s'"],
         _set_cell("onset", "12s")),
    Case("ragged-row", "a row with fewer fields than the header", DAG,
         [r"Wrong number of fields on line 6 of events\.tsv for sub-02 task-demo_run-3",
          r"expected 6 tab-separated fields", r"got 5"],
         lambda bids, cfg: _edit_events(bids, lambda h, rows: rows[4].pop())),
    Case("duplicate-onsets", "two trials at the same onset", DAG,
         [r"Duplicate onset on lines 5 and 6 of events\.tsv for sub-02 task-demo_run-3",
          r"identical"],
         lambda bids, cfg: _edit_events(bids, lambda h, rows: rows[4].__setitem__(
             h.index("onset"), rows[3][h.index("onset")]))),
    Case("stim-file-escapes", "a stim_file that climbs out of stimuli/ (../)", DAG,
         [r"stim_file '\.\./README' on line 6 of events\.tsv for sub-02 task-demo_run-3 .* "
          r"leaves the stimuli folder", r"climbs out with '\.\.'"],
         _set_cell("stim_file", "../README")),
    Case("stim-file-absolute", "an absolute stim_file", DAG,
         [r"stim_file '/etc/hostname' on line 6 .* leaves the stimuli folder",
          r"an absolute path"], _set_cell("stim_file", "/etc/hostname")),
    Case("stimulus-unreadable", "a stimulus image that cannot be read", DAG,
         [r"Unreadable stimulus image .*circle_red_ori000\.png", r"Replace the file"],
         lambda bids, cfg: (bids / "stimuli" / "circle_red_ori000.png").write_text("not a png")),
    Case("stimuli-empty", "a stimuli folder without the files", DAG,
         [r"events\.tsv names stim_file '.*\.png', which is not in .*stimuli/",
          r"Add the file or drop the row"],
         lambda bids, cfg: [f.unlink() for f in (bids / "stimuli").iterdir()]),
    Case("events-missing", "a run without any events.tsv", DAG,
         [r"No events\.tsv for sub-02 task-demo_run-3", r"inheritance principle"],
         lambda bids, cfg: _events(bids).unlink()),
    Case("events-inherited", "events.tsv inherited from the subject folder (valid BIDS)", RUNS,
         [r"\tsub-01/sub-01_task-demo_run-1_events\.tsv|/sub-01/sub-01_task-demo_run-1_events"
          r"\.tsv"], _inherit_events, target="results/manifest/runs.tsv",
         rule="ingest_manifest", inspect=_runs_table),
    Case("bad-sidecar", "a sidecar that is not valid JSON", DAG,
         [r"Invalid JSON in JSON sidecar .*task-demo_bold\.json", r"python -m json\.tool"],
         lambda bids, cfg: (bids / "task-demo_bold.json").write_text('{"RepetitionTime": 2,}')),
    Case("truncated-bold", "a truncated .nii.gz (its header still loads)", DAG,
         [r"Truncated or corrupt BOLD image for sub-02 task-demo_run-1",
          r"Re-copy or re-download the file"], _truncate_bold),
    Case("injected-folder", "a subject folder named 'sub-01;touch PWNED'", DAG,
         [r"Invalid BIDS names", r"sub-01;touch PWNED", r"nothing in them was read"],
         lambda bids, cfg: _copy_subject(bids, "01;touch PWNED")),
    Case("substitution-folder", "a subject folder named 'sub-$(touch PWNED)'", DAG,
         [r"Invalid BIDS names", r"sub-\$\(touch PWNED\)"],
         lambda bids, cfg: _copy_subject(bids, "$(touch PWNED)")),
    Case("duplicate-run", "the same run twice (run-1 and run-01)", DAG,
         [r"Duplicate run for sub-01 task-demo run-1", r"run-01 equals run-1"],
         lambda bids, cfg: [shutil.copy(f, f.with_name(f.name.replace("run-1_", "run-01_")))
                            for f in (bids / "sub-01" / "func").glob("*run-1_*")]),
    Case("missing-task", "a task the dataset does not have", DAG,
         [r"Task\(s\) \['rest'\] from bids\.tasks have no BOLD run",
          r"expected tasks from \['demo'\]"], _config("bids.tasks", ["demo", "rest"])),
    Case("missing-subject", "a participant_label the dataset does not have", DAG,
         [r"Subject\(s\) \['07'\] from bids\.participant_label are not in",
          r"expected labels from \['01', '02'\]"], _config("bids.participant_label", ["07"])),
    Case("no-dataset", "bids_dir without a dataset", DAG,
         [r"No BIDS dataset at", r"make demo"],
         lambda bids, cfg: _key(cfg, "bids.bids_dir", str(bids.parent / "nope"))),
    Case("fmriprep-no-licence", "fMRIPrep run by the workflow without a FreeSurfer licence",
         DAG, [r"FreeSurfer licence for fMRIPrep \(fmri\.fmriprep\.fs_license\): expected a "
               r"file, got '.*/nope/license\.txt', which does not exist",
               r"surfer\.nmr\.mgh\.harvard\.edu/registration", r"or export FS_LICENSE"],
         lambda bids, cfg: cfg["fmri"].update(preprocessing="fmriprep", fmriprep=dict(
             cfg["fmri"]["fmriprep"], engine="podman",
             fs_license=str(bids.parent / "nope" / "license.txt")))),
    # --- in a job --------------------------------------------------------------------------
    Case("roi-outside-mask", "an ROI entirely outside the data-driven brain mask", JOB,
         [r"sub-01: ROI 'null' loses all 27 atlas voxels",
          r"outside the brain mask \(data \(EPI mask \(dark background\)\)\)",
          r"set it to 'rois' to analyse every ROI voxel"],
         _rewrite_atlas(_roi_in_background),
         target="results/sub-01/func/sub-01_desc-stimulus_responses.npz",
         rule="fmri_responses"),
    Case("corrupt-gzip", "a BOLD file corrupt inside its compressed stream", JOB,
         [r"Corrupt BOLD image for sub-01 task-demo_run-1: .*sub-01_task-demo_run-1_bold\.nii\.gz "
          r"could not be read", r"truncated or corrupt", r"Copy it again from its source"],
         _corrupt_gzip_stream,
         target="results/sub-01/func/sub-01_task-demo_run-1_desc-preproc_bold.nii.gz",
         rule="fmri_preprocess"),
    Case("fmriprep-wrong-space", "fMRIPrep derivatives without the configured space", DAG,
         [r"lack files for 8 of 8 runs",
          r"sub-01 task-demo_run-1: no preprocessed BOLD in space 'MNI152NLin2009cAsym'",
          r"Available spaces for this run: \['T1w'\]", r"Set fmri\.fmriprep\.space",
          r"--output-spaces MNI152NLin2009cAsym"],
         _fmriprep_tree("T1w")),
    Case("fmriprep-missing-file", "fMRIPrep derivatives missing a run's confounds", DAG,
         [r"lack files for 1 of 8 runs", r"sub-02 task-demo_run-3: no confounds file",
          r"expected exactly one sub-02_task-demo_run-3_desc-confounds_timeseries\.tsv",
          r"Rerun fMRIPrep for this run"],
         _fmriprep_tree("MNI152NLin2009cAsym", drop="sub-02_task-demo_run-3_desc-confounds_"
                        "timeseries.tsv")),
    Case("fmriprep-no-description", "an fMRIPrep folder without dataset_description.json",
         DAG, [r"No dataset_description\.json in the fMRIPrep derivatives folder",
               r"fmri\.fmriprep\.derivatives"],
         _fmriprep_tree("MNI152NLin2009cAsym", drop="dataset_description.json")),
    Case("nan-voxels", "NaN/inf voxels in a run", WARNS,
         [r"sub-01 task-demo_run-2: 4 voxels have NaN or inf values and are dropped"],
         _nan_voxels,
         target="results/sub-01/func/sub-01_desc-stimulus_responses.npz",
         rule="fmri_preprocess",
         extra=["early\t120\t117\t3\ttask-demo_run-2\ttask-demo_run-2: 3 with NaN/inf values"],
         inspect=lambda work: (work / "results" / "sub-01" / "func" /
                               "sub-01_desc-roivoxels_table.tsv").read_text()),
]


def _tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def study(tmp_path, demo_root):
    bids = tmp_path / "bids"
    shutil.copytree(demo_root / "bids", bids)
    return bids


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case: Case, study: Path, tmp_path: Path):
    cfg_path = make_config(tmp_path, study)
    cfg = yaml.safe_load(cfg_path.read_text())
    case.breaks(study, cfg)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = _tree_hash(study) if study.is_dir() else {}
    work = tmp_path / "work"
    work.mkdir()
    if case.where == DAG:
        res = run_snakemake(work, cfg_path, "--cores", "1")
        out = res.stdout + res.stderr
        assert res.returncode != 0, out[-3000:]
        assert not (work / "results").exists(), "a job ran: the case was not caught at DAG time"
    else:
        dry = run_snakemake(work, cfg_path, "-n", case.target)
        assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
        res = run_snakemake(work, cfg_path, "--cores", "2", case.target)
        log_dir = work / "results" / "logs" / case.rule
        logs = "\n".join(p.read_text() for p in sorted(log_dir.glob("*.log")))
        out = res.stdout + res.stderr + logs
        if case.where == JOB:
            assert res.returncode != 0, out[-3000:]
            assert f"Error in rule {case.rule}" in res.stdout + res.stderr
            assert not (work / case.target).exists()
        else:
            assert res.returncode == 0, out[-3000:]
            assert (work / case.target).exists()
    if case.inspect is not None:
        out += case.inspect(work)
    for pattern in case.expect + case.extra:
        assert re.search(pattern, out, re.DOTALL), f"{pattern!r} not in:\n{out[-4000:]}"
    assert _tree_hash(study) == before, "the input folder changed"
    assert not list(tmp_path.rglob("PWNED")), "a command in a file name was executed"


def test_readme_lists_every_case():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Bad input"):]
    missing = [c.id for c in CASES if f"`{c.id}`" not in table]
    assert not missing, f"README's bad-input table lacks {missing}"
    assert len(CASES) >= 25


def test_gzip_corruption_case_keeps_header_and_trailer(tmp_path, demo_root):
    """The corrupt-gzip case really is one that no cheap check can see."""
    bids = tmp_path / "bids"
    shutil.copytree(demo_root / "bids", bids)
    path = bids / "sub-01" / "func" / "sub-01_task-demo_run-1_bold.nii.gz"
    good = path.read_bytes()
    _corrupt_gzip_stream(bids, {})
    bad = path.read_bytes()
    assert len(bad) == len(good) and bad[-4:] == good[-4:]  # same size and ISIZE trailer
    assert nib.load(path).shape == nib.load(demo_root / "bids" / path.relative_to(bids)).shape
    with pytest.raises(Exception):  # noqa: B017 - zlib or gzip error, depending on the bytes
        gzip.decompress(bad)
    json.dumps(str(path))  # path stays printable
