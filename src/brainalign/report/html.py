"""The self-contained HTML report: layer-by-ROI figures, RDM images, scores, provenance.

The pages are rendered from the jinja2 templates in ``brainalign/report/templates/``
(``report.html``, and ``failures.html`` for :mod:`brainalign.report.failures`), with
autoescaping on: every name from the data is HTML-escaped. Figures are embedded as PNG.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.report.provenance import software_versions
from brainalign.report.scores import (
    ABOVE_NOISE_CEILING,
    SCORE_COLUMN_DESCRIPTIONS,
    time_resolved,
)

__all__ = [
    "write_html_report",
    "render_template",
    "table_view",
    "layer_figure",
    "read_roi_voxels",
    "ROI_VOXEL_COLUMNS",
    "read_noise_ceilings",
    "NOISE_CEILING_COLUMNS",
    "METRIC_LABELS",
]

logger = logging.getLogger(__name__)


#: Axis labels of the score metrics (``metric`` column); others are shown as they are.
METRIC_LABELS = {
    "pearson_r": "held-out Pearson r (mean over voxels)",
    "spearman": "Spearman rho (model vs brain RDM)",
    "pearson": "Pearson r (model vs brain RDM)",
    "kendall_tau_a": "Kendall tau-a (model vs brain RDM)",
    "rho_a": "rho-a (model vs brain RDM)",
    "cosine": "cosine (model vs brain RDM)",
    "corr_cov": "whitened Pearson r (model vs brain RDM)",
    "cosine_cov": "whitened cosine (model vs brain RDM)",
}

_MARKERS = "osD^vP*X"
# RDM panels per row of a figure: more would shrink each below legibility in the page's width
_RDMS_PER_ROW = 5


def _metric_label(metric) -> str:
    return METRIC_LABELS.get(str(metric), str(metric))


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _layer_figure(scores: pd.DataFrame, analysis: str) -> str:
    return _png(layer_figure(scores, analysis))


def layer_figure(scores: pd.DataFrame, analysis: str):
    """The figure of one analysis: per model, a heatmap of the subject mean and layer curves.

    Parameters
    ----------
    scores : pandas.DataFrame
        The group table (``SCORE_COLUMNS``).
    analysis : str
        ``"encoding"`` or ``"rsa"``.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One row per model. Left: the mean over subjects per ROI and layer. Right: the group
        mean with bootstrap intervals and noise-ceiling bands where there are group rows,
        else each subject's curve per ROI.

    Notes
    -----
    The heatmap's values are written in its cells and its colour bar is unlabelled (the title
    names the metric), so the metric's name is not drawn twice side by side; the curves'
    legend sits outside the axes, where it cannot cover data.
    """
    plt = _pyplot()
    sub = scores[scores["analysis"] == analysis]
    group = sub[sub["subject"] == "group"]
    sub = sub[sub["subject"] != "group"]
    models = list(dict.fromkeys(sub["model"])) or list(dict.fromkeys(group["model"]))
    rois = list(dict.fromkeys(pd.concat([sub["roi"], group["roi"]])))
    colours = {roi: f"C{k % 10}" for k, roi in enumerate(rois)}
    fig, axes = plt.subplots(
        len(models), 2, figsize=(13, 4.2 * len(models)), squeeze=False,
        gridspec_kw={"width_ratios": [1, 1.15], "wspace": 0.3},
    )
    for k, model in enumerate(models):
        m = sub[sub["model"] == model]
        g = group[group["model"] == model]
        layers = list(dict.fromkeys(pd.concat([m["layer"], g["layer"]])))
        metric = (m if len(m) else g)["metric"].iloc[0]
        ax = axes[k, 0]
        if len(m):
            mean = m.groupby(["roi", "layer"], sort=False)["score"].mean().unstack("layer")
            mean = mean.reindex(index=[r for r in rois if r in set(m["roi"])], columns=layers)
            _heatmap(fig, ax, mean)
            ax.set_title(f"{model}: mean over subjects\n{_metric_label(metric)}", fontsize=10)
        else:
            ax.set_axis_off()
        ax = axes[k, 1]
        if len(g):
            _group_curves(ax, g, layers, colours)
        else:
            _subject_curves(ax, m, layers, colours)
        ax.set_ylabel(_metric_label(metric))
    return fig


def _heatmap(fig, ax, mean: pd.DataFrame) -> None:
    values = mean.to_numpy(dtype=float)
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(mean.shape[1]), mean.columns, rotation=45, ha="right")
    ax.set_yticks(range(mean.shape[0]), mean.index)
    ax.set_xlabel("layer")
    fig.colorbar(im, ax=ax)
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    if values.size <= 200:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                text = f"{v:.2f}"
                ax.text(j, i, "0.00" if text == "-0.00" else text, ha="center", va="center",
                        fontsize=8,
                        color="black" if v > middle else "white")


def _outside_legend(ax, **kwargs) -> None:
    """A legend right of the axes: outside the data area, whatever the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8,
              frameon=False, **kwargs)


