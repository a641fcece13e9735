"""BIDS indexing without Snakemake: the happy path and every DAG-time input check.

Each test writes a tiny BIDS layout (3x3x3 voxels, 20 volumes, 8x8 PNG stimuli), breaks one
thing, and asserts that :func:`index_dataset` names the file/subject/run and the fix, and that
the input folder is byte-identical afterwards.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from brainalign.errors import BIDSInputError
from brainalign.ingest.bids import index_dataset
from brainalign.ingest.checks import (
    check_image_readable,
    check_nifti_complete,
    gzip_isize,
    nifti_expected_bytes,
)
from brainalign.ingest.external import read_stimulus_table

TR = 2.0
N_VOL = 20
SHAPE = (3, 3, 3, N_VOL)
STIMULI = [f"img_{i:02d}.png" for i in range(8)]
HEADER = "onset\tduration\ttrial_type\tstim_file"


# --- a tiny BIDS layout -----------------------------------------------------------------------


def _bold_img(shape=SHAPE, tr=TR, seed=0) -> nib.Nifti1Image:
    data = np.random.default_rng(seed).normal(100, 1, shape).astype(np.float32)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_zooms((1.0, 1.0, 1.0, tr))
    return img


def _events_text(stim: list[str], onsets=(2.0, 10.0, 18.0, 26.0)) -> str:
    rows = [f"{o:g}\t1.0\tshape\t{s}" for o, s in zip(onsets, stim, strict=False)]
    return "\n".join([HEADER, *rows]) + "\n"


def write_bids(root: Path, *, subjects=("01", "02"), runs=("1", "2"), sessions=(None,),
               task="demo", per_run_events=True) -> Path:
    """sub-<s>/[ses-<x>/]func/sub-<s>[_ses-<x>]_task-demo_run-<r>_bold.nii.gz + events.tsv."""
    bids = root / "bids"
    (bids / "stimuli").mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "unit", "BIDSVersion": "1.10.0"}))
    (bids / f"task-{task}_bold.json").write_text(json.dumps({"RepetitionTime": TR}))
    for i, name in enumerate(STIMULI):
        Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(bids / "stimuli" / name)
    for sub in subjects:
        for ses in sessions:
            func = bids / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
            func.mkdir(parents=True, exist_ok=True)
            for k, run in enumerate(runs):
                stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + f"_task-{task}_run-{run}"
                nib.save(_bold_img(seed=k), func / f"{stem}_bold.nii.gz")
                if per_run_events:
                    stim = STIMULI[4 * (k % 2): 4 * (k % 2) + 4]
                    (func / f"{stem}_events.tsv").write_text(_events_text(stim))
    return bids


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and 'dir' for every folder) under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


@contextlib.contextmanager
def untouched(root: Path):
    """The folder is byte-identical after the block (no file added, removed or changed)."""
    before = _tree(root)
    assert before
    yield
    assert _tree(root) == before


def fails(bids: Path, match: str, **kwargs) -> str:
    """index_dataset raises BIDSInputError matching ``match``; the input is untouched."""
    kwargs.setdefault("tasks", ["demo"])
    with untouched(bids), pytest.raises(BIDSInputError, match=match) as info:
        index_dataset(bids, **kwargs)
    return str(info.value)


def func(bids: Path, sub="01") -> Path:
    return bids / f"sub-{sub}" / "func"


def events_of(bids: Path, sub="01", run="1") -> Path:
    return func(bids, sub) / f"sub-{sub}_task-demo_run-{run}_events.tsv"


@pytest.fixture
def bids(tmp_path) -> Path:
    return write_bids(tmp_path)


# --- the happy path ---------------------------------------------------------------------------


def test_index_finds_runs_stimuli_tr_and_shapes(bids):
    with untouched(bids):
        index = index_dataset(bids, tasks=["demo"])
    assert index.subjects == ["01", "02"]
    assert [(r.subject, r.task, r.run, r.session) for r in index.runs] == [
        ("01", "demo", "1", None), ("01", "demo", "2", None),
        ("02", "demo", "1", None), ("02", "demo", "2", None)]
    assert index.stimuli == STIMULI
    assert {r.t_r_s for r in index.runs} == {TR}
    assert {r.shape for r in index.runs} == {SHAPE}
    assert index.runs[1].events == str(events_of(bids, "01", "2"))
    assert index.run("02", "task-demo_run-2").bold == str(
        func(bids, "02") / "sub-02_task-demo_run-2_bold.nii.gz")
    table = index.runs_table()
    assert list(table.columns[:4]) == ["subject", "session", "task", "run"]
    assert table["session"].isna().all() and table["n_volumes"].tolist() == [N_VOL] * 4
    assert not table.duplicated(["subject", "session", "task", "run"]).any()


def test_participant_label_selects_and_run_padding_is_kept(tmp_path):
    bids = write_bids(tmp_path, runs=("01", "02", "10"))
    index = index_dataset(bids, tasks=["demo"], participant_label=["02"])
    assert [(r.subject, r.run) for r in index.runs] == [("02", "01"), ("02", "02"),
                                                       ("02", "10")]


def test_events_inherited_from_the_dataset_root(tmp_path):
    bids = write_bids(tmp_path, per_run_events=False)
    root_events = bids / "task-demo_events.tsv"
    root_events.write_text(_events_text(STIMULI[:4]))
    with untouched(bids):
        index = index_dataset(bids, tasks=["demo"])
    assert {r.events for r in index.runs} == {str(root_events)}
    assert index.stimuli == STIMULI[:4]


def test_subject_level_events_apply_and_per_run_events_win(tmp_path):
    bids = write_bids(tmp_path, per_run_events=False)
    (bids / "task-demo_events.tsv").write_text(_events_text(STIMULI[:4]))
    subject_level = func(bids, "01") / "sub-01_task-demo_events.tsv"
    subject_level.write_text(_events_text(STIMULI[4:]))
    own = events_of(bids, "01", "2")
    own.write_text(_events_text(STIMULI[2:6]))
    index = index_dataset(bids, tasks=["demo"])
    got = {(r.subject, r.run): r.events for r in index.runs}
    assert got == {("01", "1"): str(subject_level), ("01", "2"): str(own),
                   ("02", "1"): str(bids / "task-demo_events.tsv"),
                   ("02", "2"): str(bids / "task-demo_events.tsv")}


def test_events_lookup_agrees_with_pybids_get_nearest(tmp_path):
    """Oracle: pybids' own inheritance lookup gives the same file for every run.

    (``all_=True``, first match: with ``all_=False`` pybids 0.22 stops at the first folder that
    holds any events file, matching or not, and returns None for sub-03 run-1 here.)
    """
    from bids import BIDSLayout

    bids = write_bids(tmp_path, subjects=("01", "02", "03"), runs=("1", "2", "3"),
                      per_run_events=False)
    (bids / "task-demo_events.tsv").write_text(_events_text(STIMULI[:4]))
    (func(bids, "02") / "sub-02_task-demo_events.tsv").write_text(_events_text(STIMULI[4:]))
    events_of(bids, "03", "2").write_text(_events_text(STIMULI[1:5]))
    events_of(bids, "02", "3").write_text(_events_text(STIMULI[2:6]))
    index = index_dataset(bids, tasks=["demo"])
    layout = BIDSLayout(bids, validate=False)
    for r in index.runs:
        want = layout.get_nearest(r.bold, suffix="events", extension=".tsv", all_=True,
                                  ignore_strict_entities=["suffix", "extension"])
        assert r.events == want[0], r.where
    assert len({r.events for r in index.runs}) == 4


def test_sidecar_inheritance_nearest_wins(tmp_path):
    bids = write_bids(tmp_path)
    # a wrong TR at the root, overridden by each subject's task-level sidecar
    (bids / "task-demo_bold.json").write_text(json.dumps({"RepetitionTime": 5.0}))
    for sub in ("01", "02"):
        (func(bids, sub) / f"sub-{sub}_task-demo_bold.json").write_text(
            json.dumps({"RepetitionTime": TR}))
    index = index_dataset(bids, tasks=["demo"])
    assert {r.t_r_s for r in index.runs} == {TR}
    (func(bids, "02") / "sub-02_task-demo_bold.json").unlink()  # sub-02 inherits 5.0 again
    fails(bids, r"sub-02 task-demo_run-1 .*RepetitionTime 5\.0 s in the sidecar disagrees")


def test_sessions_with_distinct_run_labels_are_indexed(tmp_path):
    bids = write_bids(tmp_path, subjects=("01",), sessions=("a",), runs=("1", "2"))
    b2 = write_bids(tmp_path / "other", subjects=("01",), sessions=("b",), runs=("3", "4"))
    os.rename(b2 / "sub-01" / "ses-b", bids / "sub-01" / "ses-b")
    with untouched(bids):
        index = index_dataset(bids, tasks=["demo"])
    assert [(r.session, r.run) for r in index.runs] == [("a", "1"), ("a", "2"), ("b", "3"),
                                                       ("b", "4")]
    assert index.runs[2].where == "sub-01 ses-b task-demo_run-3"
    assert index.runs_table()["session"].tolist() == ["a", "a", "b", "b"]
    only_b = index_dataset(bids, tasks=["demo"], sessions=["b"])
    assert [r.run for r in only_b.runs] == ["3", "4"]
    # events shared by a session's runs, inherited from the session folder
    ses_b = bids / "sub-01" / "ses-b"
    for f in (ses_b / "func").glob("*_events.tsv"):
        f.unlink()
    shared = ses_b / "sub-01_ses-b_task-demo_events.tsv"
    shared.write_text(_events_text(STIMULI[:4]))
    index = index_dataset(bids, tasks=["demo"])
    assert [r.events for r in index.runs][2:] == [str(shared)] * 2
    assert index.runs[0].events.endswith("sub-01_ses-a_task-demo_run-1_events.tsv")


def test_same_run_labels_in_two_sessions_stop_with_how_to_select_one(tmp_path):
    bids = write_bids(tmp_path, subjects=("01",), sessions=("a", "b"))
    msg = fails(bids, r"Run label repeated across sessions for sub-01 task-demo_run-1: "
                      r"expected distinct run labels.*got run-1 in \['ses-a', 'ses-b'\]")
    assert "bids.sessions" in msg and "renumber the runs" in msg
    assert "sub-01_ses-a_task-demo_run-1_bold.nii.gz" in msg
    index = index_dataset(bids, tasks=["demo"], sessions=["a"])
    assert {r.session for r in index.runs} == {"a"}


# --- events -----------------------------------------------------------------------------------


def _edit_events(bids: Path, text: str, sub="01", run="1") -> Path:
    path = events_of(bids, sub, run)
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, match", [
    ("", r"Empty events\.tsv for sub-01 task-demo_run-1 \(.*_run-1_events\.tsv\): expected a "
         r"header line .*got an empty file\. Write one row per trial"),
    (HEADER + "\n", r"No events in events\.tsv for sub-01 task-demo_run-1 .*got the header "
                    r"only\. Write one row per trial"),
    (HEADER + "\n\n\n", r"No events in events\.tsv for sub-01 task-demo_run-1"),
])
def test_empty_events_are_rejected(bids, text, match):
    _edit_events(bids, text)
    fails(bids, match)


@pytest.mark.parametrize("value, column, got", [
    ("n/a", "onset", "a missing value"),
    ("nan", "onset", "'nan'"),
    ("abc", "onset", "'abc'"),
    ("inf", "duration", "'inf'"),
    ("n/a", "duration", "a missing value"),
    ("1.0s", "duration", "'1.0s'"),
])
def test_missing_or_non_numeric_timings_are_rejected(bids, value, column, got):
    lines = events_of(bids).read_text().splitlines()
    fields = lines[2].split("\t")
    fields[0 if column == "onset" else 1] = value
    lines[2] = "\t".join(fields)
    _edit_events(bids, "\n".join(lines) + "\n")
    fails(bids, rf"Invalid {column} on line 3 of events\.tsv for sub-01 task-demo_run-1 "
                rf"\(.*sub-01_task-demo_run-1_events\.tsv\): expected a finite number of "
                rf"seconds, got {re.escape(got)}\. Fix the value or drop the row")


def test_negative_duration_is_rejected(bids):
    _edit_events(bids, HEADER + "\n2\t1\tshape\timg_00.png\n10\t-2\tshape\timg_01.png\n")
    fails(bids, r"Negative duration on line 3 of events\.tsv for sub-01 task-demo_run-1 "
                r"\(.*_run-1_events\.tsv\): expected a duration >= 0 s, got -2 s.*Fix the "
                r"duration")


def test_zero_duration_is_allowed(bids):
    _edit_events(bids, HEADER + "\n2\t0\tshape\timg_00.png\n10\t0\tshape\timg_01.png\n")
    assert len(index_dataset(bids, tasks=["demo"]).runs) == 4


def test_duplicate_onsets_are_rejected(bids):
    _edit_events(bids, HEADER + "\n2\t1\tshape\timg_00.png\n10\t1\tshape\timg_01.png\n"
                                "10.0\t1\tshape\timg_02.png\n", sub="02", run="2")
    fails(bids, r"Duplicate onset on lines 3 and 4 of events\.tsv for sub-02 task-demo_run-2 "
                r"\(.*sub-02_task-demo_run-2_events\.tsv\): expected one trial per onset, got "
                r"two at 10 s.*Fix the onsets or merge the rows")


@pytest.mark.parametrize("row, n", [("2\t1\timg_00.png", 3), ("2\t1\tshape\timg_00.png\tx", 5)])
def test_rows_with_the_wrong_number_of_fields_are_rejected(bids, row, n):
    _edit_events(bids, HEADER + "\n10\t1\tshape\timg_01.png\n" + row + "\n")
    fails(bids, rf"Wrong number of fields on line 3 of events\.tsv for sub-01 task-demo_run-1 "
                rf"\(.*_run-1_events\.tsv\): expected 4 tab-separated fields .*got {n}\. Fix "
                rf"the line")


def test_missing_required_column_is_named(bids):
    _edit_events(bids, "onset\tduration\ttrial_type\n2\t1\tshape\n")
    fails(bids, r"sub-01 task-demo_run-1 \(.*_run-1_events\.tsv\): events\.tsv lacks "
                r"column\(s\) \['stim_file'\].*Add them")


@pytest.mark.parametrize("name, got", [
    ("../dataset_description.json", "a path that climbs out with '..'"),
    ("sub/../../x.png", "a path that climbs out with '..'"),
    ("/etc/hostname", "an absolute path"),
])
def test_stim_file_outside_the_stimuli_folder_is_rejected(bids, name, got):
    (bids / "stimuli" / "sub").mkdir()
    _edit_events(bids, HEADER + f"\n2\t1\tshape\t{name}\n", sub="02", run="1")
    fails(bids, rf"stim_file {re.escape(repr(name))} on line 2 of events\.tsv for sub-02 "
                rf"task-demo_run-1 \(.*sub-02_task-demo_run-1_events\.tsv\) leaves the stimuli "
                rf"folder: expected a path relative to .*stimuli/ \(BIDS\), got "
                rf"{re.escape(got)}\. Copy the file into stimuli/")


def test_stim_file_in_a_subfolder_of_stimuli_is_fine(bids):
    (bids / "stimuli" / "set1").mkdir()
    Image.new("RGB", (8, 8)).save(bids / "stimuli" / "set1" / "a.png")
    _edit_events(bids, HEADER + "\n2\t1\tshape\tset1/a.png\n")
    assert "set1/a.png" in index_dataset(bids, tasks=["demo"]).stimuli


def test_missing_stim_file_hints_at_a_stimuli_prefix(bids):
    _edit_events(bids, HEADER + "\n2\t1\tshape\tstimuli/img_00.png\n")
    fails(bids, r"sub-01 task-demo_run-1: events\.tsv names stim_file 'stimuli/img_00\.png', "
                r"which is not in .*stimuli/ .*Add the file or drop the row \(stim_file is "
                r"relative to stimuli/: drop the 'stimuli/' prefix\)")


@pytest.mark.parametrize("content, error", [
    (b"not an image\n", "UnidentifiedImageError"),
    ("truncated", "OSError"),
])
def test_unreadable_stimulus_image_is_named(bids, content, error):
    target = bids / "stimuli" / "img_03.png"
    if content == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
            target)
        content = target.read_bytes()[:-200]
    target.write_bytes(content)
    fails(bids, rf"Unreadable stimulus image .*stimuli/img_03\.png \(named in line 5 of "
                rf".*sub-01_task-demo_run-1_events\.tsv \(sub-01 task-demo_run-1\)\): expected "
                rf"an image file PIL can read .*got {error}.*Replace the file with a valid image")


def test_truncated_jpeg_is_caught_and_a_complete_one_passes(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8)
    good = tmp_path / "good.jpg"
    Image.fromarray(pixels).save(good)
    check_image_readable(good, where="test")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BIDSInputError, match=r"Unreadable stimulus image .*bad\.jpg \(named in "
                                             r"test\).*[Tt]runcated"):
        check_image_readable(bad, where="test")


def test_external_stimulus_table_names_an_unreadable_image(tmp_path):
    stim = tmp_path / "stimuli"
    stim.mkdir()
    Image.new("RGB", (8, 8)).save(stim / "a.png")
    (stim / "b.png").write_text("text, not an image\n")
    table = tmp_path / "stimuli.tsv"
    table.write_text("stim_file\na.png\nb.png\n")
    with untouched(tmp_path), pytest.raises(
            BIDSInputError, match=r"Unreadable stimulus image .*stimuli/b\.png \(named in row 2 "
                                  r"of stimulus table .*stimuli\.tsv \('external\.stimuli'\)\)"
                                  r".*Replace the file"):
        read_stimulus_table(table, stimuli_dir=stim)


def test_event_after_the_end_of_the_run_is_rejected(bids):
    _edit_events(bids, HEADER + f"\n{N_VOL * TR - 0.5}\t1\tshape\timg_00.png\n")
    fails(bids, r"sub-01 task-demo_run-1 .*an event ends at 40\.5 s but the run lasts 20 x "
                r"2\.0 s = 40\.0 s\. Fix the onsets")


def test_run_without_any_applicable_events_is_named(bids):
    events_of(bids, "02", "2").unlink()
    fails(bids, r"No events\.tsv for sub-02 task-demo_run-2 \(.*sub-02_task-demo_run-2_bold"
                r"\.nii\.gz\): expected sub-02_task-demo_run-2_events\.tsv next to it, or one "
                r"that applies to it higher up \(e\.g\. task-demo_events\.tsv at the dataset "
                r"root.*Add it or drop the run")


def test_ambiguous_inherited_events_are_rejected(tmp_path):
    bids = write_bids(tmp_path, per_run_events=False)
    (bids / "task-demo_events.tsv").write_text(_events_text(STIMULI[:4]))
    # an events file for another acquisition does not apply to these runs (BIDS subset rule)
    (bids / "task-demo_acq-x_events.tsv").write_text(_events_text(STIMULI[4:]))
    assert {r.events for r in index_dataset(bids, tasks=["demo"]).runs} == {
        str(bids / "task-demo_events.tsv")}
    # two files at the root, equally specific, both applying to sub-01 run-1
    (bids / "sub-01_task-demo_events.tsv").write_text(_events_text(STIMULI[:4]))
    (bids / "task-demo_run-1_events.tsv").write_text(_events_text(STIMULI[:4]))
    fails(bids, r"Ambiguous events\.tsv for sub-01 task-demo_run-1 .*expected one applicable "
                r"file per level .*got 2 equally specific ones.*Keep one")


# --- labels and layout ------------------------------------------------------------------------


def _copy_subject_as(bids: Path, folder: str, sub="01") -> Path:
    """A copy of sub-01's func folder under another folder name (files keep sub-01 names)."""
    target = bids / folder / "func"
    target.mkdir(parents=True)
    for f in func(bids, sub).iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


