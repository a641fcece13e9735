"""M/EEG preprocessing (brainalign.meeg.preprocess, step_meeg_preprocess) on tiny BIDS EEG.

Every dataset is written with mne-bids (BrainVision) from a RawArray with planted signals; the
expected results come from MNE's own calls on the same file (read without mne-bids) or from the
planted ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from brainalign.errors import BIDSInputError
from brainalign.meeg import preprocess as pp
from brainalign.meeg.steps import step_meeg_preprocess

SFREQ = 250.0
DURATION = 24.0
CH_NAMES = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "C3", "Cz", "C4", "P3", "Pz", "P4",
            "O1", "Oz", "O2"]
FRONTAL = ["Fp1", "Fp2", "F7", "F8"]
STIMULI = ["a.png", "b.png", "c.png", "d.png"]
ONSETS = np.arange(1.0, 22.0, 1.0)  # 21 events, 1 s apart
ARTEFACT_TRIALS = (4, 11)  # events.tsv rows carrying a 400 uV spike on Cz
BAD = "P3"
LINE = 50.0


def _stim_of(i: int) -> str:
    return STIMULI[i % len(STIMULI)]


def _simulate(rng: np.random.Generator, *, eog: bool) -> tuple[np.ndarray, dict]:
    """EEG (V) with noise, an evoked response, line noise, artefacts and optional blinks."""
    n = int(SFREQ * DURATION)
    t = np.arange(n) / SFREQ
    n_ch = len(CH_NAMES)
    data = rng.standard_normal((n_ch, n)) * 3e-6
    # evoked response: 8 uV gaussian at 100 ms after each onset, occipital-weighted
    topo = np.linspace(0.2, 1.0, n_ch)
    for onset in ONSETS:
        data += 8e-6 * topo[:, None] * np.exp(-0.5 * ((t - onset - 0.1) / 0.02) ** 2)[None]
    data += 20e-6 * np.sin(2 * np.pi * LINE * t)[None]  # line noise
    for i in ARTEFACT_TRIALS:  # a 400 uV, 40 ms spike 300 ms after onset on Cz
        k = int((ONSETS[i] + 0.3) * SFREQ)
        data[CH_NAMES.index("Cz"), k:k + 10] += 400e-6
    truth = {}
    if eog:
        blink_times = rng.uniform(0.5, DURATION - 0.5, 16)
        blinks = np.zeros(n)
        for bt in blink_times:
            blinks += np.exp(-0.5 * ((t - bt) / 0.08) ** 2)
        blink_topo = np.array([1.0, 1.0, 0.6, 0.5, 0.5, 0.5, 0.6] + [0.05] * (n_ch - 7))
        data += 100e-6 * blink_topo[:, None] * blinks[None]
        veog = 150e-6 * blinks + rng.standard_normal(n) * 2e-6
        data = np.vstack([data, veog[None]])
        truth = {"blinks": blinks, "blink_times": blink_times}
    return data, truth


def _write_dataset(root: Path, rng: np.random.Generator, *, eog: bool = False,
                   montage: bool = True, names: list[str] | None = None) -> dict:
    """Write one BIDS EEG run; return its paths and the planted truth."""
    import mne_bids

    names = names or CH_NAMES
    data, truth = _simulate(rng, eog=eog)
    ch_names = names + (["VEOG"] if eog else [])
    ch_types = ["eeg"] * len(names) + (["eog"] if eog else [])
    info = mne.create_info(ch_names, SFREQ, ch_types)
    info["line_freq"] = LINE
    raw = mne.io.RawArray(data, info, verbose="error")
    if montage:
        raw.set_montage("standard_1020", verbose="error")
    bids_path = mne_bids.BIDSPath(subject="01", task="view", run="1", datatype="eeg",
                                  root=root, suffix="eeg", extension=".vhdr")
    mne_bids.write_raw_bids(raw, bids_path, format="BrainVision", allow_preload=True,
                            overwrite=True, verbose=False)
    mne_bids.mark_channels(bids_path, ch_names=[BAD], status="bad",
                           descriptions=["planted"], verbose=False)
    events = pd.DataFrame({
        "onset": ONSETS, "duration": 0.5,
        "trial_type": "stimulus",
        "stim_file": [_stim_of(i) for i in range(len(ONSETS))],
    })
    events.loc[len(events)] = [22.5, 0.1, "fixation", "n/a"]  # a row that is not a stimulus
    ev_path = bids_path.copy().update(suffix="events", extension=".tsv")
    events.to_csv(ev_path.fpath, sep="\t", index=False, na_rep="n/a")
    return {"raw": str(bids_path.fpath), "events": str(ev_path.fpath), "truth": truth,
            "data": data}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict:
    return _write_dataset(tmp_path_factory.mktemp("bids"), np.random.default_rng(1))


@pytest.fixture(scope="module")
def dataset_eog(tmp_path_factory) -> dict:
    return _write_dataset(tmp_path_factory.mktemp("bids_eog"), np.random.default_rng(2),
                          eog=True)


def _config(**overrides) -> dict:
    cfg = {"l_freq": 1.0, "h_freq": 40.0, "notch_freq": "auto", "eeg_reference": "average",
           "interpolate_bads": True, "spatial_filter": None, "reject": None,
           "epochs_tmin": -0.2, "epochs_tmax": 0.5, "baseline": [None, 0], "epochs_decim": 1}
    cfg.update(overrides)
    return pp.meeg_config_with_defaults(cfg)


def _run(ds: dict, tmp_path: Path, **overrides) -> tuple[mne.Epochs, dict]:
    out = tmp_path / "sub-01_task-view_run-1_desc-clean_epo.fif"
    log = tmp_path / "log.json"
    step_meeg_preprocess(ds["raw"], ds["events"], datatype="eeg", stimuli=STIMULI,
                         config=_config(**overrides), epochs_out=str(out), log_out=str(log))
    return mne.read_epochs(out, verbose="error"), json.loads(log.read_text())


def _reference_raw(ds: dict) -> mne.io.Raw:
    """The same recording read by MNE directly (no mne-bids), bad channel and montage set.

    The positions are electrodes.tsv's (as mne-bids reads them): they are rounded there, and
    interpolation depends on them.
    """
    import mne_bids

    raw = mne.io.read_raw_brainvision(ds["raw"], preload=True, verbose="error")
    positions = mne_bids.read_raw_bids(mne_bids.get_bids_path_from_fname(ds["raw"]),
                                       verbose=False).get_montage()
    raw.set_montage(positions, verbose="error")
    raw.info["bads"] = [BAD]
    return raw


def test_notch_and_bandpass_equal_mne(dataset):
    raw, rec = pp.read_raw(dataset["raw"])
    assert rec["bads"] == [BAD] and rec["line_freq"] == LINE
    freqs = pp.notch_frequencies("auto", rec["line_freq"], raw.info["sfreq"])
    assert freqs == [50.0, 100.0]  # harmonics below the 125 Hz Nyquist
    pp.apply_notch(raw, freqs)
    rec_bp = pp.apply_bandpass(raw, 1.0, 40.0)
    assert rec_bp["highpass"] == 1.0 and rec_bp["lowpass"] == 40.0

    ref = _reference_raw(dataset)
    original = ref.get_data()
    ref.notch_filter([50.0, 100.0], picks="all", verbose="error")
    ref.filter(1.0, 40.0, picks="all", verbose="error")
    np.testing.assert_allclose(raw.get_data(), ref.get_data(), rtol=0, atol=1e-12)

    # the bad channel interpolated as MNE's interpolate_bads does on the same data
    rec_bad = pp.handle_bad_channels(raw, True, ["eeg"])
    assert rec_bad["interpolated"] == [BAD] and raw.info["bads"] == []
    ref_interp = ref.copy().interpolate_bads(reset_bads=True, verbose="error")
    np.testing.assert_allclose(raw.get_data(), ref_interp.get_data(), rtol=0, atol=1e-12)
    assert not np.allclose(raw.get_data(picks=[BAD]), ref.get_data(picks=[BAD]), atol=1e-7)

    # line noise at 50 Hz strongly reduced (Welch power at 50 Hz, Cz)
    ci = CH_NAMES.index("Cz")
    f, p_before = _welch(original[ci])
    _, p_after = _welch(ref.get_data()[ci])
    k = np.argmin(np.abs(f - LINE))
    assert p_after[k] < 1e-3 * p_before[k]


def _welch(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import welch

    return welch(x, fs=SFREQ, nperseg=500)


def test_notch_frequency_settings():
    assert pp.notch_frequencies(None, 50.0, 1000.0) == []
    assert pp.notch_frequencies("auto", 60.0, 250.0) == [60.0, 120.0]
    assert pp.notch_frequencies("auto", None, 250.0) == []
    assert pp.notch_frequencies([50, 200], 60.0, 250.0) == [50.0]
    assert pp.notch_frequencies(50, None, 1000.0) == [50.0]


def test_step_matches_mne_reference_path(dataset, tmp_path):
    """Whole step without ICA/rejection = MNE's own calls in the same order."""
    epochs, log = _run(dataset, tmp_path)
    ref = _reference_raw(dataset)
    ref.notch_filter([50.0, 100.0], picks="all", verbose="error")
    ref.filter(1.0, 40.0, picks="all", verbose="error")
    ref.interpolate_bads(reset_bads=True, verbose="error")
    ref.set_eeg_reference("average", projection=False, verbose="error")
    events = np.column_stack([np.round(ONSETS * SFREQ).astype(int), np.zeros(21, int),
                              np.ones(21, int)])
    ref_epochs = mne.Epochs(ref, events, tmin=-0.2, tmax=0.5, baseline=(None, 0),
                            preload=True, verbose="error")
    # the epochs FIF stores single precision (MNE's default): equal to float32 precision
    np.testing.assert_allclose(epochs.get_data(), ref_epochs.get_data(), rtol=3e-7, atol=1e-13)

    assert BAD in epochs.ch_names and epochs.info["bads"] == []
    assert log["bad_channels"] == {"bads": [BAD], "interpolated": [BAD], "dropped": [],
                                   "action": "interpolated"}
    assert log["filters"]["notch"]["freqs"] == [50.0, 100.0]
    assert log["montage"]["source"] == "recording"
    assert log["reference"]["reference"] == "average"
    # metadata: the stimulus rows of events.tsv, in order, with their row index
    assert list(epochs.metadata["stim_file"]) == [_stim_of(i) for i in range(21)]
    assert list(epochs.metadata["trial"]) == list(range(21))
    np.testing.assert_allclose(epochs.metadata["onset"], ONSETS)
    assert log["epochs"]["n_total"] == 21 and log["epochs"]["n_kept"] == 21
    assert log["epochs"]["kept_per_stimulus"] == {"a.png": 6, "b.png": 5, "c.png": 5,
                                                  "d.png": 5}
    assert log["ica"] == {"applied": False}
    assert log["sfreq_in"] == SFREQ and log["sfreq_out"] == SFREQ


