"""Scores per target (Pearson r, R^2, noise-ceiling normalisation) and the CV criteria.

The cross-validation criteria are computed from per-fold sufficient statistics (the squared error
of every candidate penalty and the test-set variance), so no prediction array outlives its fold.
``"neg_mse"`` and ``"r2"`` are himalaya's ``l2_neg_loss`` and ``r2_score``; ``"neg_sse"`` is the
summed squared error that brainalign's workflow has always minimised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from brainalign.errors import DataShapeError

__all__ = [
    "CV_SCORERS",
    "pearson_columns",
    "r2_columns",
    "normalize_by_ceiling",
    "select_best_alphas",
]


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns.

    Parameters
    ----------
    a, b : ndarray, shape (n_samples, n_targets)

    Returns
    -------
    r : ndarray, shape (n_targets,)
        0 where a column is constant.
    """
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = np.sqrt((a**2).sum(0) * (b**2).sum(0))
    return np.divide((a * b).sum(0), den, out=np.zeros(a.shape[1]), where=den > 0)


def r2_columns(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination of matching columns.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (n_samples, n_targets)

    Returns
    -------
    r2 : ndarray, shape (n_targets,)
        ``1 - SS_res / SS_tot`` with ``SS_tot`` around the mean of ``y_true``; 0 where
        ``y_true`` is constant (as himalaya's ``r2_score``). Negative when the predictions are
        worse than that mean.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape:
        raise DataShapeError(
            f"Shapes differ for y_true and y_pred: expected equal shapes, got {y_true.shape} "
            f"and {y_pred.shape}. Predict the same samples and targets."
        )
    ss_res = ((y_true - y_pred) ** 2).sum(0)
    ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
    return 1 - np.divide(ss_res, ss_tot, out=np.ones_like(ss_res), where=ss_tot > 0)


def normalize_by_ceiling(
    score: np.ndarray, ceiling: np.ndarray, *, min_ceiling: float
) -> np.ndarray:
    """Express a score as a fraction of the noise ceiling.

    Parameters
    ----------
    score : ndarray, shape (n_targets,) or broadcastable to ``ceiling``
        Prediction accuracy (r or R^2).
    ceiling : ndarray, shape (n_targets,)
        Noise ceiling on the same scale as ``score`` (an r ceiling for r, an R^2 ceiling for
        R^2).
    min_ceiling : float
        Ceilings below this (or not finite) give NaN: dividing by a near-zero ceiling turns
        noise into huge ratios.

    Returns
    -------
    normalised : ndarray, shape of the broadcast of ``score`` and ``ceiling``
        ``score / ceiling``, NaN where the ceiling is below ``min_ceiling``.
    """
    score = np.asarray(score, dtype=float)
    ceiling = np.asarray(ceiling, dtype=float)
    try:
        shape = np.broadcast_shapes(score.shape, ceiling.shape)
    except ValueError:
        raise DataShapeError(
            f"Shapes do not broadcast for score and ceiling: expected one ceiling per target, "
            f"got {score.shape} and {ceiling.shape}. Align the targets of both."
        ) from None
    if not min_ceiling > 0:
        raise DataShapeError(
            f"Non-positive min_ceiling for normalize_by_ceiling: expected > 0, got "
            f"{min_ceiling}. Use e.g. report.min_noise_ceiling (0.1)."
        )
    ok = np.broadcast_to(np.isfinite(ceiling) & (ceiling >= min_ceiling), shape)
    out = np.full(shape, np.nan)
    np.divide(np.broadcast_to(score, shape), np.broadcast_to(ceiling, shape), out=out, where=ok)
    return out


# ---------------------------------------------------------------------------------------------
# cross-validation criteria: per-fold score from (sse, ss_tot, n_test), larger is better


def _fold_neg_mse(sse: np.ndarray, ss_tot: np.ndarray, n_test: int) -> np.ndarray:
    """Minus the mean squared error of the fold (himalaya's ``l2_neg_loss``)."""
    return -sse / n_test


def _fold_neg_sse(sse: np.ndarray, ss_tot: np.ndarray, n_test: int) -> np.ndarray:
    """Minus the summed squared error (brainalign's historical criterion)."""
    return -sse


def _fold_r2(sse: np.ndarray, ss_tot: np.ndarray, n_test: int) -> np.ndarray:
    """R^2 of the fold, 0 for a constant test target (himalaya's ``r2_score``)."""
    out = np.zeros_like(sse)
    np.divide(sse, ss_tot, out=out, where=np.broadcast_to(ss_tot > 0, sse.shape))
    out = 1 - out
    out[:, ss_tot == 0] = 0
    return out


#: Cross-validation criteria by name. Each maps the fold's squared error per penalty
#: ``sse`` (n_alphas, n_targets), the fold's ``ss_tot`` (n_targets,) around the test mean and
#: ``n_test`` to a score (n_alphas, n_targets); the CV score is its mean over folds.
CV_SCORERS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "neg_mse": _fold_neg_mse,
    "neg_sse": _fold_neg_sse,
    "r2": _fold_r2,
}


def select_best_alphas(
    fold_scores: np.ndarray, alphas: np.ndarray, *, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick one penalty per target by mean CV score, exactly as himalaya does.

    The score is averaged over folds in float64, cast to the working precision, and
    ``1e-10 * log(alpha)`` is added so that ties go to the larger penalty; the argmax follows.

    Parameters
    ----------
    fold_scores : ndarray, shape (n_folds, n_alphas, n_targets)
    alphas : ndarray, shape (n_alphas,)
    dtype : numpy.dtype
        Working precision of the solver.

    Returns
    -------
    best : ndarray of int, shape (n_targets,)
        Index of the chosen penalty.
    best_score : ndarray, shape (n_targets,)
        Its tie-broken mean score (what a random search compares across kernel weights).
    mean_score : ndarray, shape (n_alphas, n_targets)
        Mean CV score of every penalty, without the tie-break term.
    """
    mean_score = fold_scores.mean(0, dtype=np.float64).astype(dtype, copy=False)
    ranked = mean_score + (np.log(alphas.astype(dtype)) * dtype.type(1e-10))[:, None]
    best = np.argmax(ranked, axis=0)
    return best, ranked[best, np.arange(ranked.shape[1])], mean_score
