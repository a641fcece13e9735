"""Light preprocessing for laptops: brain mask, percent signal change, smoothing, confounds."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from brainalign.errors import DataShapeError

__all__ = ["PREPROCESSORS", "preprocess_light", "edge_mask"]

logger = logging.getLogger(__name__)


def preprocess_light(bold_img, *, fwhm_mm: float = 0.0, n_confounds: int = 5, mask_img=None,
                     confound_exclude=None):
    """Light preprocessing for laptops: mask, percent signal change, smoothing, confounds.

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

    Returns
    -------
    preproc_img : nibabel.Nifti1Image, shape (x, y, z, n_volumes)
        BOLD in percent signal change around each voxel's mean (0 outside the masks), float32.
    mask_img : nibabel.Nifti1Image, shape (x, y, z)
        The analysis mask, without non-finite voxels.
    confounds : pandas.DataFrame, shape (n_volumes, n_confounds)
        Columns ``hv_00``, ``hv_01``, ...
    info : dict
        ``data_mask`` (how the data mask was made), ``n_voxels`` (analysis mask),
        ``nonfinite`` and ``constant`` (ndarray of bool, shape (x, y, z): voxels dropped for
        NaN/inf values, and voxels of ``mask_img`` dropped because their signal never changes;
        the data mask leaves those out by itself).
    """
    import nibabel as nib
    from nilearn.image import high_variance_confounds, load_img, smooth_img
    from nilearn.masking import apply_mask, unmask

    from brainalign.fmri.masks import compute_data_mask, finite_voxels

    img = load_img(bold_img)
    if img.ndim != 4:
        raise DataShapeError(f"BOLD image must be 4D, got shape {img.shape}.")
    raw = np.asanyarray(img.dataobj)
    finite = finite_voxels(raw)
    nonfinite = ~finite
    if nonfinite.any():
        img = nib.Nifti1Image(np.where(finite[..., None], raw, 0).astype(np.float32),
                              img.affine, img.header)
    data_mask, how = compute_data_mask(img, finite=finite)
    data_vox = np.asanyarray(data_mask.dataobj) > 0
    flat = np.zeros_like(finite)
    if mask_img is None:
        mask = data_vox  # without constant voxels already
    else:  # a given mask may cover voxels without signal (zeros): they cannot be modelled
        given = (np.asanyarray(mask_img.dataobj) > 0) & finite
        flat = given & (np.asanyarray(img.dataobj).std(axis=-1) == 0)
        mask = given & ~flat
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
    return preproc, mask_out, confounds, info


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
