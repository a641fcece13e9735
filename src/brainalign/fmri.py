"""fMRI responses: preprocessing, single-trial betas, stimulus averages, ROIs, noise ceilings.

The heavy lifting is nilearn's (masking, confounds, design matrices, the AR(1) GLM); this module
chains it into per-stimulus response matrices.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError, DataShapeError

__all__ = [
    "PREPROCESSORS",
    "preprocess_light",
    "edge_mask",
    "single_trial_design",
    "fit_single_trial_betas",
    "average_repeats",
    "split_half_reliability",
    "spearman_brown",
    "noise_ceiling_from_reliability",
    "roi_voxel_labels",
]

logger = logging.getLogger(__name__)


def preprocess_light(bold_img, *, fwhm_mm: float = 0.0, n_confounds: int = 5):
    """Light preprocessing for laptops: mask, percent signal change, smoothing, confounds.

    The EPI mask comes from ``nilearn.masking.compute_epi_mask``; smoothing is optional; the
    confounds are high-variance (CompCor-like) series from the mask's edge only.

    Parameters
    ----------
    bold_img : nibabel image or path, 4D, shape (x, y, z, n_volumes)
        Raw BOLD run.
    fwhm_mm : float
        Gaussian smoothing kernel (mm); 0 disables smoothing.
    n_confounds : int
        Number of high-variance confound series (``nilearn.image.high_variance_confounds``).

    Returns
    -------
    preproc_img : nibabel.Nifti1Image, shape (x, y, z, n_volumes)
        BOLD in percent signal change around each voxel's mean (0 outside the mask), float32.
    mask_img : nibabel.Nifti1Image, shape (x, y, z)
        EPI brain mask (``nilearn.masking.compute_epi_mask``).
    confounds : pandas.DataFrame, shape (n_volumes, n_confounds)
        Columns ``hv_00``, ``hv_01``, ...
    """
    import nibabel as nib
    from nilearn.image import high_variance_confounds, load_img, smooth_img
    from nilearn.masking import apply_mask, unmask

    img = load_img(bold_img)
    if img.ndim != 4:
        raise DataShapeError(f"BOLD image must be 4D, got shape {img.shape}.")
    mask = _epi_mask(img)
    if fwhm_mm > 0:
        img = smooth_img(img, fwhm_mm)
    data = apply_mask(img, mask).astype(np.float64)  # (n_volumes, n_voxels)
    mean = data.mean(axis=0)
    psc = 100.0 * (data - mean) / np.where(mean > 0, mean, 1.0)
    preproc = unmask(psc.astype(np.float32), mask)
    preproc = nib.Nifti1Image(np.asanyarray(preproc.dataobj), img.affine, img.header)
    preproc.header.set_data_dtype(np.float32)
    if n_confounds > 0:
        # Edge voxels only: motion artefacts peak at the brain's edge, and excluding the interior
        # keeps stimulus-driven variance out of the confounds (which would leak it into every
        # voxel's trial betas).
        edge = edge_mask(mask)
        conf = high_variance_confounds(
            preproc, n_confounds=n_confounds, mask_img=edge, percentile=10.0
        )
    else:
        conf = np.zeros((data.shape[0], 0))
    confounds = pd.DataFrame(conf, columns=[f"hv_{i:02d}" for i in range(conf.shape[1])])
    return preproc, mask, confounds


def _epi_mask(img):
    """Compute nilearn's EPI mask, retrying without opening where that empties it.

    In thin volumes (a few slices) the morphological opening erases everything.
    """
    import warnings

    from nilearn.masking import compute_epi_mask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mask = compute_epi_mask(img)
    if np.asanyarray(mask.dataobj).any():
        return mask
    logger.warning("EPI mask with opening=2 is empty (volume %s too thin); retrying without "
                   "opening", img.shape[:3])
    return compute_epi_mask(img, opening=0, connected=False)


def edge_mask(mask_img, *, width_vox: int = 2):
    """The outer shell of a brain mask.

    Parameters
    ----------
    mask_img : nibabel image, 3D
        Binary brain mask.
    width_vox : int
        Shell thickness (voxels).

    Returns
    -------
    edge_img : nibabel.Nifti1Image, 3D
        Mask voxels within ``width_vox`` of the mask's boundary.
    """
    import nibabel as nib
    from scipy.ndimage import binary_erosion

    data = np.asanyarray(mask_img.dataobj) > 0
    inner = binary_erosion(data, iterations=width_vox)
    return nib.Nifti1Image((data & ~inner).astype(np.uint8), mask_img.affine)


#: Preprocessing backends by config name (``fmri.preprocessing``); fMRIPrep comes later.
PREPROCESSORS = {"light": preprocess_light}


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


def average_repeats(
    betas: np.ndarray, stim_files: Sequence[str], stimuli: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Average trial betas per stimulus and split the repeats into two interleaved halves.

    Parameters
    ----------
    betas : ndarray, shape (n_trials, n_voxels)
        Single-trial betas (all runs, chronological order).
    stim_files : sequence of str, length n_trials
        Stimulus of each trial.
    stimuli : sequence of str, length n_stimuli
        Output row order.

    Returns
    -------
    mean : ndarray, shape (n_stimuli, n_voxels)
        Mean over all repeats.
    half1, half2 : ndarray, shape (n_stimuli, n_voxels)
        Means over odd (1st, 3rd, ...) and even (2nd, 4th, ...) repeats.
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats per stimulus.
    """
    stim_files = np.asarray(stim_files)
    n_vox = betas.shape[1]
    mean = np.empty((len(stimuli), n_vox))
    half1, half2 = np.empty_like(mean), np.empty_like(mean)
    n_rep = np.zeros(len(stimuli), dtype=int)
    for i, s in enumerate(stimuli):
        rows = np.flatnonzero(stim_files == s)
        if rows.size < 2:
            raise BIDSInputError(
                f"Stimulus '{s}' was shown {rows.size} time(s): expected at least 2 repeats "
                "for split-half noise ceilings. Drop it from the stimulus set or add runs."
            )
        n_rep[i] = rows.size
        mean[i] = betas[rows].mean(0)
        half1[i] = betas[rows[0::2]].mean(0)
        half2[i] = betas[rows[1::2]].mean(0)
    return mean, half1, half2, n_rep


