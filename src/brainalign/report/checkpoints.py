"""Score vs checkpoint: the report's figure of a model family's training trajectory.

A family (``features.models.<name>.checkpoints``, expanded by
:func:`brainalign.features.checkpoints.expand_checkpoints`) is one model per checkpoint. Per
family, analysis and ROI (or external RDM set), :func:`checkpoint_scores` takes each checkpoint's
score from ``group/scores.tsv`` at its best layer (or at a chosen layer) and
:func:`checkpoint_figure` draws them against the checkpoints in the configured order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from brainalign.report.scores import time_resolved

__all__ = ["CHECKPOINT_SCORE_COLUMNS", "checkpoint_scores", "checkpoint_figure"]

#: Columns of :func:`checkpoint_scores`.
CHECKPOINT_SCORE_COLUMNS = [
    "family",
    "checkpoint_index",
    "checkpoint",
    "model",
    "analysis",
    "roi",
    "layer",
    "metric",
    "score",
    "err_low",
    "err_high",
    "error",
    "n_subjects",
    "noise_ceiling",
    "noise_ceiling_lower",
]

_ANALYSES = ("encoding", "rsa")


def checkpoint_scores(
    scores: pd.DataFrame,
    families: Mapping[str, Sequence[Mapping]],
    *,
    layer: str | None = None,
) -> pd.DataFrame:
    """Each checkpoint's score per family, analysis and ROI, as the report plots it.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``group/scores.tsv`` (:data:`brainalign.report.scores.SCORE_COLUMNS`); time-resolved
        M/EEG rows are left out.
    families : Mapping of str to sequence of Mapping
        :func:`brainalign.features.checkpoints.checkpoint_families`: family -> members in
        checkpoint order, each with ``model``, ``checkpoint`` and ``checkpoint_index``.
    layer : str, optional
        Score every checkpoint at this layer; by default at its best layer (highest score, per
        checkpoint, analysis and ROI).

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`CHECKPOINT_SCORE_COLUMNS`, one row per family, analysis, ROI and
        checkpoint (checkpoints in their order). Where ``scores`` has group rows (external RDM
        sets) the row is the group row: ``err_low``/``err_high`` its bootstrap interval
        (``error`` ``"ci"``), the noise ceiling its bounds. Otherwise ``score`` is the mean over
        subjects (the best layer is that of the mean), ``err_low``/``err_high`` the mean -/+ its
        standard error over subjects (``error`` ``"sem"``; n/a with one subject, ``error``
        ``"none"``) and the noise ceilings are means over subjects.
    """
    scores = scores[~time_resolved(scores)]
    rows = []
    for family, members in families.items():
        for member in members:
            own = scores[scores["model"] == member["model"]]
            for analysis in _ANALYSES:
                sub = own[own["analysis"] == analysis]
                for roi, r in sub.groupby("roi", sort=False):
                    per_layer = _per_layer(r)
                    if layer is None:
                        best = per_layer.loc[per_layer["score"].idxmax()]
                    elif layer in per_layer.index:
                        best = per_layer.loc[layer]
                    else:
                        continue
                    rows.append({"family": family,
                                 "checkpoint_index": int(member["checkpoint_index"]),
                                 "checkpoint": member["checkpoint"], "model": member["model"],
                                 "analysis": analysis, "roi": roi, "layer": best.name,
                                 **best.to_dict()})
    table = pd.DataFrame(rows, columns=CHECKPOINT_SCORE_COLUMNS)
    if table.empty:
        return table
    order = {f: k for k, f in enumerate(families)}
    table = table.assign(_f=table["family"].map(order)).sort_values(
        ["_f", "analysis", "roi", "checkpoint_index"], kind="stable")
    return table.drop(columns="_f").reset_index(drop=True)


def _per_layer(rows: pd.DataFrame) -> pd.DataFrame:
    """One analysis, model and ROI: score, error and ceilings per layer (index: layer)."""
    group = rows[rows["subject"] == "group"]
    layers = list(dict.fromkeys(rows["layer"]))
    if len(group):
        g = group.set_index("layer")
        out = pd.DataFrame({
            "metric": g["metric"], "score": g["score"], "err_low": g["ci_low"],
            "err_high": g["ci_high"],
            "n_subjects": np.nan, "noise_ceiling": g["noise_ceiling"],
            "noise_ceiling_lower": g["noise_ceiling_lower"],
        })
        out["error"] = np.where(out["err_low"].notna() & out["err_high"].notna(), "ci", "none")
        return out
    by = rows.groupby("layer", sort=False)
    mean = by["score"].mean()
    n = by["score"].count()
    sem = by["score"].std(ddof=1) / np.sqrt(n)
    out = pd.DataFrame({
        "metric": by["metric"].first(), "score": mean, "err_low": mean - sem,
        "err_high": mean + sem, "n_subjects": n,
        "noise_ceiling": by["noise_ceiling"].mean(),
        "noise_ceiling_lower": by["noise_ceiling_lower"].mean(),
    }).reindex(layers)
    out["error"] = np.where(n.reindex(layers) >= 2, "sem", "none")
    return out


def checkpoint_figure(table: pd.DataFrame):
    """Score vs checkpoint: one row per family, one panel per analysis, one line per ROI.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`checkpoint_scores` (not empty).

    Returns
    -------
    fig : matplotlib.figure.Figure
        x: the family's checkpoints in order (labelled); y: the score (the metric of the
        panel's rows). Error bars: ``err_low`` to ``err_high``; dashed lines of the ROI's
        colour (gid ``noise-ceiling-<roi>``): its noise ceiling where the table has one (shaded
        down to the lower bound where there is one). Each point is labelled with the layer it
        was scored at.
    """
    from matplotlib.lines import Line2D

    from brainalign.report.html import _metric_label, _outside_legend, _pyplot

    plt = _pyplot()
    families = list(dict.fromkeys(table["family"]))
    analyses = [a for a in _ANALYSES if a in set(table["analysis"])]
    rois = list(dict.fromkeys(table["roi"]))
    colours = {roi: f"C{k % 10}" for k, roi in enumerate(rois)}
    fig, axes = plt.subplots(len(families), len(analyses), squeeze=False,
                             figsize=(6.2 * len(analyses), 4.2 * len(families)))
    for i, family in enumerate(families):
        fam = table[table["family"] == family]
        labels = (fam.drop_duplicates("checkpoint_index").sort_values("checkpoint_index")
                  ["checkpoint"].tolist())
        x_of = {c: k for k, c in enumerate(labels)}
        for j, analysis in enumerate(analyses):
            ax = axes[i, j]
            ceilings = False
            sub = fam[fam["analysis"] == analysis]
            if sub.empty:
                ax.set_axis_off()
                continue
            for roi, g in sub.groupby("roi", sort=False):
                g = g.sort_values("checkpoint_index")
                x = g["checkpoint"].map(x_of).to_numpy(float)
                y = g["score"].to_numpy(float)
                yerr = np.vstack([y - g["err_low"].to_numpy(float),
                                  g["err_high"].to_numpy(float) - y])
                ax.errorbar(x, y, yerr=None if np.isnan(yerr).all() else yerr, marker="o",
                            capsize=3, color=colours[roi], label=f"ROI {roi}")
                for xk, yk, lay in zip(x, y, g["layer"], strict=True):
                    ax.annotate(str(lay), (xk, yk), textcoords="offset points", xytext=(4, 4),
                                fontsize=7, color=colours[roi])
                hi = g["noise_ceiling"].to_numpy(float)
                lo = g["noise_ceiling_lower"].to_numpy(float)
                if np.isfinite(hi).any():
                    ax.plot(x, hi, linestyle="--", color=colours[roi], lw=1,
                            gid=f"noise-ceiling-{roi}")
                    ceilings = True
                    if np.isfinite(lo).any():
                        ax.fill_between(x, lo, hi, color=colours[roi], alpha=0.12)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
            ax.set_xlabel(f"checkpoint of {family}")
            ax.set_ylabel(_metric_label(sub["metric"].iloc[0]))
            ax.set_title(f"{family}: {analysis}", fontsize=10)
            handles, _ = ax.get_legend_handles_labels()
            if ceilings:
                handles.append(Line2D([], [], color="grey", linestyle="--",
                                      label="noise ceiling\n(colour of its ROI)"))
            _outside_legend(ax, handles=handles)
    fig.tight_layout()
    return fig
