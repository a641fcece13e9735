"""EEG/MEG ingestion: recordings found in BIDS datasets written by mne-bids, and every check.

Each test writes a tiny BIDS dataset with ``mne_bids.write_raw_bids`` (a few channels, 2-5 s of
noise; BrainVision, EDF, BDF, EEGLAB, or FIF for MEG), adds events.tsv with ``stim_file`` and
8x8 PNG stimuli, and checks :func:`index_dataset` against what was written (sampling rate,
samples, paths) or the error it must raise.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import mne
import mne_bids
import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from brainalign.errors import BIDSInputError, ConfigError
from brainalign.ingest.bids import index_dataset
from brainalign.meeg.bids import channel_names, channels_tsv, read_header

CHANNELS = ["Fz", "Cz", "Pz", "Oz", "O1", "O2"]
STIMULI = [f"img_{i:02d}.png" for i in range(6)]
MEAS_DATE = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def _raw(datatype="eeg", sfreq=250.0, duration=3.0, seed=0) -> mne.io.RawArray:
    rng = np.random.default_rng(seed)
    n = int(round(sfreq * duration))
    if datatype == "meg":
        info = mne.create_info([f"MEG{i:04d}" for i in range(4)], sfreq, "mag")
        data = rng.normal(0, 1e-12, (4, n))
    else:
        info = mne.create_info(CHANNELS, sfreq, "eeg")
        data = rng.normal(0, 1e-5, (len(CHANNELS), n))
    raw = mne.io.RawArray(data, info, verbose="error")
    if datatype == "eeg":
        # colin27_1020 is MNE 1.13's name of standard_1020 (the old name is deprecated)
        raw.set_montage("colin27_1020")
    raw.set_meas_date(MEAS_DATE)
    raw.info["line_freq"] = 50.0
    return raw


def _events(rows) -> str:
    lines = ["onset\tduration\ttrial_type\tstim_file"]
    lines += [f"{o}\t{d}\t{t}\t{s}" for o, d, t, s in rows]
    return "\n".join(lines) + "\n"


ALL_ROWS = [(0.2 + 0.4 * i, 0.2, "stim", s) for i, s in enumerate(STIMULI)]
DEFAULT_ROWS = [(0.5, 0.2, "stim", STIMULI[0]), (1.0, 0.2, "stim", STIMULI[1]),
                (1.5, "n/a", "response", "n/a"), (2.0, 0.2, "stim", STIMULI[2])]


def write_meeg(bids: Path, sub: str, *, fmt="BrainVision", datatype="eeg", task="demo",
               run=None, sfreq=250.0, duration=3.0, rows=DEFAULT_ROWS) -> Path:
    """Write one recording with mne-bids and its events.tsv; return the recording's path."""
    bids.mkdir(parents=True, exist_ok=True)
    (bids / "stimuli").mkdir(exist_ok=True)
    for i, name in enumerate(STIMULI):
        if not (bids / "stimuli" / name).exists():
            Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(bids / "stimuli" / name)
    bp = mne_bids.BIDSPath(subject=sub, task=task, run=run, datatype=datatype, root=bids)
    bp = mne_bids.write_raw_bids(_raw(datatype, sfreq, duration), bp, format=fmt,
                                 allow_preload=True, overwrite=True, verbose="error")
    events = bp.copy().update(suffix="events", extension=".tsv")
    Path(events.fpath).write_text(_events(rows))
    return Path(bp.fpath)


def _fmri(bids: Path, sub: str, task="demo", stim=STIMULI[3:6]) -> None:
    """A BOLD run (3x3x3 voxels, 20 volumes of 2 s) with its events.tsv."""
    func = bids / f"sub-{sub}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    (bids / f"task-{task}_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    img = nib.Nifti1Image(np.random.default_rng(0).normal(100, 1, (3, 3, 3, 20)).astype(
        np.float32), np.eye(4))
    img.header.set_zooms((1.0, 1.0, 1.0, 2.0))
    nib.save(img, func / f"sub-{sub}_task-{task}_bold.nii.gz")
    rows = [f"{2 + 8 * i}\t1.0\tshape\t{s}" for i, s in enumerate(stim)]
    (func / f"sub-{sub}_task-{task}_events.tsv").write_text(
        "\n".join(["onset\tduration\ttrial_type\tstim_file", *rows]) + "\n")


