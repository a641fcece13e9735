"""Real EEG recordings: the Muse N170 (faces vs houses) and EEGLAB tutorial datasets.

Each dataset is converted to BIDS by its script in ``examples/`` and checked by the BIDS
validator; then the M/EEG steps of the pipeline (``step_meeg_preprocess`` per run,
``step_meeg_responses`` per subject) run on it with the example configs'  ``meeg`` settings, and
the tests assert what the data show, measured by an independent analysis with plain MNE on the
source files (the CSVs through ``mne.io.RawArray``; the ``.set`` through ``read_raw_eeglab``).

Muse N170 (4 subjects, 12 recordings, 2,350 trials; 1-30 Hz, 60 Hz notch, Fpz reference,
-0.1..0.6 s epochs, 100 uV rejection): faces are more negative than houses at TP9/TP10 between
190 and 240 ms (the N170, ~40 ms later than in lab EEG: the Muse/LSL/display chain delays it),
independent analysis measured 2026-12-02: 2,172 epochs kept, Welch t (face - house, window
mean) -4.10 at TP9 and -4.24 at TP10, difference -1.5 uV; peak |t| 4.7 at 219 ms (TP9) and 5.2
at 211 ms (TP10); the frontal AF7/AF8 show no such effect (|t| < 2.5).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, SHARED_DATA

MUSE = SHARED_DATA / "muse_n170_face_house_eeg"
EEGLAB = SHARED_DATA / "eeglab_tutorial_eeg"

needs_muse = pytest.mark.skipif(
    not (MUSE / "eeg").is_dir(),
    reason="real data folder ../shared/data/muse_n170_face_house_eeg absent")
needs_eeglab = pytest.mark.skipif(
    not (EEGLAB / "eeglab_data.set").is_file(),
    reason="real data folder ../shared/data/eeglab_tutorial_eeg absent")

MUSE_EEG = ["TP9", "AF7", "AF8", "TP10"]
N170_WINDOW = (0.19, 0.24)  # s, where the face-house difference is in this data (see above)
FACE, HOUSE = "face_mean12.png", "house_mean12.png"
SQUARES = ["square_pos1.png", "square_pos2.png"]


def _validator() -> str | None:
    found = shutil.which("bids-validator-deno")
    candidate = Path(sys.prefix) / "bin" / "bids-validator-deno"
    return found or (str(candidate) if candidate.is_file() else None)


def _validate(bids: Path) -> None:
    validator = _validator()
    if validator is None:
        pytest.skip("bids-validator-deno is not installed (requirements-test.txt)")
    proc = subprocess.run([validator, "--format", "json", str(bids)], capture_output=True,
                          text=True, timeout=120, check=False)
    report = json.loads(proc.stdout)
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert errors == [], errors


def _convert(script: str, source: Path, out: Path) -> Path:
    res = subprocess.run([sys.executable, str(REPO / "examples" / script / "make_bids.py"),
                          str(source), str(out)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def _meeg_config(name: str) -> dict:
    from brainalign.config import validate_config

    cfg = yaml.safe_load((REPO / "config" / "examples" / f"{name}.yaml").read_text())
    return validate_config(cfg)["meeg"]


def _read_tsv(path: Path):
    import pandas as pd

    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def test_example_configs_are_valid_and_stop_at_evoked_responses():
    from brainalign.config import validate_config

    for name, ref in (("muse_n170", None), ("eeglab_tutorial", "average")):
        cfg = validate_config(
            yaml.safe_load((REPO / "config" / "examples" / f"{name}.yaml").read_text()))
        assert cfg["fmri"] is None and cfg["bids"]["modalities"] == ["eeg"]
        meeg = cfg["meeg"]
        assert meeg["analyses"] == [] and meeg["eeg_reference"] == ref
        assert (meeg["l_freq"], meeg["h_freq"]) == (1.0, 30.0)
        assert (meeg["epochs_tmin"], meeg["epochs_tmax"]) == (-0.1, 0.6)
        assert set(meeg["reject"]) == {"eeg"}


# --------------------------------------------------------------------------- Muse N170


@pytest.fixture(scope="module")
def muse_bids(tmp_path_factory) -> Path:
    return _convert("muse_n170", MUSE, tmp_path_factory.mktemp("muse") / "bids")


def _muse_sources() -> list[tuple[str, Path]]:
    """(subject, csv) of every source recording, by subject and session number, then name."""
    def key(path: Path):
        sub = re.fullmatch(r"subject(\d+)", path.parent.parent.name).group(1)
        ses = re.fullmatch(r"session(\d+)", path.parent.name).group(1)
        return int(sub), int(ses), path.name
    paths = sorted((MUSE / "eeg").glob("subject*/session*/*.csv"), key=key)
    return [(str(key(p)[0]), p) for p in paths]


def _independent_muse_epochs(reject: float = 100e-6):
    """Face and house epochs of every recording with plain MNE, straight from the CSVs.

    1-30 Hz (after a 60/120 Hz notch), recording reference (Fpz), -0.1..0.6 s, baseline
    (None, 0), peak-to-peak rejection; Marker0 2 = face, 1 = house (the presentation code).
    Returns {subject: (face (n, 4, t), house (m, 4, t)) in uV}, times.
    """
    import mne
    import pandas as pd

    out, times = {}, None
    for sub, path in _muse_sources():
        frame = pd.read_csv(path)
        info = mne.create_info(MUSE_EEG, 256.0, "eeg", verbose=False)
        raw = mne.io.RawArray(frame[MUSE_EEG].to_numpy().T * 1e-6, info, verbose=False)
        raw.notch_filter([60.0, 120.0], verbose=False)
        raw.filter(1.0, 30.0, verbose=False)
        marker = frame["Marker0"].to_numpy()
        idx = np.flatnonzero(marker)
        events = np.column_stack([idx, np.zeros_like(idx), marker[idx]]).astype(int)
        ep = mne.Epochs(raw, events, {"house": 1, "face": 2}, tmin=-0.1, tmax=0.6,
                        baseline=(None, 0), reject={"eeg": reject}, preload=True,
                        verbose=False)
        times = ep.times
        face, house = ep["face"].get_data() * 1e6, ep["house"].get_data() * 1e6
        prev = out.get(sub, (np.empty((0, 4, len(times))), np.empty((0, 4, len(times)))))
        out[sub] = (np.concatenate([prev[0], face]), np.concatenate([prev[1], house]))
    return out, times


@pytest.fixture(scope="module")
def muse_reference():
    return _independent_muse_epochs()


@needs_muse
def test_muse_conversion_is_valid(muse_bids):
    import mne
    import pandas as pd
    from mne_bids import BIDSPath, read_raw_bids

    vhdrs = sorted(muse_bids.glob("sub-*/ses-*/eeg/*_eeg.vhdr"))
    assert len(vhdrs) == 12
    assert sorted({p.name.split("_")[0] for p in vhdrs}) == ["sub-1", "sub-11", "sub-2", "sub-3"]
    assert (muse_bids / "sub-3" / "ses-3" / "eeg" / "sub-3_ses-3_task-n170_run-3_eeg.vhdr"
            ).is_file()  # run labels unique within a subject across sessions
    for stim in (FACE, HOUSE):
        assert (muse_bids / "stimuli" / stim).is_file()
    # every marker of every source file is an event, with the right category and sample
    n_events = 0
    for (_, src), vhdr in zip(_muse_sources(), _muse_bids_order(vhdrs), strict=True):
        marker = pd.read_csv(src)["Marker0"].to_numpy()
        events = _read_tsv(vhdr.with_name(vhdr.name.replace("_eeg.vhdr", "_events.tsv")))
        assert list(events.columns) == ["onset", "duration", "trial_type", "value", "sample",
                                         "stim_file"]
        idx = np.flatnonzero(marker)
        assert events["sample"].astype(int).tolist() == idx.tolist()
        np.testing.assert_allclose(events["onset"].astype(float), idx / 256.0)
        assert events["trial_type"].tolist() == [{1: "house", 2: "face"}[m] for m in marker[idx]]
        assert set(events["stim_file"]) == {FACE, HOUSE}
        assert (events["stim_file"] == events["trial_type"] + "_mean12.png").all()
        n_events += len(events)
    assert n_events == 2350
    sidecar = json.loads(vhdrs[0].with_suffix(".json").read_text())
    assert sidecar["PowerLineFrequency"] == 60
    assert sidecar["SamplingFrequency"] == 256
    # read back: channel types, data (uV, BrainVision resolution), template positions
    path = BIDSPath(subject="1", session="1", task="n170", run=1, datatype="eeg",
                    root=muse_bids)
    with warnings.catch_warnings():  # Right AUX (misc) has no position: mne-bids says so
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = read_raw_bids(path, verbose=False)
    assert raw.get_channel_types() == ["eeg"] * 4 + ["misc"]
    src = pd.read_csv(_muse_sources()[0][1])
    np.testing.assert_allclose(raw.get_data(picks="eeg") * 1e6, src[MUSE_EEG].to_numpy().T,
                               atol=0.01)
    names = mne.channels.get_builtin_montages()
    template = mne.channels.make_standard_montage(
        "colin27_1005" if "colin27_1005" in names else "standard_1005")
    # the template's positions in MNE's head frame (what set_montage gives a recording)
    head = mne.io.RawArray(np.zeros((4, 1)), mne.create_info(MUSE_EEG, 256.0, "eeg"),
                           verbose=False).set_montage(template, verbose=False)
    want = head.get_montage().get_positions()["ch_pos"]
    got = raw.get_montage().get_positions()["ch_pos"]
    for ch in MUSE_EEG:
        np.testing.assert_allclose(got[ch], want[ch], atol=1e-6)
    _validate(muse_bids)


def _muse_bids_order(vhdrs: list[Path]) -> list[Path]:
    """BIDS files in the order of :func:`_muse_sources` (subject number, session, run)."""
    def key(p: Path):
        ents = dict(part.split("-", 1) for part in p.name.split("_")[:-1])
        return int(ents["sub"]), int(ents["ses"]), int(ents["run"])
    return sorted(vhdrs, key=key)


@needs_muse
def test_muse_face_house_difference_independent(muse_reference):
    """Plain MNE on the CSVs: where the N170 face-house difference is in this data."""
    from scipy import stats

    by_subject, times = muse_reference
    face = np.concatenate([f for f, _ in by_subject.values()])
    house = np.concatenate([h for _, h in by_subject.values()])
    assert len(face) + len(house) == 2172  # of 2,350 trials: 100 uV rejection
    t = stats.ttest_ind(face, house, axis=0).statistic  # (4, n_times)
    win = (times >= N170_WINDOW[0]) & (times <= N170_WINDOW[1])
    t_win = stats.ttest_ind(face[:, :, win].mean(-1), house[:, :, win].mean(-1)).statistic
    print("window t:", dict(zip(MUSE_EEG, np.round(t_win, 2), strict=True)))
    for ch in ("TP9", "TP10"):
        c = MUSE_EEG.index(ch)
        assert t_win[c] < -3.5  # measured -4.10 (TP9), -4.24 (TP10)
        early = (times >= 0.1) & (times <= 0.3)
        peak = times[early][np.argmax(np.abs(t[c, early]))]
        assert N170_WINDOW[0] <= peak <= N170_WINDOW[1], peak  # 0.219 and 0.211 s
        assert t[c, early].min() < -4.5  # -4.71 and -5.17
    for ch in ("AF7", "AF8"):
        assert abs(t_win[MUSE_EEG.index(ch)]) < 2.5


@needs_muse
def test_muse_pipeline_evoked_responses_show_the_n170(muse_bids, muse_reference, tmp_path):
    """The pipeline's per-subject evoked responses match plain MNE and hold the N170 effect."""
    import mne

    from brainalign.meeg.steps import step_meeg_preprocess, step_meeg_responses

    cfg = _meeg_config("muse_n170")
    stimuli = [FACE, HOUSE]
    epochs_by_subject: dict[str, list[str]] = {}
    for vhdr in _muse_bids_order(sorted(muse_bids.glob("sub-*/ses-*/eeg/*_eeg.vhdr"))):
        sub = vhdr.name.split("_")[0].removeprefix("sub-")
        out = tmp_path / vhdr.name.replace("_eeg.vhdr", "-epo.fif")
        step_meeg_preprocess(str(vhdr), str(vhdr.with_name(vhdr.name.replace(
            "_eeg.vhdr", "_events.tsv"))), datatype="eeg", stimuli=stimuli, config=cfg,
            epochs_out=str(out), log_out=str(out.with_suffix(".json")))
        epochs_by_subject.setdefault(sub, []).append(str(out))
    ref, ref_times = muse_reference
    diffs = {}
    for sub, files in epochs_by_subject.items():
        # the pipeline keeps the same epochs as plain MNE with the same settings
        n_kept = sum(len(mne.read_epochs(f, verbose=False)) for f in files)
        assert n_kept == len(ref[sub][0]) + len(ref[sub][1]), sub
        resp_file = tmp_path / f"sub-{sub}_responses.npz"
        step_meeg_responses(files, stimuli=stimuli, datatype="eeg", config=cfg,
                            out=str(resp_file))
        resp = np.load(resp_file, allow_pickle=False)
        assert list(resp["stimuli"]) == stimuli
        assert list(resp["channels"]) == MUSE_EEG
        times = resp["times"]
        np.testing.assert_allclose(times, ref_times, atol=1e-9)
        # evoked responses equal plain MNE's averages of the same epochs
        for k, evoked in enumerate(ref[sub]):
            np.testing.assert_allclose(resp["responses"][k] * 1e6, evoked.mean(0), atol=1e-3)
        diffs[sub] = (resp["responses"][0] - resp["responses"][1]) * 1e6  # face - house, uV
    win = (times >= N170_WINDOW[0]) & (times <= N170_WINDOW[1])
    tp = [MUSE_EEG.index("TP9"), MUSE_EEG.index("TP10")]
    per_subject = {s: float(d[tp][:, win].mean()) for s, d in diffs.items()}
    print("face - house at TP9/TP10, 190-240 ms (uV):", per_subject)
    # every subject: faces more negative (measured -0.8 to -4.1 uV); grand mean ~ -1.6 uV
    assert all(v < 0 for v in per_subject.values()), per_subject
    grand = np.mean([d[tp].mean(0) for d in diffs.values()], axis=0)
    assert grand[win].mean() < -1.0
    early = (times >= 0.1) & (times <= 0.3)
    assert N170_WINDOW[0] <= times[early][np.argmin(grand[early])] <= N170_WINDOW[1]