@pytest.mark.parametrize("folder", ["sub-01;touch PWNED", "sub-$(touch PWNED)",
                                    "sub-`touch PWNED`", "sub-01 ", "sub-01-x"])
def test_folder_with_an_invalid_label_is_reported_and_nothing_runs(tmp_path, monkeypatch,
                                                                    folder):
    bids = write_bids(tmp_path)
    _copy_subject_as(bids, folder)
    monkeypatch.chdir(tmp_path)
    msg = fails(bids, r"Invalid BIDS names for 2 BOLD file\(s\) in .*: expected sub-<label>/"
                      r".*got .*Rename these folders and files to valid labels, or move them "
                      r"out of the dataset")
    assert f"folder {folder!r}: sub label {folder[4:]!r} is not letters and digits only" in msg
    assert repr(folder) in msg
    # nothing was executed from the name: no file called PWNED anywhere
    assert not [p for p in tmp_path.rglob("PWNED")]
    assert not Path("PWNED").exists() and not (bids / "PWNED").exists()


def test_invalid_folder_of_another_subject_is_ignored_when_not_selected(bids):
    _copy_subject_as(bids, "sub-01;x")
    index = index_dataset(bids, tasks=["demo"], participant_label=["02"])
    assert index.subjects == ["02"] and len(index.runs) == 2
    fails(bids, r"Invalid BIDS names .*sub-01;x", participant_label=["01"])