def test_drop_bad_channels_instead(dataset, tmp_path):
    epochs, log = _run(dataset, tmp_path, interpolate_bads=False)
    assert BAD not in epochs.ch_names and len(epochs.ch_names) == len(CH_NAMES) - 1
    assert log["bad_channels"]["dropped"] == [BAD]
    assert log["bad_channels"]["action"] == "dropped"


def test_peak_to_peak_rejection_drops_exactly_the_artefact_epochs(dataset, tmp_path):
    epochs, log = _run(dataset, tmp_path, reject={"eeg": 150e-6, "eog": 1.0})
    dropped = {d["trial"]: d for d in log["epochs"]["dropped"]}
    assert sorted(dropped) == list(ARTEFACT_TRIALS)
    for i in ARTEFACT_TRIALS:
        assert "Cz" in dropped[i]["reasons"]
        assert dropped[i]["stim_file"] == _stim_of(i)
    assert list(epochs.metadata["trial"]) == [i for i in range(21) if i not in ARTEFACT_TRIALS]
    assert log["epochs"]["n_kept"] == 19 and log["epochs"]["n_dropped"] == 2
    assert log["rejection"] == {"method": "peak_to_peak", "thresholds": {"eeg": 150e-6},
                                "ignored": ["eog"]}


def test_no_epoch_left_is_a_clear_error(dataset, tmp_path):
    with pytest.raises(BIDSInputError, match=r"no stimulus epoch is left.*meeg.reject"):
        _run(dataset, tmp_path, reject={"eeg": 1e-9})
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["epochs"]["n_kept"] == 0
    assert not (tmp_path / "sub-01_task-view_run-1_desc-clean_epo.fif").exists()


