"""Light preprocessing for laptops: realignment, brain mask, percent signal change, confounds."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from brainalign.errors import DataShapeError
from brainalign.fmri.motion import (
    PARAM_COLUMNS,
    check_motion_options,
    compute_dvars,
    expand_params24,
    framewise_displacement,
    motion_parameters_table,
    realign,
    scrub_sample_mask,
    select_motion_confounds,
)

__all__ = ["PREPROCESSORS", "preprocess_light", "edge_mask"]

logger = logging.getLogger(__name__)


def preprocess_light(bold_img, *, fwhm_mm: float = 0.0, n_confounds: int = 5, mask_img=None,
                     confound_exclude=None, motion_correction: bool = False,
                     motion_reference: str = "mean", motion_confounds: Sequence[str] = (),
                     scrub_fd_mm: float | None = None, scrub_before: int = 0,
                     scrub_after: int = 0):
    """Light preprocessing for laptops: realignment, mask, percent signal change, confounds.

    With ``motion_correction`` each run is first realigned (rigid body, nipy's 4D realigner,
    :func:`brainalign.fmri.motion.realign`) and its framewise displacement and DVARS computed
    with nipype (:mod:`brainalign.fmri.motion`); the chosen motion confounds join the
    high-variance ones, and volumes whose FD exceeds ``scrub_fd_mm`` are censored through
    ``info["sample_mask"]``.

    The data mask comes from :func:`brainalign.fmri.masks.compute_data_mask` (nilearn's EPI
    mask where the image has a dark background); smoothing is optional; the confounds are
    high-variance (CompCor-like) series from the outer shell of the data mask only, never from
    ``confound_exclude`` (the ROIs), so stimulus-driven signal cannot leak into them. Voxels
    with a non-finite value at any time point, or a constant signal, are left out of every
    mask (non-finite values are set to 0).

    Parameters
    ----------
    bold_img : nibabel image or path, 4D, shape (x, y, z, n_volumes)
        Raw BOLD run.
    fwhm_mm : float
        Gaussian smoothing kernel (mm); 0 disables smoothing.
    n_confounds : int
        Number of high-variance confound series (``nilearn.image.high_variance_confounds``).
    mask_img : nibabel image, 3D, shape (x, y, z), optional
        The analysis mask (``fmri.mask.method`` rois or file), on the BOLD grid; default: the
        data mask.
    confound_exclude : ndarray of bool, shape (x, y, z), optional
        Voxels that may not feed the confounds (the ROIs).
    motion_correction : bool
        Realign the run before anything else.
    motion_reference : {"mean", "first"}
        Realign to the run's mean image or to its first volume.
    motion_confounds : sequence of str
        Keys of :data:`brainalign.fmri.motion.MOTION_CONFOUNDS` (params6, params24, fd, dvars,
        std_dvars) whose columns join the confounds; all but dvars/std_dvars need
        ``motion_correction``.
    scrub_fd_mm : float, optional
        Censor volumes with framewise displacement above this (mm); needs
        ``motion_correction``.
    scrub_before, scrub_after : int
        Volumes also censored before/after each high-FD volume.

    Returns
    -------
    preproc_img : nibabel.Nifti1Image, shape (x, y, z, n_volumes)
        BOLD in percent signal change around each voxel's mean (0 outside the masks), float32.
    mask_img : nibabel.Nifti1Image, shape (x, y, z)
        The analysis mask, without non-finite voxels.
    confounds : pandas.DataFrame, shape (n_volumes, n_confounds + n_motion)
        Columns ``hv_00``, ``hv_01``, ..., then the chosen motion columns (fMRIPrep's names:
        ``trans_x`` ... ``rot_z``, their ``_derivative1``/``_power2`` terms,
        ``framewise_displacement``, ``dvars``, ``std_dvars``).
    info : dict
        ``data_mask`` (how the data mask was made), ``n_voxels`` (analysis mask),
        ``nonfinite`` and ``constant`` (ndarray of bool, shape (x, y, z): voxels dropped for
        NaN/inf values, and voxels of ``mask_img`` dropped because their signal never changes;
        the data mask leaves those out by itself); with ``scrub_fd_mm``, ``sample_mask``
        (ndarray of bool, shape (n_volumes,), True = kept); with motion correction or DVARS,
        ``motion`` (dict of summary figures: mean/max FD, volumes censored, largest
        translation/rotation) and ``motion_table`` (every motion column computed).
    """
    import nibabel as nib
    from nilearn.image import high_variance_confounds, load_img, smooth_img
    from nilearn.masking import apply_mask, unmask

    from brainalign.fmri.masks import compute_data_mask, finite_voxels

    check_motion_options({"motion_correction": motion_correction,
                          "motion_reference": motion_reference,
                          "motion_confounds": list(motion_confounds), "scrub_fd_mm": scrub_fd_mm,
                          "scrub_before": scrub_before, "scrub_after": scrub_after})
    img = load_img(bold_img)
    if img.ndim != 4:
        raise DataShapeError(f"BOLD image must be 4D, got shape {img.shape}.")
    raw = np.asanyarray(img.dataobj)
    finite = finite_voxels(raw)
    nonfinite = ~finite
    if nonfinite.any():
        img = nib.Nifti1Image(np.where(finite[..., None], raw, 0).astype(np.float32),
                              img.affine, img.header)
    params = None
    if motion_correction:
        img, params = realign(img, reference=motion_reference)
    data_mask, how = compute_data_mask(img, finite=finite)
    data_vox = np.asanyarray(data_mask.dataobj) > 0
    flat = np.zeros_like(finite)
    if mask_img is None:
        mask = data_vox  # without constant voxels already
    else:  # a given mask may cover voxels without signal (zeros): they cannot be modelled
        given = (np.asanyarray(mask_img.dataobj) > 0) & finite
        flat = given & (np.asanyarray(img.dataobj).std(axis=-1) == 0)
        mask = given & ~flat
    motion = _motion_table(img, data_mask, params, dvars="dvars" in motion_confounds
                           or "std_dvars" in motion_confounds)
    if fwhm_mm > 0:
        img = smooth_img(img, fwhm_mm)
    union = nib.Nifti1Image((mask | data_vox).astype(np.uint8), img.affine)
    data = apply_mask(img, union).astype(np.float64)  # (n_volumes, n_voxels)
    mean = data.mean(axis=0)
    psc = 100.0 * (data - mean) / np.where(mean > 0, mean, 1.0)
    preproc = unmask(psc.astype(np.float32), union)
    preproc = nib.Nifti1Image(np.asanyarray(preproc.dataobj), img.affine, img.header)
    preproc.header.set_data_dtype(np.float32)
    conf = np.zeros((data.shape[0], 0))
    if n_confounds > 0:
        # Edge voxels only: motion artefacts peak at the brain's edge, and excluding the interior
        # (and any ROI voxel) keeps stimulus-driven variance out of the confounds (which would
        # leak it into every voxel's trial betas).
        exclude = np.zeros_like(data_vox) if confound_exclude is None else confound_exclude
        source = (np.asanyarray(edge_mask(data_mask).dataobj) > 0) & ~exclude
        if source.sum() < 10 * n_confounds:  # thin or ROI-filled volume: whole data mask
            source = data_vox & ~exclude
            logger.warning("the data mask's edge has fewer than %d voxels outside the ROIs; "
                           "taking the confounds from all %d voxels of the data mask outside "
                           "the ROIs", 10 * n_confounds, int(source.sum()))
        if source.sum() > n_confounds:
            conf = high_variance_confounds(
                preproc, n_confounds=n_confounds,
                mask_img=nib.Nifti1Image(source.astype(np.uint8), img.affine), percentile=10.0
            )
        else:
            logger.warning("no voxels outside the ROIs to take confounds from: the GLM runs "
                           "without high-variance confounds")
    confounds = pd.DataFrame(conf, columns=[f"hv_{i:02d}" for i in range(conf.shape[1])])
    mask_out = nib.Nifti1Image(mask.astype(np.uint8), img.affine)
    info = {"data_mask": how, "n_voxels": int(mask.sum()), "nonfinite": nonfinite,
            "constant": flat}
    if motion is not None:
        confounds = pd.concat([confounds, select_motion_confounds(motion, motion_confounds)],
                              axis=1)
        keep = None
        if scrub_fd_mm is not None:
            keep = scrub_sample_mask(motion["framewise_displacement"].to_numpy(),
                                     threshold_mm=scrub_fd_mm, before=scrub_before,
                                     after=scrub_after)
            info["sample_mask"] = keep
            if keep.sum() < 2:
                raise DataShapeError(
                    f"Scrubbing at framewise displacement > {scrub_fd_mm} mm censors "
                    f"{int((~keep).sum())} of {keep.size} volumes, leaving fewer than 2: "
                    "expected a run with usable volumes. Raise fmri.light.scrub_fd_mm or "
                    "drop the run.")
        info["motion"] = _motion_summary(motion, keep, motion_reference if params is not None
                                         else None)
        info["motion_table"] = motion
    return preproc, mask_out, confounds, info


def _motion_table(img, data_mask, params, *, dvars: bool) -> pd.DataFrame | None:
    """Every motion column of one run (parameters, params24 terms, FD, DVARS), or None."""
    parts = []
    if params is not None:
        table = motion_parameters_table(params)
        parts += [expand_params24(table),
                  pd.DataFrame({"framewise_displacement": framewise_displacement(params)})]
    if params is not None or dvars:
        parts.append(compute_dvars(img, data_mask))
    return pd.concat(parts, axis=1) if parts else None


def _motion_summary(motion: pd.DataFrame, keep, reference: str | None) -> dict:
    """Summary figures of one run's motion, for the mask's JSON sidecar and the log."""
    out = {"Realigned": reference is not None}
    if reference is not None:
        fd = motion["framewise_displacement"].to_numpy()
        trans = motion[PARAM_COLUMNS[:3]].abs().to_numpy()
        rot = motion[PARAM_COLUMNS[3:]].abs().to_numpy()
        out.update({"Reference": reference, "MeanFramewiseDisplacementMm": float(fd[1:].mean()),
                    "MaxFramewiseDisplacementMm": float(fd.max()),
                    "MaxTranslationMm": float(trans.max()),
                    "MaxRotationDeg": float(np.rad2deg(rot.max()))})
    out["MeanDVARS"] = float(np.nanmean(motion["dvars"]))
    out["CensoredVolumes"] = 0 if keep is None else int((~keep).sum())
    logger.info("motion: %s", out)
    return out


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
