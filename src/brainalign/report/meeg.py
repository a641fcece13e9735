"""The report's M/EEG parts: layer x time curves, fusion, group statistics, preprocessing logs.

The time-resolved rows of ``group/scores.tsv`` (``time`` not n/a) are drawn here, per modality
(eeg or meg) and channel group (``roi``): the mean over subjects of each layer's score at each
time point, a band of one standard error over subjects, the mean noise ceiling, and the
significant clusters of ``group/meeg/desc-clusters_stats.tsv`` as bars under the curves. The
peak latencies (``desc-peaks_stats.tsv``) and clusters are tables, and the preprocessing logs of
every run (:meth:`brainalign.workflow.DerivPaths.meeg_preproc_log`) one more.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.io import read_tsv
from brainalign.report.scores import ABOVE_NOISE_CEILING, FUSION_ANALYSIS, time_resolved

__all__ = [
    "CLUSTER_COLUMNS",
    "PEAK_COLUMNS",
    "PREPROC_COLUMNS",
    "read_meeg_group_table",
    "read_meeg_preproc_logs",
    "meeg_time_figure",
    "fusion_figure",
    "meeg_report_parts",
]

#: Columns of ``group/meeg/desc-clusters_stats.tsv`` (see :mod:`brainalign.meeg.steps`).
CLUSTER_COLUMNS = ["analysis", "modality", "roi", "model", "layer", "t_start", "t_stop",
                   "cluster_stat", "p_value", "significant", "n_subjects"]
#: Columns of ``group/meeg/desc-peaks_stats.tsv``.
PEAK_COLUMNS = ["analysis", "modality", "roi", "model", "layer", "peak_time", "ci_low",
                "ci_high", "peak_score", "n_subjects"]
#: Columns of the report's table "M/EEG preprocessing" (one row per run).
PREPROC_COLUMNS = ["subject", "datatype", "task", "run", "bad_channels", "interpolated",
                   "ica_removed", "rejection", "n_epochs", "n_kept", "n_dropped",
                   "drop_reasons", "n_min_per_stimulus"]

_KEYS = ("analysis", "modality", "roi", "model", "layer")
_ANALYSIS_TITLES = {"rsa": "RSA", "encoding": "encoding", FUSION_ANALYSIS: "fusion"}


def read_meeg_group_table(paths: Sequence[str | Path], columns: Sequence[str]) -> pd.DataFrame:
    """Read and concatenate group tables of the M/EEG statistics (clusters or peaks).

    Parameters
    ----------
    paths : sequence of path-like
        TSVs (``group/meeg/desc-clusters_stats.tsv`` or ``desc-peaks_stats.tsv``).
    columns : sequence of str
        Their columns (:data:`CLUSTER_COLUMNS` or :data:`PEAK_COLUMNS`).

    Returns
    -------
    table : pandas.DataFrame
        The rows of every table (none for no paths), with ``columns`` first; a ``significant``
        column as bool.

    Raises
    ------
    ValueError
        If a table lacks one of ``columns``.
    """
    tables = []
    for path in paths:
        table = read_tsv(path)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(
                f"M/EEG group table {path}: expected columns {list(columns)}, missing {missing}."
                " Rerun rule meeg_group (it writes these columns).")
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=list(columns))
    table = pd.concat(tables, ignore_index=True)
    for c in ("analysis", "modality", "roi", "model", "layer"):
        table[c] = table[c].astype(str)
    if "significant" in table.columns:
        table["significant"] = table["significant"].map(_truth).astype(bool)
    return table[[*columns, *[c for c in table.columns if c not in columns]]]


def _truth(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) and not pd.isna(value)


# --- preprocessing logs -------------------------------------------------------------------------

def _get(log: Mapping, *paths: str):
    """The first of ``paths`` (dotted keys into nested mappings) that the log has, else None."""
    for path in paths:
        node = log
        for key in path.split("."):
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            else:
                break
        else:
            if node is not None:
                return node
    return None


def _names(value) -> str | None:
    """A list of channel names or component indices as text; a mapping as ``key: items``.

    An ICA component's record (``component``, ``reason``, ``channel``) reads ``0 (eog EOG061)``.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        if "component" in value:
            why = " ".join(str(value[k]) for k in ("reason", "channel") if value.get(k))
            return f"{value['component']} ({why})" if why else str(value["component"])
        parts = [f"{k}: {_names(v) or 'none'}" for k, v in value.items()]
        return "; ".join(parts) if parts else "none"
    if isinstance(value, list | tuple):
        return ", ".join(_names(v) or "n/a" for v in value) if value else "none"
    return str(value)