def test_autoreject_global_logs_its_threshold(dataset, tmp_path):
    import autoreject

    epochs, log = _run(dataset, tmp_path, reject="autoreject_global")
    thr = log["rejection"]["thresholds"]["eeg"]
    # the same threshold from autoreject on the same epochs (MNE reference path)
    ref = _reference_raw(dataset)
    ref.notch_filter([50.0, 100.0], picks="all", verbose="error")
    ref.filter(1.0, 40.0, picks="all", verbose="error")
    ref.interpolate_bads(reset_bads=True, verbose="error")
    ref.set_eeg_reference("average", projection=False, verbose="error")
    events = np.column_stack([np.round(ONSETS * SFREQ).astype(int), np.zeros(21, int),
                              np.ones(21, int)])
    ref_epochs = mne.Epochs(ref, events, tmin=-0.2, tmax=0.5, baseline=(None, 0),
                            preload=True, verbose="error")
    expected = autoreject.get_rejection_threshold(ref_epochs, random_state=42,
                                                  ch_types=["eeg"], verbose=False)["eeg"]
    assert thr == pytest.approx(expected, rel=1e-9)
    ptp = np.ptp(ref_epochs.get_data(), axis=2).max(axis=1)
    assert {d["trial"] for d in log["epochs"]["dropped"]} == set(np.flatnonzero(ptp > thr))
    assert set(ARTEFACT_TRIALS) <= {d["trial"] for d in log["epochs"]["dropped"]}
    assert log["epochs"]["n_kept"] == len(epochs)