def _subject_curves(ax, m: pd.DataFrame, layers: list, colours: Mapping[str, str]) -> None:
    """Each subject's scores across layers: colour = ROI, marker and line style = subject."""
    from matplotlib.lines import Line2D

    x = np.arange(len(layers))
    subjects = sorted(m["subject"].unique())
    styles = ["-", "--", ":", "-."]
    for roi in dict.fromkeys(m["roi"]):
        for j, subj in enumerate(subjects):
            g = m[(m["roi"] == roi) & (m["subject"] == subj)]
            if g.empty:
                continue
            ax.plot(x, g.set_index("layer").reindex(layers)["score"], color=colours[roi],
                    marker=_MARKERS[j % len(_MARKERS)], linestyle=styles[j % len(styles)],
                    alpha=0.85)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, layers, rotation=45, ha="right")
    ax.set_xlabel("layer")
    ax.set_title("per subject and ROI", fontsize=10)
    handles = [Line2D([], [], color=colours[roi], lw=2, label=f"ROI {roi}")
               for roi in dict.fromkeys(m["roi"])]
    handles += [Line2D([], [], color="black", marker=_MARKERS[j % len(_MARKERS)],
                       linestyle=styles[j % len(styles)], label=f"sub-{subj}")
                for j, subj in enumerate(subjects)]
    _outside_legend(ax, handles=handles)


def _group_curves(ax, group: pd.DataFrame, layers: list, colours: Mapping[str, str]) -> None:
    """Group mean per layer with bootstrap intervals and the noise-ceiling band, per ROI."""
    from matplotlib.patches import Patch

    x = np.arange(len(layers))
    bands = False
    for roi, g in group.groupby("roi", sort=False):
        g = g.set_index("layer").reindex(layers)
        colour = colours[roi]
        yerr = np.vstack([g["score"] - g["ci_low"], g["ci_high"] - g["score"]])
        ax.errorbar(x, g["score"], yerr=None if np.isnan(yerr).all() else yerr, marker="o",
                    capsize=3, color=colour, label=f"ROI {roi}")
        lo, hi = g["noise_ceiling_lower"].iloc[0], g["noise_ceiling"].iloc[0]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.axhspan(lo, hi, color=colour, alpha=0.15)
            bands = True
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, layers, rotation=45, ha="right")
    ax.set_xlabel("layer")
    ax.set_title("group mean, bootstrap CI", fontsize=10)
    handles, _ = ax.get_legend_handles_labels()
    if bands:
        handles.append(Patch(color="grey", alpha=0.3, label="noise ceiling\n(lower to upper)"))
    _outside_legend(ax, handles=handles)


