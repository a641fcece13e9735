"""Report section "Subsampling curves": best layer per area over units and stimuli."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from brainalign.io import read_tsv

__all__ = ["read_subsample_summaries", "subsample_figure", "subsample_section"]


def read_subsample_summaries(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate the subsampling summaries (``group/subsample/*_desc-summary_curve.tsv``).

    Parameters
    ----------
    paths : sequence of path-like

    Returns
    -------
    summary : pandas.DataFrame
        Columns ``subject``, ``model`` and :data:`brainalign.subsample.SUMMARY_COLUMNS`.
    """
    return pd.concat([read_tsv(p) for p in paths], ignore_index=True)


def subsample_figure(summary: pd.DataFrame):
    """Best-layer score and agreement with the full data, against units and stimuli.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`read_subsample_summaries`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Columns: units, stimuli. Top row: mean (+- SD over draws) score of each draw's best
        layer, each point labelled with the layer most often best; bottom row: fraction of
        draws whose best layer is the full data's. RSA solid, encoding (units only) dashed.
    """
    from brainalign.report.html import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex="col", squeeze=False)
    for col, axis in enumerate(("units", "stimuli")):
        sub = summary[summary["axis"] == axis]
        groups = sub.groupby(["analysis", "subject", "model", "roi"], sort=True)
        for (analysis, subject, model, roi), g in groups:
            g = g.sort_values("size")
            label = f"{analysis}: sub-{subject} {roi} ({model})"
            style = "--" if analysis == "encoding" else "-"
            line = axes[0, col].errorbar(g["size"], g["best_score_mean"], yerr=g["best_score_sd"],
                                         marker="o", capsize=2, label=label, linestyle=style)
            for x, y, layer in zip(g["size"], g["best_score_mean"], g["best_layer"],
                                   strict=True):
                axes[0, col].annotate(str(layer), (x, y), fontsize=6, xytext=(2, 3),
                                      textcoords="offset points")
            axes[1, col].plot(g["size"], g["agreement"], marker="o", linestyle=style,
                              color=line.lines[0].get_color(), label=label)
        axes[0, col].set_title(f"subsampling {axis}")
        axes[1, col].set_xlabel(f"number of {axis}")
        axes[1, col].set_ylim(-0.05, 1.05)
        axes[0, col].set_xscale("log")
    axes[0, 0].set_ylabel("best layer's score")
    axes[1, 0].set_ylabel("draws agreeing with\nthe full data's best layer")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.tight_layout()
    return fig


def subsample_section(summary: pd.DataFrame) -> dict:
    """The report section (the shape of the report's analysis sections).

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`read_subsample_summaries`.

    Returns
    -------
    section : dict
        ``id``, ``title``, ``figure`` (base64 PNG), ``alt``, ``caption``, ``best`` (the table).
    """
    from brainalign.report.html import _png, table_view

    return {
        "id": "subsampling",
        "title": "Subsampling curves (external responses)",
        "figure": _png(subsample_figure(summary)),
        "alt": "best layer score and agreement against the number of units and stimuli",
        "caption": ("Random subsets of each area's units (all stimuli) and of the stimuli (all "
                    "units), several seeded draws per size: top, the mean and SD over draws of "
                    "the best layer's score (RSA solid; encoding dashed, units only: the mean "
                    "cross-validated r of the subset's units), labelled with the layer most "
                    "often best; "
                    "bottom, the fraction of draws whose best layer is the full data's. The "
                    "largest size is the full data (one draw). Tables: group/subsample/."),
        "best": table_view(summary),
    }
