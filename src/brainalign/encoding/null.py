"""What an encoding score is when the responses hold no signal: the design's null offset.

The cross-validated r of :func:`~brainalign.encoding.cross_validated_ridge` has expectation 0
when the noise is exchangeable across stimuli (its outer test folds never see their own noise).
Single-trial fMRI responses break that: trial betas of a least-squares-all GLM share noise
through overlapping haemodynamic responses and the run's constant and drift terms, and after
averaging the repeats every pair of stimuli has a noise covariance fixed by the event design.
Where that covariance happens to resemble the feature similarity of the stimuli (or its
opposite), a pure-noise voxel scores above (below) 0 on average; the offset is the same for
every voxel of the subject and nearly the same for every layer, so it does not shrink with
the number of voxels. In ``benchmarks/sim_null_and_ceiling.py`` (92 images, 3 repeats in 6 runs,
TR 1.5 s, 3-5 s between onsets, AR(1) GLM) the offsets have an SD of 0.022 across designs
(0.025 over 100 designs, range -0.06 to +0.08) and a mean of 0: the score is unbiased over
designs, not for a given design.

:func:`beta_noise_covariance` gives the noise covariance of one run's trial betas from its
design matrix, :func:`averaged_noise_covariance` that of the per-stimulus means, and
:func:`null_scores` runs the same cross-validation on responses drawn from that covariance:
their mean is the design's null offset (subtract it from the observed scores), their spread
the null SD of one voxel. :func:`roi_null_sd` turns a voxel's null SD into the null SD of an
ROI mean whose voxels share noise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from brainalign.errors import DataShapeError

__all__ = [
    "averaged_noise_covariance",
    "beta_noise_covariance",
    "null_scores",
    "roi_null_sd",
]

logger = logging.getLogger(__name__)


def _ar1_matrix(n: int, rho: float) -> np.ndarray:
    lag = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    return rho ** lag.astype(float)


def _ar1_whitener(n: int, rho: float) -> np.ndarray:
    """Matrix ``W`` with ``W V W' = I`` for AR(1) correlation ``V`` (Prais-Winsten)."""
    w = np.eye(n)
    if rho == 0:
        return w
    w[0, 0] = np.sqrt(1 - rho**2)
    w[np.arange(1, n), np.arange(n - 1)] = -rho
    return w / np.sqrt(1 - rho**2)


def beta_noise_covariance(
    design: np.ndarray,
    trial_index: Sequence[int],
    *,
    ar1_rho: float = 0.0,
    whiten_rho: float | None = None,
) -> np.ndarray:
    """Noise covariance of one run's single-trial betas implied by its design.

    Parameters
    ----------
    design : ndarray, shape (n_volumes, n_regressors)
        The run's GLM design (trial regressors, drift, confounds, constant).
    trial_index : sequence of int, length n_trials
        Columns of ``design`` that hold the trial regressors, in trial order.
    ar1_rho : float
        Lag-1 autocorrelation of the BOLD noise (unit variance), in [0, 1).
    whiten_rho : float, optional
        Autocorrelation the GLM prewhitens with (nilearn's ``noise_model="ar1"``); None uses
        ``ar1_rho`` (correct whitening), 0 is ordinary least squares.

    Returns
    -------
    cov : ndarray, shape (n_trials, n_trials)
        Covariance of the estimated trial betas per unit noise variance.
    """
    d = np.asarray(design, dtype=float)
    if d.ndim != 2 or d.shape[0] <= d.shape[1]:
        raise DataShapeError(
            f"Bad design shape for design: expected (n_volumes, n_regressors) with more volumes "
            f"than regressors, got {d.shape}. Pass the run's full design matrix."
        )
    rho = float(ar1_rho)
    w_rho = rho if whiten_rho is None else float(whiten_rho)
    for name, value in (("ar1_rho", rho), ("whiten_rho", w_rho)):
        if not 0 <= value < 1:
            raise DataShapeError(
                f"Autocorrelation out of range for {name}: expected 0 <= rho < 1, got {value}. "
                "Pass the lag-1 autocorrelation of the noise."
            )
    n = d.shape[0]
    w = _ar1_whitener(n, w_rho)
    dw = w @ d
    pinv = np.linalg.pinv(dw) @ w  # beta = pinv @ y
    idx = np.asarray(trial_index, dtype=int)
    p = pinv[idx]
    return p @ _ar1_matrix(n, rho) @ p.T


def averaged_noise_covariance(
    trial_covs: Sequence[np.ndarray],
    stim_files: Sequence[str],
    stimuli: Sequence[str],
) -> np.ndarray:
    """Noise covariance of per-stimulus mean betas (``fmri.average_repeats``' ``mean``).

    Parameters
    ----------
    trial_covs : sequence of ndarray, shapes (n_trials_run, n_trials_run)
        :func:`beta_noise_covariance` of each run, in the order the trials are concatenated
        (runs are independent).
    stim_files : sequence of str, length n_trials
        Stimulus of each trial, all runs concatenated.
    stimuli : sequence of str, length n_stimuli
        Row order of the responses.

    Returns
    -------
    cov : ndarray, shape (n_stimuli, n_stimuli)
        ``A C A'`` with ``C`` the block-diagonal trial covariance and ``A`` the averaging
        matrix (``1 / n_repeats`` at each stimulus' trials).
    """
    from scipy.linalg import block_diag

    c = block_diag(*[np.asarray(x, dtype=float) for x in trial_covs])
    stim_files = np.asarray(stim_files).astype(str)
    if c.shape[0] != stim_files.size:
        raise DataShapeError(
            f"Trial counts differ for trial_covs and stim_files: expected one stimulus per "
            f"trial, got {c.shape[0]} trials and {stim_files.size} stimuli. Concatenate the "
            "runs in the same order."
        )
    a = np.zeros((len(stimuli), stim_files.size))
    for i, s in enumerate(stimuli):
        rows = np.flatnonzero(stim_files == str(s))
        if rows.size == 0:
            raise DataShapeError(
                f"Stimulus {s!r} has no trial in stim_files: expected every stimulus shown at "
                "least once. Pass the stimuli that were shown."
            )
        a[i, rows] = 1.0 / rows.size
    return a @ c @ a.T


