"""Step of the subsampling curves (rule ``responses_subsample``): files in, tables out."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.spatial.distance import squareform

from brainalign.io import align_rows, read_tsv, save_tsv
from brainalign.subsample.core import encoding_units_curve, subsample_curve, summarize_curve

__all__ = ["step_subsample"]

logger = logging.getLogger(__name__)


def step_subsample(responses: str, layer_rdms: str, *, subject: str, model: str,
                   spec: Mapping, metric: str, comparison: str, out: str,
                   summary_out: str, voxel_scores: Mapping[str, str] | None = None) -> None:
    """Subsampling curves of every area of one subject against one model's layers.

    Parameters
    ----------
    responses : str
        The subject's responses npz (``responses``, ``roi``, ``stimuli``).
    layer_rdms : str
        The model's layer RDMs npz (``layers``, ``stimuli``, one condensed RDM per layer).
    subject, model : str
        Written into the tables.
    spec : Mapping
        ``external.subsample``: ``units`` and ``stimuli`` (sizes), ``n_draws``, ``seed``.
    metric, comparison : str
        ``rsa.roi_distance`` and ``rsa.comparison``.
    out : str
        TSV, one row per area, axis, size, draw and layer
        (:data:`brainalign.subsample.CURVE_COLUMNS` after ``subject``, ``model``).
    summary_out : str
        TSV of :func:`brainalign.subsample.summarize_curve`.
    voxel_scores : Mapping of str to str, optional
        Layer -> the subject's per-unit encoding scores (``voxel``, ``roi``, ``r``; rows in the
        responses' column order): adds the encoding curve over units
        (:func:`brainalign.subsample.encoding_units_curve`).
    """
    with np.load(responses, allow_pickle=False) as z:
        Y, roi, stimuli = z["responses"], z["roi"], z["stimuli"]
    with np.load(layer_rdms, allow_pickle=False) as m:
        idx = align_rows(np.arange(len(m["stimuli"])), m["stimuli"], stimuli, what=layer_rdms)
        layers = {str(layer): squareform(squareform(m[str(layer)], checks=False)[np.ix_(idx, idx)],
                                         checks=False)
                  for layer in m["layers"]}
    tables = []
    for name in dict.fromkeys(roi.tolist()):
        curve = subsample_curve(Y[:, roi == name], layers, roi=name,
                                units_sizes=spec["units"], stimuli_sizes=spec["stimuli"],
                                n_draws=spec["n_draws"], seed=spec["seed"], metric=metric,
                                comparison=comparison)
        tables.append(curve)
        if voxel_scores:
            unit_r = {}
            for layer, path in voxel_scores.items():
                t = read_tsv(path)
                if len(t) != len(roi) or not (t["roi"].astype(str).to_numpy() == roi).all():
                    raise ValueError(f"{path}: its units do not match {responses} (expected "
                                     f"{len(roi)} rows in the responses' order). Re-run "
                                     "encoding_summarize.")
                unit_r[layer] = t["r"].to_numpy(float)[roi == name]
            tables.append(encoding_units_curve(unit_r, roi=name, units_sizes=spec["units"],
                                               n_draws=spec["n_draws"], seed=spec["seed"],
                                               n_stimuli=len(stimuli)))
        logger.info("area %s: %d draws x %d layers", name, curve["draw"].count() // len(layers),
                    len(layers))
    curve = pd.concat(tables, ignore_index=True)
    curve.insert(0, "model", model)
    curve.insert(0, "subject", subject)
    save_tsv(curve, out)
    save_tsv(summarize_curve(curve), summary_out)
