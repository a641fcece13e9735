"""Single-trial GLM: least-squares-all (LSA) and least-squares-separate (LSS) betas.

Designs are built with nilearn; the fits are our own (numpy/scipy, no nilearn) and equal
nilearn's ``run_glm`` / ``FirstLevelModel`` fits of the same designs (tests/unit/test_glm_lss.py:
to 1e-6, in practice ~1e-11):

- **OLS**: ``beta = pinv(X) @ Y``, as nilearn's ``OLSModel``.
- **AR(1)**, nilearn's noise model: OLS residuals; per voxel, their lag-1 Yule-Walker coefficient
  after subtracting their grand mean (nilearn's ``_yule_walker``); the coefficient truncated to
  ``int(rho * bins) / bins`` (``bins=100``, as ``FirstLevelModel``); per level, design and
  data prewhitened (``w[0] = x[0]``, ``w[t] = x[t] - rho x[t-1]``, nilearn's ``ARModel``) and
  refitted by least squares. Ours gets the residual sums and every level's refit from two
  products over all voxels (``Q'Y`` and ``(LQ + L'Q)'Y``, X = QR), since
  ``W'W = I - rho (L + L') + rho^2 L'L``; the refit's small system ``Q'W'WQ`` is well
  conditioned, so the accuracy is pinv's. A rank-deficient X falls back to explicit
  residuals and a pinv per level (nilearn's minimum-norm solution).
- **LSS** (Mumford et al., 2012): trial *i*'s model holds its own regressor, one regressor for
  all other trials (``others="all"``) or one per condition (``others="by_condition"``), and the
  nuisance columns (drift, constant, confounds); the "others" regressor is the sum of the other
  trials' LSA regressors, which equals nilearn's regressor of their merged events (its
  regressors are linear in the events). All models share the nuisance columns, so they are
  projected out once (Frisch-Waugh-Lovell); each trial's model is then a (K+1)-column problem
  whose Gram matrix and right-hand side come from the Gram matrix of the projected trial
  regressors and their products with the data, for every trial and voxel at once. With AR(1),
  each trial's model gets its own AR estimate per voxel from its own OLS residuals, as nilearn
  fitting that trial's design would (residual sums in closed form, from the same products;
  the residuals' grand mean, zero up to rounding when the nuisance holds a constant, is not
  subtracted); the prewhitened refit is done once per AR level for every (trial, voxel) pair
  at that level, again from the two products ``F'Y`` and ``(LF + L'F)'Y``.

The design of a sample-masked run is built on all frame times, then the censored rows of
design and data are dropped (nilearn's ``FirstLevelModel(sample_masks=...)``); the AR(1)
model then runs over the kept volumes as if they were consecutive, as nilearn's does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.linalg as spl

from brainalign.errors import ConfigError, DataShapeError

__all__ = [
    "single_trial_design",
    "fit_single_trial_betas",
    "fit_lsa",
    "fit_lss",
    "ar1_levels",
    "lss_design",
]

logger = logging.getLogger(__name__)

#: Single-trial estimators (``fmri.glm.method``).
METHODS = ("lsa", "lss")


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
        Volumes in the run (all of them: a sample mask is applied after the design is built).
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


def lss_design(
    design: pd.DataFrame,
    trial_columns: Sequence[str],
    trial: int,
    conditions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The LSS design of one trial, from the LSA design (for reference fits and inspection).

    Parameters
    ----------
    design : pandas.DataFrame, shape (n_volumes, n_regressors)
        LSA design (:func:`single_trial_design`).
    trial_columns : sequence of str
        Its trial regressors.
    trial : int
        Index of the trial.
    conditions : sequence of str, optional
        Condition of each trial: the other trials get one regressor per condition; None, one
        regressor for all of them.

    Returns
    -------
    pandas.DataFrame, shape (n_volumes, 1 + n_other_regressors + n_nuisance)
        Columns ``trial``, ``others`` (or ``others_<condition>``), then the nuisance columns.
        An "others" regressor without trials is left out, as nilearn would.
    """
    cols = list(trial_columns)
    nuisance = [c for c in design.columns if c not in set(cols)]
    out = {"trial": design[cols[trial]].to_numpy()}
    others = [c for j, c in enumerate(cols) if j != trial]
    if conditions is None:
        if others:
            out["others"] = design[others].to_numpy().sum(axis=1)
    else:
        for cond in dict.fromkeys(conditions):
            sel = [c for j, c in enumerate(cols) if j != trial and conditions[j] == cond]
            if sel:
                out[f"others_{cond}"] = design[sel].to_numpy().sum(axis=1)
    frame = pd.DataFrame(out, index=design.index)
    return pd.concat([frame, design[nuisance]], axis=1)