def null_scores(
    X: np.ndarray,
    noise_cov: np.ndarray | None = None,
    *,
    alphas: Sequence[float],
    n_folds: int = 5,
    n_inner_folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
    ridge_params: Mapping[str, Any] | None = None,
    n_samples: int = 1024,
    random_state: int = 0,
) -> dict[str, Any]:
    """Cross-validated r of pure-noise responses, with the analysis' own folds and penalties.

    Parameters
    ----------
    X : ndarray, shape (n_stimuli, n_features)
        Layer features, as passed to :func:`~brainalign.encoding.cross_validated_ridge`.
    noise_cov : ndarray, shape (n_stimuli, n_stimuli), optional
        Noise covariance of the responses across stimuli (e.g. :func:`averaged_noise_covariance`);
        its scale does not matter. None: independent, equal-variance noise.
    alphas, n_folds, n_inner_folds, seed, groups, ridge_params
        As for :func:`~brainalign.encoding.cross_validated_ridge` (same values give the same
        folds).
    n_samples : int
        Simulated noise voxels (all fitted in one call). The mean's Monte Carlo error is about
        ``0.15 / sqrt(n_samples)`` for 92 stimuli.
    random_state : int
        Seed of the simulated noise.

    Returns
    -------
    result : dict
        ``r`` (n_samples,): the null scores; ``mean``: their mean, the design's expected score
        without signal (subtract it from observed scores); ``sd``: the null SD of one voxel;
        ``se``: the Monte Carlo standard error of ``mean``.
    """
    from brainalign.encoding.evaluation import cross_validated_ridge

    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    if n_samples < 2:
        raise DataShapeError(
            f"Too few null samples for n_samples: expected >= 2, got {n_samples}. "
            "Use hundreds (the default is 1024)."
        )
    rng = np.random.default_rng(random_state)
    z = rng.standard_normal((n, int(n_samples)))
    if noise_cov is not None:
        cov = np.asarray(noise_cov, dtype=float)
        if cov.shape != (n, n):
            raise DataShapeError(
                f"Wrong shape for noise_cov: expected ({n}, {n}), one row per stimulus of X, got "
                f"{cov.shape}. Pass the covariance of the responses' rows."
            )
        cov = (cov + cov.T) / 2
        vals, vecs = np.linalg.eigh(cov)
        z = (vecs * np.sqrt(np.clip(vals, 0, None))) @ (vecs.T @ z)
    res = cross_validated_ridge(
        X,
        z,
        alphas=alphas,
        n_folds=n_folds,
        n_inner_folds=n_inner_folds,
        seed=seed,
        groups=groups,
        ridge_params=ridge_params,
    )
    r = res["r"]
    out = {
        "r": r,
        "mean": float(r.mean()),
        "sd": float(r.std(ddof=1)),
        "se": float(r.std(ddof=1) / np.sqrt(r.size)),
    }
    logger.info("null encoding score over %d noise voxels: mean %.4f, sd %.4f", r.size,
                out["mean"], out["sd"])
    return out


def roi_null_sd(voxel_sd: float, n_voxels: int, *, score_correlation: float) -> float:
    """Null SD of an ROI's mean score when its voxels' scores are correlated.

    Parameters
    ----------
    voxel_sd : float
        Null SD of one voxel's score (``null_scores(...)["sd"]``; about ``1.42 / sqrt(n)`` for
        ``n`` stimuli and 5 outer folds, above the ``1 / sqrt(n - 1)`` of one correlation
        because the folds' scores share training data).
    n_voxels : int
        Voxels averaged.
    score_correlation : float
        Mean correlation between two voxels' null scores. Noise shared with correlation ``rho``
        between two voxels' responses gives about ``rho**2`` (simulation: 0.06, 0.21, 0.46 for
        ``rho`` = 0.25, 0.5, 0.75 at 92 stimuli); a design's null offset adds to it unless
        subtracted (:func:`null_scores`).

    Returns
    -------
    sd : float
        ``voxel_sd * sqrt(c + (1 - c) / n_voxels)``: it falls to ``voxel_sd * sqrt(c)``, not to
        0, however many voxels share the noise.
    """
    c = float(score_correlation)
    if not -1.0 / max(n_voxels - 1, 1) <= c <= 1 or n_voxels < 1:
        raise DataShapeError(
            f"Bad arguments for roi_null_sd: expected n_voxels >= 1 and a correlation in "
            f"[-1/(n-1), 1], got n_voxels={n_voxels}, score_correlation={c}. Check them."
        )
    return float(voxel_sd * np.sqrt(c + (1 - c) / n_voxels))
