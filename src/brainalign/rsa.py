"""Representational similarity analysis: RDMs and their comparison."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, rankdata

from brainalign.errors import DataShapeError

__all__ = ["calc_rdm", "compare_rdms", "zscore_features", "rdm_reliability", "COMPARISONS"]


def zscore_features(x: np.ndarray) -> np.ndarray:
    """Z-score each feature across stimuli and drop constant features.

    Parameters
    ----------
    x : ndarray, shape (n_stimuli, n_features)

    Returns
    -------
    z : ndarray, shape (n_stimuli, n_kept)
    """
    x = np.asarray(x, float)
    sd = x.std(0)
    keep = sd > 1e-8 * max(float(sd.max(initial=0.0)), 1e-30)
    return (x[:, keep] - x[:, keep].mean(0)) / sd[keep]


def calc_rdm(patterns: np.ndarray, *, metric: str = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix (condensed upper triangle).

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_channels)
        One pattern (voxels, units) per stimulus.
    metric : str
        ``scipy.spatial.distance.pdist`` metric: correlation, cosine, euclidean, sqeuclidean.

    Returns
    -------
    rdm : ndarray, shape (n_stimuli * (n_stimuli - 1) / 2,)
        Dissimilarities in ``pdist`` order (row-major upper triangle).
    """
    patterns = np.asarray(patterns, float)
    if patterns.ndim != 2 or patterns.shape[0] < 3:
        raise DataShapeError(
            f"RDM needs patterns shaped (n_stimuli >= 3, n_channels), got {patterns.shape}."
        )
    return pdist(patterns, metric=metric)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return _pearson(rankdata(a), rankdata(b))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(pearsonr(a, b)[0])


COMPARISONS = {"spearman": _spearman, "pearson": _pearson}


def compare_rdms(a: np.ndarray, b: np.ndarray, *, method: str = "spearman") -> float:
    """Compare two condensed RDMs.

    Parameters
    ----------
    a, b : ndarray, shape (n_pairs,)
    method : str
        Key of ``COMPARISONS`` ("spearman", "pearson").

    Returns
    -------
    similarity : float
    """
    if np.shape(a) != np.shape(b):
        raise DataShapeError(f"RDMs differ in size: {np.shape(a)} vs {np.shape(b)}.")
    return COMPARISONS[method](np.asarray(a, float), np.asarray(b, float))


def rdm_reliability(
    half1: np.ndarray, half2: np.ndarray, *, metric: str = "correlation", method: str = "spearman"
) -> float:
    """Split-half reliability of an RDM.

    Parameters
    ----------
    half1, half2 : ndarray, shape (n_stimuli, n_channels)
        Patterns estimated from two independent halves of the data.
    metric : str
        Pattern dissimilarity.
    method : str
        RDM comparison.

    Returns
    -------
    r : float
        Similarity of the two halves' RDMs.
    """
    return compare_rdms(
        calc_rdm(half1, metric=metric), calc_rdm(half2, metric=metric), method=method
    )
