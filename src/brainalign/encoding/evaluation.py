"""Held-out evaluation of encoding models: nested cross-validation and variance partitioning.

The outer folds split stimuli (or groups of them); every penalty and kernel weight is chosen
inside the outer training set only, so the scores are out-of-sample.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from brainalign.encoding._solvers import simplex_grid
from brainalign.encoding.estimators import BandedRidgeCV, RidgeCV
from brainalign.encoding.scoring import pearson_columns, r2_columns
from brainalign.encoding.splits import group_kfold_indices, kfold_indices
from brainalign.errors import DataShapeError

__all__ = ["cross_validated_ridge", "partition_variance"]

logger = logging.getLogger(__name__)


def _outer_folds(n_samples: int, n_folds: int, *, groups, seed: int) -> list[np.ndarray]:
    if groups is None:
        return kfold_indices(n_samples, n_folds, seed=seed)
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise DataShapeError(
            f"Wrong shape for groups: expected ({n_samples},), one label per stimulus, got "
            f"{groups.shape}. Pass one group label per row of X."
        )
    return group_kfold_indices(groups, n_folds, seed=seed)


def cross_validated_ridge(
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
    """Held-out prediction accuracy of a ridge encoding model, folds split by stimulus.

    Parameters
    ----------
    X : ndarray, shape (n_stimuli, n_features)
        Layer features.
    Y : ndarray, shape (n_stimuli, n_voxels)
        Per-stimulus responses.
    alphas : sequence of float
        Penalty grid (one penalty per voxel is chosen inside each outer training set).
    n_folds, n_inner_folds : int
        Outer folds (scores) and inner folds (penalty choice).
    seed : int
        Seed of the outer split (the inner split uses ``seed + 1``).
    groups : ndarray, shape (n_stimuli,), optional
        Group of each row (e.g. the stimulus of repeated presentations, or the run); outer and
        inner folds never split a group.
    ridge_params : mapping, optional
        Further :class:`RidgeCV` parameters (``backend``, ``dtype``, ``scoring`` ...).

    Returns
    -------
    result : dict
        ``r`` (n_voxels,): Pearson r between held-out predictions and data, computed within
        each test fold and averaged over folds (correlating the concatenated predictions would be
        biased below zero for voxels without signal, since each fold's training mean
        anti-correlates with its held-out data); ``r2`` (n_voxels,): out-of-sample R^2, averaged
        over folds likewise; ``alpha`` (n_folds, n_voxels): penalties chosen;
        ``predictions`` (n_stimuli, n_voxels): held-out predictions.
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    params = dict(ridge_params or {})
    pred = np.empty_like(Y)
    chosen, r_folds, r2_folds = [], [], []
    for test in _outer_folds(X.shape[0], n_folds, groups=groups, seed=seed):
        train = np.setdiff1d(np.arange(X.shape[0]), test)
        model = RidgeCV(alphas, n_folds=n_inner_folds, seed=seed + 1, **params)
        model.fit(X[train], Y[train], groups=None if groups is None else np.asarray(groups)[train])
        pred[test] = model.predict(X[test])
        chosen.append(model.alpha_)
        r_folds.append(pearson_columns(pred[test], Y[test]))
        r2_folds.append(r2_columns(Y[test], pred[test]))
    return {
        "r": np.mean(r_folds, axis=0),
        "r2": np.mean(r2_folds, axis=0),
        "alpha": np.array(chosen),
        "predictions": pred,
    }


