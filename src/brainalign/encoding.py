"""Voxel-wise encoding models: cross-validated ridge with one penalty per target.

The solver uses the thin SVD of the (standardised) training features, ``X = U S V^T``; the ridge
solution for penalty ``a`` is ``V diag(s / (s^2 + a)) U^T y``. It costs ``O(n^2 p)`` whether
features outnumber samples or not, and every penalty on the grid reuses one decomposition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainalign.errors import DataShapeError

__all__ = ["RidgeCV", "kfold_indices", "pearson_columns", "cross_validated_ridge"]


def kfold_indices(n_samples: int, n_folds: int, *, seed: int = 0) -> list[np.ndarray]:
    """Split sample indices into shuffled, near-equal test folds.

    Parameters
    ----------
    n_samples : int
    n_folds : int
    seed : int

    Returns
    -------
    folds : list of ndarray
        Test indices of each fold; together they cover ``range(n_samples)`` once.
    """
    if not 2 <= n_folds <= n_samples:
        raise DataShapeError(
            f"Cannot split {n_samples} stimuli into {n_folds} folds: expected "
            f"2 <= n_folds <= n_stimuli. Lower encoding.ridge.n_folds."
        )
    order = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(f) for f in np.array_split(order, n_folds)]


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


def _standardise(x_train: np.ndarray, x_test: np.ndarray | None = None):
    mean = x_train.mean(0)
    sd = x_train.std(0)
    sd[sd == 0] = 1.0
    xt = (x_train - mean) / sd
    return xt, (None if x_test is None else (x_test - mean) / sd)


def _svd_predictions(x_train, y_train, x_test, alphas) -> np.ndarray:
    """Predictions for every alpha: shape (n_alphas, n_test, n_targets)."""
    u, s, vt = np.linalg.svd(x_train, full_matrices=False)
    uty = u.T @ y_train
    xv = x_test @ vt.T
    out = np.empty((len(alphas), x_test.shape[0], y_train.shape[1]))
    for i, alpha in enumerate(alphas):
        out[i] = xv @ ((s / (s**2 + alpha))[:, None] * uty)
    return out


class RidgeCV:
    """Ridge regression with a penalty per target chosen by K-fold cross-validation.

    Features are standardised and targets centred on the training data (intercept not
    penalised). The scikit-learn estimator contract holds: nothing happens in ``__init__``,
    fitted attributes end in ``_``.

    Parameters
    ----------
    alphas : sequence of float
        Penalty grid.
    n_folds : int
        Inner folds used to choose each target's penalty (by summed squared error).
    seed : int
        Seed of the fold split.
    """

    def __init__(
        self, alphas: Sequence[float] = (0.1, 1, 10, 100, 1000), *, n_folds: int = 5, seed: int = 0
    ):
        self.alphas = alphas
        self.n_folds = n_folds
        self.seed = seed

    def fit(self, X: np.ndarray, Y: np.ndarray) -> RidgeCV:
        """Choose a penalty per target and fit on all samples.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
        Y : ndarray, shape (n_samples, n_targets)

        Returns
        -------
        self : RidgeCV
        """
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        if X.shape[0] != Y.shape[0]:
            raise DataShapeError(
                f"Features have {X.shape[0]} rows but responses have {Y.shape[0]}: expected one "
                "row per stimulus in both. Re-run feature extraction or the response step."
            )
        alphas = np.asarray(self.alphas, dtype=float)
        sse = np.zeros((alphas.size, Y.shape[1]))
        for test in kfold_indices(X.shape[0], self.n_folds, seed=self.seed):
            train = np.setdiff1d(np.arange(X.shape[0]), test)
            xtr, xte = _standardise(X[train], X[test])
            ymean = Y[train].mean(0)
            pred = _svd_predictions(xtr, Y[train] - ymean, xte, alphas) + ymean
            sse += ((pred - Y[test]) ** 2).sum(1)
        best = np.argmin(sse, axis=0)
        self.alpha_ = alphas[best]
        self.cv_sse_ = sse
        self.x_mean_ = X.mean(0)
        sd = X.std(0)
        sd[sd == 0] = 1.0
        self.x_scale_ = sd
        xs = (X - self.x_mean_) / sd
        self.intercept_ = Y.mean(0)
        u, s, vt = np.linalg.svd(xs, full_matrices=False)
        uty = u.T @ (Y - self.intercept_)
        coef = np.empty((X.shape[1], Y.shape[1]))
        for i, alpha in enumerate(alphas):
            cols = best == i
            if cols.any():
                coef[:, cols] = vt.T @ ((s / (s**2 + alpha))[:, None] * uty[:, cols])
        self.coef_ = coef
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict targets.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)

        Returns
        -------
        Y_pred : ndarray, shape (n_samples, n_targets)
        """
        return (
            (np.asarray(X, float) - self.x_mean_) / self.x_scale_
        ) @ self.coef_ + self.intercept_

    def score(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Pearson correlation between predictions and data, per target.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
        Y : ndarray, shape (n_samples, n_targets)

        Returns
        -------
        r : ndarray, shape (n_targets,)
        """
        Y = np.asarray(Y, float)
        return pearson_columns(self.predict(X), Y if Y.ndim == 2 else Y[:, None])


def cross_validated_ridge(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    alphas: Sequence[float],
    n_folds: int = 5,
    n_inner_folds: int = 5,
    seed: int = 0,
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
    pred = np.empty_like(Y)
    chosen, r_folds, r2_folds = [], [], []
    for test in kfold_indices(X.shape[0], n_folds, seed=seed):
        train = np.setdiff1d(np.arange(X.shape[0]), test)
        model = RidgeCV(alphas, n_folds=n_inner_folds, seed=seed + 1).fit(X[train], Y[train])
        pred[test] = model.predict(X[test])
        chosen.append(model.alpha_)
        r_folds.append(pearson_columns(pred[test], Y[test]))
        ss_res = ((Y[test] - pred[test]) ** 2).sum(0)
        ss_tot = ((Y[test] - Y[test].mean(0)) ** 2).sum(0)
        r2_folds.append(1 - np.divide(ss_res, ss_tot, out=np.ones_like(ss_res), where=ss_tot > 0))
    return {
        "r": np.mean(r_folds, axis=0),
        "r2": np.mean(r2_folds, axis=0),
        "alpha": np.array(chosen),
        "predictions": pred,
    }
