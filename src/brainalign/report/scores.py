"""The tidy group table of every score (``group/scores.tsv``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.io import read_tsv

__all__ = ["SCORE_COLUMNS", "SCORE_COLUMN_DESCRIPTIONS", "ABOVE_NOISE_CEILING", "collect_scores"]

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
]

#: Value of ``flags`` where ``normalized_score > 1``.
ABOVE_NOISE_CEILING = "above_noise_ceiling"

#: What each column of ``group/scores.tsv`` holds (shown in the report and in the README).
SCORE_COLUMN_DESCRIPTIONS = {
    "analysis": "encoding or rsa",
    "subject": "subject label without 'sub-', or 'group' for a group-level row",
    "roi": "region of interest (or the external RDM set's name)",
    "model": "network",
    "layer": "layer of the network",
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
    "flags": f"'{ABOVE_NOISE_CEILING}' where normalized_score > 1: the ceiling is an estimate, "
    "and a score above it means the ceiling is underestimated or the score is noisy; n/a "
    "elsewhere",
}


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
        bootstrap interval and p-values; those columns are n/a elsewhere. ``flags`` is
        ``"above_noise_ceiling"`` where ``normalized_score > 1`` (:data:`ABOVE_NOISE_CEILING`),
        n/a elsewhere.
    """
    scores = pd.concat([read_tsv(t) for t in tables], ignore_index=True)
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
    depth = {(m, layer): i for m, layers in layer_order.items() for i, layer in enumerate(layers)}
    scores["_depth"] = [
        depth[(m, layer)] for m, layer in zip(scores["model"], scores["layer"], strict=True)
    ]
    scores = scores.sort_values(["analysis", "subject", "roi", "model", "_depth"], kind="stable")
    return scores.reindex(columns=SCORE_COLUMNS).reset_index(drop=True)