def partition_variance(
    spaces: Sequence[np.ndarray],
    Y: np.ndarray,
    *,
    alphas: Sequence[float],
    gammas: np.ndarray | None = None,
    n_folds: int = 5,
    n_inner_folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
    ridge_params: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Split the held-out R^2 of two feature spaces into unique and shared parts.

    Three models are fitted in each outer training set: ridge on A, ridge on B, and banded
    ridge on A and B together (one penalty per space, :class:`BandedRidgeCV`). With R^2 the
    held-out coefficient of determination, averaged over outer folds::

        unique_a = R2(AB) - R2(B)
        unique_b = R2(AB) - R2(A)
        shared   = R2(A) + R2(B) - R2(AB)

    The parts are not clipped: small negative values are estimation noise (or a joint model
    that fits worse than one space alone).

    Parameters
    ----------
    spaces : pair of ndarray, shapes (n_stimuli, n_features_a) and (n_stimuli, n_features_b)
        The feature spaces A and B.
    Y : ndarray, shape (n_stimuli, n_targets)
    alphas : sequence of float
        Penalty grid of all three models.
    gammas : ndarray, shape (n_gammas, 2), optional
        Kernel-weight candidates of the joint model; ``simplex_grid(2, 10)`` (weights 0, 0.1,
        ..., 1 for A) if None, which contains both single-space models.
    n_folds, n_inner_folds : int
        Outer folds (scores) and inner folds (penalties and weights).
    seed : int
        Seed of the outer split (the inner split uses ``seed + 1``).
    groups : ndarray, shape (n_stimuli,), optional
        Group of each row; folds never split a group.
    ridge_params : mapping, optional
        Further parameters shared by the three models (``backend``, ``dtype``, ``scoring`` ...).

    Returns
    -------
    result : dict
        ``r2_a``, ``r2_b``, ``r2_ab``, ``unique_a``, ``unique_b``, ``shared``: (n_targets,);
        ``gamma_ab`` (n_folds, n_targets, 2): kernel weights chosen for the joint model.
    """
    if len(spaces) != 2:
        raise DataShapeError(
            f"Wrong number of feature spaces for spaces: expected 2 (A, B), got {len(spaces)}. "
            "Partition pairs of spaces one pair at a time."
        )
    X_a, X_b = (np.asarray(x, float) for x in spaces)
    Y = np.asarray(Y, float)
    if Y.ndim == 1:
        Y = Y[:, None]
    if not X_a.shape[0] == X_b.shape[0] == Y.shape[0]:
        raise DataShapeError(
            f"Row counts differ for spaces A, B and Y: expected one row per stimulus in each, got "
            f"{X_a.shape[0]}, {X_b.shape[0]} and {Y.shape[0]}. Align the stimuli first."
        )
    params = dict(ridge_params or {})
    gammas = simplex_grid(2, 10) if gammas is None else gammas
    x_ab = np.hstack([X_a, X_b])
    r2 = {"a": [], "b": [], "ab": []}
    gamma_ab = []
    n = Y.shape[0]
    for test in _outer_folds(n, n_folds, groups=groups, seed=seed):
        train = np.setdiff1d(np.arange(n), test)
        g_train = None if groups is None else np.asarray(groups)[train]
        inner = dict(n_folds=n_inner_folds, seed=seed + 1, **params)
        for key, x in (("a", X_a), ("b", X_b)):
            model = RidgeCV(alphas, **inner).fit(x[train], Y[train], groups=g_train)
            r2[key].append(r2_columns(Y[test], model.predict(x[test])))
        joint = BandedRidgeCV(
            alphas, feature_spaces=(X_a.shape[1], X_b.shape[1]), gammas=gammas, **inner
        ).fit(x_ab[train], Y[train], groups=g_train)
        r2["ab"].append(r2_columns(Y[test], joint.predict(x_ab[test])))
        gamma_ab.append(joint.gamma_)
    r2_a, r2_b, r2_ab = (np.mean(r2[k], axis=0) for k in ("a", "b", "ab"))
    logger.info("variance partitioning: %d targets, %d outer folds", Y.shape[1], n_folds)
    return {
        "r2_a": r2_a,
        "r2_b": r2_b,
        "r2_ab": r2_ab,
        "unique_a": r2_ab - r2_b,
        "unique_b": r2_ab - r2_a,
        "shared": r2_a + r2_b - r2_ab,
        "gamma_ab": np.array(gamma_ab),
    }