# --------------------------------------------------------------------------- EEGLAB tutorial


@pytest.fixture(scope="module")
def eeglab_bids(tmp_path_factory) -> Path:
    return _convert("eeglab_tutorial", EEGLAB, tmp_path_factory.mktemp("eeglab") / "bids")


def _eeglab_source_events() -> list[tuple[str, float, object]]:
    """(type, latency (1-based samples), position) of EEG.event, straight from the .set."""
    from scipy.io import loadmat

    eeg = loadmat(EEGLAB / "eeglab_data.set", squeeze_me=True, struct_as_record=False)["EEG"]
    return [(str(e.type), float(e.latency), e.position) for e in eeg.event]


@needs_eeglab
def test_eeglab_conversion_reads_back_with_montage_and_events(eeglab_bids):
    import mne
    from mne_bids import BIDSPath, read_raw_bids

    path = BIDSPath(subject="1", task="attention", datatype="eeg", root=eeglab_bids)
    raw = read_raw_bids(path, verbose=False)
    types = dict(zip(raw.ch_names, raw.get_channel_types(), strict=True))
    assert [c for c, t in types.items() if t == "eog"] == ["EOG1", "EOG2"]
    assert sum(t == "eeg" for t in types.values()) == 30
    assert raw.info["sfreq"] == 128 and raw.n_times == 30504
    # samples unchanged
    src = mne.io.read_raw_eeglab(EEGLAB / "eeglab_data.set", verbose=False)
    np.testing.assert_array_equal(raw.get_data(), src.get_data())
    # positions: those of eeglab_chan32.locs (EEG from the montage, EOG from electrodes.tsv)
    locs = mne.channels.read_custom_montage(EEGLAB / "eeglab_chan32.locs").get_positions()
    pos = raw.get_montage().get_positions()["ch_pos"]
    assert sorted(pos) == sorted(c for c, t in types.items() if t == "eeg")
    for ch, xyz in pos.items():
        np.testing.assert_allclose(xyz, locs["ch_pos"][ch], atol=1e-9)
    electrodes = _read_tsv(next((eeglab_bids / "sub-1" / "eeg").glob("*_electrodes.tsv")))
    assert len(electrodes) == 32
    for row in electrodes.itertuples():
        np.testing.assert_allclose([float(row.x), float(row.y), float(row.z)],
                                   locs["ch_pos"][row.name], atol=1e-9)
    # events: 80 squares (40 per position) and 74 responses, at EEG.event's latencies
    events = _read_tsv(path.copy().update(suffix="events", extension=".tsv").fpath)
    source = sorted(_eeglab_source_events(), key=lambda e: e[1])
    assert len(events) == len(source) == 154
    want = [f"square_pos{int(p)}" if t == "square" else "rt" for t, _, p in source]
    assert events["trial_type"].tolist() == want
    assert events["trial_type"].value_counts().to_dict() == {
        "rt": 74, "square_pos1": 40, "square_pos2": 40}
    np.testing.assert_allclose(events["onset"].astype(float),
                               [(lat - 1) / 128 for _, lat, _ in source], atol=0.5 / 128)
    stim = events["stim_file"]
    assert (stim[events["trial_type"] == "rt"] == "n/a").all()
    sq = events["trial_type"] != "rt"
    assert (stim[sq] == events["trial_type"][sq] + ".png").all()
    for name in SQUARES:
        assert (eeglab_bids / "stimuli" / name).is_file()
    assert json.loads(path.copy().update(suffix="eeg", extension=".json").fpath.read_text())[
        "PowerLineFrequency"] == 60
    _validate(eeglab_bids)


