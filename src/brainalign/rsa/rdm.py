"""Representational dissimilarity matrices (RDMs) from response patterns.

Every RDM is returned *condensed*: the upper triangle in ``scipy.spatial.distance.pdist``
order, i.e. pairs ``(0, 1), (0, 2), ..., (0, n-1), (1, 2), ...``.

Normalisation
-------------
``calc_rdm`` returns plain ``pdist`` values (no division by the number of channels).
``calc_rdm_mahalanobis`` and ``calc_rdm_crossnobis`` follow rsatoolbox
(``rsatoolbox.rdm.calc``) and divide by ``n_channels``, so a Mahalanobis RDM with an identity
noise covariance equals ``calc_rdm(patterns, metric="sqeuclidean") / n_channels``, which is
rsatoolbox's ``'euclidean'`` RDM.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.distance import pdist

from brainalign.errors import DataShapeError
from brainalign.rsa._util import lookup
from brainalign.rsa.noise import calc_noise_cov

__all__ = [
    "calc_rdm",
    "calc_rdm_mahalanobis",
    "calc_rdm_crossnobis",
    "calc_rdm_timeseries",
    "zscore_features",
    "RDM_METRICS",
]


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


def _check_patterns(patterns: np.ndarray, *, arg: str = "patterns") -> np.ndarray:
    patterns = np.asarray(patterns, float)
    if patterns.ndim != 2 or patterns.shape[0] < 3:
        raise DataShapeError(
            f"Bad shape for {arg}: expected (n_stimuli >= 3, n_channels), got {patterns.shape}. "
            "Pass one row per stimulus."
        )
    return patterns


def _pdist_metric(name: str) -> Callable[[np.ndarray], np.ndarray]:
    def metric(patterns: np.ndarray) -> np.ndarray:
        return pdist(patterns, metric=name)

    metric.__name__ = f"_rdm_{name}"
    return metric


#: Pattern dissimilarities for :func:`calc_rdm` (each identical to scipy's ``pdist``).
RDM_METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    name: _pdist_metric(name) for name in ("correlation", "cosine", "euclidean", "sqeuclidean")
}


def calc_rdm(patterns: np.ndarray, *, metric: str = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix (condensed upper triangle).

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_channels)
        One pattern (voxels, units) per stimulus.
    metric : str
        Key of ``RDM_METRICS``: ``"correlation"`` (1 - Pearson r), ``"cosine"``,
        ``"euclidean"``, ``"sqeuclidean"``; values equal ``scipy.spatial.distance.pdist``.

    Returns
    -------
    rdm : ndarray, shape (n_stimuli * (n_stimuli - 1) / 2,)
        Dissimilarities in ``pdist`` order (row-major upper triangle).
    """
    fn = lookup(RDM_METRICS, metric, arg="metric")
    return fn(_check_patterns(patterns))


def _precision(
    n_channels: int,
    noise_cov: np.ndarray | None,
    residuals: np.ndarray | None,
    cov_method: str,
    *,
    required: bool,
) -> np.ndarray | None:
    """Noise precision from an explicit covariance or from residuals."""
    if noise_cov is not None and residuals is not None:
        raise ValueError(
            "Both noise_cov and residuals given: expected one of them, got both. "
            "Pass noise_cov (a covariance) or residuals (to estimate it), not both."
        )
    if noise_cov is None and residuals is None:
        if required:
            raise ValueError(
                "No noise model for noise_cov: expected noise_cov or residuals, got neither. "
                "Use calc_rdm(..., metric='sqeuclidean') for an identity noise model."
            )
        return None
    if residuals is not None:
        cov = calc_noise_cov(residuals, method=cov_method)
    else:
        cov = np.asarray(noise_cov, dtype=float)
    if cov.shape != (n_channels, n_channels):
        raise DataShapeError(
            f"Bad shape for noise_cov: expected ({n_channels}, {n_channels}), got {cov.shape}. "
            "Estimate the covariance on the same channels as the patterns."
        )
    return np.linalg.inv(cov)


def _distances_from_kernel(kernel: np.ndarray) -> np.ndarray:
    """Condensed ``k_ii + k_jj - k_ij - k_ji`` from a (possibly stacked) kernel matrix."""
    n = kernel.shape[-1]
    rows, cols = np.triu_indices(n, 1)
    diag = np.diagonal(kernel, axis1=-2, axis2=-1)
    return (
        diag[..., rows] + diag[..., cols] - kernel[..., rows, cols] - kernel[..., cols, rows]
    )


def calc_rdm_mahalanobis(
    patterns: np.ndarray,
    *,
    noise_cov: np.ndarray | None = None,
    residuals: np.ndarray | None = None,
    cov_method: str = "shrinkage_diag",
) -> np.ndarray:
    """Squared Mahalanobis RDM, divided by the number of channels (as rsatoolbox).

    ``d_ij = (x_i - x_j) P (x_i - x_j)' / n_channels`` with ``P = inv(noise_cov)``; equals
    ``rsatoolbox.rdm.calc_rdm(dataset, method='mahalanobis', noise=P)``.

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_channels)
    noise_cov : ndarray, shape (n_channels, n_channels), optional
        Noise covariance (not precision).
    residuals : ndarray, shape (n_residuals, n_channels), optional
        Residuals to estimate the covariance from with :func:`calc_noise_cov`.
    cov_method : str
        Estimator for ``residuals`` (key of ``COV_METHODS``).

    Returns
    -------
    rdm : ndarray, shape (n_pairs,)
    """
    x = _check_patterns(patterns)
    prec = _precision(x.shape[1], noise_cov, residuals, cov_method, required=True)
    kernel = x @ prec @ x.T
    return _distances_from_kernel(kernel) / x.shape[1]