def test_resample_and_decim_give_the_expected_rate(dataset, tmp_path):
    epochs, log = _run(dataset, tmp_path, raw_resample_sfreq=125.0, epochs_decim=2)
    assert epochs.info["sfreq"] == pytest.approx(62.5)
    assert log["filters"]["resample"] == {"sfreq_in": SFREQ, "sfreq_out": 125.0}
    assert log["sfreq_out"] == pytest.approx(62.5)
    assert log["epochs"]["decim"] == 2
    # 62.5 Hz is below 3 x the 40 Hz low-pass: the log warns about aliasing
    assert any("alias" in w for w in log["warnings"])
    _, log_ok = _run(dataset, tmp_path, epochs_decim=2, h_freq=20.0)
    assert log_ok["warnings"] == [] and log_ok["sfreq_out"] == pytest.approx(125.0)


def test_ica_without_eog_removes_nothing(dataset, tmp_path):
    epochs, log = _run(dataset, tmp_path, spatial_filter="ica", ica_n_components=5)
    assert log["ica"]["excluded"] == []
    assert "nothing to remove" in log["ica"]["note"]
    assert log["ica"]["n_components"] == 5


def test_ica_removes_the_planted_blink_component(dataset_eog, tmp_path):
    ds = dataset_eog
    raw, _ = pp.read_raw(ds["raw"])
    analysed, _ = pp.pick_channel_types(raw, None)
    assert analysed == ["eeg"]
    pp.apply_bandpass(raw, 1.0, 40.0)
    pp.handle_bad_channels(raw, True, analysed)
    pp.apply_reference(raw, "average")
    before = raw.copy()
    # with 8 components no z-score exceeds 7 / sqrt(8) = 2.47: the default 3 cannot work
    rec_default = pp.apply_ica(raw.copy(), analysed, n_components=8, random_state=0)
    assert rec_default["excluded"] == [] and "Lower meeg.ica_eog_threshold" in \
        rec_default["warnings"][0]
    rec = pp.apply_ica(raw, analysed, n_components=8, random_state=0, eog_threshold=2.0)
    assert rec["eog_channels"] == ["VEOG"]
    assert len(rec["excluded"]) >= 1
    assert all(e["reason"] == "eog" and e["channel"] == "VEOG" for e in rec["excluded"])
    assert max(abs(e["score"]) for e in rec["excluded"]) > 0.9  # correlation with VEOG
    # the excluded component is the one whose time course follows the planted blinks
    from mne.preprocessing import ICA

    ica = ICA(n_components=8, random_state=0, max_iter="auto", verbose="error")
    fit = before.copy().filter(1.0, None, picks="all", verbose="error")
    ica.fit(fit, picks=["eeg"], verbose="error")
    sources = ica.get_sources(fit).get_data()
    blinks = ds["truth"]["blinks"]
    corr = [abs(np.corrcoef(s, blinks)[0, 1]) for s in sources]
    assert int(np.argmax(corr)) in [e["component"] for e in rec["excluded"]]
    # blink amplitude in frontal channels drops
    samples = (ds["truth"]["blink_times"] * SFREQ).astype(int)
    fr = [raw.ch_names.index(c) for c in FRONTAL]
    amp_before = np.abs(before.get_data()[fr][:, samples]).mean()
    amp_after = np.abs(raw.get_data()[fr][:, samples]).mean()
    assert amp_after < 0.3 * amp_before


def test_ica_in_the_step_logs_components(dataset_eog, tmp_path):
    epochs, log = _run(dataset_eog, tmp_path, spatial_filter="ica", ica_n_components=8,
                       ica_eog_threshold=2.0, reject={"eeg": 150e-6, "eog": 1e-3})
    assert log["ica"]["excluded"] and log["ica"]["excluded"][0]["channel"] == "VEOG"
    assert "VEOG" in log["channels"]["dropped_after_epoching"]
    assert "VEOG" not in epochs.ch_names and epochs.get_channel_types() == ["eeg"] * 16