def _rdm_figure(rdms: Mapping[str, np.ndarray], title: str) -> str:
    plt = _pyplot()
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    n = len(rdms)
    ncols = min(n, _RDMS_PER_ROW)
    nrows = -(-n // ncols)
    # constrained layout: the title, panel titles and colour bar never overlap, even for one RDM
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(2.6 * ncols + 0.8, 4.5), 2.8 * nrows),
                             squeeze=False, layout="constrained")
    for ax, (name, rdm) in zip(axes.flat, rdms.items(), strict=False):
        im = ax.imshow(squareform(rankdata(rdm) / len(rdm)), cmap="magma",
                       interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    cbar = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.85)
    cbar.set_ticks([0, 1], labels=["similar", "dissimilar"])
    fig.suptitle(title + "\n(rank-transformed dissimilarities)", fontsize=10)
    return _png(fig)


def render_template(name: str, **context) -> str:
    """Render one of the report's jinja2 templates (``brainalign/report/templates/``).

    Values are HTML-escaped unless marked safe (autoescaping is on for every template), and an
    undefined name in a template is an error rather than an empty string.

    Parameters
    ----------
    name : str
        Template file name, e.g. ``"report.html"``.
    **context
        The template's variables.

    Returns
    -------
    html : str
    """
    return _environment().get_template(name).render(**context)


