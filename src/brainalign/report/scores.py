"""The tidy group table of every score (``group/scores.tsv``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.io import read_tsv

__all__ = [
    "SCORE_COLUMNS",
    "SCORE_COLUMN_DESCRIPTIONS",
    "ABOVE_NOISE_CEILING",
    "FMRI_MODALITY",
    "FUSION_ANALYSIS",
    "collect_scores",
    "time_resolved",
]

logger = logging.getLogger(__name__)

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
    # new columns are appended: readers of the columns above must not break
    "flags",
    "ceiling_method",
    "modality",
    "time",
]

#: ``modality`` of the fMRI rows (M/EEG rows: the recording's datatype, ``eeg`` or ``meg``).
FMRI_MODALITY = "fmri"

#: ``analysis`` of the M/EEG-fMRI fusion rows: their ``model`` is ``fmri`` and their ``layer``
#: the fMRI ROI, so they have no place in a model's layer order.
FUSION_ANALYSIS = "fusion"

#: Value of ``flags`` where ``normalized_score > 1``.
ABOVE_NOISE_CEILING = "above_noise_ceiling"

#: What each column of ``group/scores.tsv`` holds (shown in the report and in the README).
SCORE_COLUMN_DESCRIPTIONS = {
    "analysis": "encoding or rsa; fusion for M/EEG-fMRI fusion rows (model fmri, layer = the "
    "fMRI ROI whose RDM the M/EEG RDM of each time point is compared with)",
    "subject": "subject label without 'sub-', or 'group' for a group-level row",
    "roi": "region of interest (or the external RDM set's name); M/EEG rows: the channel group "
    "(meeg.rois; by default one group named after the datatype)",
    "model": "network",
    "layer": "layer of the network (fusion rows: the fMRI ROI)",
    "metric": "what score measures (e.g. mean voxel Pearson r, Spearman rho between RDMs)",
    "score": "the model's score",
    "noise_ceiling": "upper bound of the noise ceiling (the best score the data's noise allows)",
    "normalized_score": "score / noise_ceiling where the ceiling is large enough to divide by, "
    "else n/a",
    "noise_ceiling_lower": "lower bound of the noise ceiling: RSA rows (the Spearman-Brown "
    "estimate; the split-half ceiling's upper bound is noise_ceiling) and group rows of "
    "external RDM sets; n/a for encoding",
    "ci_low": "lower end of the 95% bootstrap interval of score; group rows of external RDM "
    "sets only (n/a in BIDS mode)",
    "ci_high": "upper end of the 95% bootstrap interval of score; group rows of external RDM "
    "sets only (n/a in BIDS mode)",
    "p_value": "bootstrap p-value of score > 0; group rows of external RDM sets only "
    "(n/a in BIDS mode)",
    "p_fdr": "p_value corrected across layers (Benjamini-Hochberg); group rows of external RDM "
    "sets only (n/a in BIDS mode)",
    "ceiling_method": "encoding rows: the voxel-wise noise ceiling in noise_ceiling "
    "(encoding.noise_ceiling: split_half or ncsnr); n/a for RSA rows",
    "modality": "fmri, or the M/EEG datatype (eeg or meg) of a time-resolved row",
    "time": "M/EEG rows: the time point (s, relative to stimulus onset) the score belongs to; "
    "n/a for fMRI rows",
    "flags": f"'{ABOVE_NOISE_CEILING}' where normalized_score > 1: the ceiling is an estimate, "
    "and a score above it means the ceiling is underestimated or the score is noisy; n/a "
    "elsewhere",
}


def time_resolved(scores: pd.DataFrame) -> pd.Series:
    """Which rows of a scores table are time-resolved (M/EEG: ``time`` is not n/a).

    Parameters
    ----------
    scores : pandas.DataFrame
        A scores table; one without a ``time`` column (written before M/EEG) has none.

    Returns
    -------
    mask : pandas.Series of bool
    """
    if "time" not in scores.columns:
        return pd.Series(False, index=scores.index)
    return scores["time"].notna()


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
        Encoding summaries and RSA score tables (fMRI), and the M/EEG time score tables (their
        rows carry ``modality`` and ``time``).
    layer_order : Mapping of str to sequence of str
        Model -> its layers from shallow to deep (sort order of the output).
    min_noise_ceiling : float
        ``normalized_score = score / noise_ceiling`` only where the ceiling reaches this value;
        n/a elsewhere.

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``SCORE_COLUMNS``. The fMRI rows (``modality`` fmri, ``time`` n/a) come first,
        sorted by analysis, subject, roi, model, layer depth; then the time-resolved M/EEG rows,
        sorted by analysis, modality, subject, roi, model, layer depth and time. Fusion rows
        (analysis fusion) keep their fMRI ROIs (``layer``) in the order the tables give them.
        Group rows (``subject == "group"``, external RDM sets) carry the lower noise ceiling,
        bootstrap interval and p-values; those columns are n/a elsewhere. ``flags`` is
        ``"above_noise_ceiling"`` where ``normalized_score > 1`` (:data:`ABOVE_NOISE_CEILING`),
        n/a elsewhere.

    Raises
    ------
    ValueError
        If a row's model or layer is not in ``layer_order`` (fusion rows excepted).
    """
    scores = pd.concat([read_tsv(t) for t in tables], ignore_index=True)
    if "time" not in scores.columns:
        scores["time"] = np.nan
    scores["time"] = pd.to_numeric(scores["time"])
    if "modality" not in scores.columns:
        scores["modality"] = None
    # rows of tables written without the column (fMRI) are fMRI rows
    scores["modality"] = scores["modality"].astype(object).where(
        scores["modality"].notna(), FMRI_MODALITY)
    ok = scores["noise_ceiling"] >= min_noise_ceiling
    scores["normalized_score"] = np.where(ok, scores["score"] / scores["noise_ceiling"], np.nan)
    above = scores["normalized_score"] > 1
    scores["flags"] = pd.Series(np.where(above, ABOVE_NOISE_CEILING, None), dtype=object,
                                index=scores.index)
    if above.any():
        logger.warning(
            "%d score(s) above the noise ceiling (normalized_score > 1), flagged '%s' in the "
            "group table: the ceiling is underestimated or the score is noisy", int(above.sum()),
            ABOVE_NOISE_CEILING)
    scores["_depth"] = _layer_depth(scores, layer_order)
    scores["_timed"] = scores["time"].notna()
    scores = scores.sort_values(
        ["_timed", "analysis", "modality", "subject", "roi", "model", "_depth", "time"],
        kind="stable")
    return scores.reindex(columns=SCORE_COLUMNS).reset_index(drop=True)


def _layer_depth(scores: pd.DataFrame, layer_order: Mapping[str, Sequence[str]]) -> list[int]:
    """Each row's layer depth in its model; fusion rows: their fMRI ROI's order of appearance."""
    depth = {(m, layer): i for m, layers in layer_order.items() for i, layer in enumerate(layers)}
    fusion_rois: dict[str, int] = {}
    out = []
    for analysis, model, layer in zip(scores["analysis"], scores["model"], scores["layer"],
                                      strict=True):
        if analysis == FUSION_ANALYSIS:
            out.append(fusion_rois.setdefault(layer, len(fusion_rois)))
        elif (model, layer) in depth:
            out.append(depth[(model, layer)])
        else:
            known = {m: list(layers) for m, layers in layer_order.items()}
            raise ValueError(
                f"score tables: a {analysis} row has model {model!r} and layer {layer!r}, "
                f"which the configured models do not have (features.models: {known}). "
                "Rerun the score tables with the current config (snakemake --forcerun).")
    return out
