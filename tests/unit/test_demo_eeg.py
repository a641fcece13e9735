"""The simulated EEG part of the demo (brainalign.meeg.simulate): valid BIDS, planted timing.

The planted latencies are recovered here by an independent analysis that shares no code with
brainalign's M/EEG branch: mne-bids reads the recording, MNE filters and epochs it, numpy averages
the repeats, and scipy compares each time point's channel RDM with the planted layer's RDM
(computed from the planted features with scipy).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from brainalign.io import read_tsv
from brainalign.meeg.simulate import (
    EEGSimSpec,
    PlantedSource,
    make_eeg_study,
    region_channels,
    resolve_montage,
    unseen_eeg_spec,
    write_eeg_bids,
)
from tests.unit.test_demo import _find_validator

# Peak-latency tolerances of the independent analysis (s). The planted Gaussians are 20-40 ms
# wide and 100-150 ms apart; with one subject and 4 repeats, noise moves the RSA curve's maximum
# by a few samples (observed: at most 12 ms over seeds 0-3). Half the gap to the other source
# would already be ambiguous, so the tolerances stay well below it.
TOL_EARLY_S = 0.020
TOL_LATE_S = 0.030


@pytest.fixture(scope="module")
def demo(small_demo):
    """The one-subject demo of tests/unit/test_demo.py (DemoSpec(**SMALL), one per session)."""
    out, _ = small_demo
    return out, json.loads((out / "truth.json").read_text())


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    """A study unlike the demo: BioSemi 64, 512 Hz, 60 Hz mains, sources at 150 / 300 ms."""
    out = tmp_path_factory.mktemp("unseen_eeg") / "study"
    make_eeg_study(out, unseen_eeg_spec(n_subjects=1))
    return out, json.loads((out / "truth.json").read_text())


def _validate(bids: Path) -> dict:
    validator = _find_validator()
    if validator is None:
        pytest.skip("bids-validator-deno is not installed (pip install bids-validator-deno)")
    proc = subprocess.run([validator, "--format", "json", str(bids)], capture_output=True,
                          text=True, timeout=120, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"validator gave no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}")
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert errors == [], errors
    return report


def _independent_curves(bids: Path, subject: str, truth: dict, tmin=-0.1, tmax=0.5):
    """Per layer, the RSA time course of one subject's EEG (MNE + numpy + scipy only)."""
    import mne
    from mne_bids import BIDSPath, read_raw_bids

    from brainalign.demo import _planted_features

    stims = sorted(p.name for p in (bids / "stimuli").glob("*.png"))
    layers = [s["layer"] for s in truth["sources"]]
    feats = _planted_features([bids / "stimuli" / s for s in stims], layers, 4)
    layer_rdms = {}
    for layer, f in feats.items():
        f = f.astype(np.float64)
        f = (f - f.mean(0)) / np.where(f.std(0) > 0, f.std(0), 1.0)
        layer_rdms[layer] = pdist(f, "correlation")
    trials: dict[str, list] = {}
    for run in range(1, truth["spec"]["n_runs"] + 1):
        path = BIDSPath(subject=subject, task=truth["task"], run=run, datatype="eeg", root=bids)
        raw = read_raw_bids(path, verbose="error").load_data()
        raw.filter(0.1, 40.0, verbose="error")
        raw.pick("eeg", exclude="bads").set_eeg_reference("average", verbose="error")
        events = read_tsv(path.copy().update(suffix="events", extension=".tsv").fpath)
        samples = np.round(events["onset"].to_numpy() * raw.info["sfreq"]).astype(int)
        ev = np.column_stack([samples, np.zeros_like(samples), np.ones_like(samples)])
        epochs = mne.Epochs(raw, ev, tmin=tmin, tmax=tmax, baseline=(None, 0), preload=True,
                            verbose="error")
        for stim, x in zip(events["stim_file"], epochs.get_data(), strict=True):
            trials.setdefault(stim, []).append(x)
    evoked = np.stack([np.mean(trials[s], axis=0) for s in stims])  # stim x channel x time
    curves = {
        layer: np.array([spearmanr(pdist(evoked[:, :, t], "correlation"), rdm)[0]
                         for t in range(evoked.shape[2])])
        for layer, rdm in layer_rdms.items()
    }
    return epochs.times, curves, evoked, epochs.ch_names


