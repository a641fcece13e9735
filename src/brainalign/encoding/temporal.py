"""Time-resolved encoding: ridge from layer features to every channel at every time point.

M/EEG responses are (n_stimuli, n_channels, n_times). Every channel at every time point is one
target of the same regression ``Y[:, c, t] ~ X``: the folds depend on the stimuli only, and the
decomposition of each (outer and inner) training set depends on the features only. The
responses are therefore flattened to ``(n_stimuli, n_channels * n_times)`` targets and handed
to :func:`~brainalign.encoding.cross_validated_ridge` once: one eigendecomposition per fold
serves all channels and time points, each target keeps its own penalty (nested
cross-validation, chosen in the outer training set only), and the scores equal those of a
separate fit per time point (same folds, same penalties) up to rounding.

Group summaries (:func:`group_time_means`) average the per-channel scores and noise ceilings
over each channel group, as the fMRI encoding summary averages voxels over an ROI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from brainalign.encoding.evaluation import cross_validated_ridge
from brainalign.errors import DataShapeError

__all__ = ["time_resolved_ridge", "group_time_means"]

logger = logging.getLogger(__name__)


def time_resolved_ridge(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    alphas: Sequence[float],
    n_folds: int = 5,
    n_inner_folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
    ridge_params: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Cross-validated ridge from features to every channel and time point, one fit.

    Parameters
    ----------
    X : ndarray, shape (n_stimuli, n_features)
        Layer features, rows in the order of ``Y``.
    Y : ndarray, shape (n_stimuli, n_channels, n_times)
        Per-stimulus evoked responses.
    alphas : sequence of float
        Penalty grid; one penalty per channel and time point is chosen inside each outer
        training set.
    n_folds, n_inner_folds : int
        Outer folds (scores) and inner folds (penalty choice).
    seed : int
        Seed of the outer split (the inner split uses ``seed + 1``), as
        :func:`~brainalign.encoding.cross_validated_ridge`.
    groups : ndarray, shape (n_stimuli,), optional
        Group of each row; folds never split a group.
    ridge_params : Mapping, optional
        Further :class:`~brainalign.encoding.RidgeCV` parameters (``backend``, ``dtype`` ...).

    Returns
    -------
    result : dict
        ``r`` and ``r2`` (n_channels, n_times): held-out Pearson r and R^2 per channel and time
        point, averaged over outer folds; ``alpha`` (n_folds, n_channels, n_times): the
        penalties chosen in each outer fold.
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    if Y.ndim != 3:
        raise DataShapeError(
            f"Wrong dimensions for the M/EEG responses: expected (n_stimuli, n_channels, "
            f"n_times), got shape {Y.shape}. Pass the 'responses' array of the responses npz."
        )
    if X.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise DataShapeError(
            f"Features of shape {X.shape} do not match responses of shape {Y.shape}: expected "
            "(n_stimuli, n_features) with one row per stimulus of the responses. Align the "
            "feature rows to the responses' stimuli."
        )
    n_stim, n_channels, n_times = Y.shape
    logger.info(
        "time-resolved ridge: %d stimuli, %d features -> %d channels x %d times "
        "(%d targets, one decomposition per fold)",
        n_stim, X.shape[1], n_channels, n_times, n_channels * n_times,
    )
    res = cross_validated_ridge(
        X,
        Y.reshape(n_stim, n_channels * n_times),
        alphas=alphas,
        n_folds=n_folds,
        n_inner_folds=n_inner_folds,
        seed=seed,
        groups=groups,
        ridge_params=ridge_params,
    )
    return {
        "r": res["r"].reshape(n_channels, n_times),
        "r2": res["r2"].reshape(n_channels, n_times),
        "alpha": res["alpha"].reshape(-1, n_channels, n_times),
    }


def group_time_means(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean over each channel group, per time point.

    Parameters
    ----------
    values : ndarray, shape (n_channels, n_times)
        Per-channel values (scores or noise ceilings).
    masks : ndarray of bool, shape (n_groups, n_channels)
        Channels of each group.

    Returns
    -------
    means : ndarray, shape (n_groups, n_times)

    Raises
    ------
    DataShapeError
        Masks that do not match the channels, or an empty group.
    """
    values = np.asarray(values, float)
    masks = np.asarray(masks, bool)
    if values.ndim != 2 or masks.ndim != 2 or masks.shape[1] != values.shape[0]:
        raise DataShapeError(
            f"Channel groups of shape {masks.shape} do not match values of shape "
            f"{values.shape}: expected (n_groups, {values.shape[0]}) masks for (n_channels, "
            "n_times) values. Re-run the meeg_responses step."
        )
    counts = masks.sum(1)
    if np.any(counts == 0):
        raise DataShapeError(
            f"Empty channel group(s) {np.flatnonzero(counts == 0).tolist()} in roi_masks: "
            "expected at least one channel per group. Fix meeg.rois so every group matches "
            "channels of the recording."
        )
    return (masks.astype(float) @ values) / counts[:, None]