def _independent_eeglab_drops(reject: float) -> tuple[int, set[tuple[int, str]]]:
    """Plain MNE on the source .set: square epochs kept, and (trial, channel) of the dropped.

    The example config's steps: EOG typed, 60 Hz notch, 1-30 Hz, average reference of the EEG,
    -0.1..0.6 s, baseline (None, 0), EEG peak-to-peak rejection.
    """
    import mne

    raw = mne.io.read_raw_eeglab(EEGLAB / "eeglab_data.set", preload=True, verbose=False)
    raw.set_channel_types({"EOG1": "eog", "EOG2": "eog"}, verbose=False)
    raw.notch_filter([60.0], verbose=False)
    raw.filter(1.0, 30.0, verbose=False)
    raw.set_eeg_reference("average", verbose=False)
    source = sorted(_eeglab_source_events(), key=lambda e: e[1])
    trials = [(k, lat) for k, (t, lat, _) in enumerate(source) if t == "square"]
    events = np.array([[int(round(lat - 1)), 0, 1] for _, lat in trials])
    ep = mne.Epochs(raw, events, {"square": 1}, tmin=-0.1, tmax=0.6, baseline=(None, 0),
                    reject={"eeg": reject}, picks="eeg", preload=True, verbose=False)
    dropped = {(trials[i][0], ch) for i, log in enumerate(ep.drop_log) for ch in log}
    return len(ep), dropped