def _check_recovery(bids: Path, truth: dict) -> None:
    early, late = truth["sources"]
    for subject in truth["subjects"]:
        times, curves, evoked, ch_names = _independent_curves(bids, subject, truth)
        peak = {layer: times[np.argmax(c)] for layer, c in curves.items()}
        assert abs(peak[early["layer"]] - early["latency_s"]) <= TOL_EARLY_S, peak
        assert abs(peak[late["layer"]] - late["latency_s"]) <= TOL_LATE_S, peak
        assert peak[early["layer"]] < peak[late["layer"]]
        # each layer explains its own source better than the other source's (order is real)
        at = {s["name"]: int(np.argmin(np.abs(times - s["latency_s"]))) for s in (early, late)}
        assert curves[early["layer"]][at["early"]] > curves[early["layer"]][at["late"]] + 0.1
        assert curves[late["layer"]][at["late"]] > curves[late["layer"]][at["early"]] + 0.1
        # the stimulus-specific variance sits on the planted channels at each latency
        for src in (early, late):
            spread = evoked[:, :, at[src["name"]]].std(axis=0)
            top = {ch_names[i] for i in np.argsort(spread)[::-1][: len(src["channels"])]}
            assert len(top & set(src["channels"])) >= len(src["channels"]) - 1, (src, top)


# ---------------------------------------------------------------------------------------------
# the demo's EEG part


def test_demo_eeg_truth(demo):
    out, truth = demo
    meeg = truth["meeg"]
    assert meeg["datatype"] == "eeg" and meeg["task"] == "demo" and meeg["subjects"] == ["01"]
    early, late = meeg["sources"]
    assert (early["name"], early["layer"], early["latency_s"]) == ("early", "stem", 0.1)
    assert (late["name"], late["layer"], late["latency_s"]) == ("late", "stage6", 0.2)
    assert early["channels"] == ["PO7", "PO3", "PO4", "PO8", "O1", "Oz", "O2"]
    assert late["channels"] == ["FT9", "FT10", "T7", "T8", "TP7", "TP8", "TP9", "TP10"]
    assert meeg["spec"]["sfreq"] == 250.0 and meeg["spec"]["line_freq"] == 50.0
    assert len(meeg["channels"]) == 32 and meeg["bad_channels"] == ["FC5"]
    # the fMRI truth is still there, unchanged in form
    assert truth["planted"] == {"early": "stage2", "late": "stage6", "null": None}


def test_demo_eeg_files(demo):
    out, truth = demo
    eeg = out / "bids" / "sub-01" / "eeg"
    stem = "sub-01_task-demo_run-1"
    for suffix in ("_eeg.vhdr", "_eeg.vmrk", "_eeg.eeg", "_eeg.json", "_channels.tsv",
                   "_events.tsv", "_events.json"):
        assert (eeg / f"{stem}{suffix}").is_file(), suffix
    assert list(eeg.glob("*_electrodes.tsv")) and list(eeg.glob("*_coordsystem.json"))
    sidecar = json.loads((eeg / f"{stem}_eeg.json").read_text())
    assert sidecar["PowerLineFrequency"] == 50 and sidecar["SamplingFrequency"] == 250
    assert sidecar["EEGChannelCount"] == 32
    channels = read_tsv(eeg / f"{stem}_channels.tsv")
    assert channels.loc[channels["status"] == "bad", "name"].tolist() == ["FC5"]
    electrodes = read_tsv(next(eeg.glob("*_electrodes.tsv")))
    assert set(truth["meeg"]["channels"]) <= set(electrodes["name"])
    events = read_tsv(eeg / f"{stem}_events.tsv")
    assert list(events.columns[:3]) == ["onset", "duration", "trial_type"]
    assert (events["duration"] == 0.5).all()
    stimuli = {p.name for p in (out / "bids" / "stimuli").glob("*.png")}
    counts = Counter(events["stim_file"])
    assert set(counts) == stimuli and set(counts.values()) == {4}  # 4 repeats of each image
    assert all(f.startswith(t + "_") for f, t in zip(events["stim_file"], events["trial_type"],
                                                      strict=True))
    soa = np.diff(events["onset"])
    assert soa.min() >= 0.7 - 1e-9 and soa.max() <= 0.9 + 1e-9
    # mne-bids left the dataset's own top-level files alone
    participants = read_tsv(out / "bids" / "participants.tsv")
    assert list(participants.columns) == ["participant_id", "age", "sex"]


