"""Steps of the encoding domain: fit cross-validated ridge per layer, summarise per ROI.

The maths lives in the rest of :mod:`brainalign.encoding` (no I/O); these read and write files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from brainalign import encoding
from brainalign.io import align_rows, read_features, read_tsv, save_tsv

__all__ = ["step_encoding_fit", "step_encoding_summary"]

logger = logging.getLogger(__name__)


def step_encoding_fit(features: str, responses: str, *, ridge: Mapping, out: str) -> None:
    """Cross-validated ridge from one layer to every ROI voxel of one subject.

    Parameters
    ----------
    features, responses : str
        Layer features npz and the subject's responses npz.
    ridge : Mapping
        ``encoding.ridge`` config section.
    out : str
        TSV, one row per voxel: ``voxel``, ``roi``, ``r``, ``r2``, ``alpha`` (median over
        outer folds), ``noise_ceiling``.
    """
    with np.load(responses, allow_pickle=False) as z:
        Y, stimuli, roi, nc = z["responses"], z["stimuli"], z["roi"], z["noise_ceiling"]
    x, feat_stimuli = read_features(features)
    X = align_rows(x, feat_stimuli, stimuli, what=features)
    res = encoding.cross_validated_ridge(
        X,
        Y,
        alphas=ridge["alphas"],
        n_folds=ridge["n_folds"],
        n_inner_folds=ridge["n_inner_folds"],
        seed=ridge["seed"],
    )
    table = pd.DataFrame(
        {
            "voxel": range(Y.shape[1]),
            "roi": roi,
            "r": res["r"],
            "r2": res["r2"],
            "alpha": np.median(res["alpha"], axis=0),
            "noise_ceiling": nc,
        }
    )
    save_tsv(table, out)


def step_encoding_summary(
    voxel_scores: Mapping[tuple[str, str], str], *, subject: str, out: str
) -> None:
    """Per-ROI summary of one subject's voxel-wise encoding scores.

    Parameters
    ----------
    voxel_scores : Mapping of (model, layer) to str
        Per-voxel score tables.
    subject : str
    out : str
        TSV with the group table's columns (metric ``pearson_r``; score = mean voxel r,
        noise_ceiling = mean voxel ceiling).
    """
    rows = []
    for (model, layer), path in voxel_scores.items():
        t = read_tsv(path)
        for roi_name, g in t.groupby("roi", sort=True):
            rows.append(
                {
                    "analysis": "encoding",
                    "subject": subject,
                    "roi": roi_name,
                    "model": model,
                    "layer": layer,
                    "metric": "pearson_r",
                    "score": g["r"].mean(),
                    "noise_ceiling": g["noise_ceiling"].mean(),
                    "n_voxels": len(g),
                    "median_alpha": g["alpha"].median(),
                }
            )
    save_tsv(pd.DataFrame(rows), out)