@pytest.mark.parametrize("name, problem", [
    ("sub-01_task-demo_run-1a_bold.nii.gz", "run index '1a' is not a non-negative whole number"),
    ("sub-01_task-demo_acq-a+b_run-3_bold.nii.gz", "acq label 'a+b' is not letters and digits"),
    ("sub-02_task-demo_run-3_bold.nii.gz", "sub-02 in the file name but sub-01 in the folder"),
])
def test_file_name_with_an_invalid_label_is_reported(bids, name, problem):
    nib.save(_bold_img(), func(bids, "01") / name)
    msg = fails(bids, r"Invalid BIDS names for 1 BOLD file\(s\) .*Rename these folders and "
                      r"files")
    assert f"'sub-01/func/{name}'" in msg and problem in msg


@pytest.mark.parametrize("extra", ["sub-01_task-demo_run-01_bold.nii.gz",
                                   "sub-01_task-demo_run-1_bold.nii",
                                   "sub-01_task-demo_acq-b_run-1_bold.nii.gz"])
def test_duplicate_subject_task_run_is_reported(bids, extra):
    nib.save(_bold_img(), func(bids, "01") / extra)
    msg = fails(bids, r"Duplicate run for sub-01 task-demo run-1: expected one BOLD file per "
                      r"subject, session, task and run, got 2:.*Keep one of them")
    assert extra in msg and "sub-01_task-demo_run-1_bold.nii.gz" in msg