@needs_eeglab
def test_eeglab_preprocessing_keeps_the_clean_square_epochs(eeglab_bids, tmp_path):
    """78 of the 80 target epochs survive 200 uV; the 2 dropped are blinks at FPz."""
    import mne

    from brainalign.meeg.steps import step_meeg_preprocess

    cfg = _meeg_config("eeglab_tutorial")
    eeg_dir = eeglab_bids / "sub-1" / "eeg"
    out = tmp_path / "squares-epo.fif"
    step_meeg_preprocess(str(eeg_dir / "sub-1_task-attention_eeg.set"),
                         str(eeg_dir / "sub-1_task-attention_events.tsv"), datatype="eeg",
                         stimuli=SQUARES, config=cfg, epochs_out=str(out),
                         log_out=str(tmp_path / "log.json"))
    epochs = mne.read_epochs(out, verbose=False)
    log = json.loads((tmp_path / "log.json").read_text())
    n_ref, dropped_ref = _independent_eeglab_drops(cfg["reject"]["eeg"])
    assert n_ref == 78 and {ch for _, ch in dropped_ref} == {"FPz"}
    assert len(epochs) == n_ref
    assert log["epochs"]["n_total"] == 80  # the 74 rt events (stim_file n/a) are not epoched
    assert log["epochs"]["kept_per_stimulus"] == {"square_pos2.png": 38, "square_pos1.png": 40}
    got = {(d["trial"], r) for d in log["epochs"]["dropped"] for r in d["reasons"]}
    assert got == dropped_ref
    assert epochs.get_channel_types() == ["eeg"] * 30