def test_standard_montage_from_names(tmp_path):
    ds = _write_dataset(tmp_path / "bids", np.random.default_rng(3), montage=False)
    epochs, log = _run(ds, tmp_path)
    assert log["montage"]["source"] == "standard_1020"
    assert log["bad_channels"]["interpolated"] == [BAD]


def test_no_positions_and_bads_to_interpolate_is_a_clear_error(tmp_path):
    names = [f"E{i}" for i in range(1, 16)] + [BAD]
    ds = _write_dataset(tmp_path / "bids", np.random.default_rng(4), montage=False,
                        names=names)
    with pytest.raises(BIDSInputError, match="no positions.*interpolate_bads: false"):
        _run(ds, tmp_path)
    epochs, log = _run(ds, tmp_path, interpolate_bads=False)
    assert log["montage"]["source"] == "none" and BAD not in epochs.ch_names


def test_autoreject_local_drops_the_artefact_epochs(dataset):
    """Local autoreject (small grid to stay fast) drops the planted artefact epochs."""
    raw, _ = pp.read_raw(dataset["raw"])
    analysed, _ = pp.pick_channel_types(raw, None)
    pp.apply_bandpass(raw, 1.0, 40.0)
    pp.handle_bad_channels(raw, True, analysed)
    pp.apply_reference(raw, "average")
    table = pp.stimulus_events(pd.read_csv(dataset["events"], sep="\t"), STIMULI, "stim_file")
    epochs, _ = pp.make_epochs(raw, table, tmin=-0.2, tmax=0.5, baseline=(None, 0))
    subset = ["Fz", "C3", "Cz", "C4", "Pz"]  # fewer channels: autoreject is slow
    epochs.pick(subset)
    clean, rec = pp.reject_epochs(epochs, "autoreject_local", random_state=0,
                                  autoreject_params={"n_interpolate": [1, 4],
                                                     "consensus": [0.5], "cv": 3,
                                                     "thresh_method": "random_search"})
    dropped = pp.drop_log_table(clean, table)
    assert {d["trial"] for d in dropped} == set(ARTEFACT_TRIALS)
    assert all(d["reasons"] == ["AUTOREJECT"] for d in dropped)
    assert rec["method"] == "autoreject_local" and set(rec["channel_thresholds"]) == set(subset)
    assert len(rec["interpolated_per_epoch"]) == len(table)
    assert len(clean) == len(table) - len(ARTEFACT_TRIALS)


def test_ica_removes_a_planted_heartbeat_component(rng):
    """ECG detection (CTPS) on an in-memory recording with planted heartbeats."""
    n = int(SFREQ * 20)
    t = np.arange(n) / SFREQ
    beats = np.arange(0.4, 19.5, 0.85) + rng.uniform(-0.05, 0.05, 23)
    qrs = np.zeros(n)
    for b in beats:
        qrs += (np.exp(-0.5 * ((t - b) / 0.012) ** 2)
                - 0.3 * np.exp(-0.5 * ((t - b - 0.25) / 0.05) ** 2))
    topo = rng.uniform(0.3, 1.0, len(CH_NAMES))
    eeg = rng.standard_normal((len(CH_NAMES), n)) * 3e-6 + 20e-6 * topo[:, None] * qrs[None]
    ecg = 1e-3 * qrs + rng.standard_normal(n) * 1e-5
    info = mne.create_info(CH_NAMES + ["ECG"], SFREQ, ["eeg"] * len(CH_NAMES) + ["ecg"])
    raw = mne.io.RawArray(np.vstack([eeg, ecg[None]]), info, verbose="error")
    raw.set_montage("standard_1020", verbose="error")
    pp.apply_bandpass(raw, 1.0, 40.0)
    pp.apply_reference(raw, "average")
    before = raw.get_data(picks="eeg")
    rec = pp.apply_ica(raw, ["eeg"], n_components=4, random_state=0)
    assert rec["ecg_channels"] == ["ECG"] and rec["eog_channels"] == []
    assert rec["excluded"] and all(e["reason"] == "ecg" for e in rec["excluded"])
    assert max(e["score"] for e in rec["excluded"]) > 0.5
    peaks = np.round(beats * SFREQ).astype(int)
    amp_before = np.abs(before[:, peaks]).mean()
    amp_after = np.abs(raw.get_data(picks="eeg")[:, peaks]).mean()
    assert amp_after < 0.3 * amp_before