def _count(value) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float) and np.isfinite(value):
        return int(value)
    if isinstance(value, list | tuple | Mapping):
        return len(value)
    return None


def _reasons(value) -> tuple[Counter, int | None, int | None]:
    """Drop reasons as counts, and (total, kept) when the value is an MNE drop log."""
    reasons: Counter = Counter()
    total = kept = None
    if isinstance(value, Mapping):
        for reason, n in value.items():
            reasons[str(reason)] += _count(n) or 0
    elif isinstance(value, list | tuple):
        if value and all(isinstance(v, list | tuple) for v in value):  # mne drop_log
            entries = [v for v in value if list(v) != ["IGNORED"]]
            total, kept = len(entries), sum(not v for v in entries)
            for v in entries:
                reasons.update(str(r) for r in v)
        else:
            for v in value:
                if isinstance(v, Mapping):
                    r = _get(v, "reason", "reasons")
                    reasons.update([str(x) for x in r] if isinstance(r, list | tuple)
                                   else [str(r)])
                else:
                    reasons[str(v)] += 1
    elif isinstance(value, str) and value:
        reasons[value] += 1
    return reasons, total, kept


def _entities(path: Path) -> dict[str, str | None]:
    name = path.name
    found = {k: re.search(rf"(?:^|_){k}-([A-Za-z0-9]+)", name) for k in ("sub", "task", "run")}
    parent = path.parent.name
    return {
        "subject": found["sub"].group(1) if found["sub"] else None,
        "task": found["task"].group(1) if found["task"] else None,
        "run": found["run"].group(1) if found["run"] else None,
        "datatype": parent if parent in ("eeg", "meg") else None,
    }