def test_run_without_run_entity_collides_with_run_1(tmp_path):
    bids = write_bids(tmp_path, runs=("1",))
    nib.save(_bold_img(), func(bids, "02") / "sub-02_task-demo_bold.nii.gz")
    fails(bids, r"Duplicate run for sub-02 task-demo run-1.*a file without run- counts as run-1")


# --- broken files -----------------------------------------------------------------------------


def test_truncated_bold_gz_is_caught_before_any_job(bids):
    bold = func(bids, "02") / "sub-02_task-demo_run-2_bold.nii.gz"
    bold.write_bytes(bold.read_bytes()[:-40])
    fails(bids, r"Truncated or corrupt BOLD image for sub-02 task-demo_run-2 \(.*sub-02_task-"
                r"demo_run-2_bold\.nii\.gz\): expected 2512 bytes \(a 352-byte header and "
                r"3x3x3x20 float32 voxels\) once decompressed, got .*Re-copy or re-download")


def test_truncated_bold_nii_is_caught(bids):
    bold = func(bids, "01") / "sub-01_task-demo_run-2_bold.nii.gz"
    img = nib.load(bold)
    plain = bold.with_name("sub-01_task-demo_run-2_bold.nii")
    nib.save(img, plain)
    bold.unlink()
    plain.write_bytes(plain.read_bytes()[:-100])
    fails(bids, r"Truncated BOLD image for sub-01 task-demo_run-2 \(.*_run-2_bold\.nii\): "
                r"expected 2512 bytes .*got a 2412-byte file")


