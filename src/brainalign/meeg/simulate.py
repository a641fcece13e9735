"""Simulated BIDS EEG studies with planted layer timing (the demo's EEG part, and test studies).

Each planted source is an EfficientNet-Lite0 layer whose stimulus features drive a group of
channels with a Gaussian time course: the stimulus-specific pattern on those channels is a fixed
random rotation (per subject) of the leading principal components of the layer's z-scored
stimulus features, scaled by
``exp(-(t - latency)^2 / (2 width^2))`` after each stimulus onset. The demo plants an early layer
on occipital channels at ~100 ms and a late layer on temporal channels at ~200 ms. Background
noise is spatially correlated pink (1/f) noise plus white sensor noise, and mains line noise
(``line_freq`` and its harmonics below Nyquist) is added on every channel.

Recordings are written with :func:`mne_bids.write_raw_bids` (BrainVision via pybv): events.tsv
with ``onset``, ``duration``, ``trial_type`` and ``stim_file`` (relative to ``stimuli/``),
electrodes from the montage, ``PowerLineFrequency`` in the sidecar and bad channels in
channels.tsv. The planted truth (layers, latencies, channels) is returned for ``truth.json``,
which stays outside the BIDS folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DEMO_CHANNELS",
    "EEGSimSpec",
    "PlantedSource",
    "make_eeg_study",
    "region_channels",
    "resolve_montage",
    "simulate_eeg_run",
    "unseen_eeg_spec",
    "write_eeg_bids",
]

#: 32 channels of the demo (10-20 names): 7 occipital and 8 temporal ones among them.
DEMO_CHANNELS = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "C3", "Cz", "C4",
    "FT9", "FT10", "T7", "T8", "TP7", "TP8", "TP9", "TP10", "P3", "Pz", "P4",
    "PO7", "PO3", "PO4", "PO8", "O1", "Oz", "O2",
)

#: Montage names MNE 1.13 deprecates, and the built-in montage each now names.
_MONTAGE_ALIASES = {"standard_1020": "colin27_1020", "standard_1005": "colin27_1005"}

#: Channel-name prefixes of each region (10-20 / 10-05 names, upper case).
_REGION_PREFIXES = {
    "occipital": ("O", "PO", "I"),
    "temporal": ("T", "FT", "TP"),
}


@dataclass(frozen=True)
class PlantedSource:
    """One planted source: a layer's features driving a channel group at a latency.

    Attributes
    ----------
    name : str
        Label of the source in truth.json (e.g. ``early``).
    layer : str
        EfficientNet-Lite0 layer whose stimulus features make the pattern.
    latency_s, width_s : float
        Peak time after stimulus onset and standard deviation of the Gaussian time course (s).
    region : str
        ``occipital`` or ``temporal`` (channels chosen by name), unless ``channels`` is given.
    channels : tuple of str, optional
        Explicit channels driven by the source.
    amplitude_v : float
        Standard deviation across stimuli of each driven channel at the peak (V).
    """

    name: str
    layer: str
    latency_s: float
    width_s: float
    region: str = "occipital"
    channels: tuple | None = None
    amplitude_v: float = 3e-6


def _default_sources() -> tuple:
    return (
        PlantedSource("early", "stem", 0.100, 0.020, region="occipital"),
        PlantedSource("late", "stage6", 0.200, 0.030, region="temporal"),
    )


@dataclass(frozen=True)
class EEGSimSpec:
    """Parameters of a simulated EEG study (all saved in truth.json).

    Attributes
    ----------
    task : str
        BIDS task label.
    montage : str
        MNE built-in montage (``standard_1020``, ``biosemi64``, ``easycap-M1``, ...).
    channels : tuple of str, optional
        Channel subset of the montage (``None``: every channel of the montage).
    sfreq : float
        Sampling frequency (Hz).
    n_subjects : int
        Subjects ``sub-01`` ... (their recordings are independent draws).
    n_repeats : int
        Presentations of every stimulus per subject (split evenly over ``n_runs``).
    n_runs : int
        Recordings per subject.
    soa_range_s : tuple of float
        Stimulus-onset asynchrony, uniform in this range (s).
    stim_duration_s : float
        Duration of each stimulus (events.tsv ``duration``).
    lead_in_s, tail_s : float
        Recording before the first and after the last onset (s).
    sources : tuple of PlantedSource
        The planted sources.
    pink_v, white_v : float
        RMS of the spatially correlated pink noise and of the white sensor noise (V).
    line_freq : float
        Mains frequency (50 or 60 Hz): ``PowerLineFrequency``, and the line noise's frequency.
    line_v : float
        Amplitude of the line noise at ``line_freq`` (harmonics at a third of it).
    bad_channels : tuple of str
        Channels marked bad in channels.tsv (they also get strong extra noise).
    seed : int
        Seed of every random draw.
    """

    task: str = "demo"
    montage: str = "standard_1020"
    channels: tuple | None = DEMO_CHANNELS
    sfreq: float = 250.0
    n_subjects: int = 2
    n_repeats: int = 4
    n_runs: int = 1
    soa_range_s: tuple = (0.7, 0.9)
    stim_duration_s: float = 0.5
    lead_in_s: float = 2.0
    tail_s: float = 2.0
    sources: tuple = field(default_factory=_default_sources)
    pink_v: float = 4e-6
    white_v: float = 1e-6
    line_freq: float = 50.0
    line_v: float = 5e-6
    bad_channels: tuple = ("FC5",)
    seed: int = 0


def unseen_eeg_spec(**overrides) -> EEGSimSpec:
    """A study unlike the demo's: 64-channel BioSemi montage, 512 Hz, 60 Hz mains, later sources.

    The early layer (stage2) drives occipital channels at 150 ms and the late layer (stage6)
    temporal channels at 300 ms; task ``view``, three subjects, two runs each.

    Parameters
    ----------
    **overrides
        Fields of :class:`EEGSimSpec` to change.

    Returns
    -------
    spec : EEGSimSpec
    """
    spec = EEGSimSpec(
        task="view",
        montage="biosemi64",
        channels=None,
        sfreq=512.0,
        n_subjects=3,
        n_repeats=4,
        n_runs=2,
        soa_range_s=(0.9, 1.1),
        sources=(
            PlantedSource("early", "stem", 0.150, 0.025, region="occipital"),
            PlantedSource("late", "stage6", 0.300, 0.040, region="temporal"),
        ),
        line_freq=60.0,
        bad_channels=("F6",),
        seed=7,
    )
    return replace(spec, **overrides)


def resolve_montage(name: str):
    """An MNE built-in montage by name (no download; deprecated aliases mapped to their target).

    Parameters
    ----------
    name : str
        Montage name, e.g. ``standard_1020`` (= ``colin27_1020``) or ``biosemi64``.

    Returns
    -------
    montage : mne.channels.DigMontage
    """
    import mne

    name = _MONTAGE_ALIASES.get(name, name)
    if name not in mne.channels.get_builtin_montages():
        raise ValueError(
            f"Unknown montage '{name}': expected one of mne.channels.get_builtin_montages()."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return mne.channels.make_standard_montage(name)


def region_channels(ch_names: list[str], region: str) -> list[str]:
    """Channels of a scalp region, chosen by their 10-20 / 10-05 names.

    Parameters
    ----------
    ch_names : list of str
        Candidate channels.
    region : str
        ``occipital`` (O*, PO*, I*) or ``temporal`` (T*, FT*, TP*).

    Returns
    -------
    channels : list of str
        In the order of ``ch_names``.
    """
    if region not in _REGION_PREFIXES:
        raise ValueError(f"Unknown region '{region}': expected one of {sorted(_REGION_PREFIXES)}.")
    prefixes = _REGION_PREFIXES[region]
    out = []
    for ch in ch_names:
        letters = "".join(c for c in ch if c.isalpha()).upper()
        # the prefix must be the whole alphabetic part (FT9 is temporal, F7 and FC5 are not)
        if letters in prefixes or (letters.endswith("Z") and letters[:-1] in prefixes):
            out.append(ch)
    return out


def _source_channels(spec: EEGSimSpec, ch_names: list[str]) -> dict[str, list[str]]:
    chans = {}
    for src in spec.sources:
        picked = list(src.channels) if src.channels else region_channels(ch_names, src.region)
        missing = sorted(set(picked) - set(ch_names))
        if missing or len(picked) < 2:
            raise ValueError(
                f"Source '{src.name}': channels {picked} must be at least two channels of the "
                f"recording (missing: {missing})."
            )
        chans[src.name] = picked
    return chans


def _pink_noise(rng: np.random.Generator, n_ch: int, n_t: int, sfreq: float) -> np.ndarray:
    """Unit-RMS 1/f noise per channel (FFT-shaped white noise, flat below 1 Hz)."""
    spec = np.fft.rfft(rng.standard_normal((n_ch, n_t)), axis=1)
    freqs = np.fft.rfftfreq(n_t, 1 / sfreq)
    spec *= 1 / np.sqrt(np.maximum(freqs, 1.0))
    out = np.fft.irfft(spec, n=n_t, axis=1)
    return out / out.std(axis=1, keepdims=True)


def simulate_eeg_run(
    spec: EEGSimSpec,
    patterns: dict[str, np.ndarray],
    source_idx: dict[str, np.ndarray],
    stim_idx: np.ndarray,
    n_channels: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One continuous recording: planted responses to a stimulus sequence + noise (V).

    Parameters
    ----------
    spec : EEGSimSpec
    patterns : dict of str to ndarray, shape (n_stimuli, n_source_channels)
        Source name -> each stimulus's pattern on its channels (V at the peak).
    source_idx : dict of str to ndarray of int
        Source name -> indices of its channels.
    stim_idx : ndarray of int
        Stimulus shown at each trial, in order.
    n_channels : int
        Channels of the recording.
    rng : numpy.random.Generator

    Returns
    -------
    data : ndarray, shape (n_channels, n_times)
    onsets : ndarray, shape (n_trials,)
        Onset of every trial (s), on the sample grid.
    """
    sfreq = spec.sfreq
    soas = rng.uniform(*spec.soa_range_s, size=stim_idx.size)
    onsets = spec.lead_in_s + np.concatenate([[0.0], np.cumsum(soas[:-1])])
    onset_samples = np.round(onsets * sfreq).astype(int)
    onsets = onset_samples / sfreq
    n_t = int(np.ceil((onsets[-1] + spec.tail_s) * sfreq))
    data = np.zeros((n_channels, n_t))
    for src in spec.sources:
        n_kernel = int(np.ceil((src.latency_s + 5 * src.width_s) * sfreq)) + 1
        t = np.arange(n_kernel) / sfreq
        profile = np.exp(-0.5 * ((t - src.latency_s) / src.width_s) ** 2)
        idx = source_idx[src.name]
        for trial, stim in enumerate(stim_idx):
            s0 = onset_samples[trial]
            stop = min(s0 + n_kernel, n_t)
            data[idx, s0:stop] += np.outer(patterns[src.name][stim], profile[: stop - s0])
    # background: pink noise mixed across channels (spatially correlated), white sensor noise
    mixing = rng.standard_normal((n_channels, n_channels)) + 2.0 * np.eye(n_channels)
    pink = mixing @ _pink_noise(rng, n_channels, n_t, sfreq)
    pink /= pink.std(axis=1, keepdims=True)
    data += spec.pink_v * pink + spec.white_v * rng.standard_normal((n_channels, n_t))
    # mains: line_freq and its harmonics below Nyquist, channel-specific amplitude and phase
    times = np.arange(n_t) / sfreq
    for k in range(1, 10):
        f = k * spec.line_freq
        if f >= sfreq / 2:
            break
        amp = spec.line_v * (1.0 if k == 1 else 1 / 3) * rng.uniform(0.5, 1.5, n_channels)
        phase = rng.uniform(0, 2 * np.pi, n_channels)
        data += amp[:, None] * np.sin(2 * np.pi * f * times[None, :] + phase[:, None])
    return data, onsets


