"""Encoding for a whole study: one decomposition of a layer's features serves every subject.

The nested cross-validation of :func:`~brainalign.encoding.cross_validated_ridge` treats each
voxel on its own: folds depend only on the number of stimuli and the seed, and every voxel keeps
its own penalty. What costs is the decomposition of each training set (kernel or Gram matrix and
its eigendecomposition, once per outer and inner fold), which depends on the features only.
Subjects who saw the same stimuli, in the same order, can thus be fitted together: their voxels
are concatenated into one target matrix, the decompositions are made once, and the scores of
each subject's voxels equal those of a fit of that subject alone (same folds, same penalties;
floating-point differences of the order of 1e-13).

Subjects whose stimulus lists differ (some stimuli unseen, or another order) get other folds, so
they are fitted in separate groups (:func:`stimulus_groups`), each sharing its decompositions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from brainalign.encoding.evaluation import cross_validated_ridge
from brainalign.errors import ConfigError, DataShapeError

__all__ = [
    "CEILING_KEYS",
    "stimulus_groups",
    "cross_validated_ridge_shared",
    "ceiling_key",
]

logger = logging.getLogger(__name__)

#: Noise ceiling (config ``encoding.noise_ceiling``) -> its key in the responses npz.
#: ``split_half``: Spearman-Brown corrected split-half reliability of the stimulus means;
#: ``ncsnr``: Allen et al. (2022) noise-ceiling SNR, ``ncsnr^2 / (ncsnr^2 + 1/n)``.
CEILING_KEYS = {"split_half": "noise_ceiling", "ncsnr": "noise_ceiling_ncsnr"}


def ceiling_key(method: str) -> str:
    """The responses-npz key holding the noise ceiling of ``method``.

    Parameters
    ----------
    method : {"split_half", "ncsnr"}
        Value of ``encoding.noise_ceiling``.

    Returns
    -------
    key : str

    Raises
    ------
    ConfigError
        Unknown method.
    """
    if method not in CEILING_KEYS:
        raise ConfigError(
            f"Unknown noise ceiling for encoding.noise_ceiling: expected one of "
            f"{sorted(CEILING_KEYS)}, got {method!r}. Pick one of those."
        )
    return CEILING_KEYS[method]


def stimulus_groups(stimuli: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Subjects grouped by identical stimulus lists (same stimuli, same order).

    Parameters
    ----------
    stimuli : Mapping of str to sequence of str
        Subject -> the stimuli of its response rows, in row order.

    Returns
    -------
    groups : list of list of str
        Subjects that can share one fit, groups in order of first appearance, subjects in the
        mapping's order.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for subject, names in stimuli.items():
        groups.setdefault(tuple(str(s) for s in names), []).append(subject)
    return list(groups.values())


def cross_validated_ridge_shared(
    X: np.ndarray, Ys: Sequence[np.ndarray], **kwargs: Any
) -> list[dict[str, np.ndarray]]:
    """:func:`~brainalign.encoding.cross_validated_ridge` of several target sets, one fit.

    The target sets (e.g. the ROI voxels of several subjects who saw the same stimuli in the
    same order) are concatenated, fitted once, and the results split back: each equals the
    result of ``cross_validated_ridge(X, Y, **kwargs)`` for that ``Y`` alone (the folds depend
    on the number of rows only, penalties are chosen per voxel).

    Parameters
    ----------
    X : ndarray, shape (n_stimuli, n_features)
        Layer features, rows in the order of every ``Y``.
    Ys : sequence of ndarray, shapes (n_stimuli, n_voxels_i)
        Responses of each target set.
    **kwargs
        Arguments of :func:`~brainalign.encoding.cross_validated_ridge` (``alphas``,
        ``n_folds``, ``n_inner_folds``, ``seed``, ``groups``, ``ridge_params``).

    Returns
    -------
    results : list of dict
        Per target set, in order: ``r``, ``r2`` (n_voxels_i,), ``alpha`` (n_folds,
        n_voxels_i), ``predictions`` (n_stimuli, n_voxels_i).
    """
    X = np.asarray(X)
    Ys = [np.asarray(Y, float) for Y in Ys]
    if not Ys:
        raise DataShapeError(
            "No responses for cross_validated_ridge_shared: expected at least one target set, "
            "got none. Pass one (n_stimuli, n_voxels) array per subject."
        )
    for i, Y in enumerate(Ys):
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise DataShapeError(
                f"Wrong shape for target set {i}: expected ({X.shape[0]}, n_voxels), one row "
                f"per row of X, got {Y.shape}. Align every subject's responses to the features."
            )
    sizes = [Y.shape[1] for Y in Ys]
    logger.info("shared fit: %d target sets, %d voxels in all", len(Ys), sum(sizes))
    res = cross_validated_ridge(X, np.hstack(Ys), **kwargs)
    bounds = np.cumsum([0, *sizes])
    return [
        {
            "r": res["r"][a:b],
            "r2": res["r2"][a:b],
            "alpha": res["alpha"][:, a:b],
            "predictions": res["predictions"][:, a:b],
        }
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
