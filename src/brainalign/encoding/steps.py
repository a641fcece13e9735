"""Steps of the encoding domain: fit cross-validated ridge per layer, summarise per ROI.

The maths lives in the rest of :mod:`brainalign.encoding` (no I/O); these read and write files.

Job structure: :func:`step_encoding_fit_study` fits one layer for a part of the study's
subjects at once (``encoding.subjects_per_job``), sharing each fold's decomposition between
every subject who saw the same stimuli; :func:`step_encoding_summary` splits that part's table
into the subject's per-voxel tables and summarises them per ROI. :func:`step_encoding_fit`
fits one subject alone (the per-subject path the shared fit equals).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from brainalign import encoding
from brainalign.encoding.study import ceiling_key
from brainalign.errors import DataShapeError
from brainalign.io import align_rows, read_features, read_tsv, save_tsv

__all__ = [
    "VOXEL_SCORE_COLUMNS",
    "step_encoding_fit",
    "step_encoding_fit_study",
    "step_encoding_summary",
]

logger = logging.getLogger(__name__)

#: Columns of a subject's per-voxel score table (the study part's table adds ``subject`` first).
VOXEL_SCORE_COLUMNS = ["voxel", "roi", "r", "r2", "alpha", "noise_ceiling", "ceiling_method"]


def _read_responses(path: str, noise_ceiling: str) -> dict[str, np.ndarray]:
    """Responses, their stimuli and ROIs, and the chosen voxel-wise noise ceiling."""
    key = ceiling_key(noise_ceiling)
    with np.load(path, allow_pickle=False) as z:
        if key not in z.files:
            raise DataShapeError(
                f"{path}: no '{key}' array, the {noise_ceiling} noise ceiling that "
                f"encoding.noise_ceiling asks for: expected it among the responses, got only "
                f"{sorted(z.files)}. Re-run the fmri_responses step with this brainalign version, "
                "or set encoding.noise_ceiling: split_half."
            )
        out = {k: z[k] for k in ("responses", "stimuli", "roi")}
        out["noise_ceiling"] = z[key]
    if out["noise_ceiling"].shape != (out["responses"].shape[1],):
        raise DataShapeError(
            f"{path}: '{key}' has shape {out['noise_ceiling'].shape}: expected one value per "
            f"voxel, ({out['responses'].shape[1]},). Re-run the fmri_responses step."
        )
    return out


def _voxel_table(res: Mapping, resp: Mapping, noise_ceiling: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "voxel": range(resp["responses"].shape[1]),
            "roi": resp["roi"],
            "r": res["r"],
            "r2": res["r2"],
            "alpha": np.median(res["alpha"], axis=0),
            "noise_ceiling": resp["noise_ceiling"],
            "ceiling_method": noise_ceiling,
        },
        columns=VOXEL_SCORE_COLUMNS,
    )


def _ridge_args(ridge: Mapping) -> dict:
    return {k: ridge[k] for k in ("alphas", "n_folds", "n_inner_folds", "seed")}


def step_encoding_fit(
    features: str, responses: str, *, ridge: Mapping, out: str,
    noise_ceiling: str = "split_half",
) -> None:
    """Cross-validated ridge from one layer to every ROI voxel of one subject.

    The per-subject path: :func:`step_encoding_fit_study` gives the same scores for many
    subjects at once.

    Parameters
    ----------
    features, responses : str
        Layer features npz and the subject's responses npz.
    ridge : Mapping
        ``encoding.ridge`` config section.
    out : str
        TSV, one row per voxel, columns :data:`VOXEL_SCORE_COLUMNS`: ``voxel``, ``roi``, ``r``,
        ``r2``, ``alpha`` (median over outer folds), ``noise_ceiling`` (the chosen ceiling),
        ``ceiling_method``.
    noise_ceiling : {"split_half", "ncsnr"}
        Which voxel-wise noise ceiling of the responses to report (``encoding.noise_ceiling``).
    """
    resp = _read_responses(responses, noise_ceiling)
    x, feat_stimuli = read_features(features)
    X = align_rows(x, feat_stimuli, resp["stimuli"], what=features)
    res = encoding.cross_validated_ridge(X, resp["responses"], **_ridge_args(ridge))
    save_tsv(_voxel_table(res, resp, noise_ceiling), out)


def step_encoding_fit_study(
    features: str,
    responses: Mapping[str, str],
    *,
    ridge: Mapping,
    out: str,
    noise_ceiling: str = "split_half",
) -> None:
    """Cross-validated ridge from one layer to the ROI voxels of several subjects, one fit.

    The features are read once; subjects whose responses hold the same stimuli in the same
    order (:func:`~brainalign.encoding.stimulus_groups`) are fitted together, so each fold's
    decomposition is made once per group
    (:func:`~brainalign.encoding.cross_validated_ridge_shared`). Every subject's scores equal
    those of :func:`step_encoding_fit` on that subject alone.

    Parameters
    ----------
    features : str
        Layer features npz.
    responses : Mapping of str to str
        Subject label -> its responses npz.
    ridge : Mapping
        ``encoding.ridge`` config section.
    out : str
        TSV, one row per subject and voxel: ``subject`` then :data:`VOXEL_SCORE_COLUMNS`.
    noise_ceiling : {"split_half", "ncsnr"}
        Which voxel-wise noise ceiling of the responses to report (``encoding.noise_ceiling``).
    """
    resp = {s: _read_responses(p, noise_ceiling) for s, p in responses.items()}
    x, feat_stimuli = read_features(features)
    tables = {}
    groups = encoding.stimulus_groups({s: r["stimuli"] for s, r in resp.items()})
    for group in groups:
        stimuli = resp[group[0]]["stimuli"]
        X = align_rows(x, feat_stimuli, stimuli, what=features)
        logger.info("subjects %s: %d stimuli, one shared fit", ", ".join(group), len(stimuli))
        results = encoding.cross_validated_ridge_shared(
            X, [resp[s]["responses"] for s in group], **_ridge_args(ridge)
        )
        for s, res in zip(group, results, strict=True):
            tables[s] = _voxel_table(res, resp[s], noise_ceiling)
    if len(groups) > 1:
        logger.warning(
            "%d stimulus sets among %d subjects: fitted in %d groups (subjects with other "
            "stimuli, or another order, get other folds)", len(groups), len(resp), len(groups))
    table = pd.concat(
        [tables[s].assign(subject=s) for s in responses], ignore_index=True
    )
    save_tsv(table[["subject", *VOXEL_SCORE_COLUMNS]], out)


def step_encoding_summary(
    voxel_scores: Mapping[tuple[str, str], str],
    *,
    subject: str,
    out: str,
    voxel_scores_out: Mapping[tuple[str, str], str] | None = None,
) -> None:
    """Per-ROI summary of one subject's voxel-wise encoding scores.

    Parameters
    ----------
    voxel_scores : Mapping of (model, layer) to str
        Per-voxel score tables: one subject's, or a study part's (with a ``subject`` column,
        from which the subject's rows are taken).
    subject : str
    out : str
        TSV with the group table's columns (metric ``pearson_r``; score = mean voxel r,
        noise_ceiling = mean voxel ceiling) plus ``n_voxels``, ``median_alpha`` and
        ``ceiling_method`` (the noise ceiling divided by: ``split_half`` or ``ncsnr``).
    voxel_scores_out : Mapping of (model, layer) to str, optional
        Where to write the subject's own per-voxel table of each layer (columns
        :data:`VOXEL_SCORE_COLUMNS`).
    """
    rows = []
    for (model, layer), path in voxel_scores.items():
        t = read_tsv(path)
        if "subject" in t.columns:
            t = t[t["subject"] == subject].drop(columns="subject").reset_index(drop=True)
            if t.empty:
                raise DataShapeError(
                    f"{path}: no row of subject '{subject}': expected the subject's voxels in "
                    "this part of the study. Re-run the encoding_fit job that wrote it."
                )
        if "ceiling_method" not in t.columns:  # tables written before the choice existed
            t["ceiling_method"] = "split_half"
        if voxel_scores_out is not None:
            save_tsv(t[VOXEL_SCORE_COLUMNS], voxel_scores_out[(model, layer)])
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
                    "ceiling_method": g["ceiling_method"].iloc[0],
                }
            )
    save_tsv(pd.DataFrame(rows), out)