def test_bold_that_is_not_nifti_is_named(bids):
    (func(bids, "01") / "sub-01_task-demo_run-1_bold.nii.gz").write_bytes(b"\x00" * 100)
    fails(bids, r"Unreadable BOLD image for sub-01 task-demo_run-1 \(.*_run-1_bold\.nii\.gz\): "
                r"expected a NIfTI file nibabel can load, got .*Replace the file")


def test_valid_multi_member_gzip_is_not_rejected(bids):
    """ISIZE of the last member disagrees with the header: the full read confirms it is fine."""
    bold = func(bids, "01") / "sub-01_task-demo_run-1_bold.nii.gz"
    raw = gzip.decompress(bold.read_bytes())
    bold.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    img = nib.load(bold)
    assert gzip_isize(bold) != nifti_expected_bytes(img)
    check_nifti_complete(bold, img, where="test")
    index = index_dataset(bids, tasks=["demo"])
    assert index.runs[0].shape == SHAPE


def test_truncated_multi_member_gzip_is_rejected(tmp_path):
    raw = _bold_img().to_bytes()
    assert len(raw) == 2512
    path = tmp_path / "x_bold.nii.gz"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:-8]))
    with pytest.raises(BIDSInputError, match=r"Truncated or corrupt image for here .*expected "
                                             r"2512 bytes.*got 2504 bytes"):
        check_nifti_complete(path, nib.load(path), where="here")


