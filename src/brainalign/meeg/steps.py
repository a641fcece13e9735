"""Steps of the M/EEG domain: one function per rule of ``rules/meeg.smk``.

They read and write files; the maths lives in :mod:`brainalign.meeg.preprocess`,
:mod:`brainalign.meeg.responses`, :mod:`brainalign.meeg.stats`, :mod:`brainalign.rsa.temporal`,
:mod:`brainalign.rsa.fusion` and :mod:`brainalign.encoding.temporal`.

File contracts
--------------
Responses npz (:meth:`DerivPaths.meeg_responses`)
    ``responses``, ``half1``, ``half2``: (n_stimuli, n_channels, n_times) float64, the mean over
    all / odd / even repeats of each stimulus (``half2`` NaN for a stimulus with a single
    epoch); ``n_repeats`` (n_stimuli,); ``stimuli``
    (n_stimuli,) str, the study's stimulus order restricted to the stimuli this subject saw;
    ``channels``, ``ch_types`` (n_channels,) str; ``rois`` (n_groups,) str and ``roi_masks``
    (n_groups, n_channels) bool, the channel groups (``meeg.rois``; one group named after the
    datatype by default); ``times`` (n_times,) s; ``sfreq`` (); ``noise_ceiling``
    (n_channels, n_times), the split-half noise ceiling per channel and time point (same
    definition as the fMRI voxel ceiling).
RDMs npz (:meth:`DerivPaths.meeg_rdms`)
    ``rois``, ``times``, ``stimuli``; per group ``rdm_<roi>`` (n_times, n_pairs) condensed RDMs,
    ``ceiling_<roi>`` and ``ceiling_lower_<roi>`` (n_times,) split-half RDM ceilings. With
    ``meeg.rsa.window`` w > 1, ``times`` are the centres of the windows that fit in the epoch
    (n_times = the responses' samples - w + 1).
Time score tables (:meth:`DerivPaths.meeg_rsa_scores`, ``meeg_encoding_scores``,
``meeg_fusion_scores``)
    TSV with the columns of ``group/scores.tsv`` (:data:`brainalign.report.scores.SCORE_COLUMNS`)
    that apply, plus ``modality`` (eeg or meg) and ``time`` (s): one row per subject, channel
    group (``roi``), model, layer and time point. Fusion rows have ``analysis`` fusion,
    ``model`` fmri and ``layer`` the fMRI ROI.
Group tables (:meth:`DerivPaths.meeg_clusters`, ``meeg_peaks``)
    Clusters: ``analysis, modality, roi, model, layer, t_start, t_stop, cluster_stat, p_value,
    significant, n_subjects``. Peaks: ``analysis, modality, roi, model, layer, peak_time,
    ci_low, ci_high, peak_score, n_subjects``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from brainalign.errors import BIDSInputError
from brainalign.io import atomic_output, read_tsv, save_json

__all__ = [
    "step_meeg_preprocess",
    "step_meeg_responses",
    "step_meeg_rdms",
    "step_meeg_rsa",
    "step_meeg_encoding",
    "step_meeg_fusion",
    "step_meeg_group",
]

logger = logging.getLogger(__name__)


def step_meeg_preprocess(raw: str, events: str, *, datatype: str, stimuli: Sequence[str],
                         config: Mapping, epochs_out: str, log_out: str) -> None:
    """Preprocess one M/EEG run and cut epochs around its stimuli (rule meeg_preprocess).

    Parameters
    ----------
    raw : str
        The run's raw recording in the BIDS dataset (read with ``mne_bids.read_raw_bids``, so
        channels.tsv bad channels and electrodes.tsv positions come with it).
    events : str
        The run's events.tsv.
    datatype : str
        ``eeg`` or ``meg``.
    stimuli : sequence of str
        The study's stimuli (``stim_file`` values, relative to stimuli/).
    config : Mapping
        The ``meeg`` config section.
    epochs_out : str
        Epochs FIF; ``metadata`` holds ``stim_file``, ``onset`` and ``trial`` per epoch.
    log_out : str
        JSON of what each step removed (bad and interpolated channels, ICA components,
        rejected epochs with reasons, epochs kept per stimulus) and the filter settings.

    Raises
    ------
    BIDSInputError
        When no stimulus event of the run is left after rejection (or none is in events.tsv).
    """
    from brainalign.meeg import preprocess as pp

    cfg = pp.meeg_config_with_defaults(config)
    where = Path(raw).name
    log: dict = {"input": str(raw), "events": str(events), "datatype": datatype, "warnings": []}

    rec_raw, read = pp.read_raw(raw)
    log.update({k: read[k] for k in ("subject", "session", "task", "run")})
    log["sfreq_in"] = read["sfreq"]
    log["recording"] = read
    log["montage"] = pp.ensure_montage(rec_raw)
    analysed, log["channels"] = pp.pick_channel_types(rec_raw, cfg["ch_types"])
    freqs = pp.notch_frequencies(cfg["notch_freq"], read["line_freq"], rec_raw.info["sfreq"])
    notch = pp.apply_notch(rec_raw, freqs)
    notch["setting"] = cfg["notch_freq"]
    bandpass = pp.apply_bandpass(rec_raw, cfg["l_freq"], cfg["h_freq"])
    resample = pp.apply_resample(rec_raw, cfg["raw_resample_sfreq"])
    log["filters"] = {"notch": notch, "bandpass": bandpass, "resample": resample}
    logger.info("%s: notch %s Hz, band-pass %s-%s Hz, sampling rate %g -> %g Hz", where,
                notch["freqs"] or "none", bandpass["l_freq"], bandpass["h_freq"],
                resample["sfreq_in"], resample["sfreq_out"])
    log["bad_channels"] = pp.handle_bad_channels(rec_raw, cfg["interpolate_bads"], analysed)
    logger.info("%s: bad channels (channels.tsv) %s: interpolated %s, dropped %s", where,
                log["bad_channels"]["bads"] or "none", log["bad_channels"]["interpolated"],
                log["bad_channels"]["dropped"])
    log["reference"] = pp.apply_reference(rec_raw, cfg["eeg_reference"])
    logger.info("%s: EEG reference %s", where, log["reference"]["reference"])
    if cfg["spatial_filter"] == "ica":
        log["ica"] = pp.apply_ica(
            rec_raw, analysed, algorithm=cfg["ica_algorithm"],
            n_components=cfg["ica_n_components"], l_freq=cfg["ica_l_freq"],
            eog_threshold=cfg["ica_eog_threshold"], ecg_threshold=cfg["ica_ecg_threshold"],
            random_state=cfg["random_state"])
        log["warnings"] += log["ica"].get("warnings", [])
        logger.info("%s: ICA (%s, %d components): %s %s", where, cfg["ica_algorithm"],
                    log["ica"]["n_components"], log["ica"]["note"],
                    [(e["component"], e["reason"], round(e["score"], 3))
                     for e in log["ica"]["excluded"]])
    else:
        log["ica"] = {"applied": False}

    table = pp.stimulus_events(read_tsv(events), stimuli, cfg["stim_column"], where=events)
    if table.empty:
        raise BIDSInputError(
            f"{events}: no event names one of the study's stimuli in column "
            f"{cfg['stim_column']!r}, so {where} has nothing to epoch. Fill that column with "
            f"stimulus file names (relative to stimuli/) or set meeg.stim_column.")
    epochs, ep = pp.make_epochs(rec_raw, table, tmin=cfg["epochs_tmin"],
                                tmax=cfg["epochs_tmax"], baseline=cfg["baseline"],
                                decim=cfg["epochs_decim"])
    log["warnings"] += ep.pop("warnings")
    epochs, log["rejection"] = pp.reject_epochs(epochs, cfg["reject"],
                                                random_state=cfg["random_state"])
    dropped = pp.drop_log_table(epochs, table)
    log["channels"]["dropped_after_epoching"] = pp.keep_analysed_channels(epochs, analysed)
    kept = epochs.metadata["stim_file"].value_counts()
    log["epochs"] = {
        **ep, "n_total": int(len(table)), "n_kept": int(len(epochs)),
        "n_dropped": int(len(dropped)), "dropped": dropped,
        "drop_reasons": dict(Counter(r for d in dropped for r in d["reasons"]).most_common()),
        "kept_per_stimulus": {s: int(kept.get(s, 0)) for s in dict.fromkeys(table["stim_file"])},
    }
    log["sfreq_out"] = float(epochs.info["sfreq"])
    log["channels"]["saved"] = list(epochs.ch_names)
    reasons = log["epochs"]["drop_reasons"]
    logger.info("%s: %d of %d epochs kept; dropped %d (%s); rejection %s %s; kept per "
                "stimulus %s", where, len(epochs), len(table), len(dropped),
                ", ".join(f"{k}: {v}" for k, v in reasons.items()) or "none",
                log["rejection"]["method"], log["rejection"]["thresholds"],
                log["epochs"]["kept_per_stimulus"])
    if len(epochs) == 0:
        save_json(log, log_out)
        raise BIDSInputError(
            f"{where}: no stimulus epoch is left after rejection (meeg.reject = "
            f"{cfg['reject']!r}; {len(dropped)} of {len(table)} dropped, reasons "
            f"{reasons}; NO_DATA / TOO_SHORT = the epoch window "
            f"[{cfg['epochs_tmin']}, {cfg['epochs_tmax']}] s does not fit in the recording). "
            f"Raise the peak-to-peak thresholds of meeg.reject (V for EEG), use "
            f"autoreject_local or null, or check the recording's units, its bad channels and "
            f"the events' onsets. The log is in {log_out}.")
    with atomic_output(epochs_out) as tmp:
        epochs.save(tmp, overwrite=True, verbose="error")
    save_json(log, log_out)


def step_meeg_responses(epochs: Sequence[str], *, stimuli: Sequence[str], datatype: str,
                        config: Mapping, out: str) -> None:
    """Per-stimulus evoked patterns of one subject, split halves and per-time ceilings.

    Parameters
    ----------
    epochs : sequence of str
        The subject's epochs FIF files (one per run) of this datatype.
    stimuli : sequence of str
        The study's stimuli, in order.
    datatype : str
        ``eeg`` or ``meg``.
    config : Mapping
        The ``meeg`` config section (``ch_types``, ``rois``).
    out : str
        Responses npz (see the module docstring).

    Notes
    -----
    Runs are concatenated in the order given (their epochs in order), so odd/even halves
    follow the chronological order of the repeats, as for fMRI. Channels must be the same in
    every run (bad channels were interpolated by meeg_preprocess; channels left marked bad are
    excluded). A stimulus with a single epoch is kept (its ``half2`` is NaN) and left out of
    the noise ceilings; stimuli without an epoch are left out.
    """
    import mne
    import numpy as np

    from brainalign.errors import ConfigError
    from brainalign.io import save_npz
    from brainalign.meeg.responses import evoked_responses

    ch_types = config.get("ch_types")
    wanted = list(ch_types) if ch_types else ["eeg", "mag", "grad"]
    data, stim_files, ref = [], [], None
    for path in epochs:
        ep = mne.read_epochs(path, preload=True, verbose="error")
        if ep.metadata is None or "stim_file" not in ep.metadata:
            raise BIDSInputError(
                f"{path}: expected epochs metadata with a stim_file column, got "
                f"{None if ep.metadata is None else list(ep.metadata.columns)}. Re-run "
                "meeg_preprocess (it stores each epoch's stimulus in the metadata)."
            )
        types = ep.get_channel_types()
        picks = [i for i, (name, kind) in enumerate(zip(ep.ch_names, types, strict=True))
                 if kind in wanted and name not in ep.info["bads"]]
        if ep.info["bads"]:
            logger.warning("%s: channels still marked bad are left out: %s", path,
                           ep.info["bads"])
        if not picks:
            raise ConfigError(
                f"{path}: no channel of the analysed types: meeg.ch_types expected "
                f"{wanted}, the epochs have {sorted(set(types))}. Set meeg.ch_types to types "
                "the recording has (or null)."
            )
        ep.pick(picks)
        if ref is None:
            ref = ep
        else:
            if sorted(ep.ch_names) != sorted(ref.ch_names):
                raise BIDSInputError(
                    f"{path}: channels differ from {epochs[0]}: expected the same channels in "
                    f"every run, got {sorted(set(ep.ch_names) ^ set(ref.ch_names))} in only "
                    "one of them. Interpolate bad channels (meeg.interpolate_bads: true) or "
                    "mark them bad in every run's channels.tsv."
                )
            ep.reorder_channels(ref.ch_names)
            if ep.times.shape != ref.times.shape or not np.allclose(ep.times, ref.times):
                raise BIDSInputError(
                    f"{path}: epoch times differ from {epochs[0]}: expected "
                    f"{ref.times.size} samples from {ref.times[0]:.4f} s at "
                    f"{ref.info['sfreq']} Hz, got {ep.times.size} from {ep.times[0]:.4f} s at "
                    f"{ep.info['sfreq']} Hz. Record every run at one rate, or set "
                    "meeg.raw_resample_sfreq."
                )
        data.append(ep.get_data())
        stim_files += ep.metadata["stim_file"].astype(str).tolist()
    if ref is None:
        raise BIDSInputError(f"No epochs file for {out}: expected at least one run.")
    if ch_types is None and len(set(ref.get_channel_types())) > 1:
        logger.warning("channel types %s are analysed together: their units differ, so the "
                       "largest dominates distances; set meeg.ch_types to analyse one type",
                       sorted(set(ref.get_channel_types())))
    res = evoked_responses(np.concatenate(data), stim_files, stimuli)
    channels = np.array(ref.ch_names, dtype=str)
    rois = config.get("rois")
    if rois:
        missing = {name: [c for c in chans if c not in set(ref.ch_names)]
                   for name, chans in rois.items()}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            raise ConfigError(
                f"meeg.rois names channels that are not in the analysed data of {epochs[0]}: "
                f"{missing}. Expected names among {list(ref.ch_names)} (types {wanted}). "
                "Fix the channel names or meeg.ch_types."
            )
        names = list(rois)
        masks = np.stack([np.isin(channels, list(rois[n])) for n in names])
    else:
        names = [datatype]
        masks = np.ones((1, channels.size), dtype=bool)
    for name, n in zip(res.stimuli, res.n_repeats, strict=True):
        logger.debug("stimulus %s: %d epochs", name, n)
    logger.info("%d stimuli (%d-%d epochs each), %d channels, %d samples; mean noise ceiling "
                "%.3f", res.stimuli.size, res.n_repeats.min(), res.n_repeats.max(),
                channels.size, ref.times.size, float(np.nanmean(res.noise_ceiling))
                if np.isfinite(res.noise_ceiling).any() else float("nan"))
    save_npz(out, responses=res.responses, half1=res.half1, half2=res.half2,
             n_repeats=res.n_repeats, stimuli=res.stimuli, channels=channels,
             ch_types=np.array(ref.get_channel_types(), dtype=str),
             rois=np.array(names, dtype=str), roi_masks=masks, times=ref.times.copy(),
             sfreq=np.array(float(ref.info["sfreq"])), noise_ceiling=res.noise_ceiling)


def step_meeg_rdms(responses: str, *, distance: str, window: int, comparison: str,
                   out: str) -> None:
    """One RDM per time point (or window) and channel group, with split-half ceilings.

    Parameters
    ----------
    responses : str
        Responses npz.
    distance : str
        Pattern dissimilarity across channels (``meeg.rsa.distance``).
    window : int
        Samples per RDM, centred on each time point (``meeg.rsa.window``).
    comparison : str
        RDM comparison of the split-half ceiling (``rsa.comparison``).
    out : str
        RDMs npz (see the module docstring). ``times`` are the windows' centres
        (:func:`brainalign.rsa.temporal.window_times`): only time points whose whole window
        lies in the epoch get an RDM, as in mne-rsa.

    Notes
    -----
    The ceilings are :func:`brainalign.rsa.temporal.temporal_split_half_ceiling`, the fMRI ROI
    ceiling at every time point, on the stimuli with at least two epochs (NaN when fewer than
    3 have them).
    """
    import numpy as np

    from brainalign.io import save_npz
    from brainalign.rsa import temporal

    with np.load(responses, allow_pickle=False) as z:
        y, h1, h2 = z["responses"], z["half1"], z["half2"]
        n_rep, stimuli, times = z["n_repeats"], z["stimuli"], z["times"]
        rois, masks = z["rois"], z["roi_masks"]
    twice = n_rep >= 2
    arrays = {}
    for name, mask in zip(rois, masks, strict=True):
        arrays[f"rdm_{name}"] = temporal.calc_rdm_temporal(y[:, mask], metric=distance,
                                                           window=window)
        if twice.sum() >= 3:
            lower, upper, r_half = temporal.temporal_split_half_ceiling(
                h1[twice][:, mask], h2[twice][:, mask], n_repeats=n_rep[twice],
                metric=distance, window=window, method=comparison)
        else:
            lower = upper = r_half = np.full(arrays[f"rdm_{name}"].shape[0], np.nan)
            logger.warning("group %s: only %d stimuli have 2 or more epochs: no RDM ceiling",
                           name, int(twice.sum()))
        arrays[f"ceiling_{name}"] = upper
        arrays[f"ceiling_lower_{name}"] = lower
        logger.info("group %s: %d channels, %d RDMs (window %d); split-half RDM r max %.3f, "
                    "ceiling max %.3f-%.3f", name, int(mask.sum()), r_half.size, window,
                    *(np.nanmax(v) if np.isfinite(v).any() else np.nan
                      for v in (r_half, lower, upper)))
    save_npz(out, rois=rois, times=temporal.window_times(times, window), stimuli=stimuli,
             **arrays)


def step_meeg_rsa(rdms: str, layer_rdms: str, *, subject: str, datatype: str, model: str,
                  comparison: str, out: str) -> None:
    """Compare every time point's RDM with every layer RDM of one model.

    Parameters
    ----------
    rdms : str
        The subject's time RDMs npz.
    layer_rdms : str
        The model's layer RDMs npz (the same file the fMRI branch uses).
    subject, datatype, model : str
        Table labels (model: its config name).
    comparison : str
        RDM comparison (``rsa.comparison``).
    out : str
        Time score table (see the module docstring): ``analysis`` rsa, ``subject``, ``roi``
        (channel group), ``model``, ``layer``, ``metric`` (the comparison), ``score``,
        ``noise_ceiling`` (upper split-half ceiling at that time point),
        ``noise_ceiling_lower``, ``normalized_score`` (score / noise_ceiling where the ceiling
        is positive; ``collect_scores`` applies ``report.min_noise_ceiling``), ``modality``
        and ``time``.
    """
    import numpy as np
    import pandas as pd

    from brainalign.io import save_tsv
    from brainalign.report.scores import SCORE_COLUMNS
    from brainalign.rsa import temporal
    from brainalign.rsa.steps import _aligned_layer_rdms

    with np.load(rdms, allow_pickle=False) as r, np.load(layer_rdms, allow_pickle=False) as m:
        aligned = _aligned_layer_rdms(m, r["stimuli"], what=layer_rdms)
        layers, models = list(aligned), np.stack(list(aligned.values()))
        times, rois = r["times"], [str(x) for x in r["rois"]]
        groups = {g: (r[f"rdm_{g}"], r[f"ceiling_{g}"], r[f"ceiling_lower_{g}"]) for g in rois}
    tables = []
    for g, (time_rdms, upper, lower) in groups.items():
        scores = temporal.compare_rdms_temporal(time_rdms, models, method=comparison)
        with np.errstate(invalid="ignore", divide="ignore"):
            normalized = np.where((upper > 0)[:, None], scores / upper[:, None], np.nan)
        for k, layer in enumerate(layers):
            tables.append(pd.DataFrame({
                "analysis": "rsa", "subject": subject, "roi": g, "model": model,
                "layer": layer, "metric": comparison, "score": scores[:, k],
                "noise_ceiling": upper, "normalized_score": normalized[:, k],
                "noise_ceiling_lower": lower, "modality": datatype, "time": times,
            }))
            peak = int(np.argmax(scores[:, k]))
            logger.info("%s x %s %s: peak %s %.3f at %.3f s", g, model, layer, comparison,
                        scores[peak, k], times[peak])
    table = pd.concat(tables, ignore_index=True)
    columns = [c for c in SCORE_COLUMNS if c in table]
    save_tsv(table[columns + [c for c in table if c not in columns]], out)


def step_meeg_encoding(responses: str, features: Mapping[str, str], *, subject: str,
                       datatype: str, model: str, ridge: Mapping, out: str,
                       min_noise_ceiling: float = 0.1) -> None:
    """Ridge from each layer's features to every channel at every time point.

    Parameters
    ----------
    responses : str
        The subject's responses npz.
    features : Mapping of str to str
        Layer name -> features npz.
    subject, datatype, model : str
        Table labels.
    ridge : Mapping
        ``encoding.ridge`` (alphas, folds, seed).
    out : str
        Time score table: per channel group and time point, the mean cross-validated r over its
        channels (``score``, metric ``pearson_r``), the mean of the channels' split-half noise
        ceilings (``noise_ceiling``, r units as the fMRI voxel ceiling), ``normalized_score``
        = score / noise_ceiling where that ceiling reaches ``min_noise_ceiling`` (n/a
        elsewhere), ``n_channels``, ``median_alpha`` (over the group's channels and the outer
        folds), ``ceiling_method`` (split_half), ``modality`` and ``time``.
    min_noise_ceiling : float
        ``report.min_noise_ceiling``: smaller ceilings (e.g. in the baseline) give no
        normalized score.

    Notes
    -----
    Every channel and time point is a target of one ridge fit per layer
    (:func:`brainalign.encoding.temporal.time_resolved_ridge`): one decomposition per fold
    serves them all, each keeps its own penalty.
    """
    import numpy as np
    import pandas as pd

    from brainalign.encoding.scoring import normalize_by_ceiling
    from brainalign.encoding.temporal import group_time_means, time_resolved_ridge
    from brainalign.errors import DataShapeError
    from brainalign.io import align_rows, read_features, save_tsv

    if not features:
        raise DataShapeError(
            f"No layer features for the encoding of sub-{subject} ({datatype}, model {model}): "
            "expected at least one layer's features npz. Check the model's layers in config."
        )
    with np.load(responses, allow_pickle=False) as z:
        needed = ("responses", "stimuli", "rois", "roi_masks", "times", "noise_ceiling")
        absent = [k for k in needed if k not in z.files]
        if absent:
            raise DataShapeError(
                f"{responses}: no {absent} array(s): expected {list(needed)} in the responses "
                f"npz, got {sorted(z.files)}. Re-run the meeg_responses step."
            )
        resp = {k: z[k] for k in needed}
    Y = resp["responses"]
    if Y.ndim != 3 or resp["noise_ceiling"].shape != Y.shape[1:]:
        raise DataShapeError(
            f"{responses}: 'responses' {Y.shape} and 'noise_ceiling' "
            f"{resp['noise_ceiling'].shape}: expected (n_stimuli, n_channels, n_times) and "
            "(n_channels, n_times). Re-run the meeg_responses step."
        )
    times = resp["times"]
    rois = [str(r) for r in resp["rois"]]
    ceiling = group_time_means(resp["noise_ceiling"], resp["roi_masks"])
    n_channels = resp["roi_masks"].sum(1)
    args = {"alphas": ridge["alphas"], "n_folds": ridge.get("n_folds", 5),
            "n_inner_folds": ridge.get("n_inner_folds", 5), "seed": ridge.get("seed", 0)}
    tables = []
    for layer, path in features.items():
        x, feat_stimuli = read_features(path)
        X = align_rows(x, feat_stimuli, resp["stimuli"], what=path)
        res = time_resolved_ridge(X, Y, **args)
        score = group_time_means(res["r"], resp["roi_masks"])
        alpha = np.stack([np.median(res["alpha"][:, m], axis=(0, 1)) for m in resp["roi_masks"]])
        normalized = normalize_by_ceiling(  # 0 (allowed in config) means: positive ceilings
            score, ceiling, min_ceiling=max(float(min_noise_ceiling), np.finfo(float).tiny))
        for g, roi in enumerate(rois):
            tables.append(pd.DataFrame({
                "analysis": "encoding", "subject": subject, "roi": roi, "model": model,
                "layer": str(layer), "metric": "pearson_r", "score": score[g],
                "noise_ceiling": ceiling[g], "normalized_score": normalized[g],
                "ceiling_method": "split_half", "modality": datatype, "time": times,
                "n_channels": int(n_channels[g]), "median_alpha": alpha[g],
            }))
            peak = int(np.argmax(score[g]))
            logger.info("layer %s, %s: peak r %.3f at %.3f s", layer, roi, score[g][peak],
                        times[peak])
    save_tsv(pd.concat(tables, ignore_index=True), out)


def step_meeg_fusion(rdms: str, fmri_rdms: Sequence[str], *, subject: str, datatype: str,
                     comparison: str, out: str) -> None:
    """M/EEG-fMRI fusion: each time point's RDM against each fMRI ROI's RDM.

    Parameters
    ----------
    rdms : str
        The subject's time RDMs npz.
    fmri_rdms : sequence of str
        fMRI ROI RDM npz files: the same subject's, or every fMRI subject's (averaged) when
        this subject has no fMRI.
    subject, datatype : str
        Table labels.
    comparison : str
        RDM comparison.
    out : str
        Time score table with ``analysis`` fusion, ``model`` fmri, ``layer`` the fMRI ROI,
        ``roi`` the M/EEG channel group, ``metric`` the comparison, ``score``, ``modality``,
        ``time``, ``n_stimuli`` (shared by both modalities) and ``n_fmri_subjects``.
        ``noise_ceiling`` and ``noise_ceiling_lower`` are the M/EEG RDM's split-half ceilings
        at that time point when the fusion uses all its stimuli (they bound any RDM's
        similarity with it, the fMRI RDM's included), n/a otherwise.

    Notes
    -----
    Stimuli are matched by name: the M/EEG stimuli that every fMRI file holds, in the M/EEG
    order. fMRI ROIs are those of every file; the files' RDMs of each ROI are averaged over
    those stimuli (Cichy et al. 2014 compare with the subject-averaged fMRI RDM).
    """
    import numpy as np
    import pandas as pd

    from brainalign.errors import DataShapeError
    from brainalign.io import save_tsv
    from brainalign.rsa.fusion import fusion_scores, shared_stimuli, subset_rdms

    if not fmri_rdms:
        raise DataShapeError(
            f"No fMRI RDM file for the fusion of sub-{subject} ({datatype}): expected at least "
            "one ROI RDM npz of the fMRI branch. Set meeg.fusion: false, or add fMRI runs."
        )
    fmri = []
    for path in fmri_rdms:
        with np.load(path, allow_pickle=False) as z:
            names = [str(r) for r in z["rois"]]
            fmri.append({"path": path, "stimuli": z["stimuli"], "rois": names,
                         "rdms": {r: z[f"rdm_{r}"] for r in names}})
    rois_f = [r for r in fmri[0]["rois"] if all(r in f["rois"] for f in fmri)]
    dropped = sorted({r for f in fmri for r in f["rois"]} - set(rois_f))
    if dropped:
        logger.warning("fMRI ROIs %s are missing from some fMRI RDM files: left out of fusion",
                       dropped)
    if not rois_f:
        raise DataShapeError(
            f"No fMRI ROI common to the fMRI RDM files {list(fmri_rdms)}: expected the same "
            "ROIs (rois) in each. Use the same fmri ROI definitions for every subject."
        )
    with np.load(rdms, allow_pickle=False) as z:
        stim_m = z["stimuli"]
        times = z["times"]
        groups = [str(r) for r in z["rois"]]
        meeg = {g: z[f"rdm_{g}"] for g in groups}
        ceil = {g: (z[f"ceiling_{g}"] if f"ceiling_{g}" in z.files else None,
                    z[f"ceiling_lower_{g}"] if f"ceiling_lower_{g}" in z.files else None)
                for g in groups}
    shared = shared_stimuli(stim_m, *(f["stimuli"] for f in fmri))
    if shared.size < 3:
        raise DataShapeError(
            f"{rdms}: {shared.size} stimuli shared with the fMRI RDMs {list(fmri_rdms)}: "
            "expected at least 3 stimuli seen in both modalities for fusion. Check the "
            "events' stim_file values, or set meeg.fusion: false."
        )
    if shared.size < len(stim_m):
        logger.warning("fusion of sub-%s: %d of the %d M/EEG stimuli are in every fMRI file",
                       subject, shared.size, len(stim_m))
    fmri_stack = np.stack([
        np.mean([subset_rdms(f["rdms"][r], f["stimuli"], shared) for f in fmri], axis=0)
        for r in rois_f
    ])
    all_stimuli = shared.size == len(stim_m)
    tables = []
    for g in groups:
        scores = fusion_scores(subset_rdms(meeg[g], stim_m, shared), fmri_stack,
                               method=comparison)
        upper, lower = ceil[g] if all_stimuli else (None, None)
        for k, roi_f in enumerate(rois_f):
            tables.append(pd.DataFrame({
                "analysis": "fusion", "subject": subject, "roi": g, "model": "fmri",
                "layer": roi_f, "metric": comparison, "score": scores[k],
                "noise_ceiling": np.nan if upper is None else upper,
                "noise_ceiling_lower": np.nan if lower is None else lower,
                "modality": datatype, "time": times, "n_stimuli": int(shared.size),
                "n_fmri_subjects": len(fmri),
            }))
            peak = int(np.nanargmax(scores[k]))
            logger.info("fusion %s x fMRI %s: peak %.3f at %.3f s", g, roi_f, scores[k][peak],
                        times[peak])
    save_tsv(pd.concat(tables, ignore_index=True), out)


def step_meeg_group(tables: Sequence[str], *, stats: Mapping, clusters_out: str,
                    peaks_out: str) -> None:
    """Group statistics over time: cluster permutation tests and bootstrap peak latencies.

    Parameters
    ----------
    tables : sequence of str
        Every subject's time score tables (RSA, encoding, fusion).
    stats : Mapping
        ``meeg.stats``.
    clusters_out, peaks_out : str
        Group tables (see the module docstring); with fewer than two subjects they hold no
        rows and the log says why.

    Notes
    -----
    Each curve (``analysis, modality, roi, model, layer``) with at least two subjects is
    tested on the subjects' raw ``score`` time courses (not ``normalized_score``, which is n/a
    wherever the ceiling is small, e.g. in the baseline), against 0, one-sided
    (:func:`brainalign.meeg.stats.cluster_test`); every cluster formed is a row, ``significant``
    where its p-value is below ``alpha``. The peak is that of the subjects' mean score curve,
    its interval a bootstrap over subjects (:func:`brainalign.meeg.stats.peak_latency`). Time
    points missing in some subject's table are left out of that curve (logged).
    """
    import pandas as pd

    from brainalign.errors import DataShapeError
    from brainalign.io import read_tsv, save_tsv
    from brainalign.meeg.stats import cluster_test, peak_latency

    keys = ["analysis", "modality", "roi", "model", "layer"]
    cluster_cols = [*keys, "t_start", "t_stop", "cluster_stat", "p_value", "significant",
                    "n_subjects"]
    peak_cols = [*keys, "peak_time", "ci_low", "ci_high", "peak_score", "n_subjects"]
    frames = []
    for path in tables:
        t = read_tsv(path)
        absent = [c for c in (*keys, "subject", "time", "score") if c not in t.columns]
        if absent:
            raise DataShapeError(
                f"{path}: no column(s) {absent}: expected a time score table with columns "
                f"{[*keys, 'subject', 'time', 'score']}. Re-run the step that wrote it."
            )
        frames.append(t[[*keys, "subject", "time", "score"]])
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*keys, "subject", "time", "score"])
    data = data[data["subject"].astype(str) != "group"]
    cluster_rows, peak_rows = [], []
    n_subjects_all = data["subject"].nunique()
    if n_subjects_all < 2:
        logger.warning(
            "group statistics skipped: %d subject(s) in the time score tables; cluster tests "
            "and bootstrap peak latencies need at least 2. Writing empty tables.",
            n_subjects_all)
    else:
        data = data.assign(time=data["time"].astype(float).round(9))
        for key, g in data.groupby(keys, sort=True, dropna=False):
            label = dict(zip(keys, key, strict=True))
            curves = g.pivot_table(index="subject", columns="time", values="score",
                                   aggfunc="mean", dropna=False)
            curves = curves.dropna(how="all")
            complete = curves.columns[curves.notna().all(axis=0)]
            if complete.size < curves.shape[1]:
                logger.warning("%s: %d time point(s) missing or n/a in some subject, left out",
                               label, curves.shape[1] - complete.size)
            curves = curves[complete]
            if curves.shape[0] < 2 or curves.shape[1] == 0:
                logger.warning("%s: %d subject(s) with a complete curve: no group statistics "
                               "(at least 2 needed)", label, curves.shape[0])
                continue
            X = curves.to_numpy(float)
            times = curves.columns.to_numpy(float)
            n = X.shape[0]
            clusters, _ = cluster_test(X, times, cluster_p=stats["cluster_p"],
                                       n_permutations=stats["n_permutations"],
                                       seed=stats["seed"])
            for c in clusters:
                cluster_rows.append({**label, "t_start": c["t_start"], "t_stop": c["t_stop"],
                                     "cluster_stat": c["cluster_stat"], "p_value": c["p_value"],
                                     "significant": c["p_value"] < stats["alpha"],
                                     "n_subjects": n})
            peak = peak_latency(X, times, n_bootstrap=stats["n_bootstrap"],
                                ci_percent=stats["ci_percent"], seed=stats["seed"])
            peak_rows.append({**label, **peak, "n_subjects": n})
            logger.info("%s: %d subjects, %d cluster(s) (%d significant), peak %.3f s "
                        "[%.3f, %.3f]", label, n, len(clusters),
                        sum(c["p_value"] < stats["alpha"] for c in clusters),
                        peak["peak_time"], peak["ci_low"], peak["ci_high"])
    save_tsv(pd.DataFrame(cluster_rows, columns=cluster_cols), clusters_out)
    save_tsv(pd.DataFrame(peak_rows, columns=peak_cols), peaks_out)
