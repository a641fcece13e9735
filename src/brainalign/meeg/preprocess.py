"""M/EEG preprocessing with MNE: one small function per step, each returning what it changed.

Every function works on an MNE object in memory (no files, no Snakemake) and returns a plain,
JSON-ready ``dict`` that says what the step did and what it removed; the step function
:func:`brainalign.meeg.steps.step_meeg_preprocess` reads the run, chains them in the order of
mne-bids-pipeline and writes the epochs and the log. Every operation is MNE's own
(``Raw.filter``, ``Raw.notch_filter``, ``Raw.resample``, ``Raw.interpolate_bads``,
``Raw.set_eeg_reference``, ``mne.preprocessing.ICA``, ``mne.Epochs``, ``Epochs.drop_bad``) or
autoreject's; nothing here reimplements them.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError, ConfigError

__all__ = [
    "DATA_CH_TYPES",
    "meeg_config_with_defaults",
    "read_raw",
    "ensure_montage",
    "pick_channel_types",
    "notch_frequencies",
    "apply_notch",
    "apply_bandpass",
    "apply_resample",
    "handle_bad_channels",
    "apply_reference",
    "apply_ica",
    "stimulus_events",
    "make_epochs",
    "reject_epochs",
    "drop_log_table",
    "keep_analysed_channels",
]

logger = logging.getLogger(__name__)

#: Channel types the M/EEG branch analyses (``meeg.ch_types``).
DATA_CH_TYPES = ("eeg", "mag", "grad")
#: Channel types kept next to the analysed ones for artefact detection (ICA, rejection).
ARTEFACT_CH_TYPES = ("eog", "ecg")


def meeg_config_with_defaults(config: Mapping | None) -> dict:
    """Fill the ``meeg`` config section's missing keys with the schema's defaults.

    Parameters
    ----------
    config : Mapping or None
        The ``meeg`` section (already validated by :func:`brainalign.config.validate_config`
        in the workflow; tests may pass a partial one).

    Returns
    -------
    config : dict
        A copy with every key of the schema's ``meeg`` section.
    """
    from brainalign.config import load_schema

    props = load_schema()["properties"]["meeg"]["properties"]
    out = {k: copy.deepcopy(v["default"]) for k, v in props.items() if "default" in v}
    out.update(copy.deepcopy(dict(config or {})))
    return out


# --------------------------------------------------------------------------------------------
# reading


def read_raw(raw_path: str) -> tuple[Any, dict]:
    """Read one BIDS recording with mne-bids, its data loaded.

    ``channels.tsv`` bad channels and ``electrodes.tsv`` positions come with it; when the EEG
    channels have no positions, see :func:`ensure_montage`.

    Parameters
    ----------
    raw_path : str
        The recording inside a BIDS dataset.

    Returns
    -------
    raw : mne.io.Raw
    record : dict
        ``input``, the BIDS entities (``subject``, ``session``, ``task``, ``run``), ``sfreq``,
        ``n_times``, ``line_freq`` (the sidecar's PowerLineFrequency),
        ``bads`` (channels.tsv), ``ch_types`` (count per channel type).
    """
    import mne_bids

    bids_path = mne_bids.get_bids_path_from_fname(raw_path, verbose=False)
    raw = mne_bids.read_raw_bids(bids_path, verbose=False)
    raw.load_data(verbose=False)
    types = Counter(raw.get_channel_types())
    record = {
        "input": str(raw_path),
        "subject": bids_path.subject, "session": bids_path.session, "task": bids_path.task,
        "run": bids_path.run,
        "sfreq": float(raw.info["sfreq"]),
        "n_times": int(raw.n_times),
        "line_freq": None if raw.info["line_freq"] is None else float(raw.info["line_freq"]),
        "bads": list(raw.info["bads"]),
        "ch_types": dict(sorted(types.items())),
    }
    return raw, record


def _has_eeg_positions(raw) -> bool:
    """Whether every EEG channel has a finite, non-zero position."""
    import mne

    picks = mne.pick_types(raw.info, eeg=True, exclude=())
    if len(picks) == 0:
        return True
    locs = np.array([raw.info["chs"][i]["loc"][:3] for i in picks])
    return bool(np.all(np.isfinite(locs)) and np.all(np.linalg.norm(locs, axis=1) > 0))


def ensure_montage(raw) -> dict:
    """Give EEG channels standard 10-20 positions when the dataset has none and names allow.

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place.

    Returns
    -------
    record : dict
        ``source``: ``recording`` (positions from electrodes.tsv / the file), ``standard_1020``
        (set here from the channel names), ``none`` (no positions: interpolation impossible) or
        ``not needed`` (no EEG channels).
    """
    import mne

    eeg = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude=())]
    if not eeg:
        return {"source": "not needed"}
    if _has_eeg_positions(raw):
        return {"source": "recording"}
    montage = mne.channels.make_standard_montage("standard_1020")
    standard = {n.lower() for n in montage.ch_names}
    unknown = [n for n in eeg if n.lower() not in standard]
    if unknown:
        logger.info("EEG channels have no positions and %d are not standard 10-20 names "
                    "(%s): no montage set", len(unknown), ", ".join(unknown[:5]))
        return {"source": "none", "non_standard_channels": unknown}
    raw.set_montage(montage, match_case=False, on_missing="ignore", verbose=False)
    logger.info("EEG channels have no positions in the dataset: set the standard_1020 "
                "montage from their 10-20 names")
    return {"source": "standard_1020"}


# --------------------------------------------------------------------------------------------
# channels and filters


def pick_channel_types(raw, ch_types: Sequence[str] | None) -> tuple[list[str], dict]:
    """Keep the analysed EEG/MEG channel types and any EOG/ECG channels (for artefacts).

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place.
    ch_types : sequence of str or None
        ``meeg.ch_types``; None = every EEG/MEG type the recording has.

    Returns
    -------
    analysed : list of str
        The analysed channel types.
    record : dict
        ``analysed``, ``artefact_channels`` (EOG/ECG kept), ``dropped`` (other channels).

    Raises
    ------
    BIDSInputError
        When the recording has none of the requested channel types.
    """
    present = set(raw.get_channel_types())
    if ch_types is None:
        analysed = [t for t in DATA_CH_TYPES if t in present]
    else:
        analysed = [t for t in ch_types if t in present]
        missing = [t for t in ch_types if t not in present]
        if missing:
            logger.info("channel types %s of meeg.ch_types are not in the recording",
                        ", ".join(missing))
    if not analysed:
        raise BIDSInputError(
            f"The recording has none of the channel types analysed (meeg.ch_types = "
            f"{list(ch_types) if ch_types else list(DATA_CH_TYPES)}); it has "
            f"{', '.join(sorted(present))}. Fix the channel types in channels.tsv or set "
            f"meeg.ch_types to the types it has.")
    keep_types = set(analysed) | set(ARTEFACT_CH_TYPES)
    types = raw.get_channel_types()
    keep = [n for n, t in zip(raw.ch_names, types, strict=True) if t in keep_types]
    dropped = [n for n, t in zip(raw.ch_names, types, strict=True) if t not in keep_types]
    artefact = [n for n, t in zip(raw.ch_names, types, strict=True) if t in ARTEFACT_CH_TYPES]
    raw.pick(keep)
    return analysed, {"analysed": analysed, "artefact_channels": artefact, "dropped": dropped}


def notch_frequencies(notch_freq: Any, line_freq: float | None, sfreq: float) -> list[float]:
    """The notch filter frequencies of ``meeg.notch_freq``.

    Parameters
    ----------
    notch_freq : "auto", number, list of numbers or None
        ``auto`` = ``line_freq`` and its harmonics below the Nyquist frequency.
    line_freq : float or None
        The sidecar's PowerLineFrequency.
    sfreq : float
        Sampling frequency of the data the notch is applied to (Hz).

    Returns
    -------
    freqs : list of float
        Frequencies strictly below the Nyquist frequency (possibly empty).
    """
    nyquist = sfreq / 2.0
    if notch_freq is None:
        return []
    if isinstance(notch_freq, str):
        if notch_freq != "auto":
            raise ConfigError(f"meeg.notch_freq must be auto, a number, a list or null; got "
                              f"{notch_freq!r}. Fix it in your config file.")
        if line_freq is None or line_freq <= 0:
            return []
        return [float(f) for f in np.arange(line_freq, nyquist, line_freq) if f < nyquist]
    freqs = [notch_freq] if np.isscalar(notch_freq) else list(notch_freq)
    return [float(f) for f in freqs if float(f) < nyquist]


def apply_notch(raw, freqs: Sequence[float]) -> dict:
    """Notch-filter every channel at ``freqs`` (``Raw.notch_filter`` with MNE's defaults).

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place.
    freqs : sequence of float
        Empty = no notch.

    Returns
    -------
    record : dict
        ``freqs`` (Hz).
    """
    freqs = [float(f) for f in freqs]
    if freqs:
        raw.notch_filter(freqs, picks="all", verbose="error")
    return {"freqs": freqs}


def apply_bandpass(raw, l_freq: float | None, h_freq: float | None) -> dict:
    """Band-pass (or high-/low-pass) every channel with ``Raw.filter`` and MNE's defaults.

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place.
    l_freq, h_freq : float or None
        Edges (Hz); None = no high-pass / low-pass. A low-pass at or above the Nyquist
        frequency is skipped (logged).

    Returns
    -------
    record : dict
        ``l_freq``, ``h_freq`` (applied, None when not), ``highpass``, ``lowpass`` (the
        data's filter edges afterwards, from ``raw.info``).
    """
    nyquist = raw.info["sfreq"] / 2.0
    if h_freq is not None and h_freq >= nyquist:
        logger.info("low-pass %.3g Hz is at or above the Nyquist frequency (%.3g Hz): skipped",
                    h_freq, nyquist)
        h_freq = None
    if l_freq is not None or h_freq is not None:
        raw.filter(l_freq, h_freq, picks="all", verbose="error")
    return {"l_freq": l_freq, "h_freq": h_freq, "highpass": float(raw.info["highpass"]),
            "lowpass": float(raw.info["lowpass"])}


def apply_resample(raw, sfreq: float | None) -> dict:
    """Resample the raw data (``Raw.resample``) when ``sfreq`` is set and differs.

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place.
    sfreq : float or None
        ``meeg.raw_resample_sfreq``.

    Returns
    -------
    record : dict
        ``sfreq_in``, ``sfreq_out``.
    """
    before = float(raw.info["sfreq"])
    if sfreq is not None and not np.isclose(sfreq, before):
        raw.resample(sfreq, verbose="error")
    return {"sfreq_in": before, "sfreq_out": float(raw.info["sfreq"])}


def handle_bad_channels(raw, interpolate: bool, analysed: Sequence[str]) -> dict:
    """Interpolate (``Raw.interpolate_bads``) or drop the channels marked bad.

    Bad EOG/ECG channels are always dropped (MNE interpolates only EEG/MEG channels).

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place; afterwards ``raw.info["bads"]`` is empty.
    interpolate : bool
        ``meeg.interpolate_bads``.
    analysed : sequence of str
        The analysed channel types.

    Returns
    -------
    record : dict
        ``bads`` (marked bad in channels.tsv), ``interpolated``, ``dropped``, ``action``.

    Raises
    ------
    BIDSInputError
        When bad EEG channels must be interpolated but the channels have no positions.
    """
    bads = list(raw.info["bads"])
    record = {"bads": bads, "interpolated": [], "dropped": [],
              "action": "none" if not bads else ("interpolated" if interpolate else "dropped")}
    if not bads:
        return record
    types = dict(zip(raw.ch_names, raw.get_channel_types(), strict=True))
    data_bads = [b for b in bads if types[b] in analysed]
    other_bads = [b for b in bads if b not in data_bads]
    if interpolate and data_bads:
        if any(types[b] == "eeg" for b in data_bads) and not _has_eeg_positions(raw):
            raise BIDSInputError(
                f"{raw.filenames[0] if raw.filenames else 'the recording'}: channels.tsv marks "
                f"{', '.join(data_bads)} bad and meeg.interpolate_bads is true, but the EEG "
                f"channels have no positions (no electrodes.tsv and not standard 10-20 names). "
                f"Add an electrodes.tsv to the dataset, or set meeg.interpolate_bads: false to "
                f"drop the bad channels instead.")
        raw.info["bads"] = data_bads
        raw.interpolate_bads(reset_bads=True, verbose="error")
        record["interpolated"] = data_bads
    else:
        other_bads = bads
    if other_bads:
        raw.drop_channels(other_bads)
        record["dropped"] = other_bads
    if raw.info["bads"]:
        raw.info["bads"] = []
    return record


def apply_reference(raw, reference: str | Sequence[str] | None) -> dict:
    """Re-reference the EEG channels (``Raw.set_eeg_reference``, applied, not a projector).

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place.
    reference : "average", list of str or None
        ``meeg.eeg_reference``; None keeps the recording's reference.

    Returns
    -------
    record : dict
        ``reference``: what was applied (``average``, the channel list, ``recording``, or
        ``not applicable`` without EEG channels).

    Raises
    ------
    ConfigError
        When a reference channel is not in the recording.
    """
    if "eeg" not in raw.get_channel_types():
        return {"reference": "not applicable"}
    if reference is None:
        return {"reference": "recording"}
    if isinstance(reference, str):
        if reference != "average":
            raise ConfigError(f"meeg.eeg_reference must be average, a list of channels or null; "
                              f"got {reference!r}. Fix it in your config file.")
        raw.set_eeg_reference("average", projection=False, verbose="error")
        return {"reference": "average"}
    missing = [c for c in reference if c not in raw.ch_names]
    if missing:
        raise ConfigError(f"meeg.eeg_reference names channels the recording does not have "
                          f"(after bad channels were dropped): {', '.join(missing)}. It has "
                          f"{', '.join(raw.ch_names)}. Fix meeg.eeg_reference in your config.")
    raw.set_eeg_reference(list(reference), projection=False, verbose="error")
    return {"reference": list(reference)}


# --------------------------------------------------------------------------------------------
# ICA


def _ica_n_components(value: float | int | None) -> float | int | None:
    if value is None:
        return None
    if float(value) >= 1:
        return int(round(float(value)))
    return float(value)


def apply_ica(raw, analysed: Sequence[str], *, algorithm: str = "fastica",
              n_components: float | int | None = 0.99, l_freq: float | None = 1.0,
              eog_threshold: float = 3.0, ecg_threshold: float = 0.1,
              random_state: int = 42) -> dict:
    """Remove EOG/ECG components found by ICA (fitted on a high-passed copy).

    EOG components are those ``ICA.find_bads_eog`` flags (z-score ``eog_threshold``) when the
    recording has EOG channels; ECG components those ``ICA.find_bads_ecg`` flags (CTPS,
    ``ecg_threshold``) when it has ECG channels. Without either, nothing is removed.

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place (the flagged components are removed from it).
    analysed : sequence of str
        Channel types ICA decomposes.
    algorithm : {"fastica", "infomax", "extended_infomax"}
    n_components : int, float or None
        Components (int) or explained variance (float < 1).
    l_freq : float or None
        High-pass of the copy ICA is fitted on (Hz); None = fit on the data as is.
    eog_threshold, ecg_threshold : float
    random_state : int

    Returns
    -------
    record : dict
        ``algorithm``, ``n_components`` (fitted), ``fit_l_freq``, ``eog_channels``,
        ``ecg_channels``, ``excluded`` (one entry per removed component: ``component``,
        ``reason``, ``channel``, ``score``), ``scores`` (per EOG/ECG channel, every
        component's score), ``note``.
    """
    from mne.preprocessing import ICA

    types = raw.get_channel_types()
    eog = [n for n, t in zip(raw.ch_names, types, strict=True) if t == "eog"]
    ecg = [n for n, t in zip(raw.ch_names, types, strict=True) if t == "ecg"]
    method, fit_params = algorithm, None
    if algorithm == "extended_infomax":
        method, fit_params = "infomax", {"extended": True}
    fit_raw = raw
    if l_freq is not None and (raw.info["highpass"] or 0) < l_freq:
        fit_raw = raw.copy().filter(l_freq, None, picks="all", verbose="error")
    ica = ICA(n_components=_ica_n_components(n_components), method=method,
              fit_params=fit_params, random_state=random_state, max_iter="auto",
              verbose="error")
    ica.fit(fit_raw, picks=list(analysed), verbose="error")
    record: dict[str, Any] = {
        "algorithm": algorithm, "n_components": int(ica.n_components_),
        "fit_l_freq": l_freq, "eog_channels": eog, "ecg_channels": ecg,
        "excluded": [], "scores": {}, "note": "",
    }
    n_fit = int(ica.n_components_)
    max_z = (n_fit - 1) / np.sqrt(n_fit)
    if eog and max_z <= eog_threshold:
        msg = (f"ICA has {n_fit} components, so no EOG z-score can exceed {max_z:.2f}, below "
               f"meeg.ica_eog_threshold {eog_threshold:g}: no EOG component can be found. "
               f"Lower meeg.ica_eog_threshold or raise meeg.ica_n_components")
        logger.warning(msg)
        record["warnings"] = [msg]
    excluded: dict[int, dict] = {}
    for kind, channels, find, thr in (
            ("eog", eog, "find_bads_eog", eog_threshold),
            ("ecg", ecg, "find_bads_ecg", ecg_threshold)):
        for ch in channels:
            kwargs = {"method": "ctps"} if kind == "ecg" else {}
            idx, scores = getattr(ica, find)(fit_raw, ch_name=ch, threshold=thr,
                                             verbose="error", **kwargs)
            scores = np.atleast_1d(np.asarray(scores, dtype=float)).ravel()
            record["scores"][ch] = [float(s) for s in scores]
            for i in idx:
                i = int(i)
                if i not in excluded:
                    excluded[i] = {"component": i, "reason": kind, "channel": ch,
                                   "score": float(scores[i]), "threshold": float(thr)}
    if not eog and not ecg:
        record["note"] = ("no EOG or ECG channels: ICA found nothing to remove and removed "
                          "nothing")
    elif not excluded:
        record["note"] = "no component passed the EOG/ECG thresholds: nothing removed"
    else:
        record["note"] = f"removed {len(excluded)} component(s)"
    record["excluded"] = [excluded[i] for i in sorted(excluded)]
    if excluded:
        ica.apply(raw, exclude=sorted(excluded), verbose="error")
    return record


# --------------------------------------------------------------------------------------------
# epochs


def stimulus_events(events: pd.DataFrame, stimuli: Sequence[str], stim_column: str,
                    *, where: str = "events.tsv") -> pd.DataFrame:
    """The rows of an events table that present one of the study's stimuli.

    Parameters
    ----------
    events : pandas.DataFrame
        The run's events.tsv (read with :func:`brainalign.io.read_tsv`).
    stimuli : sequence of str
        The study's stimuli.
    stim_column : str
        ``meeg.stim_column``.
    where : str
        The file, for messages.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``trial`` (row index in events.tsv), ``onset`` (s) and ``stim_file``, in
        events.tsv order.

    Raises
    ------
    BIDSInputError
        When a column is missing.
    """
    for col in ("onset", stim_column):
        if col not in events.columns:
            raise BIDSInputError(f"{where} has no {col!r} column (columns: "
                                 f"{', '.join(events.columns)}). Add it, or set "
                                 f"meeg.stim_column to the column naming each stimulus.")
    stim = events[stim_column]
    keep = stim.notna() & stim.astype(str).isin(set(stimuli)) & events["onset"].notna()
    return pd.DataFrame({
        "trial": np.flatnonzero(keep.to_numpy()).astype(int),
        "onset": events.loc[keep, "onset"].astype(float).to_numpy(),
        "stim_file": stim[keep].astype(str).to_numpy(),
    })


def make_epochs(raw, table: pd.DataFrame, *, tmin: float, tmax: float,
                baseline: Sequence[float | None] | None, decim: int = 1) -> tuple[Any, dict]:
    """Cut epochs around each stimulus onset (``mne.Epochs``; no rejection here).

    Parameters
    ----------
    raw : mne.io.Raw
    table : pandas.DataFrame
        :func:`stimulus_events`; becomes the epochs' ``metadata``.
    tmin, tmax : float
        Epoch limits relative to onset (s).
    baseline : pair or None
    decim : int
        Keep every n-th sample.

    Returns
    -------
    epochs : mne.Epochs
        Preloaded; epochs that do not fit in the recording are dropped (``NO_DATA`` /
        ``TOO_SHORT`` in ``drop_log``).
    record : dict
        ``n_events``, ``tmin``, ``tmax``, ``baseline``, ``decim``, ``sfreq`` (after
        decimation), ``warnings``.
    """
    import mne

    sfreq = raw.info["sfreq"]
    samples = raw.first_samp + np.round(table["onset"].to_numpy() * sfreq).astype(int)
    events = np.column_stack([samples, np.zeros(len(samples), int), np.ones(len(samples), int)])
    warnings = []
    lowpass = raw.info["lowpass"]
    new_sfreq = sfreq / decim
    if decim > 1 and (lowpass is None or new_sfreq < 3 * lowpass):
        msg = (f"epochs_decim={decim} gives {new_sfreq:g} Hz, less than 3 x the low-pass "
               f"({lowpass:g} Hz): frequencies near the low-pass may alias; lower "
               f"meeg.h_freq or meeg.epochs_decim")
        logger.warning(msg)
        warnings.append(msg)
    bl = None if baseline is None else tuple(baseline)
    epochs = mne.Epochs(raw, events, event_id={"stimulus": 1}, tmin=tmin, tmax=tmax,
                        baseline=bl, decim=decim, metadata=table.reset_index(drop=True),
                        reject=None, flat=None, preload=True, reject_by_annotation=False,
                        event_repeated="drop", verbose="error")
    return epochs, {"n_events": int(len(table)), "tmin": float(tmin), "tmax": float(tmax),
                    "baseline": None if bl is None else list(bl), "decim": int(decim),
                    "sfreq": float(epochs.info["sfreq"]), "warnings": warnings}


def reject_epochs(epochs, reject: Mapping[str, float] | str | None, *,
                  random_state: int = 42,
                  autoreject_params: Mapping | None = None) -> tuple[Any, dict]:
    """Reject epochs by peak-to-peak thresholds, global autoreject or local autoreject.

    Parameters
    ----------
    epochs : mne.Epochs
        Preloaded; not modified when ``reject`` is ``autoreject_local`` (a cleaned copy is
        returned), modified in place otherwise.
    reject : dict, "autoreject_global", "autoreject_local" or None
        ``meeg.reject``: thresholds per channel type (V, T, T/m) for ``Epochs.drop_bad``;
        ``autoreject_global`` computes them with ``autoreject.get_rejection_threshold``;
        ``autoreject_local`` runs ``autoreject.AutoReject`` (per-channel thresholds, bad
        channels interpolated per epoch).
    random_state : int
    autoreject_params : Mapping, optional
        Extra keyword arguments of ``autoreject.AutoReject`` (``n_interpolate``,
        ``consensus``, ``cv``); autoreject's defaults when None.

    Returns
    -------
    epochs : mne.Epochs
    record : dict
        ``method``, ``thresholds`` (per channel type, those used), ``ignored`` (threshold
        keys of absent channel types), and for autoreject_local ``channel_thresholds`` and
        ``interpolated_per_epoch``.

    Raises
    ------
    BIDSInputError
        autoreject_local on EEG channels without positions.
    ConfigError
        An unknown ``reject`` string.
    """
    if reject is None:
        return epochs, {"method": "none", "thresholds": {}}
    present = set(epochs.get_channel_types())
    if isinstance(reject, str):
        import autoreject

        data_types = [t for t in DATA_CH_TYPES if t in present]
        if reject == "autoreject_global":
            thresholds = autoreject.get_rejection_threshold(
                epochs, random_state=random_state, ch_types=data_types, verbose=False)
            thresholds = {k: float(v) for k, v in thresholds.items()}
            epochs.drop_bad(reject=thresholds, verbose="error")
            logger.info("autoreject_global thresholds: %s", thresholds)
            return epochs, {"method": reject, "thresholds": thresholds}
        if reject == "autoreject_local":
            import mne

            if "eeg" in data_types and not _has_eeg_positions(epochs):
                raise BIDSInputError(
                    "meeg.reject is autoreject_local, which interpolates channels, but the EEG "
                    "channels have no positions (no electrodes.tsv and not standard 10-20 "
                    "names). Add an electrodes.tsv to the dataset, or use peak-to-peak "
                    "thresholds or autoreject_global in meeg.reject.")

            ar = autoreject.AutoReject(random_state=random_state, n_jobs=1, verbose=False,
                                       picks=data_types, **dict(autoreject_params or {}))
            with mne.use_log_level("error"):
                ar.fit(epochs)
                clean, rlog = ar.transform(epochs, return_log=True)
            per_channel = {ch: float(v) for ch, v in ar.threshes_.items()}
            interp = rlog.labels == 2
            record = {
                "method": reject, "thresholds": {}, "channel_thresholds": per_channel,
                "interpolated_per_epoch": [int(n) for n in np.nansum(interp, axis=1)],
            }
            return clean, record
        raise ConfigError(f"meeg.reject must be a dict of thresholds, autoreject_global, "
                          f"autoreject_local or null; got {reject!r}. Fix it in your config.")
    thresholds = {k: float(v) for k, v in reject.items() if k in present}
    ignored = sorted(k for k in reject if k not in present)
    if ignored:
        logger.info("meeg.reject thresholds for absent channel types ignored: %s",
                    ", ".join(ignored))
    if thresholds:
        epochs.drop_bad(reject=thresholds, verbose="error")
    return epochs, {"method": "peak_to_peak", "thresholds": thresholds, "ignored": ignored}


def drop_log_table(epochs, table: pd.DataFrame) -> list[dict]:
    """Every dropped epoch with its reasons (from ``epochs.drop_log``).

    Parameters
    ----------
    epochs : mne.Epochs
        After rejection; its ``drop_log`` has one entry per row of ``table``.
    table : pandas.DataFrame
        The epochs' original events (:func:`stimulus_events`).

    Returns
    -------
    dropped : list of dict
        ``trial``, ``stim_file``, ``onset``, ``reasons`` (channel names that exceeded a
        threshold, or MNE's codes such as ``NO_DATA``, or ``AUTOREJECT``).
    """
    out = []
    for i, reasons in enumerate(epochs.drop_log):
        if reasons:
            row = table.iloc[i]
            out.append({"trial": int(row["trial"]), "stim_file": str(row["stim_file"]),
                        "onset": float(row["onset"]), "reasons": [str(r) for r in reasons]})
    return out


def keep_analysed_channels(epochs, analysed: Sequence[str]) -> list[str]:
    """Drop the EOG/ECG channels once artefacts are handled.

    Parameters
    ----------
    epochs : mne.Epochs
        Modified in place.
    analysed : sequence of str

    Returns
    -------
    dropped : list of str
    """
    types = epochs.get_channel_types()
    dropped = [n for n, t in zip(epochs.ch_names, types, strict=True) if t not in analysed]
    if dropped:
        epochs.drop_channels(dropped)
        # thresholds of the dropped types stay with the epochs and would stop
        # mne.read_epochs ("No EOG channel found"): keep those of the analysed types
        for attr in ("reject", "flat"):
            limits = getattr(epochs, attr)
            if limits:
                setattr(epochs, attr, {k: v for k, v in limits.items() if k in analysed}
                        or None)
    return dropped