def _subject_patterns(
    spec: EEGSimSpec, features: dict[str, np.ndarray], source_idx: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Each source's stimulus patterns: a random rotation of its layer's leading components.

    The layer's z-scored features are reduced to their ``k`` leading principal component scores
    (``k`` = the source's channels), which a random orthogonal matrix (drawn per subject) mixes
    onto the channels: the best ``k``-channel picture of the layer's stimulus geometry, so the
    channels' RDM resembles the layer's RDM far more than a random projection of all units
    would, and a layer stays distinguishable from the others.
    """
    patterns = {}
    for src in spec.sources:
        f = features[src.layer].astype(np.float64)
        f = (f - f.mean(0)) / np.where(f.std(0) > 0, f.std(0), 1.0)
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        n_ch = source_idx[src.name].size
        k = min(n_ch, int((s > s[0] * 1e-10).sum()))
        rotation, _ = np.linalg.qr(rng.standard_normal((n_ch, n_ch)))
        p = (u[:, :k] * s[:k]) @ rotation[:k]
        patterns[src.name] = src.amplitude_v * p / p.std(0).mean()
    return patterns


def _trial_order(rng: np.random.Generator, n_stim: int, n_repeats: int, n_runs: int) -> list:
    """Every stimulus ``n_repeats`` times: one random permutation per repeat, split over runs."""
    if n_repeats < 2 or n_repeats % n_runs:
        raise ValueError(
            f"n_repeats ({n_repeats}) must be >= 2 and a multiple of n_runs ({n_runs})."
        )
    per_run = n_repeats // n_runs
    return [
        np.concatenate([rng.permutation(n_stim) for _ in range(per_run)]) for _ in range(n_runs)
    ]


def write_eeg_bids(
    bids_root: str | Path,
    spec: EEGSimSpec,
    stimuli: pd.DataFrame,
    features: dict[str, np.ndarray],
) -> dict:
    """Write every subject's simulated EEG into a BIDS dataset with mne-bids.

    Top-level files the dataset already has (dataset_description.json, participants.tsv/json,
    README) are kept as they were: mne-bids would otherwise add its own rows and text.

    Parameters
    ----------
    bids_root : str or Path
        BIDS folder (existing or new).
    spec : EEGSimSpec
    stimuli : pandas.DataFrame
        One row per stimulus, in the rows order of ``features``; column ``stim_file`` (relative
        to stimuli/) and optionally ``shape`` (becomes ``trial_type``), ``colour``,
        ``orientation_deg``.
    features : dict of str to ndarray, shape (n_stimuli, n_features)
        Activations of every planted layer.

    Returns
    -------
    truth : dict
        The planted truth (for truth.json): parameters, sources with their channels, subjects.
    """
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    bids_root = Path(bids_root)
    bids_root.mkdir(parents=True, exist_ok=True)
    montage = resolve_montage(spec.montage)
    ch_names = list(spec.channels) if spec.channels else list(montage.ch_names)
    unknown = sorted(set(ch_names) - set(montage.ch_names))
    if unknown:
        raise ValueError(f"Channels {unknown} are not in montage '{spec.montage}'.")
    chans = _source_channels(spec, ch_names)
    source_idx = {k: np.array([ch_names.index(c) for c in v]) for k, v in chans.items()}
    bad = [c for c in spec.bad_channels if c in ch_names]
    if set(bad) & {c for v in chans.values() for c in v}:
        raise ValueError(f"Bad channels {bad} must not be driven by a planted source.")
    n_stim = len(stimuli)
    trial_type = stimuli["shape"] if "shape" in stimuli else pd.Series(["stimulus"] * n_stim)
    levels = sorted(set(trial_type))
    event_id = {name: i + 1 for i, name in enumerate(levels)}
    extra = [c for c in ("colour", "orientation_deg") if c in stimuli]

    keep = {
        name: (bids_root / name).read_bytes()
        for name in ("dataset_description.json", "participants.tsv", "participants.json",
                     "README", "CHANGES")
        if (bids_root / name).is_file()
    }
    rng = np.random.default_rng([spec.seed, 5])
    subjects = [f"{i + 1:02d}" for i in range(spec.n_subjects)]
    for s_i, sub in enumerate(subjects):
        patterns = _subject_patterns(spec, features, source_idx, rng)
        for run, order in enumerate(_trial_order(rng, n_stim, spec.n_repeats, spec.n_runs), 1):
            data, onsets = simulate_eeg_run(spec, patterns, source_idx, order, len(ch_names),
                                            rng)
            for c in bad:  # a bad channel: strong extra noise
                data[ch_names.index(c)] += 40e-6 * rng.standard_normal(data.shape[1])
            # per-channel DC offsets, as an amplifier records them
            data += rng.uniform(-20e-6, 20e-6, (len(ch_names), 1))
            info = mne.create_info(ch_names, spec.sfreq, "eeg")
            raw = mne.io.RawArray(data, info, verbose="error")
            raw.set_montage(montage, verbose="error")
            raw.info["line_freq"] = spec.line_freq
            raw.info["bads"] = list(bad)
            raw.set_meas_date(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
                              + timedelta(days=s_i, hours=run))
            samples = np.round(onsets * spec.sfreq).astype(int)
            events = np.column_stack([samples, np.zeros_like(samples),
                                      [event_id[trial_type.iloc[i]] for i in order]])
            meta = pd.DataFrame({"stim_file": stimuli["stim_file"].to_numpy()[order]})
            for c in extra:
                meta[c] = stimuli[c].to_numpy()[order]
            descriptions = {
                "stim_file": "Image shown, relative to stimuli/",
                "colour": "Stripe colour (low-level factor)",
                "orientation_deg": "Stripe orientation in degrees (low-level factor)",
            }
            path = BIDSPath(subject=sub, task=spec.task, run=run, datatype="eeg",
                            root=bids_root)
            with warnings.catch_warnings():  # the dataset's own description is kept (below)
                warnings.filterwarnings("ignore", message="Conflicting BIDSVersion")
                write_raw_bids(raw, path, events=events, event_id=event_id,
                               event_metadata=meta,
                               extra_columns_descriptions={c: descriptions[c] for c in meta},
                               format="BrainVision", allow_preload=True, overwrite=True,
                               verbose="error")
            _finish_events(path, spec.stim_duration_s, {v: k for k, v in event_id.items()})
    for name, content in keep.items():
        (bids_root / name).write_bytes(content)
    return {
        "datatype": "eeg",
        "task": spec.task,
        "spec": _jsonable(asdict(spec)),
        "channels": ch_names,
        "bad_channels": bad,
        "sources": [
            {"name": s.name, "layer": s.layer, "latency_s": s.latency_s, "width_s": s.width_s,
             "amplitude_v": s.amplitude_v, "channels": chans[s.name]}
            for s in spec.sources
        ],
        "subjects": subjects,
        "note": (
            "Each source's channels carry, after every stimulus onset, a fixed per-subject "
            "random rotation of the k leading principal components (k = its channels) of the "
            "z-scored, 4x4-pooled stimulus features of its layer (EfficientNet-Lite0, shipped "
            "weights), times a Gaussian in time peaking at latency_s (sd width_s); plus "
            "spatially correlated pink noise, white noise and line noise at line_freq."
        ),
    }


def _finish_events(path, duration: float, names: dict[int, str]) -> None:
    """Set what mne-bids leaves out of events given as an array: durations and trial_type."""
    events_tsv = path.copy().update(suffix="events", extension=".tsv").fpath
    table = pd.read_csv(events_tsv, sep="\t", dtype=str, keep_default_na=False)
    table["duration"] = f"{duration:g}"
    if "trial_type" not in table:
        table.insert(2, "trial_type", [names[int(v)] for v in table["value"]])
    table.to_csv(events_tsv, sep="\t", index=False)
    sidecar = events_tsv.with_suffix(".json")
    desc = json.loads(sidecar.read_text())
    desc["trial_type"] = {
        "Description": "Category of the stimulus (its shape)",
        "Levels": {name: f"a {name}" for name in sorted(names.values())},
    }
    sidecar.write_text(json.dumps(desc, indent=4) + "\n")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def make_eeg_study(
    outdir: str | Path,
    spec: EEGSimSpec | None = None,
    *,
    stimulus_subset: int | None = None,
) -> Path:
    """Write an EEG-only BIDS study with planted timing: ``outdir/bids`` and ``outdir/truth.json``.

    The stimuli are the demo's images (``brainalign.demo``); no fMRI.

    Parameters
    ----------
    outdir : str or Path
        New folder.
    spec : EEGSimSpec, optional
        Default :func:`unseen_eeg_spec` (a study unlike the demo's).
    stimulus_subset : int, optional
        Use only this many of the demo's stimuli (every k-th one), e.g. for speed.

    Returns
    -------
    bids_dir : Path
    """
    from brainalign import __version__
    from brainalign.demo import _planted_features, _stimulus_table, draw_stimulus

    spec = spec or unseen_eeg_spec()
    outdir = Path(outdir)
    if outdir.exists():
        raise FileExistsError(f"Output folder {outdir} already exists: expected a new path.")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.partial-", dir=outdir.parent))
    try:
        bids = tmp / "bids"
        (bids / "stimuli").mkdir(parents=True)
        stim = _stimulus_table()
        if stimulus_subset:
            step = max(1, len(stim) // stimulus_subset)
            stim = stim.iloc[::step][:stimulus_subset].reset_index(drop=True)
        paths = []
        for row in stim.itertuples():
            paths.append(bids / "stimuli" / row.stim_file)
            draw_stimulus(row.shape, row.colour, row.orientation_deg).save(paths[-1])
        layers = sorted({s.layer for s in spec.sources})
        feats = _planted_features(paths, layers, 4)
        feats = {k: v.astype(np.float64) for k, v in feats.items()}
        truth_eeg = write_eeg_bids(bids, spec, stim, feats)
        (bids / "dataset_description.json").write_text(json.dumps({
            "Name": "brainalign simulated EEG study with planted layer timing",
            "BIDSVersion": "1.10.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["brainalign"],
            "GeneratedBy": [{"Name": "brainalign.meeg.simulate", "Version": __version__}],
        }, indent=2) + "\n")
        (bids / "README").write_text(
            f"Simulated EEG study (seed {spec.seed}), written by brainalign.meeg.simulate.\n"
            "The planted truth is in ../truth.json.\n")
        subjects = truth_eeg["subjects"]
        pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects],
                      "age": [25 + i for i in range(len(subjects))]}).to_csv(
            bids / "participants.tsv", sep="\t", index=False)
        (bids / "participants.json").write_text(json.dumps(
            {"age": {"Description": "Age", "Units": "year"}}, indent=2) + "\n")
        truth = {"model": "efficientnet_lite0", "meeg": truth_eeg,
                 "stimuli": stim.to_dict(orient="list")}
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
        tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir / "bids"