def test_demo_with_eeg_passes_bids_validator(demo):
    out, _ = demo
    report = _validate(out / "bids")
    assert set(report["summary"]["dataTypes"]) == {"eeg", "func"}


def test_demo_eeg_has_line_noise(demo):
    """The raw recording carries mains at 50 Hz (and 100 Hz), far above the nearby spectrum."""
    import mne

    out, _ = demo
    raw = mne.io.read_raw_brainvision(
        out / "bids" / "sub-01" / "eeg" / "sub-01_task-demo_run-1_eeg.vhdr", verbose="error")
    psd = raw.compute_psd(fmin=30, fmax=110, n_fft=1000, verbose="error")
    power, freqs = psd.get_data().mean(axis=0), psd.freqs
    for f0 in (50.0, 100.0):
        at = power[np.argmin(np.abs(freqs - f0))]
        around = power[(np.abs(freqs - f0) > 3) & (np.abs(freqs - f0) < 8)]
        assert at > 10 * np.median(around), f0


def test_demo_eeg_independent_analysis_recovers_planted_timing(demo):
    out, truth = demo
    _check_recovery(out / "bids", truth["meeg"])


# ---------------------------------------------------------------------------------------------
# a study unlike the demo's (montage, sampling rate, mains, latencies, task, runs)


def test_unseen_study_validates_and_recovers_its_timing(unseen):
    out, truth = unseen
    bids = out / "bids"
    report = _validate(bids)
    assert report["summary"]["dataTypes"] == ["eeg"]
    meeg = truth["meeg"]
    assert meeg["task"] == "view" and meeg["spec"]["montage"] == "biosemi64"
    assert len(meeg["channels"]) == 64
    assert [s["latency_s"] for s in meeg["sources"]] == [0.15, 0.3]
    sidecar = json.loads(next((bids / "sub-01" / "eeg").glob("*run-1_eeg.json")).read_text())
    assert sidecar["SamplingFrequency"] == 512 and sidecar["PowerLineFrequency"] == 60
    assert len(list((bids / "sub-01" / "eeg").glob("*_eeg.vhdr"))) == 2
    _check_recovery(bids, meeg)


# ---------------------------------------------------------------------------------------------
# helpers


def test_region_channels_by_name():
    names = ["Fp1", "F7", "FC5", "FT9", "T7", "TP10", "P7", "PO3", "POz", "O1", "Oz", "Iz"]
    assert region_channels(names, "occipital") == ["PO3", "POz", "O1", "Oz", "Iz"]
    assert region_channels(names, "temporal") == ["FT9", "T7", "TP10"]
    with pytest.raises(ValueError, match="Unknown region 'frontal'"):
        region_channels(names, "frontal")


def test_resolve_montage():
    assert len(resolve_montage("biosemi64").ch_names) == 64
    assert "Oz" in resolve_montage("standard_1020").ch_names
    with pytest.raises(ValueError, match="Unknown montage 'nope'"):
        resolve_montage("nope")


def test_bad_channel_on_a_source_is_refused(tmp_path):
    import pandas as pd

    spec = EEGSimSpec(n_subjects=1, bad_channels=("O1",))
    stim = pd.DataFrame({"stim_file": [f"s{i}.png" for i in range(4)]})
    feats = {"stem": np.eye(4), "stage6": np.eye(4)}
    with pytest.raises(ValueError, match="must not be driven"):
        write_eeg_bids(tmp_path, spec, stim, feats)
    spec = EEGSimSpec(n_subjects=1, sources=(PlantedSource("x", "stem", 0.1, 0.02,
                                                           channels=("O1", "Nope")),))
    with pytest.raises(ValueError, match="missing: \\['Nope'\\]"):
        write_eeg_bids(tmp_path, spec, stim, feats)
