"""Single-trial GLM: one regressor per trial (least-squares-all), fitted with nilearn."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from brainalign.errors import DataShapeError

__all__ = ["single_trial_design", "fit_single_trial_betas"]

logger = logging.getLogger(__name__)


def single_trial_design(
    events: pd.DataFrame,
    n_volumes: int,
    t_r_s: float,
    *,
    confounds: pd.DataFrame | None = None,
    hrf_model: str = "spm",
    drift_model: str = "cosine",
    high_pass_hz: float = 0.01,
    slice_time_ref: float = 0.0,
) -> tuple[pd.DataFrame, list[str]]:
    """Least-squares-all design: one regressor per trial, plus drift and confounds.

    Parameters
    ----------
    events : pandas.DataFrame, shape (n_trials, ...)
        Columns ``onset``, ``duration`` (s) at least.
    n_volumes : int
        Volumes in the run.
    t_r_s : float
        Repetition time (s).
    confounds : pandas.DataFrame, shape (n_volumes, n_confounds), optional
        Nuisance regressors.
    hrf_model, drift_model : str
        Passed to ``nilearn.glm.first_level.make_first_level_design_matrix``.
    high_pass_hz : float
        Cut-off of the cosine drift basis.
    slice_time_ref : float
        Fraction of the TR at which each volume is sampled.

    Returns
    -------
    design : pandas.DataFrame, shape (n_volumes, n_regressors)
        The design matrix.
    trial_columns : list of str
        Names of the trial regressors, in the order of ``events`` rows.
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = (np.arange(n_volumes) + slice_time_ref) * t_r_s
    trial_columns = [f"trial{i:04d}" for i in range(len(events))]
    ev = pd.DataFrame(
        {
            "onset": events["onset"].to_numpy(float),
            "duration": events["duration"].to_numpy(float),
            "trial_type": trial_columns,
        }
    )
    add_regs = None if confounds is None or confounds.shape[1] == 0 else confounds.to_numpy()
    names = None if add_regs is None else list(confounds.columns)
    design = make_first_level_design_matrix(
        frame_times,
        ev,
        hrf_model=hrf_model,
        drift_model=drift_model,
        high_pass=high_pass_hz,
        add_regs=add_regs,
        add_reg_names=names,
    )
    return design, trial_columns


def fit_single_trial_betas(
    data: np.ndarray,
    design: pd.DataFrame,
    trial_columns: Sequence[str],
    *,
    noise_model: str = "ar1",
) -> np.ndarray:
    """Fit the GLM to masked data and return one beta per trial and voxel.

    Parameters
    ----------
    data : ndarray, shape (n_volumes, n_voxels)
        Preprocessed BOLD (percent signal change).
    design : pandas.DataFrame, shape (n_volumes, n_regressors)
        From :func:`single_trial_design`.
    trial_columns : sequence of str
        Columns of ``design`` holding the trial regressors.
    noise_model : str
        "ar1" (prewhitened, nilearn) or "ols".

    Returns
    -------
    betas : ndarray, shape (n_trials, n_voxels)
        Trial response amplitudes (percent signal change per unit regressor).
    """
    from nilearn.glm.first_level import run_glm

    if data.shape[0] != design.shape[0]:
        raise DataShapeError(
            f"BOLD has {data.shape[0]} volumes but the design has {design.shape[0]} rows."
        )
    labels, results = run_glm(data, design.to_numpy(), noise_model=noise_model)
    theta = np.zeros((design.shape[1], data.shape[1]))
    for label, res in results.items():
        theta[:, labels == label] = res.theta
    cols = [design.columns.get_loc(c) for c in trial_columns]
    return theta[cols]
