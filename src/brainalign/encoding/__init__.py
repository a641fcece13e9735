"""Voxel-wise encoding models: cross-validated ridge with one penalty per target.

Modules
-------
``estimators``
    :class:`RidgeCV` (one penalty per target) and :class:`BandedRidgeCV` (one penalty per
    feature space and target), scikit-learn style, numpy or torch (CPU/CUDA), float32/64.
``evaluation``
    :func:`cross_validated_ridge` (nested CV scores) and :func:`partition_variance`.
``scoring``
    Per-target scores (:func:`pearson_columns`, :func:`r2_columns`,
    :func:`normalize_by_ceiling`) and the CV criteria :data:`CV_SCORERS`.
``study``
    :func:`cross_validated_ridge_shared` (one fit for the voxels of every subject who saw the
    same stimuli), :func:`stimulus_groups`, the noise ceilings encoding divides by
    (:data:`CEILING_KEYS`).
``splits``
    :func:`kfold_indices`, :func:`group_kfold_indices`, :func:`make_splits`.
``null``
    Scores without signal: :func:`null_scores` (the design's null offset and a voxel's null
    SD), :func:`beta_noise_covariance` and :func:`averaged_noise_covariance` (noise covariance
    of single-trial and stimulus-mean betas implied by the GLM design), :func:`roi_null_sd`.

The solver (:func:`solve_ridge_cv`) decomposes each training set once (eigendecomposition
of ``X^T X``, or of the kernel ``X X^T`` when features are at least as many as samples) and
scores every penalty from it; see :mod:`brainalign.encoding._solvers` for the algorithm and how
it matches himalaya.
"""

from brainalign.encoding._backends import BACKENDS, DTYPES
from brainalign.encoding._solvers import (
    SOLVERS,
    RidgeSearchResult,
    predict_ridge,
    sample_gammas,
    simplex_grid,
    solve_ridge_cv,
)
from brainalign.encoding.estimators import BandedRidgeCV, RidgeCV
from brainalign.encoding.evaluation import cross_validated_ridge, partition_variance
from brainalign.encoding.null import (
    averaged_noise_covariance,
    beta_noise_covariance,
    null_scores,
    roi_null_sd,
)
from brainalign.encoding.scoring import (
    CV_SCORERS,
    normalize_by_ceiling,
    pearson_columns,
    r2_columns,
    select_best_alphas,
)
from brainalign.encoding.splits import (
    LEAVE_ONE_OUT,
    group_kfold_indices,
    kfold_indices,
    make_splits,
)
from brainalign.encoding.study import (
    CEILING_KEYS,
    ceiling_key,
    cross_validated_ridge_shared,
    stimulus_groups,
)

__all__ = [
    "BACKENDS",
    "CEILING_KEYS",
    "CV_SCORERS",
    "DTYPES",
    "LEAVE_ONE_OUT",
    "SOLVERS",
    "BandedRidgeCV",
    "RidgeCV",
    "RidgeSearchResult",
    "averaged_noise_covariance",
    "beta_noise_covariance",
    "ceiling_key",
    "cross_validated_ridge",
    "cross_validated_ridge_shared",
    "group_kfold_indices",
    "kfold_indices",
    "make_splits",
    "normalize_by_ceiling",
    "null_scores",
    "partition_variance",
    "pearson_columns",
    "predict_ridge",
    "r2_columns",
    "roi_null_sd",
    "sample_gammas",
    "select_best_alphas",
    "simplex_grid",
    "solve_ridge_cv",
    "stimulus_groups",
]