def read_meeg_preproc_logs(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per M/EEG run: what its preprocessing removed, from the runs' JSON logs.

    The keys are those :func:`brainalign.meeg.steps.step_meeg_preprocess` writes:
    ``bad_channels`` (``bads``, ``interpolated``, ``dropped``), ``ica`` (``excluded``: one
    ``{component, reason, channel}`` per component removed; ``{"applied": false}`` without
    ICA), ``rejection.method`` and ``epochs`` (``n_total``, ``n_kept``, ``n_dropped``,
    ``dropped``: one ``{trial, reasons}`` per dropped epoch, ``kept_per_stimulus``). They are
    read defensively: other spellings are tried (flat ``bad_channels`` / ``interpolated_channels``
    lists, ``n_epochs`` / ``n_epochs_kept``, ``drop_reasons`` as reason -> count, an MNE
    ``drop_log``) and a key no log has gives n/a. Subject, task, run and datatype come from the
    log (``subject``, ``task``, ``run``, ``datatype``) or else from the file's BIDS name and
    folder.

    Parameters
    ----------
    paths : sequence of path-like
        ``sub-*/<eeg|meg>/sub-*_task-*_run-*_desc-preproc_log.json``.

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`PREPROC_COLUMNS`; channel and component lists as text (``none`` when
        empty), counts as integers.

    Raises
    ------
    ValueError
        If a log is not a JSON object.
    """
    rows = []
    for path in map(Path, paths):
        try:
            log = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"M/EEG preprocessing log {path} is not valid JSON ({err}). Rerun "
                             "rule meeg_preprocess for this run.") from err
        if not isinstance(log, Mapping):
            raise ValueError(f"M/EEG preprocessing log {path}: expected a JSON object, found "
                             f"{type(log).__name__}. Rerun rule meeg_preprocess for this run.")
        ents = _entities(path)
        row = {k: (str(_get(log, k)) if _get(log, k) is not None else ents[k])
               for k in ("subject", "task", "run", "datatype")}
        bads = _get(log, "bad_channels.bads", "bad_channels.bad", "bads", "channels.bad",
                    "channels.bads", "channels.bad_channels", "recording.bads")
        if bads is None and isinstance(log.get("bad_channels"), list | tuple):
            bads = log["bad_channels"]
        row["bad_channels"] = _names(bads)
        interpolated = _names(_get(
            log, "bad_channels.interpolated", "interpolated_channels", "interpolated",
            "channels.interpolated", "interpolate.channels", "channels.interpolated_channels"))
        dropped_channels = _get(log, "bad_channels.dropped", "dropped_bad_channels")
        if dropped_channels:  # bad channels dropped rather than interpolated
            interpolated = f"{interpolated or 'none'}; dropped: {_names(dropped_channels)}"
        row["interpolated"] = interpolated
        ica = _get(log, "ica.excluded", "ica.exclude", "ica.removed", "ica.components_removed",
                   "ica.labels", "ica_excluded", "ica_exclude", "ica_components_removed",
                   "ica_removed")
        ica_log = log.get("ica", ...)
        if ica is None and (ica_log is None or ica_log is False
                            or (isinstance(ica_log, Mapping) and ica_log.get("applied") is False)):
            ica = "not run"
        row["ica_removed"] = _names(ica)
        rejection = _get(log, "rejection.method", "reject.method", "epochs.rejection")
        row["rejection"] = None if rejection is None else str(rejection)
        total = _count(_get(log, "n_epochs", "n_events", "n_epochs_total", "epochs_total",
                            "epochs.n_epochs", "epochs.n_events", "epochs.n_total",
                            "epochs.total"))
        kept = _count(_get(log, "n_epochs_kept", "n_kept", "epochs_kept", "epochs.n_kept",
                           "epochs.kept", "epochs.n_epochs_kept"))
        dropped = _count(_get(log, "n_epochs_dropped", "n_dropped", "n_rejected",
                              "epochs_dropped", "epochs.n_dropped", "epochs.dropped",
                              "epochs.n_rejected", "epochs.rejected"))
        reasons_value = _get(log, "drop_reasons", "epochs.drop_reasons", "rejected_epochs",
                             "dropped_epochs", "epochs.rejected_epochs", "epochs.dropped_epochs",
                             "drop_log", "epochs.drop_log", "epochs.dropped", "epochs.rejected")
        reasons, log_total, log_kept = _reasons(reasons_value)
        total = total if total is not None else log_total
        kept = kept if kept is not None else log_kept
        if dropped is None and isinstance(reasons_value, list | tuple) and log_total is None:
            dropped = len(reasons_value)  # a list of the dropped epochs
        if dropped is None and total is not None and kept is not None:
            dropped = total - kept
        if kept is None and total is not None and dropped is not None:
            kept = total - dropped
        if total is None and kept is not None and dropped is not None:
            total = kept + dropped
        row.update(n_epochs=total, n_kept=kept, n_dropped=dropped)
        if reasons:
            row["drop_reasons"] = "; ".join(f"{r} ({n})" for r, n in reasons.most_common())
        elif reasons_value is not None or dropped == 0:
            row["drop_reasons"] = "none"
        else:
            row["drop_reasons"] = None
        per_stim = _get(log, "epochs_per_stimulus", "kept_per_stimulus", "n_epochs_per_stimulus",
                        "epochs.per_stimulus", "epochs.kept_per_stimulus")
        counts = ([_count(v) for v in per_stim.values()] if isinstance(per_stim, Mapping)
                  else [])
        counts = [c for c in counts if c is not None]
        row["n_min_per_stimulus"] = min(counts) if counts else None
        rows.append(row)
    table = pd.DataFrame(rows, columns=PREPROC_COLUMNS)
    for c in PREPROC_COLUMNS:
        if c.startswith("n_"):
            table[c] = pd.to_numeric(table[c]).astype("Int64")
    return table


# --- figures ------------------------------------------------------------------------------------

def _ms(seconds) -> np.ndarray:
    return np.asarray(seconds, dtype=float) * 1000.0


def _time_panel(ax, rows: pd.DataFrame, series: list[str], colours: Mapping[str, str],
                clusters: pd.DataFrame, label: str) -> None:
    """Mean over subjects per series (``layer``) over time, SE band, ceiling, cluster bars."""
    lo_all, hi_all = [], []
    for name in series:
        r = rows[rows["layer"] == name]
        per_subject = r.pivot_table(index="time", columns="subject", values="score",
                                    aggfunc="mean").sort_index()
        t = _ms(per_subject.index)
        mean = per_subject.mean(axis=1).to_numpy()
        n = per_subject.notna().sum(axis=1).to_numpy()
        ax.plot(t, mean, color=colours[name], lw=1.6, label=f"{label} {name}")
        lo_all.append(np.nanmin(mean))
        hi_all.append(np.nanmax(mean))
        if per_subject.shape[1] > 1:
            se = per_subject.std(axis=1, ddof=1).to_numpy() / np.sqrt(np.maximum(n, 1))
            ax.fill_between(t, mean - se, mean + se, color=colours[name], alpha=0.18, lw=0)
            lo_all.append(np.nanmin(mean - se))
    # the ceiling is the data's, the same for every layer: its mean over subjects
    first = rows.drop_duplicates(["subject", "time"])
    ceiling = first.groupby("time")[["noise_ceiling", "noise_ceiling_lower"]].mean().sort_index()
    t = _ms(ceiling.index)
    if ceiling["noise_ceiling"].notna().any():
        ax.plot(t, ceiling["noise_ceiling"], color="black", ls="--", lw=1,
                label="noise ceiling")
        hi_all.append(np.nanmax(ceiling["noise_ceiling"]))
        if ceiling["noise_ceiling_lower"].notna().any():
            ax.fill_between(t, ceiling["noise_ceiling_lower"], ceiling["noise_ceiling"],
                            color="grey", alpha=0.2, lw=0, label="noise ceiling (lower-upper)")
    lo = float(np.nanmin(lo_all)) if lo_all else 0.0
    hi = float(np.nanmax(hi_all)) if hi_all else 1.0
    lo, hi = min(lo, 0.0), max(hi, lo + 1e-6)
    step = 0.06 * (hi - lo)
    # a bar covers its cluster's samples: half a sample beyond the first and last time point
    steps = np.diff(np.unique(rows["time"].to_numpy(float)))
    half = float(np.median(steps)) / 2 if steps.size else 0.0
    drawn = False
    for k, name in enumerate(series):
        c = clusters[clusters["layer"] == name]
        y = lo - (k + 1) * step
        for start, stop in zip(c["t_start"], c["t_stop"], strict=True):
            ax.plot(_ms([start - half, stop + half]), [y, y], color=colours[name], lw=4,
                    solid_capstyle="butt", gid="cluster")
            drawn = True
    handles, _ = ax.get_legend_handles_labels()
    if drawn:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="grey", lw=4,
                              label="significant cluster\n(bar per curve, its colour)"))
        ax.set_ylim(lo - (len(series) + 1) * step, hi + step)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("time (ms)")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              fontsize=8, frameon=False)


def _metric_label(metric, analysis: str) -> str:
    """Axis label of a time-resolved metric: channels, not voxels; fusion: M/EEG vs fMRI."""
    from brainalign.report.html import _metric_label as label

    if str(metric) == "pearson_r":
        return "held-out Pearson r (mean over channels)"
    text = label(metric)
    if analysis == FUSION_ANALYSIS:
        text = text.replace("model vs brain RDM", "M/EEG vs fMRI RDM")
    return text


def _significant(clusters: pd.DataFrame | None) -> pd.DataFrame:
    if clusters is None or clusters.empty:
        return pd.DataFrame(columns=CLUSTER_COLUMNS)
    return clusters[clusters["significant"].astype(bool)]


def _select(table: pd.DataFrame, **values) -> pd.DataFrame:
    mask = np.ones(len(table), dtype=bool)
    for key, value in values.items():
        mask &= (table[key].astype(str) == str(value)).to_numpy()
    return table[mask]


def meeg_time_figure(scores: pd.DataFrame, modality: str, roi: str,
                     clusters: pd.DataFrame | None = None):
    """Layer x time curves of one modality and channel group: one panel per analysis and model.

    Parameters
    ----------
    scores : pandas.DataFrame
        The group table (``SCORE_COLUMNS``); its time-resolved, non-fusion rows of this
        modality and channel group are drawn, layers in the table's order (shallow to deep).
    modality, roi : str
        ``eeg`` or ``meg``; the channel group.
    clusters : pandas.DataFrame, optional
        :data:`CLUSTER_COLUMNS`: the significant clusters of each curve are drawn as bars
        under the curves, in the layer's colour (lines with gid ``"cluster"``, x in ms), from
        half a sample before ``t_start`` to half a sample after ``t_stop`` (the samples'
        extent: a one-sample cluster stays visible).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from brainalign.report.html import _pyplot

    plt = _pyplot()
    rows = scores[time_resolved(scores) & (scores["analysis"] != FUSION_ANALYSIS)]
    rows = _select(rows, modality=modality, roi=roi)
    panels = list(dict.fromkeys(zip(rows["analysis"], rows["model"], strict=True)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)), squeeze=False)
    sig = _significant(clusters)
    for ax, (analysis, model) in zip(axes[:, 0], panels, strict=True):
        r = _select(rows, analysis=analysis, model=model)
        layers = list(dict.fromkeys(r["layer"]))
        cmap = plt.get_cmap("viridis")
        colours = {layer: cmap(0.9 * i / max(len(layers) - 1, 1))
                   for i, layer in enumerate(layers)}
        _time_panel(ax, r, layers, colours,
                    _select(sig, analysis=analysis, modality=modality, roi=roi, model=model),
                    "layer")
        ax.set_ylabel(_metric_label(r["metric"].iloc[0], analysis))
        ax.set_title(f"{modality} {roi}: {_ANALYSIS_TITLES.get(analysis, analysis)}, "
                     f"model {model} (mean over {r['subject'].nunique()} subject(s))",
                     fontsize=10)
    fig.tight_layout()
    return fig


