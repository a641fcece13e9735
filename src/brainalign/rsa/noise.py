"""Noise covariance estimates for Mahalanobis and crossnobis RDMs.

The estimators follow ``rsatoolbox.data.noise.cov_from_residuals`` exactly (rsatoolbox 0.3),
but are vectorised: the sums over residual rows are matrix products instead of a Python loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from brainalign.errors import DataShapeError
from brainalign.rsa._util import lookup

__all__ = ["calc_noise_cov", "calc_noise_prec", "COV_METHODS"]

logger = logging.getLogger(__name__)


def _cov_full(x: np.ndarray, dof: int) -> np.ndarray:
    return x.T @ x / dof


def _cov_diag(x: np.ndarray, dof: int) -> np.ndarray:
    return np.diag(np.einsum("ij,ij->j", x, x) / dof)


def _cov_shrinkage_eye(x: np.ndarray, dof: int) -> np.ndarray:
    """Ledoit & Wolf (2004) shrinkage towards a multiple of the identity."""
    n, p = x.shape
    s_sum = x.T @ x
    x2 = x * x
    s2_sum = x2.T @ x2  # sum over rows of (x_j x_k)^2
    s = s_sum / n
    b2 = np.sum(s2_sum / n - s * s) / n
    m = np.trace(s) / p
    eye = np.eye(p)
    d2 = np.sum((s - m * eye) ** 2)
    b2 = min(d2, b2)
    shrunk = b2 / d2 * m * eye + (d2 - b2) / d2 * s
    return shrunk * n / dof


def _cov_shrinkage_diag(x: np.ndarray, dof: int) -> np.ndarray:
    """Schaefer & Strimmer (2005) shrinkage of the correlations towards zero."""
    n, p = x.shape
    s_sum = x.T @ x
    x2 = x * x
    s2_sum = x2.T @ x2
    s = s_sum / dof
    var = np.diag(s)
    std = np.sqrt(var)
    s_mean = s_sum / std[None, :] / std[:, None] / (n - 1)
    s2_mean = s2_sum / var[None, :] / var[:, None] / (n - 1)
    var_hat = n / dof**2 * (s2_mean - s_mean**2)
    off = ~np.eye(p, dtype=bool)
    lamb = np.sum(var_hat[off]) / np.sum(s_mean[off] ** 2)
    lamb = max(min(lamb, 1.0), 0.0)
    logger.debug("shrinkage_diag: lambda = %.4g", lamb)
    return s * (np.eye(p) + (1.0 - lamb) * off)


#: Covariance estimators by name (the rsatoolbox ``method`` names).
COV_METHODS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "shrinkage_diag": _cov_shrinkage_diag,
    "shrinkage_eye": _cov_shrinkage_eye,
    "diag": _cov_diag,
    "full": _cov_full,
}


def calc_noise_cov(
    residuals: np.ndarray, *, method: str = "shrinkage_diag", dof: int | None = None
) -> np.ndarray:
    """Channel noise covariance from residuals, optionally shrunk.

    Same estimators and numbers as ``rsatoolbox.data.noise.cov_from_residuals``:
    the residuals are demeaned per channel, then

    - ``"full"``: sample covariance ``X'X / dof``;
    - ``"diag"``: its diagonal (univariate noise normalisation);
    - ``"shrinkage_eye"``: Ledoit & Wolf (2004) shrinkage towards ``m * I``;
    - ``"shrinkage_diag"``: Schaefer & Strimmer (2005) shrinkage towards the diagonal.

    Parameters
    ----------
    residuals : ndarray, shape (n_residuals, n_channels)
        GLM residuals (or any noise samples), one row per time point or trial.
    method : str
        Key of ``COV_METHODS``.
    dof : int, optional
        Degrees of freedom; default ``n_residuals - 1``. Subtract the number of GLM
        regressors when the residuals come from a GLM.

    Returns
    -------
    cov : ndarray, shape (n_channels, n_channels)
    """
    estimator = lookup(COV_METHODS, method, arg="method")
    x = np.asarray(residuals, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise DataShapeError(
            f"Bad shape for residuals: expected (n_residuals >= 2, n_channels), got {x.shape}. "
            "Pass one row per residual sample."
        )
    x = x - x.mean(axis=0, keepdims=True)
    if dof is None:
        dof = x.shape[0] - 1
    if dof < 1:
        raise ValueError(f"Bad dof for residuals: expected >= 1, got {dof}. Pass more samples.")
    return estimator(x, dof)


def calc_noise_prec(
    residuals: np.ndarray, *, method: str = "shrinkage_diag", dof: int | None = None
) -> np.ndarray:
    """Noise precision (inverse covariance), as ``rsatoolbox.data.noise.prec_from_residuals``.

    Parameters
    ----------
    residuals : ndarray, shape (n_residuals, n_channels)
    method : str
        Key of ``COV_METHODS``.
    dof : int, optional
        Degrees of freedom; default ``n_residuals - 1``.

    Returns
    -------
    prec : ndarray, shape (n_channels, n_channels)
    """
    return np.linalg.inv(calc_noise_cov(residuals, method=method, dof=dof))
