"""Geo-topological RDM transforms for topological RSA.

Reference: Lin & Kriegeskorte (2023), "The topology and geometry of neural representations",
PNAS.

The geo-topological transform GT(l, u) maps dissimilarities below ``l`` to 0 (treated as
"connected"), above ``u`` to 1 (treated as "disconnected") and rescales those in between
linearly to [0, 1]. ``l = 0, u = max`` keeps the geometry (up to scale); ``l = u`` is a binary
adjacency (pure topology). Geodesic variants replace each dissimilarity by the shortest path
through the graph whose edges are the pairs below the upper threshold.

Relation to rsatoolbox 0.3 (``rsatoolbox.rdm.transform``):

- ``geotopological_transform(rdms, low, up)`` computes the quantiles over *all* RDMs of the
  object; :func:`transform_geotopological` computes them per RDM (identical for one RDM).
  rsatoolbox applies the three steps in place, so where the upper threshold is below 1
  rescaled values above it are set to 1 a second time; here the transform is the piecewise
  linear function of the paper (identical to rsatoolbox whenever ``u >= 1``).
- ``geodesic_transform(rdms)`` builds its graph with ``networkx.from_numpy_array``, which drops
  zero dissimilarities as *missing* edges; here a zero dissimilarity is an edge of length 0
  (stimuli below the lower threshold are connected). Shortest paths are otherwise computed
  the same way (min-max scaling, edges of length 1 removed, Floyd-Warshall).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import squareform

from brainalign.rsa._util import (
    as_rdm_stack,
    check_finite,
    lookup,
    n_stimuli_from_pairs,
    names_or_default,
)
from brainalign.rsa.compare import compare_rdms

__all__ = [
    "transform_geotopological",
    "transform_geodesic",
    "sweep_topological",
    "THRESHOLD_MODES",
]


def _thr_quantile(x: np.ndarray, lower: float, upper: float) -> tuple[np.ndarray, float, float]:
    return x, float(np.quantile(x, lower)), float(np.quantile(x, upper))


def _thr_fraction_of_max(
    x: np.ndarray, lower: float, upper: float
) -> tuple[np.ndarray, float, float]:
    return x / x.max(), lower, upper


def _thr_absolute(x: np.ndarray, lower: float, upper: float) -> tuple[np.ndarray, float, float]:
    return x, lower, upper


#: How ``lower``/``upper`` are read: quantiles of each RDM, fractions of its maximum
#: (the RDM is divided by its max first), or absolute dissimilarities.
THRESHOLD_MODES: dict[str, Callable[[np.ndarray, float, float], tuple]] = {
    "quantile": _thr_quantile,
    "fraction_of_max": _thr_fraction_of_max,
    "absolute": _thr_absolute,
}


def _check_thresholds(lower: float, upper: float, mode: str) -> None:
    bounded = mode in ("quantile", "fraction_of_max")
    if not lower < upper or (bounded and not 0 <= lower < upper <= 1):
        expected = "0 <= lower < upper <= 1" if bounded else "lower < upper"
        raise ValueError(
            f"Bad thresholds for lower/upper ({mode}): expected {expected}, got "
            f"lower={lower}, upper={upper}. Swap or fix them."
        )


def _gt(x: np.ndarray, low: float, up: float) -> np.ndarray:
    if up > low:
        return np.clip((x - low) / (up - low), 0.0, 1.0)
    return (x > up).astype(float)  # tied thresholds: a step at low == up


def transform_geotopological(
    rdms: np.ndarray,
    *,
    lower: float,
    upper: float,
    thresholds: str = "quantile",
    geodesic: bool = False,
) -> np.ndarray:
    """Geo-topological transform of condensed RDMs (thresholds set per RDM).

    Parameters
    ----------
    rdms : ndarray, shape (n_pairs,) or (n_rdms, n_pairs)
    lower, upper : float
        Thresholds ``l < u``; their meaning depends on ``thresholds``.
    thresholds : str
        Key of ``THRESHOLD_MODES``: ``"quantile"`` (``l``, ``u`` are quantiles of each RDM's
        dissimilarities, as rsatoolbox's ``low``/``up``), ``"fraction_of_max"`` (each RDM is
        divided by its maximum, thresholds in [0, 1]) or ``"absolute"``.
    geodesic : bool
        Geodesic geo-topological matrix: pairs at or above ``u`` (GT value 1) are cut and
        every entry becomes the shortest path through the remaining pairs, with the GT values
        as edge lengths (no further min-max scaling, unlike rsatoolbox's
        ``geodesic_transform`` applied after ``geotopological_transform``; the two agree when
        the lower threshold is at or above the minimum dissimilarity).

    Returns
    -------
    transformed : ndarray, same shape as ``rdms``
        Values in [0, 1] (geodesic: path lengths, ``inf`` for pairs in different components).
        If the two thresholds coincide for an RDM (ties), the transform is the step
        ``d > u``.
    """
    mode = lookup(THRESHOLD_MODES, thresholds, arg="thresholds")
    _check_thresholds(lower, upper, thresholds)
    x = as_rdm_stack(rdms, arg="rdms")
    check_finite(x, arg="rdms")
    out = np.empty_like(x)
    for k, row in enumerate(x):  # loop over RDMs (few); each RDM is vectorised
        scaled, low, up = mode(row, lower, upper)
        out[k] = _gt(scaled, low, up)
    if geodesic:  # GT values are already in [0, 1], with 1 = cut: no second rescaling
        out = _geodesic(out, lambda m: m < 1.0, rescale=False)
    return out[0] if np.ndim(rdms) == 1 else out


def _shortest_paths(weights: np.ndarray) -> np.ndarray:
    """All-pairs shortest paths (Floyd-Warshall, as networkx ``floyd_warshall_numpy``).

    Parameters
    ----------
    weights : ndarray, shape (n_rdms, n, n)
        Edge lengths; ``inf`` where there is no edge. The diagonal is set to 0.

    Returns
    -------
    dist : ndarray, shape (n_rdms, n, n)
    """
    d = weights.copy()
    n = d.shape[-1]
    d[:, np.arange(n), np.arange(n)] = 0.0
    for k in range(n):  # over intermediate nodes; vectorised over RDMs and node pairs
        d = np.minimum(d, d[:, k, None, :] + d[:, :, k, None])
    return d


def _geodesic(
    x: np.ndarray, edges: Callable[[np.ndarray], np.ndarray], *, rescale: bool
) -> np.ndarray:
    """Optionally min-max scale each RDM, keep the pairs selected by ``edges``, shortest paths.

    Parameters
    ----------
    x : ndarray, shape (n_rdms, n_pairs)
    edges : callable
        ``(squares) -> mask`` of the pairs that are edges, squares shaped (n_rdms, n, n).
    rescale : bool
        Min-max scale each RDM to [0, 1] first.

    Returns
    -------
    geodesic : ndarray, shape (n_rdms, n_pairs)
    """
    n = n_stimuli_from_pairs(x.shape[1], arg="rdms")
    if rescale:
        lo = x.min(axis=1, keepdims=True)
        span = x.max(axis=1, keepdims=True) - lo
        x = (x - lo) / np.where(span > 0, span, 1.0)
    squares = np.stack([squareform(row) for row in x])
    weights = np.where(edges(squares), squares, np.inf)
    dist = _shortest_paths(weights)
    rows, cols = np.triu_indices(n, 1)
    return dist[:, rows, cols]


def transform_geodesic(rdms: np.ndarray) -> np.ndarray:
    """Geodesic RDM: shortest paths through the pairs closer than the maximum.

    Each RDM is min-max scaled to [0, 1] (as rsatoolbox's ``geodesic_transform``); pairs at 1
    (the largest) are removed as edges and every dissimilarity becomes the shortest-path
    length through the remaining pairs (zero-length pairs are edges).

    Parameters
    ----------
    rdms : ndarray, shape (n_pairs,) or (n_rdms, n_pairs)

    Returns
    -------
    geodesic : ndarray, same shape as ``rdms``
        ``inf`` for pairs in different connected components.
    """
    x = as_rdm_stack(rdms, arg="rdms")
    check_finite(x, arg="rdms")
    out = _geodesic(x, lambda m: m < 1.0, rescale=True)
    return out[0] if np.ndim(rdms) == 1 else out


def sweep_topological(
    model_rdms: np.ndarray,
    data_rdm: np.ndarray,
    *,
    lower_quantiles: Sequence[float],
    upper_quantiles: Sequence[float],
    method: str = "spearman",
    geodesic: bool = False,
    model_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compare models with data after geo-topological transforms over a grid of thresholds.

    Model and data RDMs are each transformed with their own quantile thresholds
    (:func:`transform_geotopological` with ``thresholds="quantile"``).

    Parameters
    ----------
    model_rdms : ndarray, shape (n_models, n_pairs) or (n_pairs,)
    data_rdm : ndarray, shape (n_pairs,) or (n_subjects, n_pairs)
        With several data RDMs the score is the mean comparison over them.
    lower_quantiles, upper_quantiles : sequence of float
        Grid; only combinations with ``lower < upper`` are evaluated.
    method : str
        Key of ``COMPARISONS`` (use a rank method with ``geodesic=True``: disconnected pairs
        are ``inf``).
    geodesic : bool
        Use the geodesic geo-topological transform.
    model_names : sequence of str, optional

    Returns
    -------
    table : pandas.DataFrame
        Columns ``lower_quantile``, ``upper_quantile``, ``model``, ``score``; one row per
        threshold pair and model.
    """
    models = as_rdm_stack(model_rdms, arg="model_rdms")
    data = as_rdm_stack(data_rdm, arg="data_rdm")
    names = names_or_default(model_names, models.shape[0], prefix="model", arg="model_names")
    rows = []
    for low in lower_quantiles:
        for up in upper_quantiles:
            if not low < up:
                continue
            tm = transform_geotopological(models, lower=low, upper=up, geodesic=geodesic)
            td = transform_geotopological(data, lower=low, upper=up, geodesic=geodesic)
            scores = np.asarray(compare_rdms(tm, td, method=method)).mean(axis=1)
            rows.extend(
                {"lower_quantile": low, "upper_quantile": up, "model": name, "score": score}
                for name, score in zip(names, scores, strict=True)
            )
    return pd.DataFrame(rows, columns=["lower_quantile", "upper_quantile", "model", "score"])