def spearman_brown(r: np.ndarray | float, factor: float = 2.0) -> np.ndarray:
    """Spearman-Brown prophecy: reliability of data ``factor`` times longer.

    Parameters
    ----------
    r : array-like
        Reliability of the shorter data (e.g. split-half correlation).
    factor : float
        Length ratio (2 for split-half to full data).

    Returns
    -------
    r_full : ndarray
        ``factor * r / (1 + (factor - 1) * r)``.
    """
    r = np.asarray(r, dtype=float)
    return factor * r / (1 + (factor - 1) * r)


def split_half_reliability(half1: np.ndarray, half2: np.ndarray) -> np.ndarray:
    """Per-voxel Pearson correlation across stimuli between the two halves.

    Parameters
    ----------
    half1, half2 : ndarray, shape (n_stimuli, n_voxels)

    Returns
    -------
    r : ndarray, shape (n_voxels,)
    """
    from brainalign.encoding.scoring import pearson_columns

    return pearson_columns(half1, half2)


def noise_ceiling_from_reliability(r_half: np.ndarray) -> np.ndarray:
    """Upper bound on the correlation a perfect model can reach with the averaged data.

    Parameters
    ----------
    r_half : ndarray
        Split-half correlation(s).

    Returns
    -------
    ceiling : ndarray
        ``sqrt(max(spearman_brown(r_half), 0))``: the correlation between the noise-free signal
        and the full-data average.
    """
    rel = spearman_brown(np.clip(r_half, -0.999, 1.0))
    return np.sqrt(np.clip(rel, 0.0, None))


def roi_voxel_labels(dseg_img, mask_img, labels: pd.DataFrame, names: Sequence[str]):
    """Label each in-mask voxel with its ROI name.

    Parameters
    ----------
    dseg_img : nibabel image, 3D
        Integer label image (resampled to the mask's grid with nearest neighbours if needed).
    mask_img : nibabel image, 3D
        Brain mask that defines the voxel order.
    labels : pandas.DataFrame
        Columns ``index`` and ``name``.
    names : sequence of str
        ROIs to keep (empty: all non-zero labels).

    Returns
    -------
    voxel_roi : ndarray of str, shape (n_mask_voxels,)
        ROI name per mask voxel, "" outside the selected ROIs.
    """
    from nilearn.image import resample_to_img
    from nilearn.masking import apply_mask

    if dseg_img.shape[:3] != mask_img.shape[:3] or not np.allclose(
        dseg_img.affine, mask_img.affine
    ):
        dseg_img = resample_to_img(dseg_img, mask_img, interpolation="nearest")
    values = np.rint(apply_mask(dseg_img, mask_img)).astype(int)
    lut = dict(zip(labels["index"].astype(int), labels["name"].astype(str), strict=True))
    names = list(names) or [n for i, n in lut.items() if i != 0]
    undefined = [n for n in names if n not in lut.values()]
    if undefined:
        raise BIDSInputError(
            f"ROI(s) {undefined} are not defined in the labels table: expected names from "
            f"{sorted(lut.values())}. Fix fmri.rois.names or the labels TSV."
        )
    out = np.array(
        [lut.get(v, "") if lut.get(v, "") in names else "" for v in values], dtype=object
    )
    for name in names:
        if not (out == name).any():
            raise BIDSInputError(
                f"ROI '{name}' has no voxel inside the brain mask: expected at least one. "
                "Check the atlas, its labels TSV and fmri.rois.names."
            )
    return out.astype(str)
