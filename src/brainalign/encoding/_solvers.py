"""Cross-validated ridge solvers: one penalty per target, optional kernel weights per space.

Algorithm
---------
For one training set, ridge predictions for every penalty ``a`` share one decomposition:

* primal (``n_features < n_samples``): eigendecomposition of the training Gram matrix
  ``X_train^T X_train = V diag(l) V^T`` (``l = s^2`` of the SVD ``X_train = U diag(s) V^T``, at
  a fraction of its cost); the predictions at ``X_test`` are
  ``X_test V diag(1 / (l + a)) (X_train V)^T Y_train``;
* dual (``n_features >= n_samples``): eigendecomposition of the training kernel
  ``K_train = X_train X_train^T = V diag(l) V^T``; the predictions are
  ``K_test V diag(1 / (l + a)) V^T Y_train``.

Both have the form ``left diag(1 / (eigenvalues + a)) right @ Y_train``
(:class:`Spectrum`), so one code path scores every penalty of every fold. The squared error of
each penalty is reduced per fold and target at once; the CV criterion (:data:`CV_SCORERS`) is
averaged over folds and each target keeps its best penalty (:func:`select_best_alphas`, the same
rule and tie-break as himalaya). The refit on all samples then costs one product with the
targets per batch, whatever the penalties chosen.

Banded ridge (several feature spaces) multiplies space ``i`` by ``sqrt(gamma_i)``, i.e. uses the
kernel ``K = sum_i gamma_i K_i``, for each candidate weight vector ``gamma`` (rows of
``gammas``, which sum to 1 when drawn here), runs the search over penalties above, and keeps per
target the candidate with the best CV score (improvements smaller than the machine epsilon of
the working precision are ignored, as in himalaya's ``solve_multiple_kernel_ridge_random_search``).
Space ``i`` of a target thus has the effective penalty ``alpha / gamma_i``.

Intercept: with ``fit_intercept`` the features (or kernels) and targets are centred on each
training set, as himalaya does; ``standardize`` also divides each feature by its training
standard deviation (ddof=0; constant features are left at 0).

Leave-one-out (``cv="loo"``) uses the exact closed form ``e_i = (y_i - yhat_i) / (1 - H_ii)`` of
the hat matrix ``H`` of the all-sample fit (plus ``1/n`` for the intercept), as scikit-learn's
``RidgeCV`` does; standardisation statistics then come from all samples.

Cost and memory
---------------
Per fold, scoring all penalties costs ``n_alphas * n_test * n_train`` multiply-adds per target
(one matrix product with the training targets, as himalaya), or, when cheaper (few features),
``rank * (n_train + n_alphas * n_test)``. The refit costs ``2 * n_samples * rank`` per target
whatever the penalties chosen (himalaya multiplies the targets by one resolution matrix per
chosen penalty). Targets go through in batches of ``n_targets_batch``: the largest arrays are
then ``n_alphas * n_test * n_targets_batch`` predictions; ``Y`` stays on the host and only the
batch is sent to the device.

Precision
---------
float32 halves time and memory. Eigenvalues then carry absolute errors of about
``1e-7 * max(eigenvalue)``, so penalties far below that are unreliable in any implementation.
As in himalaya, in the dual form a penalty below twice a negative (rounding) eigenvalue of a
training kernel is never selected. Features are centred before kernels are formed, which keeps
float32 kernels accurate when features have large means.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainalign.encoding._backends import get_backend
from brainalign.encoding.scoring import CV_SCORERS, select_best_alphas
from brainalign.encoding.splits import LEAVE_ONE_OUT, make_splits
from brainalign.errors import ConfigError, DataShapeError

__all__ = [
    "SOLVERS",
    "RidgeSearchResult",
    "Spectrum",
    "simplex_grid",
    "sample_gammas",
    "solve_ridge_cv",
    "predict_ridge",
]

logger = logging.getLogger(__name__)

#: Bytes of the largest intermediate array per target batch when ``n_targets_batch`` is None.
AUTO_BATCH_BYTES = 2**28

#: Criteria usable with exact leave-one-out (linear in the squared error of a one-sample fold).
LOO_SCORERS = ("neg_mse", "neg_sse")


# ---------------------------------------------------------------------------------------------
# decompositions


@dataclass
class Spectrum:
    """Decomposition of one training set: ``left diag(1 / (eigenvalues + a)) right``.

    Attributes
    ----------
    eigenvalues : array, shape (rank,)
        ``s^2`` (primal) or kernel eigenvalues (dual), negative rounding errors set to 0.
    left : array, shape (n_test, rank) or (n_weights, rank)
        Test-side factor; for the all-sample fit, the basis of the weights (primal coefficients
        on the transformed features, or dual coefficients).
    right : array, shape (rank, n_train)
        Applied to the training targets.
    min_eigenvalue : float
        Smallest eigenvalue before clipping (negative only through rounding, dual only).
    sample_basis : array, shape (n_train, rank_fit) or None
        Orthonormal basis of the fitted values (all-sample fit only; used by leave-one-out).
    sample_eigenvalues : array, shape (rank_fit,) or None
        Eigenvalues of the columns of ``sample_basis``.
    """

    eigenvalues: Any
    left: Any
    right: Any
    min_eigenvalue: float = 0.0
    sample_basis: Any = None
    sample_eigenvalues: Any = None


class _Transform:
    """Centre and/or scale the columns with statistics of given rows."""

    def __init__(self, xp, *, center: bool, scale: bool):
        self.xp, self.center, self.scale = xp, center, scale

    def stats(self, x) -> tuple[Any, Any]:
        mean = x.mean(0) if self.center or self.scale else None
        sd = None
        if self.scale:
            sd = self.xp.std(x)
            sd[sd == 0] = 1.0
        return mean, sd

    @staticmethod
    def apply(x, mean, sd):
        if mean is not None:
            x = x - mean
        if sd is not None:
            x = x / sd
        return x


def _column_scale(xp, gamma: np.ndarray, spaces: list[slice], n_features: int):
    """``sqrt(gamma_i)`` repeated over the columns of space ``i``; None when all ones."""
    if np.all(gamma == 1.0):
        return None
    c = np.empty(n_features)
    for g, sl in zip(gamma, spaces, strict=True):
        c[sl] = np.sqrt(g)
    return xp.asarray(c)


class PrimalSolver:
    """Ridge through the eigendecomposition of the (column-scaled) ``X_train^T X_train``."""

    name = "primal"

    def __init__(self, xp, X, spaces: list[slice], transform: _Transform):
        self.xp, self.X, self.spaces, self.transform = xp, X, spaces, transform

    def prepare(self, train: np.ndarray, test: np.ndarray | None):
        """Transformed training (and test) features of one split."""
        xp = self.xp
        xtr = self.X[xp.asindex(train)]
        mean, sd = self.transform.stats(xtr)
        xtr = self.transform.apply(xtr, mean, sd)
        xte = None if test is None else self.transform.apply(self.X[xp.asindex(test)], mean, sd)
        return xtr, xte

    def spectrum(self, payload, gamma: np.ndarray) -> Spectrum:
        """Decompose one split for kernel weights ``gamma``.

        ``X^T X = V diag(l) V^T`` gives ``right = (X V)^T = diag(s) U^T``; for the all-sample
        fit, the left factor is ``V`` (coefficients) and ``U = X V / s`` spans the fitted values
        (directions with ``l`` at rounding level are left out of it: they carry no fit).
        """
        xtr, xte = payload
        c = _column_scale(self.xp, gamma, self.spaces, xtr.shape[1])
        xs = xtr if c is None else xtr * c
        lam, v = self.xp.eigh(xs.T @ xs)
        lam = lam.clip(min=0)
        xv = xs @ v  # (n_train, rank) = U diag(s)
        if xte is not None:
            return Spectrum(lam, (xte if c is None else xte * c) @ v, xv.T)
        tol = float(lam[-1]) * np.finfo(self.xp.dtype).eps * max(xs.shape)
        keep = self.xp.asindex(np.flatnonzero(self.xp.to_numpy(lam) > tol))
        basis = xv[:, keep] / lam[keep] ** 0.5
        left = v if c is None else c[:, None] * v
        return Spectrum(lam, left, xv.T, sample_basis=basis, sample_eigenvalues=lam[keep])


class DualSolver:
    """Kernel ridge through the eigendecomposition of ``sum_i gamma_i X_i X_i^T``."""

    name = "dual"

    def __init__(self, xp, X, spaces: list[slice], transform: _Transform):
        self.xp, self.X, self.spaces, self.transform = xp, X, spaces, transform
        self.kernels = None
        if not transform.scale:
            # one kernel per space for all samples, sliced and centred per split (after a global
            # centring of X, which the per-split centring makes exact and better conditioned)
            xg = X - X.mean(0) if transform.center else X
            self.kernels = [xg[:, sl] @ xg[:, sl].T for sl in spaces]

    def _center(self, ktr, kte):
        rows = ktr.mean(0)
        total = rows.mean()
        ktr = ktr - rows[None, :] - rows[:, None] + total
        if kte is not None:
            kte = kte - rows[None, :] - kte.mean(1)[:, None] + total
        return ktr, kte

    def prepare(self, train: np.ndarray, test: np.ndarray | None):
        """Per-space training (and test-by-training) kernels of one split."""
        xp = self.xp
        tr = xp.asindex(train)
        te = None if test is None else xp.asindex(test)
        out = []
        if self.kernels is not None:
            for k in self.kernels:
                ktr = k[tr][:, tr]
                kte = None if te is None else k[te][:, tr]
                if self.transform.center:
                    ktr, kte = self._center(ktr, kte)
                out.append((ktr, kte))
            return out
        xtr = self.X[tr]
        mean, sd = self.transform.stats(xtr)
        xtr = self.transform.apply(xtr, mean, sd)
        xte = None if te is None else self.transform.apply(self.X[te], mean, sd)
        for sl in self.spaces:
            a = xtr[:, sl]
            out.append((a @ a.T, None if xte is None else xte[:, sl] @ a.T))
        return out

    def spectrum(self, payload, gamma: np.ndarray) -> Spectrum:
        """Decompose one split for kernel weights ``gamma``."""
        ktr = sum(float(g) * k for g, (k, _) in zip(gamma, payload, strict=True))
        lam, v = self.xp.eigh(ktr)
        min_eig = float(lam[0])
        lam = lam.clip(min=0)
        if payload[0][1] is None:
            return Spectrum(lam, v, v.T, min_eig, sample_basis=v, sample_eigenvalues=lam)
        kte = sum(float(g) * k for g, (_, k) in zip(gamma, payload, strict=True))
        return Spectrum(lam, kte @ v, v.T, min_eig)


#: Decompositions by name; ``solver="auto"`` picks "dual" when n_features >= n_samples.
SOLVERS = {"primal": PrimalSolver, "dual": DualSolver}


# ---------------------------------------------------------------------------------------------
# kernel-weight candidates


def simplex_grid(n_spaces: int, n_steps: int) -> np.ndarray:
    """All kernel weights on a regular grid of the simplex.

    Parameters
    ----------
    n_spaces : int
    n_steps : int
        Each weight is a multiple of ``1 / n_steps``.

    Returns
    -------
    gammas : ndarray, shape (n_candidates, n_spaces)
        Rows sum to 1; ``comb(n_steps + n_spaces - 1, n_spaces - 1)`` rows, the vertices
        (one space alone) included.
    """
    if n_spaces < 1 or n_steps < 1:
        raise DataShapeError(
            f"Empty grid for simplex_grid: expected n_spaces >= 1 and n_steps >= 1, got "
            f"{n_spaces} and {n_steps}. Pass positive sizes."
        )

    def compositions(total, parts):
        if parts == 1:
            yield (total,)
            return
        for first in range(total, -1, -1):
            for rest in compositions(total - first, parts - 1):
                yield (first, *rest)

    return np.array(list(compositions(n_steps, n_spaces)), dtype=float) / n_steps


def sample_gammas(
    n_candidates: int,
    n_spaces: int,
    *,
    concentration: float | Sequence[float] = (0.1, 1.0),
    seed: int = 0,
) -> np.ndarray:
    """Random kernel weights from Dirichlet distributions, the first one uniform.

    As himalaya's random search: the candidates cycle through the ``concentration`` values and
    the first candidate is ``1 / n_spaces`` everywhere (plain ridge on the concatenation).

    Parameters
    ----------
    n_candidates, n_spaces : int
    concentration : float or sequence of float
    seed : int

    Returns
    -------
    gammas : ndarray, shape (n_candidates, n_spaces)
        Rows sum to 1.
    """
    rng = np.random.default_rng(seed)
    conc = np.atleast_1d(np.asarray(concentration, dtype=float))
    gammas = np.stack(
        [rng.dirichlet(np.full(n_spaces, conc[i % conc.size])) for i in range(n_candidates)]
    )
    gammas[0] = 1.0 / n_spaces
    return gammas


# ---------------------------------------------------------------------------------------------
# search


@dataclass
class RidgeSearchResult:
    """Everything a cross-validated ridge search returns (host NumPy arrays).

    Attributes
    ----------
    solver : str
        "primal" or "dual".
    alphas : ndarray, shape (n_alphas,)
    gammas : ndarray, shape (n_gammas, n_spaces)
    alpha_index : ndarray of int, shape (n_targets,)
        Chosen penalty of each target (index into ``alphas``).
    gamma_index : ndarray of int, shape (n_targets,)
        Chosen kernel weights of each target (index into ``gammas``).
    cv_scores : ndarray, shape (n_gammas, n_alphas, n_targets)
        Mean CV score (the chosen criterion) of every candidate.
    cv_sse : ndarray, shape (n_gammas, n_alphas, n_targets)
        Squared error summed over all held-out samples.
    weights : ndarray, shape (n_features, n_targets) or (n_samples, n_targets)
        Primal coefficients on the transformed features, or dual coefficients.
    intercept : ndarray, shape (n_targets,)
    x_mean, x_scale : ndarray, shape (n_features,)
        The transform ``(X - x_mean) / x_scale`` applied before the weights.
    x_fit : ndarray, shape (n_samples, n_features) or None
        Transformed training features (dual only: predictions need them).
    spaces : list of slice
        Columns of each feature space.
    """

    solver: str
    alphas: np.ndarray
    gammas: np.ndarray
    alpha_index: np.ndarray
    gamma_index: np.ndarray
    cv_scores: np.ndarray
    cv_sse: np.ndarray
    weights: np.ndarray
    intercept: np.ndarray
    x_mean: np.ndarray
    x_scale: np.ndarray
    x_fit: np.ndarray | None
    spaces: list[slice]


def _spaces_from_sizes(feature_spaces: Sequence[int] | None, n_features: int) -> list[slice]:
    if feature_spaces is None:
        return [slice(0, n_features)]
    sizes = [int(s) for s in feature_spaces]
    if any(s < 1 for s in sizes) or sum(sizes) != n_features:
        raise DataShapeError(
            f"Feature spaces do not tile X for feature_spaces: expected positive sizes summing "
            f"to n_features={n_features}, got {sizes}. Give the column count of each space, in "
            "column order."
        )
    edges = np.concatenate([[0], np.cumsum(sizes)])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _check_alphas(alphas: Any) -> np.ndarray:
    a = np.atleast_1d(np.asarray(alphas, dtype=float))
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise DataShapeError(
            f"Invalid penalty grid for alphas: expected a non-empty 1-D sequence of positive "
            f"finite numbers, got {alphas!r}. Use e.g. np.logspace(-2, 5, 8)."
        )
    return a


def _check_gammas(gammas: Any, n_spaces: int) -> np.ndarray:
    g = np.asarray(gammas, dtype=float)
    if g.ndim != 2 or g.shape[1] != n_spaces or g.shape[0] == 0:
        raise DataShapeError(
            f"Wrong shape for gammas: expected (n_candidates, {n_spaces}), one weight per feature "
            f"space, got {g.shape}. Pass an array of candidate kernel weights or an int."
        )
    if not np.all(np.isfinite(g)) or np.any(g < 0) or np.any(g.sum(1) <= 0):
        raise DataShapeError(
            "Invalid kernel weights for gammas: expected non-negative finite rows with a positive "
            "sum, got some negative, non-finite or all-zero row. Fix those rows."
        )
    return g


def _batches(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def _auto_batch(n_samples, n_features, n_alphas, max_test, itemsize) -> int:
    per_target = itemsize * (n_alphas * max(max_test, 1) + 3 * n_samples + n_features)
    return max(1, AUTO_BATCH_BYTES // per_target)


def _kfold_scores(
    xp,
    solver,
    payloads,
    splits,
    gamma,
    Y,
    alphas,
    alphas_xp,
    *,
    scorer,
    fit_intercept,
    batches,
    guard_negative,
):
    """Fold scores (n_folds, n_alphas, n_targets) and summed SSE (n_alphas, n_targets)."""
    n_alphas, n_targets = alphas.size, Y.shape[1]
    fold_scores = np.empty((len(splits), n_alphas, n_targets), dtype=xp.dtype)
    sse_total = np.zeros((n_alphas, n_targets))
    for f, ((train, test), payload) in enumerate(zip(splits, payloads, strict=True)):
        spec = solver.spectrum(payload, gamma)
        w = 1.0 / (spec.eigenvalues[None, :] + alphas_xp[:, None])  # (n_alphas, rank)
        n_tr, n_te, rank = train.size, test.size, w.shape[1]
        # per target: applying one (n_alphas n_test, n_train) matrix, or projecting first
        stacked = n_alphas * n_te * n_tr <= rank * (n_tr + n_alphas * n_te)
        if stacked:
            m = ((spec.left[None] * w[:, None, :]) @ spec.right).reshape(n_alphas * n_te, n_tr)
        else:
            lw = spec.left[None] * w[:, None, :]  # (n_alphas, n_test, rank)
        for sl in batches:
            ytr = xp.asarray(Y[train, sl])
            yte = xp.asarray(Y[test, sl])
            if fit_intercept:
                mu = ytr.mean(0)
                ytr = ytr - mu
                yte = yte - mu
            if stacked:
                pred = (m @ ytr).reshape(n_alphas, n_te, ytr.shape[1])
            else:
                pred = lw @ (spec.right @ ytr)
            pred -= yte[None]
            pred *= pred
            sse = xp.to_numpy(pred.sum(1))
            ss_tot = xp.to_numpy(((yte - yte.mean(0)) ** 2).sum(0))
            fold_scores[f, :, sl] = scorer(sse, ss_tot, n_te)
            sse_total[:, sl] += sse
            del pred
        if guard_negative:
            # as himalaya: penalties below twice a negative (rounding) eigenvalue are unreliable
            fold_scores[f, alphas < -2 * spec.min_eigenvalue] = -np.inf
    return fold_scores, sse_total


def _loo_scores(xp, spec, Y, alphas, alphas_xp, *, scorer, fit_intercept, batches):
    """Exact leave-one-out scores (1, n_alphas, n_targets) and SSE (n_alphas, n_targets)."""
    n, n_targets = Y.shape
    q, lam = spec.sample_basis, spec.sample_eigenvalues
    # H = J / n (intercept) + q diag(l / (l + a)) q^T. When q spans every direction the fit can
    # use (n of them, or the n - 1 orthogonal to the constant with an intercept), residuals and
    # 1 - H_ii are sums of the positive terms a / (l + a) over that span: no cancellation when
    # the fit nearly interpolates (small a, n <= p), which float32 could not survive otherwise.
    complete = q.shape[1] >= n - int(fit_intercept)
    if complete and fit_intercept:
        q = q - q.mean(0)  # drop the (rounded) constant direction: its share is J / n
    keep = alphas_xp[:, None] if complete else lam[None, :]
    factor = keep / (lam[None, :] + alphas_xp[:, None])  # (n_alphas, rank)
    one_minus_h = (q * q) @ factor.T  # (n, n_alphas)
    if not complete:
        one_minus_h = (1.0 - (1.0 / n if fit_intercept else 0.0)) - one_minus_h
    sse_total = np.zeros((alphas.size, n_targets))
    for sl in batches:
        y = xp.asarray(Y[:, sl])
        if fit_intercept:
            y = y - y.mean(0)
        qty = q.T @ y
        for a in range(alphas.size):
            fitted_part = q @ (factor[a][:, None] * qty)
            residual = fitted_part if complete else y - fitted_part
            e = residual / one_minus_h[:, a : a + 1]
            sse_total[a, sl] = xp.to_numpy((e * e).sum(0))
    scores = scorer(sse_total.astype(xp.dtype), np.zeros(n_targets, xp.dtype), 1) / n
    return scores[None].astype(xp.dtype), sse_total


def solve_ridge_cv(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    alphas: Sequence[float],
    feature_spaces: Sequence[int] | None = None,
    gammas: np.ndarray | None = None,
    cv: Any = 5,
    groups: np.ndarray | None = None,
    seed: int = 0,
    scoring: str = "neg_sse",
    fit_intercept: bool = True,
    standardize: bool = True,
    solver: str = "auto",
    backend: str = "numpy",
    device: str = "cpu",
    dtype: str = "float64",
    n_targets_batch: int | None = None,
) -> RidgeSearchResult:
    """Choose a penalty (and kernel weights) per target by cross-validation, refit on all.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    Y : ndarray, shape (n_samples, n_targets)
    alphas : sequence of float, shape (n_alphas,)
        Positive penalty grid.
    feature_spaces : sequence of int, optional
        Column count of each feature space, in column order (banded ridge); one space if None.
    gammas : ndarray, shape (n_gammas, n_spaces), optional
        Candidate kernel weights; ``[[1, ..., 1]]`` (plain ridge) if None.
    cv : int, sequence of (train, test), splitter or "loo"
        Folds of the penalty search (see :func:`~brainalign.encoding.splits.make_splits`);
        "loo" is exact, efficient leave-one-out.
    groups : ndarray, shape (n_samples,), optional
        Group of each sample (stimulus, run); folds never split a group.
    seed : int
        Seed of the fold shuffle when ``cv`` is an int.
    scoring : {"neg_sse", "neg_mse", "r2"}
        CV criterion (:data:`~brainalign.encoding.scoring.CV_SCORERS`).
    fit_intercept : bool
        Centre features and targets on each training set.
    standardize : bool
        Z-score the features on each training set.
    solver : {"auto", "primal", "dual"}
    backend : {"numpy", "torch"}
    device : str
        "cpu" or, with torch, "cuda".
    dtype : {"float64", "float32"}
    n_targets_batch : int, optional
        Targets processed together; None sizes batches to about 256 MiB of intermediates.

    Returns
    -------
    result : RidgeSearchResult
    """
    xp = get_backend(backend, dtype=dtype, device=device)
    if scoring not in CV_SCORERS:
        raise ConfigError(
            f"Unknown scoring for ridge: expected one of {sorted(CV_SCORERS)}, got {scoring!r}. "
            "Pick one of those."
        )
    scorer = CV_SCORERS[scoring]
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2:
        raise DataShapeError(
            f"Wrong dimensions for X and Y: expected 2-D arrays, got {X.ndim}-D and {Y.ndim}-D. "
            "Reshape to (n_samples, n_features) and (n_samples, n_targets)."
        )
    n_samples, n_features = X.shape
    if Y.shape[0] != n_samples:
        raise DataShapeError(
            f"Features have {n_samples} rows but responses have {Y.shape[0]}: expected one "
            "row per stimulus in both. Re-run feature extraction or the response step."
        )
    for name, a in (("X", X), ("Y", Y)):
        if not np.all(np.isfinite(a)):
            raise DataShapeError(
                f"Non-finite values in {name}: expected finite numbers, got "
                f"{int(np.size(a) - np.isfinite(a).sum())} NaN or inf. Drop or impute them."
            )
    alphas = _check_alphas(alphas)
    spaces = _spaces_from_sizes(feature_spaces, n_features)
    gammas = np.ones((1, len(spaces))) if gammas is None else _check_gammas(gammas, len(spaces))
    if solver == "auto":
        solver = "dual" if n_features >= n_samples else "primal"
    if solver not in SOLVERS:
        raise ConfigError(
            f"Unknown solver for ridge: expected 'auto' or one of {sorted(SOLVERS)}, got "
            f"{solver!r}. Pick one of those."
        )
    loo = isinstance(cv, str) and cv == LEAVE_ONE_OUT
    if loo:
        if scoring not in LOO_SCORERS:
            raise ConfigError(
                f"Unsupported scoring for cv='loo': expected one of {list(LOO_SCORERS)}, got "
                f"{scoring!r} (R^2 is undefined on one-sample folds). Use cv=int instead."
            )
        if groups is not None:
            raise ConfigError(
                "Conflicting groups for cv='loo': expected no groups, got groups. Use "
                "cv=<number of groups> for leave-one-group-out."
            )
        splits = []
    else:
        splits = make_splits(cv, n_samples, groups=groups, seed=seed)

    Yh = np.ascontiguousarray(Y, dtype=xp.dtype)
    Xd = xp.asarray(X)
    transform = _Transform(xp, center=fit_intercept or standardize, scale=standardize)
    engine = SOLVERS[solver](xp, Xd, spaces, transform)
    alphas_xp = xp.asarray(alphas)
    n_targets = Y.shape[1]
    max_test = max((t.size for _, t in splits), default=n_samples)
    batch = n_targets_batch or _auto_batch(
        n_samples, n_features, alphas.size, max_test, xp.dtype.itemsize
    )
    batches = _batches(n_targets, int(batch))
    logger.info(
        "ridge search: %d samples, %d features in %d space(s), %d targets (batches of %d), "
        "%d alphas x %d gammas, %s folds, solver %s, %s/%s/%s",
        n_samples,
        n_features,
        len(spaces),
        n_targets,
        batch,
        alphas.size,
        gammas.shape[0],
        "loo" if loo else len(splits),
        solver,
        xp.name,
        xp.device,
        xp.dtype.name,
    )

    everything = np.arange(n_samples)
    payloads = [engine.prepare(tr, te) for tr, te in splits]
    full_payload = engine.prepare(everything, None)
    eps = np.finfo(xp.dtype).eps
    best_score = np.full(n_targets, -np.inf, dtype=xp.dtype)
    alpha_index = np.full(n_targets, alphas.size - 1)
    gamma_index = np.zeros(n_targets, dtype=int)
    cv_scores = np.empty((gammas.shape[0], alphas.size, n_targets), dtype=xp.dtype)
    cv_sse = np.empty((gammas.shape[0], alphas.size, n_targets))
    full_spectra: dict[int, Spectrum] = {}
    for g, gamma in enumerate(gammas):
        if loo:
            spec = engine.spectrum(full_payload, gamma)
            if gammas.shape[0] == 1:
                full_spectra[g] = spec
            fold_scores, sse = _loo_scores(
                xp,
                spec,
                Yh,
                alphas,
                alphas_xp,
                scorer=scorer,
                fit_intercept=fit_intercept,
                batches=batches,
            )
        else:
            fold_scores, sse = _kfold_scores(
                xp,
                engine,
                payloads,
                splits,
                gamma,
                Yh,
                alphas,
                alphas_xp,
                scorer=scorer,
                fit_intercept=fit_intercept,
                batches=batches,
                guard_negative=solver == "dual",
            )
        best, score, cv_scores[g] = select_best_alphas(fold_scores, alphas, dtype=xp.dtype)
        cv_sse[g] = sse
        improved = score > best_score + eps
        best_score[improved] = score[improved]
        alpha_index[improved] = best[improved]
        gamma_index[improved] = g
        logger.debug(
            "gamma %d/%d %s: %d targets improved", g + 1, len(gammas), gamma, int(improved.sum())
        )

    # refit on all samples, grouped by chosen kernel weights
    n_weights = n_features if solver == "primal" else n_samples
    weights = np.zeros((n_weights, n_targets), dtype=xp.dtype)
    for g in np.unique(gamma_index):
        spec = full_spectra[g] if g in full_spectra else engine.spectrum(full_payload, gammas[g])
        w_all = 1.0 / (spec.eigenvalues[None, :] + alphas_xp[:, None])  # (n_alphas, rank)
        cols = np.flatnonzero(gamma_index == g)
        for sl in _batches(cols.size, int(batch)):
            idx = cols[sl]
            y = xp.asarray(Yh[:, idx])
            if fit_intercept:
                y = y - y.mean(0)
            z = spec.right @ y  # (rank, b)
            z *= w_all[xp.asindex(alpha_index[idx])].T
            weights[:, idx] = xp.to_numpy(spec.left @ z)

    x_mean = np.zeros(n_features, dtype=xp.dtype)
    x_scale = np.ones(n_features, dtype=xp.dtype)
    mean, sd = transform.stats(Xd)
    if mean is not None:
        x_mean = xp.to_numpy(mean)
    if sd is not None:
        x_scale = xp.to_numpy(sd)
    x_fit = None
    if solver == "dual":
        x_fit = ((X - x_mean) / x_scale).astype(xp.dtype)
    intercept = Yh.mean(0) if fit_intercept else np.zeros(n_targets, dtype=xp.dtype)
    return RidgeSearchResult(
        solver=solver,
        alphas=alphas,
        gammas=gammas,
        alpha_index=alpha_index,
        gamma_index=gamma_index,
        cv_scores=cv_scores,
        cv_sse=cv_sse,
        weights=weights,
        intercept=intercept,
        x_mean=x_mean,
        x_scale=x_scale,
        x_fit=x_fit,
        spaces=spaces,
    )


def predict_ridge(result: RidgeSearchResult, X: np.ndarray) -> np.ndarray:
    """Predictions of a fitted search on new samples (NumPy, the fit's precision).

    Parameters
    ----------
    result : RidgeSearchResult
    X : ndarray, shape (n_samples_new, n_features)

    Returns
    -------
    Y_pred : ndarray, shape (n_samples_new, n_targets)
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != result.x_mean.size:
        raise DataShapeError(
            f"Wrong shape for X: expected (n_samples, {result.x_mean.size}), the features seen "
            f"in fit, got {X.shape}. Use the same feature extraction as for fitting."
        )
    dtype = result.weights.dtype
    xt = ((X - result.x_mean) / result.x_scale).astype(dtype)
    if result.solver == "primal":
        return xt @ result.weights + result.intercept
    gam = result.gammas[result.gamma_index].T.astype(dtype)  # (n_spaces, n_targets)
    pred = np.zeros((X.shape[0], result.weights.shape[1]), dtype=dtype)
    for i, sl in enumerate(result.spaces):
        k = xt[:, sl] @ result.x_fit[:, sl].T
        pred += k @ (result.weights if np.all(gam[i] == 1) else result.weights * gam[i])
    return pred + result.intercept