def _whiten(x: np.ndarray, rho: float) -> np.ndarray:
    """AR(1) prewhitening along axis 0, as nilearn's ``ARModel.whiten``."""
    w = x.copy()
    w[1:] -= rho * x[:-1]
    return w


def _yule_walker_ar1(r0: np.ndarray, r1: np.ndarray, n: int) -> np.ndarray:
    """Lag-1 Yule-Walker coefficient from the residual sums, as nilearn's ``_yule_walker``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (r1 / ((n - 1) * n)) / (r0 / (n * n))
    return np.nan_to_num(rho, nan=0.0, posinf=0.0, neginf=0.0)


def ar1_levels(rho: np.ndarray, bins: int = 100) -> np.ndarray:
    """Integer AR(1) level of each coefficient: ``int(rho * bins)`` (nilearn's binning).

    Parameters
    ----------
    rho : ndarray
        Lag-1 coefficients.
    bins : int
        Levels per unit (nilearn's ``bins``).

    Returns
    -------
    ndarray of int, same shape as ``rho``; the whitening coefficient is ``level / bins``.
    """
    return (rho * bins).astype(int)


def _pinv(x: np.ndarray) -> np.ndarray:
    return spl.pinv(x)


def _whiten_t(x: np.ndarray, rho: float) -> np.ndarray:
    """Transpose of the AR(1) whitening applied to x: ``W' x``."""
    w = x.copy()
    w[:-1] -= rho * x[1:]
    return w


def fit_lsa(
    data: np.ndarray,
    design: np.ndarray,
    *,
    noise_model: str = "ar1",
    bins: int = 100,
) -> np.ndarray:
    """All regression coefficients of one GLM (nilearn's ``run_glm`` with ols or ar1).

    Parameters
    ----------
    data : ndarray, shape (n_volumes, n_voxels)
        BOLD time series.
    design : ndarray, shape (n_volumes, n_regressors)
        Design matrix.
    noise_model : {"ar1", "ols"}
        Temporal noise model.
    bins : int
        AR(1) levels per unit coefficient.

    Returns
    -------
    ndarray, shape (n_regressors, n_voxels)
    """
    y = np.asarray(data, np.float64)
    x = np.asarray(design, np.float64)
    beta = _pinv(x) @ y
    if noise_model == "ols":
        return beta
    if noise_model != "ar1":
        raise ConfigError(f"fmri.glm.noise_model is {noise_model!r}; expected 'ar1' or 'ols'.")
    n, v = y.shape
    q, r = spl.qr(x, mode="economic")
    d = np.abs(np.diag(r))
    if d.size == 0 or d.min() <= max(x.shape) * np.finfo(float).eps * d.max():
        return _fit_lsa_ar1_rank_deficient(y, x, beta, bins)
    # residuals e = y - Q a (a = Q'y) enter only through sums, computed from a and D'y with
    # D = LQ + L'Q; nilearn's _yule_walker removes the residuals' grand mean m first
    a = q.T @ y
    da = _lag_sum(q).T @ y
    s = y.sum(axis=0) - q.sum(axis=0) @ a
    m = s.sum() / (n * v)
    first, last = y[0] - q[0] @ a, y[-1] - q[-1] @ a
    r0 = np.einsum("tv,tv->v", y, y) - np.einsum("kv,kv->v", a, a)
    r0 += -2.0 * m * s + n * m * m
    r1 = (np.einsum("tv,tv->v", y[:-1], y[1:]) - np.einsum("kv,kv->v", a, da)
          + np.einsum("kv,kv->v", a, (q[:-1].T @ q[1:]) @ a))
    r1 += -m * (2.0 * s - first - last) + (n - 1) * m * m
    levels = ar1_levels(_yule_walker_ar1(r0, r1, n), bins)
    order = np.argsort(levels, kind="stable")
    uniq, starts = np.unique(levels[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    # prewhitened refit per level: beta = R^-1 (Q'W'WQ)^-1 (W'WQ)' y, where
    # (W'WQ)' y = (1 + rho^2) a - rho D'y - rho^2 q_last y_last; Q'W'WQ is well conditioned
    # (the condition number of W is at most (1 + |rho|) / (1 - |rho|)), so the accuracy is
    # that of pinv, bounded by the conditioning of X
    rhos = uniq * 1.0 / bins
    a1 = q[1:].T @ q[:-1]
    a1 = a1 + a1.T
    a2 = q[:-1].T @ q[:-1]
    rr = rhos[:, None, None]
    gram = np.eye(q.shape[1])[None] - rr * a1[None] + rr**2 * a2[None]
    ops = spl.solve_triangular(r, np.eye(r.shape[0]))[None] @ np.linalg.inv(gram)
    a_s, da_s, ylast = a[:, order], da[:, order], y[-1, order]
    out = np.empty_like(beta)
    for rho, op, s0, e0 in zip(rhos, ops, starts, ends, strict=True):
        z = ((1.0 + rho * rho) * a_s[:, s0:e0] - rho * da_s[:, s0:e0]
             - (rho * rho) * np.outer(q[-1], ylast[s0:e0]))
        out[:, order[s0:e0]] = op @ z
    return out


def _fit_lsa_ar1_rank_deficient(y: np.ndarray, x: np.ndarray, beta: np.ndarray,
                                bins: int) -> np.ndarray:
    """AR(1) fit of a rank-deficient design: explicit residuals and per-level ``pinv``."""
    n = y.shape[0]
    resid = y - x @ beta
    resid -= resid.mean()
    r0 = np.einsum("tv,tv->v", resid, resid)
    r1 = np.einsum("tv,tv->v", resid[:-1], resid[1:])
    del resid
    levels = ar1_levels(_yule_walker_ar1(r0, r1, n), bins)
    out = np.empty_like(beta)
    for level in np.unique(levels):
        rho = level * 1.0 / bins
        vox = levels == level
        out[:, vox] = _pinv(_whiten(x, rho)) @ _whiten(y[:, vox], rho)
    return out


def _onehot(conditions: Sequence[str] | None, n_trials: int) -> np.ndarray:
    """Trials x conditions indicator (one column of ones without conditions)."""
    if conditions is None:
        return np.ones((n_trials, 1))
    names = list(dict.fromkeys(conditions))
    return (np.asarray(conditions)[:, None] == np.asarray(names)[None, :]).astype(float)


def _trial_map(onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per trial, the map A_i from trial space to its model's columns, and its empty columns.

    Trial i's model columns are ``Xt @ A_i``, ``A_i = [e_i, C - e_i c_i']`` (its regressor and
    the sum of the others of each condition). A condition without other trials gives a zero
    column, which is dropped, as nilearn's design would not have it.
    """
    n = onehot.shape[0]
    eye = np.eye(n)
    amap = np.empty((n, n, onehot.shape[1] + 1))
    amap[:, :, 0] = eye
    amap[:, :, 1:] = onehot[None, :, :] - eye[:, :, None] * onehot[:, None, :]
    drop = np.zeros((n, onehot.shape[1] + 1), bool)
    drop[:, 1:] = ~np.abs(amap[:, :, 1:]).any(axis=1)
    return amap, drop


def _lss_weights(gram: np.ndarray, amap: np.ndarray, drop: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Per trial, pinv of its model's Gram matrix, and the trial-space weights of its beta.

    Returns
    -------
    hinv : ndarray, shape (n_trials, K + 1, K + 1)
        Pseudo-inverse of each model's Gram matrix ``A_i' G A_i``.
    w : ndarray, shape (n_trials, n_trials)
        Row i: the weights of trial space giving trial i's beta (``beta_i = w[i] @ Xt' y``).
    """
    at = amap.transpose(0, 2, 1)
    g = at @ (gram[None] @ amap)
    diag = np.einsum("iaa->ia", g)
    scale = np.where(diag > 0, np.sqrt(np.abs(diag)), 1.0)
    gs = g / scale[:, :, None] / scale[:, None, :]
    gs[drop] = 0.0
    gs.transpose(0, 2, 1)[drop] = 0.0
    if gs.shape[1] == 2 and not drop.any():  # closed-form inverse of 2 x 2 Gram matrices
        det = gs[:, 0, 0] * gs[:, 1, 1] - gs[:, 0, 1] * gs[:, 1, 0]
        hinv = np.stack([np.stack([gs[:, 1, 1], -gs[:, 0, 1]], -1),
                         np.stack([-gs[:, 1, 0], gs[:, 0, 0]], -1)], 1) / det[:, None, None]
        if np.any(np.abs(det) < 1e-12):
            hinv = np.linalg.pinv(gs, rcond=1e-12, hermitian=True)
    else:
        hinv = np.linalg.pinv(gs, rcond=1e-12, hermitian=True)
    hinv[drop] = 0.0
    hinv.transpose(0, 2, 1)[drop] = 0.0
    hinv = hinv / scale[:, :, None] / scale[:, None, :]
    w = (amap @ hinv[:, 0, :, None])[:, :, 0]
    return hinv, w


def _nuisance_basis(nuisance: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the nuisance columns (rank-revealing, pinv's tolerance)."""
    if nuisance.shape[1] == 0:
        return np.zeros((nuisance.shape[0], 0))
    u, s, _ = spl.svd(nuisance, full_matrices=False)
    tol = max(nuisance.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0)
    return u[:, s > tol]


def _project_out(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x - q @ (q.T @ x) if q.shape[1] else x.copy()


def _model_products(onehot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``A_i' t`` for every trial i: ``[t_i, C't - c_i t_i]``, shape (n_trials, K+1, n_voxels)."""
    out = np.empty((t.shape[0], onehot.shape[1] + 1, t.shape[1]))
    out[:, 0] = t
    out[:, 1:] = (onehot.T @ t)[None] - onehot[:, :, None] * t[:, None, :]
    return out


def _lag_sum(x: np.ndarray) -> np.ndarray:
    """``L x + L' x``: each row replaced by the sum of its two neighbours in time."""
    d = np.zeros_like(x)
    d[1:] += x[:-1]
    d[:-1] += x[1:]
    return d


def fit_lss(
    data: np.ndarray,
    trial_regressors: np.ndarray,
    nuisance: np.ndarray,
    *,
    conditions: Sequence[str] | None = None,
    noise_model: str = "ar1",
    bins: int = 100,
) -> np.ndarray:
    """LSS betas: one GLM per trial, the trial against the others (Mumford et al., 2012).

    Trial i's model is ``[x_i, others, nuisance]`` where ``others`` is the sum of the other
    trials' regressors (``conditions=None``) or one such sum per condition; its beta on ``x_i``
    equals nilearn's fit of that design (``run_glm`` / ``FirstLevelModel``, same noise model).

    Parameters
    ----------
    data : ndarray, shape (n_volumes, n_voxels)
        BOLD time series.
    trial_regressors : ndarray, shape (n_volumes, n_trials)
        One regressor per trial (the LSA trial columns).
    nuisance : ndarray, shape (n_volumes, n_nuisance)
        Columns shared by every model (drift, constant, confounds).
    conditions : sequence of str, optional
        Condition of each trial, to split the others by condition.
    noise_model : {"ar1", "ols"}
        Temporal noise model; with ar1 each trial's model has its own AR(1) estimate per voxel.
    bins : int
        AR(1) levels per unit coefficient.

    Returns
    -------
    ndarray, shape (n_trials, n_voxels)
    """
    y = np.asarray(data, np.float64)
    xt = np.asarray(trial_regressors, np.float64)
    nz = np.asarray(nuisance, np.float64)
    n, n_trials = xt.shape
    onehot = _onehot(conditions, n_trials)
    amap, drop = _trial_map(onehot)
    q = _nuisance_basis(nz)
    xp = _project_out(q, xt)
    hinv, w = _lss_weights(xp.T @ xp, amap, drop)
    if noise_model not in ("ols", "ar1"):
        raise ConfigError(f"fmri.glm.noise_model is {noise_model!r}; expected 'ar1' or 'ols'.")
    if noise_model == "ols":
        return w @ (xp.T @ y)  # xp is orthogonal to the nuisance columns: xp' y = xp' (M y)
    # every product with the data comes from two matrix products over all voxels: F'y and
    # (LF + L'F)'y with F = [trial regressors, nuisance basis Q]
    f = np.hstack([xt, q])
    fy = f.T @ y
    dfy = _lag_sum(f).T @ y
    xy, qy = fy[:n_trials], fy[n_trials:]
    xq = xt.T @ q
    t = xy - xq @ qy  # xp' y
    # residual sums of every trial's OLS model, in closed form: with yp = M y (nuisance
    # projected out), R_i = yp - xp c_i, c_i = A_i b_i, b_i = H_i (A_i' t)
    yy = np.einsum("tv,tv->v", y, y) - np.einsum("kv,kv->v", qy, qy)
    qd = q[:-1].T @ q[1:]
    yly = (np.einsum("tv,tv->v", y[:-1], y[1:])
           - np.einsum("kv,kv->v", qy, dfy[n_trials:])
           + np.einsum("kv,kv->v", qy, qd @ qy))
    at = amap.transpose(0, 2, 1)
    rhs = _model_products(onehot, t)  # A_i' t, shape (n_trials, K+1, n_voxels)
    b = hinv @ rhs
    r0 = yy[None, :] - np.einsum("iav,iav->iv", b, rhs)
    del rhs
    dx = _lag_sum(xp)
    # (Lxp + L'xp)' yp, with Lxp + L'xp = DX - DQ (Q'X) and yp = y - Q Q'y
    dxy = dfy[:n_trials] - xq @ dfy[n_trials:]
    cross = _model_products(onehot, dxy - (dx.T @ q) @ qy)
    lag_x = xp[:-1].T @ xp[1:]
    quad = at @ ((lag_x + lag_x.T)[None] @ amap) / 2.0
    r1 = yly[None, :] - np.einsum("iav,iav->iv", b, cross) + np.einsum(
        "iav,iav->iv", b, quad @ b)
    del b, cross
    # nilearn subtracts the grand mean of each model's residuals; with a constant among the
    # nuisance columns it is zero up to rounding, and it is left out here
    levels = ar1_levels(_yule_walker_ar1(r0, r1, n), bins)
    del r0, r1
    # prewhitened refit per level, from the same products: F'W'Wy = (1 + rho^2) F'y
    # - rho (LF + L'F)'y - rho^2 f_last y_last, and trial i's beta = ww_i' (Xw' W y) with
    # Xw' W y = X'W'Wy - (X'W'WQ)(Q'W'WQ)^-1 Q'W'Wy (nuisance projected out after whitening).
    # Voxels are sorted by their mean level: those using one level (in some trial's model)
    # form a narrow contiguous block.
    order = np.argsort(levels.mean(axis=0), kind="stable")
    levels = np.ascontiguousarray(levels[:, order])
    lmin, lmax = levels.min(axis=0), levels.max(axis=0)
    fy_s, dfy_s, ylast = fy[:, order], dfy[:, order], y[-1, order]
    del fy, dfy
    out = np.empty((n_trials, y.shape[1]))
    for level in np.unique(levels):
        cand = np.flatnonzero((lmin <= level) & (lmax >= level))
        lo, hi = cand[0], cand[-1] + 1
        rho = level * 1.0 / bins
        wf = _whiten(f, rho)
        sw = wf.T @ wf
        sxx, sxq, sqq = sw[:n_trials, :n_trials], sw[:n_trials, n_trials:], sw[n_trials:,
                                                                                n_trials:]
        proj = spl.solve(sqq, sxq.T, assume_a="pos").T if q.shape[1] else sxq
        _, ww = _lss_weights(sxx - proj @ sxq.T, amap, drop)
        op = ww @ np.hstack([np.eye(n_trials), -proj])  # (n_trials, n_trials + n_q)
        hit = levels[:, lo:hi] == level
        used = hit.any(axis=0)
        sel = slice(lo, hi) if used.mean() > 0.9 else lo + np.flatnonzero(used)
        fwy = ((1.0 + rho * rho) * fy_s[:, sel] - rho * dfy_s[:, sel]
               - (rho * rho) * np.outer(f[-1], ylast[sel]))
        block = out[:, sel]
        np.copyto(block, op @ fwy, where=hit if isinstance(sel, slice) else hit[:, used])
        out[:, sel] = block
    result = np.empty_like(out)
    result[:, order] = out
    return result


def fit_single_trial_betas(
    data: np.ndarray,
    design: pd.DataFrame,
    trial_columns: Sequence[str],
    *,
    noise_model: str = "ar1",
    method: str = "lsa",
    conditions: Sequence[str] | None = None,
    sample_mask: np.ndarray | None = None,
    bins: int = 100,
) -> np.ndarray:
    """Fit the single-trial GLM to masked data and return one beta per trial and voxel.

    Parameters
    ----------
    data : ndarray, shape (n_volumes, n_voxels)
        Preprocessed BOLD (percent signal change).
    design : pandas.DataFrame, shape (n_volumes, n_regressors)
        From :func:`single_trial_design` (built on all volumes).
    trial_columns : sequence of str
        Columns of ``design`` holding the trial regressors.
    noise_model : str
        "ar1" (prewhitened, nilearn's model) or "ols".
    method : {"lsa", "lss"}
        Least-squares-all (one model with every trial) or least-squares-separate (one model
        per trial, Mumford et al. 2012).
    conditions : sequence of str, optional
        LSS only: condition of each trial, to split the other trials by condition.
    sample_mask : ndarray of bool, shape (n_volumes,), optional
        Volumes kept; censored rows of data and design are dropped before the fit.
    bins : int
        AR(1) levels per unit coefficient (nilearn's ``bins``).

    Returns
    -------
    betas : ndarray, shape (n_trials, n_voxels)
        Trial response amplitudes (percent signal change per unit regressor).
    """
    if data.shape[0] != design.shape[0]:
        raise DataShapeError(
            f"BOLD has {data.shape[0]} volumes but the design has {design.shape[0]} rows."
        )
    if method not in METHODS:
        raise ConfigError(f"fmri.glm.method is {method!r}; expected one of {list(METHODS)}.")
    x = design.to_numpy(np.float64)
    y = np.asarray(data, np.float64)
    if sample_mask is not None:
        keep = np.asarray(sample_mask, bool)
        if keep.shape != (y.shape[0],):
            raise DataShapeError(f"The sample mask has shape {keep.shape}; expected "
                                 f"({y.shape[0]},), one entry per volume.")
        n_cols = x.shape[1] if method == "lsa" else x.shape[1] - len(trial_columns) + 2
        if keep.sum() <= n_cols:
            raise DataShapeError(f"The sample mask keeps {int(keep.sum())} of {len(keep)} "
                                 f"volumes: too few for a design of {x.shape[1]} columns.")
        x, y = x[keep], y[keep]
    cols = [design.columns.get_loc(c) for c in trial_columns]
    if method == "lsa":
        return fit_lsa(y, x, noise_model=noise_model, bins=bins)[cols]
    other = np.setdiff1d(np.arange(x.shape[1]), cols)
    return fit_lss(y, x[:, cols], x[:, other], conditions=conditions,
                   noise_model=noise_model, bins=bins)