def _index(bids: Path, **kw):
    return index_dataset(bids, tasks=kw.pop("tasks", ["demo"]), **kw)


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "datatype", "ext", "sfreq"),
    [("BrainVision", "eeg", ".vhdr", 250.0), ("EDF", "eeg", ".edf", 256.0),
     ("BDF", "eeg", ".bdf", 200.0), ("EEGLAB", "eeg", ".set", 500.0),
     ("FIF", "meg", ".fif", 300.0)],
)
def test_every_format_is_indexed_with_header_values(tmp_path, fmt, datatype, ext, sfreq):
    bids = tmp_path / "bids"
    # whole seconds: EDF/BDF pad a recording to whole 1-s data records
    raw_path = write_meeg(bids, "01", fmt=fmt, datatype=datatype, sfreq=sfreq, duration=3.0)
    index = _index(bids)
    assert index.runs == []
    [r] = index.meeg_runs
    assert (r.subject, r.task, r.run, r.datatype, r.session) == ("01", "demo", "1", datatype, None)
    assert Path(r.raw) == raw_path.resolve() and r.raw.endswith(f"_{datatype}{ext}")
    assert Path(r.events).name == f"sub-01_task-demo_{'events'}.tsv"
    # independent reference: the file read back by mne-bids with its data
    ref = mne_bids.read_raw_bids(mne_bids.get_bids_path_from_fname(r.raw), verbose="error")
    assert r.sfreq == ref.info["sfreq"] == sfreq
    assert r.n_times == ref.n_times == int(round(sfreq * 3.0))
    assert index.stimuli == STIMULI[:3]
    assert index.meeg_subjects == ["01"] and index.subjects == []


@pytest.mark.parametrize("fmt", ["BrainVision", "EDF", "EEGLAB"])
def test_bad_channel_and_montage_come_back_through_read_raw_bids(tmp_path, fmt):
    """What the preprocessing step relies on: channels.tsv bads and electrodes.tsv positions."""
    bids = tmp_path / "bids"
    raw_path = write_meeg(bids, "01", fmt=fmt)
    [r] = _index(bids).meeg_runs
    tsv = channels_tsv(r.raw)
    assert tsv is not None and tsv.name == "sub-01_task-demo_channels.tsv"
    lines = tsv.read_text().splitlines()
    col = lines[0].split("\t").index("status")
    for i, line in enumerate(lines[1:], start=1):
        fields = line.split("\t")
        if fields[0] == "Pz":
            fields[col] = "bad"
            lines[i] = "\t".join(fields)
    tsv.write_text("\n".join(lines) + "\n")
    assert channel_names(r.raw) == CHANNELS
    raw = mne_bids.read_raw_bids(mne_bids.get_bids_path_from_fname(raw_path), verbose="error")
    assert raw.info["bads"] == ["Pz"]
    pos = raw.get_montage().get_positions()["ch_pos"]
    want = mne.channels.make_standard_montage("colin27_1020").get_positions()["ch_pos"]
    assert set(pos) == set(CHANNELS)
    # electrodes.tsv holds positions rounded and in the CapTrak frame: compare the geometry
    # (pairwise distances, frame-independent) with the montage that was written
    got = np.array([pos[c] for c in CHANNELS])
    ref = np.array([want[c] for c in CHANNELS])
    dist = np.linalg.norm(got[:, None] - got[None], axis=-1)
    dist_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    np.testing.assert_allclose(dist, dist_ref, atol=2e-3)
    assert dist[np.triu_indices(6, 1)].min() > 0.01


