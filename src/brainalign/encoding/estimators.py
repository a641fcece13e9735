"""Scikit-learn style estimators: ridge with a penalty per target, and banded ridge.

Both follow the estimator contract (``__init__`` only stores its arguments, ``fit`` validates
them, fitted attributes end in ``_``) and wrap :func:`~brainalign.encoding.solve_ridge_cv`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from brainalign.encoding._solvers import (
    RidgeSearchResult,
    predict_ridge,
    sample_gammas,
    solve_ridge_cv,
)
from brainalign.encoding.scoring import pearson_columns
from brainalign.errors import ConfigError, DataShapeError

__all__ = ["RidgeCV", "BandedRidgeCV"]

_DEFAULT_N_FOLDS = 5


def _resolve_cv(cv: Any, n_folds: int | None, owner: str) -> Any:
    if cv is None:
        return _DEFAULT_N_FOLDS if n_folds is None else n_folds
    if n_folds is not None:
        raise ConfigError(
            f"Conflicting folds for {owner}: expected either cv or n_folds, got cv={cv!r} and "
            f"n_folds={n_folds}. Drop one of them."
        )
    return cv


class _RidgeSearchBase(BaseEstimator):
    """Shared fit/predict/score of the cross-validated ridge estimators."""

    _result: RidgeSearchResult

    def _search(self, X, Y, *, groups, feature_spaces, gammas) -> RidgeSearchResult:
        X = np.asarray(X)
        Y = np.asarray(Y)
        if Y.ndim == 1:
            Y = Y[:, None]
        if X.ndim != 2:
            raise DataShapeError(
                f"Wrong dimensions for X: expected (n_samples, n_features), got shape {X.shape}. "
                "Reshape the features to 2-D."
            )
        if X.shape[0] != Y.shape[0]:
            raise DataShapeError(
                f"Features have {X.shape[0]} rows but responses have {Y.shape[0]}: expected one "
                "row per stimulus in both. Re-run feature extraction or the response step."
            )
        result = solve_ridge_cv(
            X,
            Y,
            alphas=self.alphas,
            feature_spaces=feature_spaces,
            gammas=gammas,
            cv=_resolve_cv(self.cv, self.n_folds, type(self).__name__),
            groups=groups,
            seed=self.seed,
            scoring=self.scoring,
            fit_intercept=self.fit_intercept,
            standardize=self.standardize,
            solver=self.solver,
            backend=self.backend,
            device=self.device,
            dtype=self.dtype,
            n_targets_batch=self.n_targets_batch,
        )
        self._result = result
        self.solver_ = result.solver
        self.alpha_ = result.alphas[result.alpha_index]
        self.intercept_ = result.intercept
        self.x_mean_ = result.x_mean
        self.x_scale_ = result.x_scale
        self.n_features_in_ = X.shape[1]
        self._coef = result.weights if result.solver == "primal" else None
        for stale in ("dual_coef_", "X_fit_"):  # from an earlier dual fit
            self.__dict__.pop(stale, None)
        if result.solver == "dual":
            self.dual_coef_ = result.weights
            self.X_fit_ = result.x_fit
        return result

    @property
    def coef_(self) -> np.ndarray:
        """Primal coefficients on the transformed features, shape (n_features, n_targets).

        With the dual solver they are computed on first access as ``X_fit_^T`` times the dual
        coefficients (scaled by each target's kernel weights), which costs
        ``n_samples * n_features * n_targets``.
        """
        if not hasattr(self, "_result"):
            raise AttributeError(f"{type(self).__name__} is not fitted yet: call fit first.")
        if self._coef is None:
            res = self._result
            gam = res.gammas[res.gamma_index].T  # (n_spaces, n_targets)
            coef = np.empty((res.x_fit.shape[1], res.weights.shape[1]), dtype=res.weights.dtype)
            for i, sl in enumerate(res.spaces):
                coef[sl] = (res.x_fit[:, sl].T @ res.weights) * gam[i].astype(coef.dtype)
            self._coef = coef
        return self._coef

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict targets.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)

        Returns
        -------
        Y_pred : ndarray, shape (n_samples, n_targets)
            ``((X - x_mean_) / x_scale_) @ coef_ + intercept_``.
        """
        if not hasattr(self, "_result"):
            raise AttributeError(f"{type(self).__name__} is not fitted yet: call fit first.")
        if self._coef is not None:
            xt = (np.asarray(X) - self.x_mean_) / self.x_scale_
            return (xt @ self._coef + self.intercept_).astype(self._coef.dtype, copy=False)
        return predict_ridge(self._result, X)

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


class RidgeCV(_RidgeSearchBase):
    """Ridge regression with a penalty per target chosen by cross-validation.

    By default features are standardised and targets centred on each training set (intercept
    not penalised), and the penalty minimises the squared error summed over folds: the
    behaviour of brainalign's workflow. ``standardize=False, scoring="neg_mse"`` with the same
    ``fit_intercept`` and splits reproduces himalaya's ``RidgeCV`` / ``KernelRidgeCV``
    (kernel="linear") choices; ``cv="loo"`` reproduces scikit-learn's
    ``RidgeCV(alpha_per_target=True)``. See :mod:`brainalign.encoding._solvers` for the
    algorithm.

    Parameters
    ----------
    alphas : sequence of float, shape (n_alphas,)
        Positive penalty grid.
    n_folds : int, optional
        Number of shuffled folds (the workflow's spelling of ``cv=int``); 5 if neither is given.
    seed : int
        Seed of the fold shuffle when the folds are a number.
    cv : int, sequence of (train, test), splitter or "loo", optional
        Folds of the penalty search; see :func:`~brainalign.encoding.make_splits`. Give
        ``groups`` to ``fit`` to keep each stimulus or run within one fold.
    scoring : {"neg_sse", "neg_mse", "r2"}
        CV criterion (:data:`~brainalign.encoding.CV_SCORERS`), averaged over folds.
    standardize : bool
        Z-score the features on each training set.
    fit_intercept : bool
        Centre features and targets on each training set.
    solver : {"auto", "primal", "dual"}
        "auto": dual (kernel) form when n_features >= n_samples, else primal.
    backend : {"numpy", "torch"}
    device : str
        "cpu", or "cuda" with the torch backend.
    dtype : {"float64", "float32"}
    n_targets_batch : int, optional
        Targets processed together (bounds memory); None sizes batches automatically.

    Attributes
    ----------
    alpha_ : ndarray, shape (n_targets,)
    coef_ : ndarray, shape (n_features, n_targets)
        Coefficients on the transformed features ``(X - x_mean_) / x_scale_``.
    intercept_ : ndarray, shape (n_targets,)
    cv_scores_ : ndarray, shape (n_alphas, n_targets)
        Mean CV score of every penalty.
    cv_sse_ : ndarray, shape (n_alphas, n_targets)
        Held-out squared error summed over folds.
    x_mean_, x_scale_ : ndarray, shape (n_features,)
    solver_ : str
    dual_coef_ : ndarray, shape (n_samples, n_targets)
        Dual solver only, with ``X_fit_`` (n_samples, n_features).
    n_features_in_ : int
    """

    def __init__(
        self,
        alphas: Sequence[float] = (0.1, 1, 10, 100, 1000),
        *,
        n_folds: int | None = None,
        seed: int = 0,
        cv: Any = None,
        scoring: str = "neg_sse",
        standardize: bool = True,
        fit_intercept: bool = True,
        solver: str = "auto",
        backend: str = "numpy",
        device: str = "cpu",
        dtype: str = "float64",
        n_targets_batch: int | None = None,
    ):
        self.alphas = alphas
        self.n_folds = n_folds
        self.seed = seed
        self.cv = cv
        self.scoring = scoring
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch

    def fit(self, X: np.ndarray, Y: np.ndarray, *, groups: np.ndarray | None = None) -> RidgeCV:
        """Choose a penalty per target and fit on all samples.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
        Y : ndarray, shape (n_samples, n_targets) or (n_samples,)
        groups : ndarray, shape (n_samples,), optional
            Group of each sample (stimulus, run); folds never split a group.

        Returns
        -------
        self : RidgeCV
        """
        result = self._search(X, Y, groups=groups, feature_spaces=None, gammas=None)
        self.cv_scores_ = result.cv_scores[0]
        self.cv_sse_ = result.cv_sse[0]
        return self


class BandedRidgeCV(_RidgeSearchBase):
    """Banded ridge: one penalty per feature space and target, searched by cross-validation.

    Space ``i`` is weighted by ``gamma_i`` in the kernel ``K = sum_i gamma_i X_i X_i^T``
    (equivalently its features are scaled by ``sqrt(gamma_i)``); for each candidate weight
    vector (rows of ``gammas``) the penalty ``alpha`` is searched as in :class:`RidgeCV`, and
    each target keeps the candidate with the best CV score. The effective penalty of space
    ``i`` is ``alpha / gamma_i`` (``space_alphas_``). This is himalaya's
    ``MultipleKernelRidgeCV(solver="random_search")`` / ``BandedRidgeCV`` with the candidates
    given explicitly or drawn here, solved in the dual form when n_features >= n_samples.

    Parameters
    ----------
    alphas : sequence of float, shape (n_alphas,)
        Positive penalty grid.
    feature_spaces : sequence of int
        Column count of each feature space, in column order of ``X``.
    gammas : int or ndarray, shape (n_gammas, n_spaces)
        Candidate kernel weights, or how many to draw (:func:`sample_gammas`, the first one
        uniform). :func:`simplex_grid` gives a regular grid.
    concentration : float or sequence of float
        Dirichlet concentrations of drawn candidates.
    n_folds, seed, cv, scoring, standardize, fit_intercept, solver, backend, device, dtype, \
n_targets_batch
        As in :class:`RidgeCV`; ``seed`` also seeds drawn candidates.

    Attributes
    ----------
    alpha_ : ndarray, shape (n_targets,)
    gamma_ : ndarray, shape (n_targets, n_spaces)
        Chosen kernel weights.
    space_alphas_ : ndarray, shape (n_targets, n_spaces)
        ``alpha_ / gamma_`` (inf where a space is switched off).
    candidate_gammas_ : ndarray, shape (n_gammas, n_spaces)
    cv_scores_ : ndarray, shape (n_gammas, n_alphas, n_targets)
    cv_sse_ : ndarray, shape (n_gammas, n_alphas, n_targets)
    coef_, intercept_, x_mean_, x_scale_, solver_, dual_coef_, X_fit_, n_features_in_
        As in :class:`RidgeCV`.
    """

    def __init__(
        self,
        alphas: Sequence[float] = (0.1, 1, 10, 100, 1000),
        *,
        feature_spaces: Sequence[int] | None = None,
        gammas: int | np.ndarray = 20,
        concentration: float | Sequence[float] = (0.1, 1.0),
        n_folds: int | None = None,
        seed: int = 0,
        cv: Any = None,
        scoring: str = "neg_sse",
        standardize: bool = True,
        fit_intercept: bool = True,
        solver: str = "auto",
        backend: str = "numpy",
        device: str = "cpu",
        dtype: str = "float64",
        n_targets_batch: int | None = None,
    ):
        self.alphas = alphas
        self.feature_spaces = feature_spaces
        self.gammas = gammas
        self.concentration = concentration
        self.n_folds = n_folds
        self.seed = seed
        self.cv = cv
        self.scoring = scoring
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch

    def fit(
        self, X: np.ndarray, Y: np.ndarray, *, groups: np.ndarray | None = None
    ) -> BandedRidgeCV:
        """Choose kernel weights and a penalty per target, and fit on all samples.

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
            The feature spaces side by side, as described by ``feature_spaces``.
        Y : ndarray, shape (n_samples, n_targets) or (n_samples,)
        groups : ndarray, shape (n_samples,), optional
            Group of each sample (stimulus, run); folds never split a group.

        Returns
        -------
        self : BandedRidgeCV
        """
        if self.feature_spaces is None:
            raise ConfigError(
                "Missing feature_spaces for BandedRidgeCV: expected the column count of each "
                "feature space, got None. Pass e.g. feature_spaces=(n_a, n_b)."
            )
        n_spaces = len(self.feature_spaces)
        if isinstance(self.gammas, (int, np.integer)):
            if self.gammas < 1:
                raise ConfigError(
                    f"Invalid gammas for BandedRidgeCV: expected a positive int or an array, got "
                    f"{self.gammas}. Pass e.g. 20."
                )
            gammas = sample_gammas(
                int(self.gammas), n_spaces, concentration=self.concentration, seed=self.seed
            )
        else:
            gammas = self.gammas
        result = self._search(
            X, Y, groups=groups, feature_spaces=self.feature_spaces, gammas=gammas
        )
        self.candidate_gammas_ = result.gammas
        self.gamma_ = result.gammas[result.gamma_index]
        with np.errstate(divide="ignore"):
            self.space_alphas_ = self.alpha_[:, None] / self.gamma_
        self.cv_scores_ = result.cv_scores
        self.cv_sse_ = result.cv_sse
        return self
