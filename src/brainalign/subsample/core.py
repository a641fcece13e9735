"""Subsampling curves: which layer best matches an area, as a function of units and stimuli.

No I/O: arrays in, tables out. RSA: each draw takes a random subset (without replacement) of the
area's units (all stimuli) or of the stimuli (all units), computes the area's RDM on it and
compares it with every layer's RDM on the same stimuli, exactly as ``rsa_roi_rdms`` and
``rsa_compare`` do on the full data. Encoding (units only): the ridge of each unit is fitted
independently of the others, so a subset's score is the mean over its units of the full fit's
per-unit cross-validated r (``encoding_summarize``'s voxel scores), with the same subsets as RSA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from brainalign import rsa

__all__ = [
    "AXES",
    "CURVE_COLUMNS",
    "SUMMARY_COLUMNS",
    "subsample_indices",
    "condensed_subset",
    "draw_scores",
    "subsample_curve",
    "encoding_units_curve",
    "summarize_curve",
]

#: What a curve subsamples: units (neurons, voxels) or stimuli.
AXES = ("units", "stimuli")
#: Columns of :func:`subsample_curve` (one row per draw and layer).
CURVE_COLUMNS = ["roi", "analysis", "axis", "size", "n_units", "n_stimuli", "draw", "layer",
                 "score"]
#: Columns of :func:`summarize_curve` (one row per area, axis and size).
SUMMARY_COLUMNS = ["roi", "analysis", "axis", "size", "n_draws", "best_layer",
                   "best_layer_fraction", "full_best_layer", "agreement",
                   "best_score_mean", "best_score_sd"]
_AXIS_CODE = {"units": 0, "stimuli": 1}


def subsample_indices(n_total: int, size: int, *, n_draws: int, seed: int,
                      axis: str) -> list[np.ndarray]:
    """The random subsets of one size (sorted indices, without replacement), seeded.

    Parameters
    ----------
    n_total : int
        Units or stimuli available.
    size : int
        Subset size (``size >= n_total`` gives one draw of everything).
    n_draws : int
    seed : int
        The same ``seed``, ``size`` and ``axis`` give the same subsets.
    axis : {"units", "stimuli"}

    Returns
    -------
    subsets : list of ndarray of int, each shape (size,)
    """
    if size >= n_total:
        return [np.arange(n_total)]
    rng = np.random.default_rng([seed, _AXIS_CODE[axis], size])
    return [np.sort(rng.choice(n_total, size=size, replace=False)) for _ in range(n_draws)]


def condensed_subset(rdm: np.ndarray, n: int, rows: np.ndarray) -> np.ndarray:
    """The condensed RDM of a subset of stimuli, from a condensed RDM of all ``n``.

    Parameters
    ----------
    rdm : ndarray, shape (n * (n - 1) / 2,)
    n : int
    rows : ndarray of int, shape (k,)
        Sorted stimulus indices.

    Returns
    -------
    sub : ndarray, shape (k * (k - 1) / 2,)
    """
    i, j = np.triu_indices(len(rows), 1)
    a, b = rows[i], rows[j]
    # position of pair (a, b), a < b, in scipy's condensed order
    return rdm[n * a - a * (a + 1) // 2 + (b - a - 1)]


def draw_scores(responses: np.ndarray, layer_rdms: Mapping[str, np.ndarray], *,
                units: np.ndarray, stimuli: np.ndarray, metric: str,
                comparison: str) -> dict[str, float]:
    """Score of every layer for one subset of units and stimuli.

    Parameters
    ----------
    responses : ndarray, shape (n_stimuli, n_units)
        The area's per-stimulus responses.
    layer_rdms : Mapping of str to ndarray, shape (n_stimuli * (n_stimuli - 1) / 2,)
        Layer -> condensed RDM over the same stimuli, same order.
    units, stimuli : ndarray of int
        The subset (sorted indices).
    metric, comparison : str
        Pattern dissimilarity and RDM comparison (``rsa.roi_distance``, ``rsa.comparison``).

    Returns
    -------
    scores : dict of str to float
        Layer -> comparison of the subset's area RDM with the layer's RDM on those stimuli.
    """
    n = responses.shape[0]
    area = rsa.calc_rdm(responses[np.ix_(stimuli, units)], metric=metric)
    return {layer: float(rsa.compare_rdms(area, condensed_subset(rdm, n, stimuli),
                                          method=comparison))
            for layer, rdm in layer_rdms.items()}


def subsample_curve(responses: np.ndarray, layer_rdms: Mapping[str, np.ndarray], *,
                    roi: str, units_sizes: Sequence[int], stimuli_sizes: Sequence[int],
                    n_draws: int, seed: int, metric: str = "correlation",
                    comparison: str = "spearman") -> pd.DataFrame:
    """Every layer's score on random subsets of an area's units and of the stimuli.

    Sizes above what the area has are dropped; the full size (all units, all stimuli) is
    always added, as one draw.

    Parameters
    ----------
    responses : ndarray, shape (n_stimuli, n_units)
    layer_rdms : Mapping of str to ndarray, shape (n_stimuli * (n_stimuli - 1) / 2,)
    roi : str
        The area's name (the ``roi`` column).
    units_sizes, stimuli_sizes : sequence of int
        Subset sizes of each axis (stimuli sizes need at least 3).
    n_draws : int
        Random subsets per size.
    seed : int
    metric, comparison : str

    Returns
    -------
    curve : pandas.DataFrame
        Columns :data:`CURVE_COLUMNS` (``analysis`` "rsa"), one row per draw and layer.
    """
    n_stim, n_units = responses.shape
    rows = []
    for axis, sizes, total in (("units", units_sizes, n_units),
                               ("stimuli", stimuli_sizes, n_stim)):
        for size in sorted({int(s) for s in sizes if 3 <= s < total} | {total}):
            subsets = subsample_indices(total, size, n_draws=n_draws, seed=seed, axis=axis)
            for draw, subset in enumerate(subsets):
                units = subset if axis == "units" else np.arange(n_units)
                stimuli = subset if axis == "stimuli" else np.arange(n_stim)
                scores = draw_scores(responses, layer_rdms, units=units, stimuli=stimuli,
                                     metric=metric, comparison=comparison)
                rows += [{"roi": roi, "analysis": "rsa", "axis": axis, "size": size,
                          "n_units": len(units), "n_stimuli": len(stimuli), "draw": draw,
                          "layer": layer, "score": score} for layer, score in scores.items()]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def encoding_units_curve(unit_scores: Mapping[str, np.ndarray], *, roi: str,
                         units_sizes: Sequence[int], n_draws: int, seed: int,
                         n_stimuli: int) -> pd.DataFrame:
    """Every layer's encoding score on random subsets of an area's units.

    Parameters
    ----------
    unit_scores : Mapping of str to ndarray, shape (n_units,)
        Layer -> each unit's cross-validated encoding r on the full data.
    roi : str
    units_sizes : sequence of int
        Sizes above the area's units are dropped; the full size is added (one draw).
    n_draws, seed : int
        As :func:`subsample_curve` (the same seed draws the same subsets).
    n_stimuli : int
        Stimuli of the fit (the ``n_stimuli`` column).

    Returns
    -------
    curve : pandas.DataFrame
        Columns :data:`CURVE_COLUMNS` (``analysis`` "encoding", ``axis`` "units"); ``score`` is
        the subset's mean r.
    """
    n_units = len(next(iter(unit_scores.values())))
    rows = []
    for size in sorted({int(s) for s in units_sizes if 3 <= s < n_units} | {n_units}):
        for draw, subset in enumerate(subsample_indices(n_units, size, n_draws=n_draws,
                                                        seed=seed, axis="units")):
            rows += [{"roi": roi, "analysis": "encoding", "axis": "units", "size": size,
                      "n_units": size, "n_stimuli": n_stimuli, "draw": draw, "layer": layer,
                      "score": float(np.mean(np.asarray(r)[subset]))}
                     for layer, r in unit_scores.items()]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def summarize_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Best layer per area, axis and size: its frequency over draws and its score.

    Parameters
    ----------
    curve : pandas.DataFrame
        :func:`subsample_curve` output (several areas allowed; other columns such as
        ``subject`` and ``model`` are kept as groups when present).

    Returns
    -------
    summary : pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS` (after any extra group columns): per size, the layer
        most often best over draws (ties: the first in the curve's layer order) and the
        fraction of draws where it is best; the best layer on the full data and the fraction
        of draws that agree with it; the mean and SD over draws of the best layer's score.
    """
    extra = [c for c in ("subject", "model") if c in curve.columns]
    layer_order = {layer: k for k, layer in enumerate(dict.fromkeys(curve["layer"]))}
    keys = [*extra, "roi", "analysis", "axis", "size", "draw"]
    idx = curve.groupby(keys, sort=False)["score"].idxmax()
    best = curve.loc[idx, [*keys, "layer", "score"]]
    out = []
    by = [*extra, "roi", "analysis"]
    for (*group, axis, size), g in best.groupby([*by, "axis", "size"], sort=True):
        counts = g["layer"].value_counts()
        top = min(counts[counts == counts.max()].index, key=layer_order.get)
        full = best[(best[by] == group).all(axis=1) & (best["axis"] == axis)]
        full_layer = full.loc[full["size"].idxmax(), "layer"]
        out.append({**dict(zip(by, group, strict=True)), "axis": axis,
                    "size": int(size), "n_draws": len(g), "best_layer": top,
                    "best_layer_fraction": counts[top] / len(g), "full_best_layer": full_layer,
                    "agreement": float((g["layer"] == full_layer).mean()),
                    "best_score_mean": g["score"].mean(),
                    "best_score_sd": g["score"].std(ddof=1) if len(g) > 1 else 0.0})
    return pd.DataFrame(out, columns=[*extra, *SUMMARY_COLUMNS])