def test_runs_sessions_and_selection(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01", run=1)
    write_meeg(bids, "01", run=2, fmt="EDF")
    write_meeg(bids, "02", run=1, task="other")
    with pytest.raises(BIDSInputError, match=r"sub-02 has no EEG recording .*'demo'"):
        _index(bids)
    index = _index(bids, participant_label=["01"])
    assert [(r.subject, r.task, r.run) for r in index.meeg_runs] == [("01", "demo", "1"),
                                                                    ("01", "demo", "2")]
    with pytest.raises(BIDSInputError, match=r"Task\(s\) \['demo'\] from bids.tasks have no EEG "
                       r"recording .*expected tasks from \['demo', 'other'\]"):
        _index(bids, participant_label=["02"])
    index = _index(bids, tasks=["demo", "other"])
    assert [r.key for r in index.meeg_runs] == ["task-demo_run-1", "task-demo_run-2",
                                                "task-other_run-1"]


def test_sessions_are_selected(tmp_path):
    bids = tmp_path / "bids"
    for ses, run in (("a", 1), ("b", 2)):
        bp = mne_bids.BIDSPath(subject="01", session=ses, task="demo", run=run, datatype="eeg",
                               root=bids)
        bids.mkdir(parents=True, exist_ok=True)
        bp = mne_bids.write_raw_bids(_raw(), bp, format="BrainVision", allow_preload=True,
                                     overwrite=True, verbose="error")
        Path(bp.copy().update(suffix="events", extension=".tsv").fpath).write_text(
            _events(DEFAULT_ROWS))
    write_meeg(bids, "02")  # adds the stimuli too
    index = _index(bids, participant_label=["01"])
    assert [(r.session, r.run) for r in index.meeg_runs] == [("a", "1"), ("b", "2")]
    assert "/ses-a/eeg/" in index.meeg_runs[0].events
    assert [r.session for r in _index(bids, participant_label=["01"], sessions=["b"]).meeg_runs
            ] == ["b"]


# --- modalities -------------------------------------------------------------------------------


def test_mixed_fmri_and_eeg_both_found_and_stimuli_union(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01")
    write_meeg(bids, "02", fmt="EEGLAB")
    _fmri(bids, "01")
    index = _index(bids)
    assert [(r.subject, r.key) for r in index.runs] == [("01", "task-demo_run-1")]
    assert [(r.subject, r.datatype) for r in index.meeg_runs] == [("01", "eeg"), ("02", "eeg")]
    # fMRI events name stimuli 3-5, EEG events 0-2
    assert index.stimuli == sorted(STIMULI)
    # the func/ events.tsv is not taken for the EEG recording, nor the other way round
    assert "/eeg/" in index.meeg_runs[0].events and "/func/" in index.runs[0].events
    # an explicit list keeps only those modalities
    only_eeg = _index(bids, modalities=["eeg"])
    assert only_eeg.runs == [] and len(only_eeg.meeg_runs) == 2
    assert only_eeg.stimuli == STIMULI[:3]
    only_fmri = _index(bids, modalities=["fmri"], participant_label=["01"])
    assert only_fmri.meeg_runs == [] and only_fmri.stimuli == STIMULI[3:6]
    # sub-02 has no BOLD run: with fmri only, the fMRI branch's own message
    with pytest.raises(BIDSInputError, match=r"sub-02 has no BOLD run for task\(s\)"):
        _index(bids, modalities=["fmri"])
    table = index.meeg_runs_table()
    assert list(table["datatype"]) == ["eeg", "eeg"] and list(table["n_times"]) == [750, 750]


def test_eeg_only_dataset_with_modalities_fmri_is_an_error(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01")
    with pytest.raises(BIDSInputError, match=r"bids.modalities lists 'fmri'.*found: \['eeg'\]"):
        _index(bids, modalities=["fmri"])
    with pytest.raises(BIDSInputError, match=r"bids.modalities lists 'meg'"):
        _index(bids, modalities=["eeg", "meg"])
    with pytest.raises(BIDSInputError, match=r"Invalid bids.modalities"):
        _index(bids, modalities=["pet"])


def test_eeg_and_meg_of_one_subject(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01")
    write_meeg(bids, "01", fmt="FIF", datatype="meg")
    index = _index(bids)
    assert [r.datatype for r in index.meeg_runs] == ["eeg", "meg"]
    assert [r.datatype for r in _index(bids, modalities=["meg"]).meeg_runs] == ["meg"]


def test_subject_without_any_modality_is_an_error(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01")
    (bids / "sub-02" / "anat").mkdir(parents=True)
    with pytest.raises(BIDSInputError, match=r"sub-02 has no EEG recording for task"):
        _index(bids)
    _fmri(bids, "01")
    with pytest.raises(BIDSInputError, match=r"sub-02 has no BOLD run and no EEG recording"):
        _index(bids)
    with pytest.raises(BIDSInputError, match=r"sub-02 has no BOLD run and no EEG recording"):
        _index(bids, modalities=["fmri", "eeg"])
    with pytest.raises(BIDSInputError, match=r"sub-02 has no BOLD run for task"):
        _index(bids, modalities=["fmri"])
    with pytest.raises(BIDSInputError,
                       match=r"Task\(s\) \['nope'\] .* no BOLD run or EEG recording"):
        _index(bids, tasks=["demo", "nope"], participant_label=["01"])


# --- errors -----------------------------------------------------------------------------------


def test_missing_stimulus_file(tmp_path):
    bids = tmp_path / "bids"
    rows = [*DEFAULT_ROWS, (2.5, 0.2, "stim", "missing.png")]
    write_meeg(bids, "01", rows=rows)
    with pytest.raises(BIDSInputError, match=r"sub-01 eeg task-demo_run-1: events.tsv names "
                       r"stim_file 'missing.png', which is not in"):
        _index(bids)


def test_stimulus_outside_stimuli_folder(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01", rows=[(0.5, 0.2, "stim", "../dataset_description.json")])
    with pytest.raises(BIDSInputError, match=r"leaves the stimuli folder"):
        _index(bids)


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [((2.9, 0.2, "stim", STIMULI[3]), 6, r"onset 2.9 s \+ duration 0.2 s = 3.1 s"),
     ((3.5, 0, "stim", STIMULI[3]), 6, r"got onset 3.5 s\."),
     ((4.0, "n/a", "response", "n/a"), 6, r"got onset 4 s\."),
     ((-0.5, 0.1, "stim", STIMULI[3]), 6, r"got onset -0.5 s")],
)
def test_event_outside_the_recording_names_the_line(tmp_path, row, line, message):
    bids = tmp_path / "bids"
    write_meeg(bids, "01", rows=[*DEFAULT_ROWS, row], duration=3.0, sfreq=250.0)
    with pytest.raises(BIDSInputError, match=rf"Event outside the recording on line {line} .*"
                       rf"750 samples / 250 Hz = 3.000 s .*{message}"):
        _index(bids)


def test_event_ending_exactly_at_the_end_is_fine(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01", rows=[*DEFAULT_ROWS, (2.8, 0.2, "stim", STIMULI[3])])
    assert _index(bids).stimuli == STIMULI[:4]


def test_bad_timings(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01", rows=[(0.5, 0.2, "stim", STIMULI[0]), (1.0, -1, "stim", STIMULI[1])])
    with pytest.raises(BIDSInputError, match=r"Negative duration on line 3"):
        _index(bids)
    write_meeg(bids, "01", rows=[(0.5, 0.2, "stim", STIMULI[0]), ("n/a", 0.2, "stim", STIMULI[1])])
    with pytest.raises(BIDSInputError, match=r"Invalid onset on line 3"):
        _index(bids)
    write_meeg(bids, "01", rows=[(0.5, 0.2, "stim", STIMULI[0]), (0.5, 0.2, "stim", STIMULI[1])])
    with pytest.raises(BIDSInputError, match=r"Duplicate onset on lines 2 and 3"):
        _index(bids)
    # a stimulus event needs a duration; a non-stimulus one may have n/a
    write_meeg(bids, "01", rows=[(0.5, "n/a", "stim", STIMULI[0])])
    with pytest.raises(BIDSInputError, match=r"Invalid duration on line 2"):
        _index(bids)


def test_recording_without_stimulus_events(tmp_path):
    bids = tmp_path / "bids"
    write_meeg(bids, "01", rows=[(0.5, "n/a", "response", "n/a"), (1.0, 0, "trigger", "n/a")])
    with pytest.raises(BIDSInputError, match=r"No stimulus event in events.tsv for sub-01 eeg "
                       r"task-demo_run-1 .*got 2 row\(s\) with stim_file n/a"):
        _index(bids)


def test_stim_column_from_config(tmp_path):
    bids = tmp_path / "bids"
    raw = write_meeg(bids, "01")
    events = raw.with_name("sub-01_task-demo_events.tsv")
    events.write_text(events.read_text().replace("stim_file", "image"))
    with pytest.raises(BIDSInputError,
                       match=r"lacks column\(s\) \['stim_file'\].*meeg.stim_column"):
        _index(bids)
    assert _index(bids, stim_column="image").stimuli == STIMULI[:3]


def test_sidecar_sampling_frequency_mismatch_names_both_files(tmp_path):
    bids = tmp_path / "bids"
    raw = write_meeg(bids, "01", fmt="EDF", sfreq=256.0)
    sidecar = raw.with_name("sub-01_task-demo_eeg.json")
    meta = json.loads(sidecar.read_text())
    meta["SamplingFrequency"] = 512
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(BIDSInputError) as err:
        _index(bids)
    msg = str(err.value)
    assert "SamplingFrequency 512 Hz" in msg and "256 Hz" in msg
    assert str(sidecar.resolve()) in msg and str(raw.resolve()) in msg
    del meta["SamplingFrequency"]
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(BIDSInputError, match=r"no SamplingFrequency in the JSON sidecar"):
        _index(bids)


def test_unreadable_header(tmp_path):
    bids = tmp_path / "bids"
    raw = write_meeg(bids, "01", fmt="BrainVision")
    raw.with_suffix(".eeg").unlink()  # the data file the header names
    with pytest.raises(BIDSInputError, match=r"Unreadable BrainVision recording for sub-01 eeg"):
        _index(bids)


def test_truncated_edf(tmp_path):
    bids = tmp_path / "bids"
    raw = write_meeg(bids, "01", fmt="EDF")
    size = raw.stat().st_size
    with open(raw, "r+b") as fh:
        fh.truncate(size - 100)
    with pytest.raises(BIDSInputError, match=rf"Truncated EDF recording for sub-01 eeg .*got "
                       rf"{size - 100}\. Copy the file again"):
        _index(bids)


def test_missing_events_tsv(tmp_path):
    bids = tmp_path / "bids"
    raw = write_meeg(bids, "01")
    raw.with_name("sub-01_task-demo_events.tsv").unlink()
    with pytest.raises(BIDSInputError, match=r"No events.tsv for sub-01 eeg task-demo_run-1 .*"
                       r"expected sub-01_task-demo_events.tsv next to it"):
        _index(bids)
    # inheritance: one events.tsv at the dataset root applies to every recording of the task
    (bids / "task-demo_events.tsv").write_text(_events(DEFAULT_ROWS))
    [r] = _index(bids).meeg_runs
    assert Path(r.events) == (bids / "task-demo_events.tsv").resolve()


def test_two_formats_for_one_run_is_an_error(tmp_path):
    bids = tmp_path / "bids"
    raw = write_meeg(bids, "01", fmt="EDF")
    other = write_meeg(tmp_path / "other", "01", fmt="BDF")
    other.rename(raw.with_suffix(".bdf"))
    with pytest.raises(BIDSInputError, match=r"Duplicate eeg recording for sub-01 task-demo run-1"):
        _index(bids)


def test_fifty_recordings_index_quickly_and_completely(tmp_path):
    """A 50-recording dataset: every recording found (the time is printed, not asserted)."""
    import time

    bids = tmp_path / "bids"
    first = write_meeg(bids, "01", fmt="BrainVision")
    files = sorted(first.parent.iterdir())
    for i in range(2, 51):
        sub = f"{i:02d}"
        folder = bids / f"sub-{sub}" / "eeg"
        folder.mkdir(parents=True)
        for f in files:
            if f.name.startswith("sub-01_task"):
                text = f.read_bytes()
                if f.suffix in (".vhdr", ".vmrk"):
                    text = text.replace(b"sub-01", f"sub-{sub}".encode())
                (folder / f.name.replace("sub-01", f"sub-{sub}")).write_bytes(text)
    start = time.perf_counter()
    index = _index(bids)
    print(f"indexed {len(index.meeg_runs)} recordings in {time.perf_counter() - start:.2f} s")
    assert [r.subject for r in index.meeg_runs] == [f"{i:02d}" for i in range(1, 51)]
    assert {(r.sfreq, r.n_times) for r in index.meeg_runs} == {(250.0, 750)}


@pytest.mark.parametrize(("fmt", "reader"), [("BrainVision", mne.io.read_raw_brainvision),
                                             ("EDF", mne.io.read_raw_edf),
                                             ("BDF", mne.io.read_raw_bdf)])
def test_parsed_headers_match_mne_with_many_annotations(tmp_path, fmt, reader):
    """The BrainVision and EDF/BDF headers parsed without MNE give MNE's values."""
    raw = _raw("eeg", 512.0, 64.0, seed=3)
    raw.set_annotations(mne.Annotations(np.arange(100) * 0.6 + 0.3, 0.1, ["stim"] * 100))
    bp = mne_bids.BIDSPath(subject="01", task="demo", datatype="eeg", root=tmp_path / "bids")
    bp = mne_bids.write_raw_bids(raw, bp, format=fmt, allow_preload=True, verbose="error")
    ref = reader(bp.fpath, preload=False, verbose="error")
    assert read_header(bp.fpath, where="x") == (ref.info["sfreq"], ref.n_times, ref.ch_names)
    assert (ref.info["sfreq"], ref.n_times, ref.ch_names) == (512.0, 512 * 64, CHANNELS)
    assert len(ref.annotations) >= 100  # the markers MNE parses and the fast path skips


def test_read_header_matches_mne(tmp_path):
    raw_path = write_meeg(tmp_path / "bids", "01", fmt="EEGLAB", sfreq=128.0, duration=2.0)
    sfreq, n_times, names = read_header(raw_path, where="x")
    ref = mne.io.read_raw_eeglab(raw_path, preload=True, verbose="error")
    assert (sfreq, n_times, names) == (ref.info["sfreq"], ref.get_data().shape[1], CHANNELS)


# --- configuration cross-checks -----------------------------------------------------------------


def _config(bids: Path, **meeg) -> dict:
    """The repository's config with fmri null and the meeg section updated, validated."""
    import yaml

    from brainalign.config import validate_config

    cfg = yaml.safe_load((Path(__file__).parents[2] / "config" / "config.yaml").read_text())
    cfg["bids"]["bids_dir"] = str(bids)
    cfg["fmri"] = None
    cfg["meeg"] = {**(cfg.get("meeg") or {}), **meeg}
    cfg.setdefault("encoding", {})["ridge"] = {**cfg.get("encoding", {}).get("ridge", {}),
                                               "n_folds": 2, "n_inner_folds": 2}
    return validate_config(cfg, base_dir=str(bids.parent))


def test_check_dataset_against_config_meeg(tmp_path):
    from brainalign.workflow import check_dataset_against_config

    bids = tmp_path / "bids"
    write_meeg(bids, "01", rows=ALL_ROWS)
    index = _index(bids)
    cfg = _config(bids, rois={"occipital": ["O1", "O2", "Oz"]})
    check_dataset_against_config(index, cfg)  # fmri: null, no BOLD runs: no ROI checks
    cfg["meeg"]["rois"] = {"occipital": ["O1", "Oz", "P9"]}
    with pytest.raises(ConfigError, match=r"meeg.rois.*'P9'.*sub-01 eeg task-demo_run-1"):
        check_dataset_against_config(index, cfg)
    cfg["meeg"]["rois"] = {"occipital": ["o1"]}
    with pytest.raises(ConfigError, match=r"did you mean 'O1'"):
        check_dataset_against_config(index, cfg)
    cfg["meeg"]["rois"] = None
    cfg["meeg"]["epochs_tmin"], cfg["meeg"]["epochs_tmax"] = 0.5, 0.2
    with pytest.raises(ConfigError, match=r"meeg.epochs_tmin.*0.5.*epochs_tmax.*0.2"):
        check_dataset_against_config(index, cfg)


def test_bold_runs_with_fmri_null_is_an_error(tmp_path):
    from brainalign.workflow import check_dataset_against_config

    bids = tmp_path / "bids"
    write_meeg(bids, "01", rows=ALL_ROWS)
    _fmri(bids, "01")
    cfg = _config(bids)
    with pytest.raises(ConfigError, match=r"'fmri' is null, but the dataset has 1 selected BOLD"):
        check_dataset_against_config(_index(bids), cfg)
    check_dataset_against_config(_index(bids, modalities=["eeg"]), cfg)


# --- manifest and workflow ----------------------------------------------------------------------


def test_runs_manifest_lists_bold_runs_and_recordings(tmp_path):
    from brainalign.ingest.steps import step_ingest
    from brainalign.io import read_tsv

    bids = tmp_path / "bids"
    write_meeg(bids, "01")
    write_meeg(bids, "01", fmt="FIF", datatype="meg", sfreq=200.0, duration=2.5)
    _fmri(bids, "01")
    index = _index(bids)
    runs_out, stim_out = tmp_path / "runs.tsv", tmp_path / "stimuli.tsv"
    step_ingest(index, runs_out=str(runs_out), stimuli_out=str(stim_out))
    header = runs_out.read_text().splitlines()[0].split("\t")
    assert header == ["subject", "session", "task", "run", "bold", "events", "t_r_s", "n_volumes",
                      "shape", "datatype", "raw", "sfreq", "n_times"]
    runs = read_tsv(runs_out)
    assert runs["datatype"].tolist() == ["func", "eeg", "meg"]
    assert runs["n_volumes"].tolist()[0] == 20 and runs["n_times"].tolist()[1:] == [750, 500]
    assert "\t20\t" in runs_out.read_text().splitlines()[1]  # not 20.0
    assert runs["raw"].tolist()[1:] == [r.raw for r in index.meeg_runs]
    assert read_tsv(stim_out)["stim_file"].tolist() == sorted(STIMULI)


def test_workflow_dag_of_an_eeg_only_dataset(tmp_path):
    """``snakemake -n`` on an EEG-only dataset with ``fmri: null``: M/EEG jobs, no fMRI job."""
    from tests.conftest import job_counts, make_config, run_snakemake

    bids = tmp_path / "bids"
    for sub in ("01", "02"):
        write_meeg(bids, sub, rows=ALL_ROWS)
    write_meeg(bids, "02", run=2, fmt="EDF", rows=ALL_ROWS)
    cfg = make_config(tmp_path, bids, fmri=None,
                      **{"encoding.ridge.n_folds": 2, "encoding.ridge.n_inner_folds": 2})
    res = run_snakemake(tmp_path, cfg, "-n", "--cores", "1", timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts["meeg_preprocess"] == 3  # one per recording
    assert counts["meeg_responses"] == 2 and counts["ingest_manifest"] == 1
    fmri_rules = {"fmri_preprocess", "fmri_glm", "fmri_responses", "encoding_fit",
                  "encoding_summarize", "rsa_roi_rdms", "rsa_compare", "meeg_fusion"}
    assert not fmri_rules & set(counts), counts
    assert not any(r.startswith(("fmri", "encoding_")) for r in counts), counts
    # the planned jobs read the recordings mne-bids wrote
    assert "sub-02_task-demo_run-2_eeg.edf" in res.stdout


# --- real BIDS layouts (bids-examples: real headers, sidecars and events; empty data files) ------

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "bids_examples_subset"


def _example(name: str, tmp_path: Path) -> Path:
    import shutil

    src = EXAMPLES / name
    if not src.is_dir():
        pytest.skip(f"{src} absent (shared data: bids-examples subset)")
    dst = tmp_path / name
    shutil.copytree(src, dst, copy_function=shutil.copyfile)  # writable copy
    return dst


def test_real_brainvision_layout_matchingpennies(tmp_path):
    """bids-examples eeg_matchingpennies: 7 subjects, real .vhdr/.vmrk headers, the sampling
    rate only in the root task-matchingpennies_eeg.json (inheritance), real events.tsv with
    stim_file and real stimulus pictures. Its .eeg data files are empty."""
    import csv

    bids = _example("eeg_matchingpennies", tmp_path)
    with pytest.raises(BIDSInputError, match=r"Empty recording for sub-05 eeg .*got 0"):
        _index(bids, tasks=["matchingpennies"])
    # give each data file its size (sparse: nothing written): 10 float32 channels, 1860 s
    n_times = 5000 * 1860
    for eeg in bids.glob("sub-*/eeg/*_eeg.eeg"):
        with open(eeg, "r+b") as fh:
            fh.truncate(10 * 4 * n_times)
    index = _index(bids, tasks=["matchingpennies"])
    assert [r.subject for r in index.meeg_runs] == ["05", "06", "07", "08", "09", "10", "11"]
    # reference: MNE's own BrainVision reader on the same headers
    for r in index.meeg_runs[:2]:
        ref = mne.io.read_raw_brainvision(r.raw, preload=False, verbose="error")
        assert (r.sfreq, r.n_times) == (ref.info["sfreq"], ref.n_times) == (5000.0, n_times)
        assert read_header(r.raw, where="x")[2] == ref.ch_names
        assert channel_names(r.raw) == ref.ch_names  # channels.tsv agrees with the header
    shown = set()
    for events in bids.glob("sub-*/eeg/*_events.tsv"):
        with open(events, newline="") as fh:
            shown |= {row["stim_file"] for row in csv.DictReader(fh, delimiter="\t")}
    assert index.stimuli == sorted(shown - {"n/a"}) == ["left_hand.png", "right_hand.png"]
    # a sidecar that disagrees with the header: both named
    side = bids / "task-matchingpennies_eeg.json"
    side.write_text(side.read_text().replace('"SamplingFrequency": 5000',
                                             '"SamplingFrequency": 500'))
    with pytest.raises(BIDSInputError, match=r"SamplingFrequency 500 Hz in the sidecar "
                       r".*task-matchingpennies_eeg.json disagrees with the 5000 Hz"):
        _index(bids, tasks=["matchingpennies"])


def test_real_ctf_meg_layout_is_named_as_unsupported(tmp_path):
    """bids-examples ds000246: CTF MEG (.ds folders) is not read: a clear error, not silence."""
    bids = _example("ds000246", tmp_path)
    with pytest.raises(BIDSInputError, match=r"2 selected EEG/MEG recording\(s\) .* format "
                       r"brainalign does not read: "
                       r"\['sub-0001/meg/sub-0001_task-AEF_run-01_meg.ds'"):
        _index(bids, tasks=["AEF"], participant_label=["0001"])