def fusion_figure(scores: pd.DataFrame, clusters: pd.DataFrame | None = None):
    """M/EEG-fMRI fusion: each fMRI ROI's curve over time, per modality and channel group.

    Parameters
    ----------
    scores : pandas.DataFrame
        The group table; its fusion rows (``layer``: the fMRI ROI) are drawn.
    clusters : pandas.DataFrame, optional
        :data:`CLUSTER_COLUMNS`; significant fusion clusters are drawn as bars.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from brainalign.report.html import _pyplot

    plt = _pyplot()
    rows = scores[time_resolved(scores) & (scores["analysis"] == FUSION_ANALYSIS)]
    panels = list(dict.fromkeys(zip(rows["modality"], rows["roi"], strict=True)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)), squeeze=False)
    sig = _significant(clusters)
    for ax, (modality, roi) in zip(axes[:, 0], panels, strict=True):
        r = _select(rows, modality=modality, roi=roi)
        rois = list(dict.fromkeys(r["layer"]))
        colours = {name: f"C{k % 10}" for k, name in enumerate(rois)}
        _time_panel(ax, r, rois, colours,
                    _select(sig, analysis=FUSION_ANALYSIS, modality=modality, roi=roi),
                    "fMRI ROI")
        ax.set_ylabel(_metric_label(r["metric"].iloc[0], FUSION_ANALYSIS))
        ax.set_title(f"{modality} {roi} RDMs vs fMRI ROI RDMs "
                     f"(mean over {r['subject'].nunique()} subject(s))", fontsize=10)
    fig.tight_layout()
    return fig


def _meeg_figure(scores: pd.DataFrame, modality: str, roi: str, clusters) -> str:
    from brainalign.report.html import _png

    return _png(meeg_time_figure(scores, modality, roi, clusters))


def _fusion_figure(scores: pd.DataFrame, clusters) -> str:
    from brainalign.report.html import _png

    return _png(fusion_figure(scores, clusters))


# --- the report's context -----------------------------------------------------------------------

def _group_table_note(table: pd.DataFrame | None, name: str) -> str:
    if table is None:
        return f"No {name} table was given to the report (group/meeg/desc-{name}_stats.tsv)."
    return (f"group/meeg/desc-{name}_stats.tsv has no rows: group statistics over time need at "
            "least two subjects (see the log of rule meeg_group).")


def meeg_report_parts(scores: pd.DataFrame, *, clusters: pd.DataFrame | None = None,
                      peaks: pd.DataFrame | None = None) -> dict | None:
    """What the report's sections "M/EEG over time" and "M/EEG-fMRI fusion" show.

    Parameters
    ----------
    scores : pandas.DataFrame
        The group table.
    clusters, peaks : pandas.DataFrame, optional
        :func:`read_meeg_group_table` of the clusters and peaks tables.

    Returns
    -------
    parts : dict or None
        None when the table has no time-resolved rows; else ``figures`` (per modality and
        channel group: ``title``, ``data`` (base64 PNG), ``alt``), ``fusion`` (one figure or
        None), ``peaks`` and ``clusters`` (:class:`brainalign.report.html.TableView` or None,
        with ``peaks_note`` / ``clusters_note`` saying why not), ``n_rows`` (time-resolved rows)
        and ``n_flagged`` (of them above the noise ceiling).
    """
    from brainalign.report.html import table_view

    timed = scores[time_resolved(scores)]
    if timed.empty:
        return None
    curves = timed[timed["analysis"] != FUSION_ANALYSIS]
    figures = []
    for modality, roi in dict.fromkeys(zip(curves["modality"], curves["roi"], strict=True)):
        figures.append({
            "title": f"{modality}, channel group {roi}",
            "data": _meeg_figure(scores, modality, roi, clusters),
            "alt": f"layer x time curves: {modality} {roi}",
        })
    fusion = None
    if (timed["analysis"] == FUSION_ANALYSIS).any():
        fusion = {"data": _fusion_figure(scores, clusters),
                  "alt": "M/EEG-fMRI fusion: fMRI ROI curves over time"}
    peak_view = cluster_view = None
    if peaks is not None and len(peaks):
        p = peaks[list(_KEYS)].copy()
        p["peak_time_ms"] = _ms(peaks["peak_time"])
        p["ci_low_ms"] = _ms(peaks["ci_low"])
        p["ci_high_ms"] = _ms(peaks["ci_high"])
        p["peak_score"] = peaks["peak_score"].astype(float)
        p["n_subjects"] = peaks["n_subjects"]
        peak_view = table_view(p, hide_empty=False,
                               formats={c: "{:.1f}" for c in p.columns if c.endswith("_ms")})
    sig = _significant(clusters)
    if len(sig):
        c = sig[list(_KEYS)].copy()
        c["t_start_ms"] = _ms(sig["t_start"])
        c["t_stop_ms"] = _ms(sig["t_stop"])
        c["cluster_stat"] = sig["cluster_stat"].astype(float)
        c["p_value"] = sig["p_value"].astype(float)
        c["n_subjects"] = sig["n_subjects"]
        cluster_view = table_view(c, hide_empty=False,
                                  formats={k: "{:.1f}" for k in c.columns if k.endswith("_ms")})
    if clusters is not None and len(clusters) and not len(sig):
        clusters_note = (f"None of the {len(clusters)} clusters of "
                         "group/meeg/desc-clusters_stats.tsv is significant.")
    else:
        clusters_note = _group_table_note(clusters, "clusters")
    flagged = timed["flags"].map(
        lambda f: isinstance(f, str) and ABOVE_NOISE_CEILING in f.split(";"))
    return {
        "figures": figures,
        "fusion": fusion,
        "peaks": peak_view,
        "peaks_note": _group_table_note(peaks, "peaks"),
        "clusters": cluster_view,
        "clusters_note": clusters_note,
        "n_rows": len(timed),
        "n_flagged": int(flagged.sum()),
    }