@functools.cache
def _environment():
    import jinja2  # imported here: every job imports brainalign.report, only the report needs it

    return jinja2.Environment(
        loader=jinja2.PackageLoader("brainalign.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class Cell:
    """One formatted cell of a table in the report (``numeric``: of a column of numbers)."""

    text: str
    numeric: bool


@dataclass(frozen=True)
class Row:
    """One row of a table in the report; ``flagged`` rows are highlighted with ``title``."""

    cells: list[Cell]
    flagged: bool = False
    title: str = ""


@dataclass(frozen=True)
class TableView:
    """A table as the templates show it: column names, formatted rows, hidden columns.

    ``numeric`` tells, per shown column, whether it holds numbers (right-aligned, n/a too).
    """

    columns: list[str]
    rows: list[Row]
    hidden: list[str] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)


def _format(value, fmt: str | None = None) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if fmt is not None and isinstance(value, int | float | np.integer | np.floating):
        return fmt.format(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.3f}"
    return str(value)


def table_view(df: pd.DataFrame, *, hide_empty: bool = True,
               formats: Mapping[str, str] | None = None) -> TableView:
    """Format a table for the templates.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table; a ``flags`` column marks the rows to highlight (those whose flags include
        ``"above_noise_ceiling"``).
    hide_empty : bool
        Leave out the columns that are n/a in every row (they are listed in ``hidden``).
    formats : Mapping of str to str, optional
        Column -> format string of its numbers (e.g. ``"{:.1f}"``) instead of 3 decimals.

    Returns
    -------
    view : TableView
        Numbers with 3 decimals, missing values as ``n/a``.
    """
    hidden = [c for c in df.columns if hide_empty and len(df) and df[c].isna().all()]
    shown = [c for c in df.columns if c not in hidden]
    # counts stay integers when a missing value made their column float
    counts = [
        c for c in shown
        if str(c).startswith("n_") and pd.api.types.is_float_dtype(df[c])
        and bool((df[c].dropna() % 1 == 0).all())
    ]
    df = df.astype({c: "Int64" for c in counts})
    flagged = (
        df["flags"].map(lambda f: isinstance(f, str) and ABOVE_NOISE_CEILING in f.split(";"))
        if "flags" in df.columns
        else pd.Series(False, index=df.index)
    )
    numeric = [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        for c in shown
    ]
    fmts = [(formats or {}).get(c) for c in shown]
    rows = [
        Row(
            cells=[Cell(_format(v, f), numeric=n)
                   for v, n, f in zip(values, numeric, fmts, strict=True)],
            flagged=bool(is_flagged),
            title=_FLAG_TITLE if is_flagged else "",
        )
        for values, is_flagged in zip(
            df[shown].itertuples(index=False, name=None), flagged, strict=True
        )
    ]
    return TableView(columns=[str(c) for c in shown], rows=rows, hidden=[str(c) for c in hidden],
                     numeric=numeric)


#: What a score above the noise ceiling means (the report's note and the rows' tooltips).
FLAG_MEANING = (
    "The noise ceiling is an estimate of the best score the data's noise allows, not a hard "
    "bound: a score above it means that the ceiling is underestimated (e.g. few repetitions or "
    "noisy split halves) or that the score itself is noisy. Read such a model as reaching the "
    "ceiling, not as better than the data, and check the ceiling's inputs."
)
_FLAG_TITLE = "normalized_score > 1: score above the noise ceiling (see the note at the top)"

#: Columns of the ROI voxel table (``write_html_report(roi_voxels=...)``).
ROI_VOXEL_COLUMNS = [
    "subject",
    "roi",
    "n_voxels_atlas",
    "n_voxels_analysed",
    "n_voxels_removed",
    "removed_runs",
    "reason",
]


def read_roi_voxels(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Read and concatenate ROI voxel tables (BIDS TSVs, ``n/a`` for missing values).

    Parameters
    ----------
    paths : sequence of path-like
        TSVs with columns :data:`ROI_VOXEL_COLUMNS` (e.g. one per subject).

    Returns
    -------
    table : pandas.DataFrame
        The rows of all tables in order; the ``n_voxels_*`` counts as integers, every other
        column as text (run lists such as ``1`` or ``2;3`` stay as written).

    Raises
    ------
    ValueError
        If a table lacks one of the columns.
    """
    tables = []
    for path in paths:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a"])
        missing = [c for c in ROI_VOXEL_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(
                f"ROI voxel table {path}: expected columns {ROI_VOXEL_COLUMNS}, missing "
                f"{missing}. Write it with these columns (one row per subject and ROI).")
        for column in [c for c in table.columns if c.startswith("n_voxels")]:
            values = pd.to_numeric(table[column], errors="coerce")
            bad = table.loc[values.isna() & table[column].notna(), column]
            if len(bad) or not bool((values.dropna() % 1 == 0).all()):
                got = bad.iloc[0] if len(bad) else values[values % 1 != 0].iloc[0]
                raise ValueError(
                    f"ROI voxel table {path}: expected whole voxel counts in column "
                    f"'{column}', got {got!r}. Write counts (or n/a) in that column.")
            table[column] = values.astype("Int64")
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=ROI_VOXEL_COLUMNS)
    return pd.concat(tables, ignore_index=True)


#: Columns of the noise-ceiling table (``write_html_report(noise_ceilings=...)``).
NOISE_CEILING_COLUMNS = [
    "subject",
    "roi",
    "n_voxels",
    "noise_ceiling_split_half",
    "noise_ceiling_ncsnr",
    "ncsnr_median",
]


def read_noise_ceilings(responses: Mapping[str, str | Path]) -> pd.DataFrame:
    """Mean voxel noise ceilings per subject and ROI, split-half and NCSNR, from responses npz.

    Parameters
    ----------
    responses : Mapping of str to path-like
        Subject label -> its responses npz (``roi``, ``noise_ceiling``, and from this version
        on ``ncsnr`` and ``noise_ceiling_ncsnr``; an older file without them gives n/a).

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`NOISE_CEILING_COLUMNS`, one row per subject and ROI: the ROI's voxel
        count, its mean split-half and NCSNR ceilings (both in units of Pearson r, what the
        encoding scores are divided by) and the median voxel NCSNR.
    """
    rows = []
    for subject, path in responses.items():
        with np.load(path, allow_pickle=False) as z:
            roi = z["roi"].astype(str)
            split = z["noise_ceiling"]
            nc = z["noise_ceiling_ncsnr"] if "noise_ceiling_ncsnr" in z.files else None
            snr = z["ncsnr"] if "ncsnr" in z.files else None
        for name in dict.fromkeys(roi):
            sel = roi == name
            rows.append({
                "subject": subject, "roi": name, "n_voxels": int(sel.sum()),
                "noise_ceiling_split_half": float(split[sel].mean()),
                "noise_ceiling_ncsnr": float(nc[sel].mean()) if nc is not None else np.nan,
                "ncsnr_median": float(np.median(snr[sel])) if snr is not None else np.nan,
            })
    return pd.DataFrame(rows, columns=NOISE_CEILING_COLUMNS)


def _best_layers(scores: pd.DataFrame) -> pd.DataFrame:
    return (
        scores.sort_values("score", ascending=False)
        .groupby(["subject", "roi", "model"], sort=True)
        .head(1)
        .sort_values(["subject", "roi", "model"])
    )


def write_html_report(
    scores: pd.DataFrame,
    out: str | Path,
    *,
    brain_rdms: Mapping[str, str],
    layer_rdms: Mapping[str, str],
    provenance: Mapping,
    roi_voxels: pd.DataFrame | None = None,
    noise_ceilings: pd.DataFrame | None = None,
    meeg_clusters: pd.DataFrame | None = None,
    meeg_peaks: pd.DataFrame | None = None,
    meeg_preprocessing: pd.DataFrame | None = None,
    subsample: pd.DataFrame | None = None,
    families: Mapping[str, Sequence[Mapping]] | None = None,
) -> None:
    """Write a self-contained HTML report (figures embedded as PNG).

    Parameters
    ----------
    scores : pandas.DataFrame
        The group table (``SCORE_COLUMNS``; a table without ``flags`` gets it from
        ``normalized_score``). Columns that are n/a in every row are left out of the tables
        and listed under them; every column is described in a section of the report.
    out : path-like
        HTML file.
    brain_rdms : Mapping of str to str
        Label -> npz of brain RDMs (keys ``rois`` and ``rdm_<roi>``).
    layer_rdms : Mapping of str to str
        Model -> layer RDM npz.
    provenance : Mapping
        ``config`` (the resolved configuration), ``dataset`` (name, path, subjects, runs),
        anything else JSON-serialisable; software versions are added here.
    roi_voxels : pandas.DataFrame, optional
        One row per subject and ROI, columns :data:`ROI_VOXEL_COLUMNS` (``subject``, ``roi``,
        ``n_voxels_atlas``, ``n_voxels_analysed``, ``n_voxels_removed``, ``removed_runs``,
        ``reason``): shown as the section "ROI voxels before and after masking".
    noise_ceilings : pandas.DataFrame, optional
        :func:`read_noise_ceilings`: shown as the section "Noise ceilings".
    meeg_clusters, meeg_peaks : pandas.DataFrame, optional
        The M/EEG group statistics (:func:`brainalign.report.meeg.read_meeg_group_table`):
        with time-resolved rows in ``scores``, the section "M/EEG over time" draws each
        modality and channel group's layer x time curves with the significant clusters, and
        lists the peak latencies and clusters (section "M/EEG-fMRI fusion" for fusion rows).
        The other sections and the table "All scores" show the fMRI rows only.
    meeg_preprocessing : pandas.DataFrame, optional
        :func:`brainalign.report.meeg.read_meeg_preproc_logs`: section "M/EEG preprocessing".
    subsample : pandas.DataFrame, optional
        :func:`brainalign.report.subsample.read_subsample_summaries`: the section
        "Subsampling curves" (external response areas), after the analyses.
    families : Mapping, optional
        Model families (:func:`brainalign.features.checkpoints.checkpoint_families`): section
        "Model families", score vs checkpoint per ROI
        (:func:`brainalign.report.checkpoints.checkpoint_scores`).

    Raises
    ------
    ValueError
        If ``roi_voxels`` lacks one of its columns.
    """
    voxels = None
    if roi_voxels is not None:
        missing = [c for c in ROI_VOXEL_COLUMNS if c not in roi_voxels.columns]
        if missing:
            raise ValueError(
                f"ROI voxel table for the report: expected columns {ROI_VOXEL_COLUMNS}, "
                f"missing {missing}. Write it with these columns (one row per subject and ROI).")
        voxels = table_view(roi_voxels[ROI_VOXEL_COLUMNS], hide_empty=False)
    from brainalign.report.meeg import meeg_report_parts

    scores = scores.copy()
    if "flags" not in scores.columns:
        scores["flags"] = np.where(scores["normalized_score"] > 1, ABOVE_NOISE_CEILING, None)
    meeg = meeg_report_parts(scores, clusters=meeg_clusters, peaks=meeg_peaks)
    # the fMRI rows (time n/a): the time-resolved rows are drawn in "M/EEG over time"
    all_scores = scores
    scores = scores[~time_resolved(scores)]
    n_flagged = sum(row.flagged for row in table_view(scores).rows)
    if n_flagged:
        logger.warning("report: %d score(s) above the noise ceiling are highlighted", n_flagged)

    analyses = []
    for analysis, title in (
        ("encoding", "Encoding models (cross-validated ridge)"),
        ("rsa", "Representational similarity analysis"),
    ):
        sub = scores[scores["analysis"] == analysis]
        if sub.empty:
            continue
        if (sub["subject"] == "group").any():
            caption = ("Left: mean over subjects per layer and ROI. Right: group mean per layer "
                       "with bootstrap intervals; shaded bands span the noise ceiling (lower to "
                       "upper bound).")
        else:
            caption = ("Left: mean over subjects per layer and ROI. Right: each subject and ROI "
                       "across layers.")
        analyses.append({
            "id": analysis,
            "title": title,
            "figure": _layer_figure(scores, analysis),
            "alt": f"{analysis} scores per layer and ROI",
            "caption": caption,
            "best": table_view(_best_layers(sub)),
        })
    if subsample is not None and len(subsample):
        from brainalign.report.subsample import subsample_section

        analyses.append(subsample_section(subsample))

    trajectory = None
    if families:
        from brainalign.report.checkpoints import checkpoint_figure, checkpoint_scores

        curves = checkpoint_scores(scores, families)
        if len(curves):
            trajectory = {"figure": _png(checkpoint_figure(curves)),
                          "table": table_view(curves, hide_empty=False)}

    rdm_figures = []
    for label, path in brain_rdms.items():
        with np.load(path, allow_pickle=False) as z:
            rdms = {f"ROI {r}": z[f"rdm_{r}"] for r in z["rois"]}
        rdm_figures.append({"data": _rdm_figure(rdms, label), "alt": f"brain RDMs: {label}"})
    for model, path in layer_rdms.items():
        with np.load(path, allow_pickle=False) as z:
            rdms = {str(layer): z[str(layer)] for layer in z["layers"]}
        rdm_figures.append({"data": _rdm_figure(rdms, f"model {model}"),
                            "alt": f"layer RDMs: model {model}"})

    columns = [
        {
            "name": c,
            "description": SCORE_COLUMN_DESCRIPTIONS.get(c, ""),
            "empty": c in all_scores.columns and bool(all_scores[c].isna().all()),
        }
        for c in all_scores.columns
    ]
    prov = dict(provenance)
    prov["software"] = software_versions()
    ds = provenance.get("dataset", {})
    text = render_template(
        "report.html",
        dataset={
            "name": str(ds.get("name", "")),
            "path": str(ds.get("path", "")),
            "subjects": [str(s) for s in ds.get("subjects", [])],
        },
        n_flagged=n_flagged,
        n_flagged_time=meeg["n_flagged"] if meeg else 0,
        flag=ABOVE_NOISE_CEILING,
        flag_meaning=FLAG_MEANING,
        analyses=analyses,
        trajectory=trajectory,
        roi_voxels=voxels,
        noise_ceilings=(table_view(noise_ceilings, hide_empty=False)
                        if noise_ceilings is not None and len(noise_ceilings) else None),
        meeg=meeg,
        meeg_preprocessing=(table_view(meeg_preprocessing, hide_empty=False)
                            if meeg_preprocessing is not None and len(meeg_preprocessing)
                            else None),
        rdm_figures=rdm_figures,
        scores=table_view(scores),
        columns=columns,
        provenance=json.dumps(prov, indent=2, default=str),
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