@pytest.mark.parametrize("text, match", [
    ('{"RepetitionTime": 2.0,}', r"Invalid JSON in JSON sidecar .*task-demo_bold\.json \(for "
                                 r"sub-01 task-demo_run-1\): expected valid JSON, got .* at line "
                                 r"1 column \d+\. Fix the file"),
    ("[2.0]", r"Invalid JSON in JSON sidecar .*task-demo_bold\.json .*expected a JSON object"),
    ('{"RepetitionTime": "2s"}', r"Invalid RepetitionTime for sub-01 task-demo_run-1: expected a "
                                 r"positive number of seconds, got '2s' \(from .*task-demo_bold"
                                 r"\.json\)\. Fix the sidecar"),
    ('{"RepetitionTime": 0}', r"Invalid RepetitionTime .*got 0 "),
    ("{}", r"sub-01 task-demo_run-1 .*no RepetitionTime in the JSON sidecar"),
])
def test_bad_sidecar_is_named(bids, text, match):
    (bids / "task-demo_bold.json").write_text(text)
    fails(bids, match)


def test_invalid_dataset_description_is_named(bids):
    (bids / "dataset_description.json").write_text('{"Name": "x"')
    fails(bids, r"Invalid JSON in dataset description .*dataset_description\.json: expected "
                r"valid JSON")


def test_voxel_grid_and_tr_mismatches_are_named(bids):
    nib.save(_bold_img(shape=(3, 3, 4, N_VOL)),
             func(bids, "02") / "sub-02_task-demo_run-2_bold.nii.gz")
    fails(bids, r"sub-02 task-demo_run-2 .*voxel grid \(3, 3, 4\) differs from "
                r"task-demo_run-1's \(3, 3, 3\)")


def test_missing_subject_and_task_are_named(bids):
    fails(bids, r"Subject\(s\) \['07'\] from bids.participant_label are not in .*expected "
                r"labels from \['01', '02'\]", participant_label=["07"])
    fails(bids, r"Task\(s\) \['rest'\] from bids.tasks have no BOLD run .*expected tasks "
                r"from \['demo'\]\. Fix bids.tasks", tasks=["rest"])


def test_subject_without_a_task_others_have_is_named(bids):
    for f in func(bids, "02").glob("*"):
        f.rename(f.with_name(f.name.replace("task-demo", "task-rest")))
    fails(bids, r"sub-02 has no BOLD run for task\(s\) \['demo'\] .*Check bids.tasks, or drop "
                r"the subject from bids.participant_label")