def calc_rdm_crossnobis(
    run_patterns: np.ndarray,
    *,
    noise_cov: np.ndarray | None = None,
    residuals: np.ndarray | None = None,
    cov_method: str = "shrinkage_diag",
) -> np.ndarray:
    """Cross-validated squared Mahalanobis (crossnobis) RDM, divided by the number of channels.

    For runs ``k != l``: ``d_ij = mean_{k != l} (x_ki - x_kj) P (x_li - x_lj)' / n_channels``.
    This equals rsatoolbox's leave-one-run-out estimate
    (``calc_rdm(dataset, method='crossnobis', descriptor=..., cv_descriptor=run, noise=P)``,
    training on the mean of the other runs), computed in one pass from run sums.
    The estimate is unbiased, so it can be negative when two stimuli do not differ.

    Parameters
    ----------
    run_patterns : ndarray, shape (n_runs, n_stimuli, n_channels)
        Patterns estimated independently in each run (or fold).
    noise_cov : ndarray, shape (n_channels, n_channels), optional
        Noise covariance; default identity (cross-validated squared Euclidean).
    residuals : ndarray, shape (n_residuals, n_channels), optional
        Residuals to estimate the covariance from with :func:`calc_noise_cov`.
    cov_method : str
        Estimator for ``residuals`` (key of ``COV_METHODS``).

    Returns
    -------
    rdm : ndarray, shape (n_pairs,)
    """
    x = np.asarray(run_patterns, dtype=float)
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 3:
        raise DataShapeError(
            "Bad shape for run_patterns: expected (n_runs >= 2, n_stimuli >= 3, n_channels), "
            f"got {x.shape}. Stack one (n_stimuli, n_channels) pattern matrix per run."
        )
    n_runs, _, n_channels = x.shape
    prec = _precision(n_channels, noise_cov, residuals, cov_method, required=False)
    xw = x if prec is None else x @ prec  # (n_runs, n_stimuli, n_channels)
    total = x.sum(axis=0)
    total_w = xw.sum(axis=0)
    # sum over ordered pairs of distinct runs of x_k P x_l' = S P S' - sum_k x_k P x_k'
    kernel = total_w @ total.T - np.einsum("kic,kjc->ij", xw, x)
    kernel /= n_runs * (n_runs - 1)
    return _distances_from_kernel(kernel) / n_channels


def _ts_normalised(x: np.ndarray, *, centre: bool) -> np.ndarray:
    if centre:
        x = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ict,ict->it", x, x))
    return x / norm[:, None, :]


def _ts_gram(x: np.ndarray) -> np.ndarray:
    """Per-time Gram matrices, shape (n_times, n_stimuli, n_stimuli)."""
    xt = np.moveaxis(x, 2, 0)  # (n_times, n_stimuli, n_channels)
    return xt @ np.swapaxes(xt, 1, 2)


def _ts_correlation(x: np.ndarray) -> np.ndarray:
    g = _ts_gram(_ts_normalised(x, centre=True))
    rows, cols = np.triu_indices(x.shape[0], 1)
    return 1.0 - g[:, rows, cols]


def _ts_cosine(x: np.ndarray) -> np.ndarray:
    g = _ts_gram(_ts_normalised(x, centre=False))
    rows, cols = np.triu_indices(x.shape[0], 1)
    return 1.0 - g[:, rows, cols]


def _ts_sqeuclidean(x: np.ndarray) -> np.ndarray:
    g = _ts_gram(x)
    return np.maximum(_distances_from_kernel(g), 0.0)


def _ts_euclidean(x: np.ndarray) -> np.ndarray:
    return np.sqrt(_ts_sqeuclidean(x))


_TIMESERIES_METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "correlation": _ts_correlation,
    "cosine": _ts_cosine,
    "euclidean": _ts_euclidean,
    "sqeuclidean": _ts_sqeuclidean,
}


def calc_rdm_timeseries(patterns: np.ndarray, *, metric: str = "correlation") -> np.ndarray:
    """One RDM per time point, vectorised over time (batched Gram matrices, no time loop).

    Values equal ``calc_rdm(patterns[:, :, t], metric=metric)`` up to rounding
    (about 1e-12 for well-conditioned data: distances come from Gram matrices).

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_channels, n_times)
        E.g. sensor patterns per stimulus and time sample.
    metric : str
        ``"correlation"``, ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``.

    Returns
    -------
    rdms : ndarray, shape (n_times, n_pairs)
    """
    fn = lookup(_TIMESERIES_METRICS, metric, arg="metric")
    x = np.asarray(patterns, dtype=float)
    if x.ndim != 3 or x.shape[0] < 3:
        raise DataShapeError(
            "Bad shape for patterns: expected (n_stimuli >= 3, n_channels, n_times), "
            f"got {x.shape}. Put stimuli first and time last."
        )
    return fn(x)
