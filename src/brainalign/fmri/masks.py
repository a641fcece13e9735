"""Brain masks: which voxels of a run are analysed, and why ROI voxels are left out.

Three sources (``fmri.mask.method``):

- ``data``: computed from the run's BOLD. Where the mean image has a dark background (raw or
  minimally processed EPI), nilearn's EPI mask (``nilearn.masking.compute_epi_mask``); where it
  has none (every voxel carries signal, e.g. a cropped or simulated volume, on which the EPI
  mask's histogram threshold falls anywhere), every voxel whose signal is finite, positive and
  not constant.
- ``rois``: the union of the selected ROIs of the atlas.
- ``file``: a mask image per subject.

Whatever the source, voxels with a non-finite value (NaN or inf) at any time point of a run are
dropped from that run's mask, with a warning that counts them (documented policy: drop and
report, never fail on a few bad voxels; an ROI left empty stops the subject with its cause).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError

__all__ = [
    "MASK_METHODS",
    "finite_voxels",
    "has_dark_background",
    "compute_data_mask",
    "atlas_on_grid",
    "close_label_names",
    "roi_definitions",
    "roi_label_map",
    "rois_mask",
    "resample_mask",
    "roi_voxel_counts",
]

logger = logging.getLogger(__name__)

#: Mask sources by config name (``fmri.mask.method``).
MASK_METHODS = ("data", "rois", "file")


def finite_voxels(data: np.ndarray) -> np.ndarray:
    """Voxels whose time series is finite at every time point.

    Parameters
    ----------
    data : ndarray, shape (x, y, z, n_volumes)

    Returns
    -------
    finite : ndarray of bool, shape (x, y, z)
    """
    return np.isfinite(data).all(axis=-1)


def has_dark_background(mean: np.ndarray, *, dark_fraction: float = 0.1,
                        min_fraction: float = 0.05) -> bool:
    """Whether a mean EPI image has a dark background that an intensity threshold can find.

    Parameters
    ----------
    mean : ndarray, shape (x, y, z)
        Temporal mean of the run (non-finite voxels set to 0).
    dark_fraction : float
        A voxel is dark below this fraction of the image's 98th intensity percentile.
    min_fraction : float
        The image has a dark background when at least this fraction of its voxels is dark.

    Returns
    -------
    dark : bool
    """
    values = np.abs(mean[np.isfinite(mean)])
    if values.size == 0:
        return False
    bright = np.percentile(values, 98)
    if bright <= 0:
        return False
    return bool(np.mean(values < dark_fraction * bright) >= min_fraction)


def compute_data_mask(img, *, finite: np.ndarray | None = None):
    """Brain mask of one run computed from its BOLD, robust to images without background.

    Parameters
    ----------
    img : nibabel image, 4D, shape (x, y, z, n_volumes)
        The run (non-finite values allowed; they are never in the mask).
    finite : ndarray of bool, shape (x, y, z), optional
        :func:`finite_voxels` of the run, if already computed.

    Returns
    -------
    mask_img : nibabel.Nifti1Image, shape (x, y, z)
        uint8 mask.
    how : str
        Which rule made it: ``"EPI mask (dark background)"`` or ``"finite, positive,
        non-constant signal (no dark background)"``.
    """
    import nibabel as nib

    data = np.asanyarray(img.dataobj)
    finite = finite_voxels(data) if finite is None else finite
    if not finite.all():  # a copy only where NaN/inf must be zeroed (a 4D copy is costly)
        data = np.where(finite[..., None], data, 0).astype(np.float32)
        img = nib.Nifti1Image(data, img.affine, img.header)
    mean = data.mean(axis=-1)
    if has_dark_background(mean):
        epi = _epi_mask(img)
        mask = (np.asanyarray(epi.dataobj) > 0) & finite
        how = "EPI mask (dark background)"
    else:
        mask = finite & (mean > 0) & (data.std(axis=-1) > 0)
        how = "finite, positive, non-constant signal (no dark background)"
    return nib.Nifti1Image(mask.astype(np.uint8), img.affine), how


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


def atlas_on_grid(dseg_img, ref_img):
    """An ROI atlas on the grid of a reference image (nearest neighbour when the grids differ).

    Parameters
    ----------
    dseg_img : nibabel image, 3D
        Integer label image.
    ref_img : nibabel image, 3D or 4D
        Gives the grid (shape and affine).

    Returns
    -------
    dseg_img : nibabel image, 3D, shape ref_img.shape[:3]
    """
    from nilearn.image import resample_to_img

    if dseg_img.shape[:3] == ref_img.shape[:3] and np.allclose(dseg_img.affine, ref_img.affine):
        return dseg_img
    import nibabel as nib

    target = nib.Nifti1Image(np.zeros(ref_img.shape[:3], dtype=np.uint8), ref_img.affine)
    return resample_to_img(dseg_img, target, interpolation="nearest", force_resample=True,
                           copy_header=True)


def close_label_names(unknown: Sequence[str], label_names: Sequence[str]) -> str:
    """A "did you mean" hint for label names a labels table does not define.

    Parameters
    ----------
    unknown : sequence of str
        Names not in the table.
    label_names : sequence of str
        The table's names.

    Returns
    -------
    hint : str
        `` Did you mean: 'a' -> 'b', ...?`` (case-insensitive close matches), or ``""``.
    """
    import difflib

    lower = {n.lower(): n for n in label_names}
    pairs = []
    for name in unknown:
        match = difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
        if match:
            pairs.append(f"'{name}' -> {' or '.join(repr(lower[m]) for m in match)}")
    return f" Did you mean: {'; '.join(pairs)}?" if pairs else ""


def roi_definitions(names: Sequence[str | Mapping[str, Sequence[str]]],
                    label_names: Sequence[str], *, labels_path: str = "the labels table",
                    error: type[Exception] = BIDSInputError) -> dict[str, list[str]]:
    """The labels that make up each selected ROI (``fmri.rois.names``).

    Parameters
    ----------
    names : sequence of str or one-key mapping
        An entry is a label name (an ROI of one label), or ``{roi: [label, ...]}`` (an ROI
        made of the union of several labels, e.g. left and right). Empty: every label of the
        table except index 0 (pass ``label_names`` without it).
    label_names : sequence of str
        Names defined by the labels table.
    labels_path : str
        The labels table, for messages.
    error : exception class
        Raised on a problem (``ConfigError`` at DAG time, ``BIDSInputError`` in jobs).

    Returns
    -------
    rois : dict of str to list of str
        ROI name -> its label names, in the order of ``names``.

    Raises
    ------
    error
        Unknown label names (with close matches), an entry that is not a name or a one-key
        mapping to a non-empty list, an ROI named twice, or a label in two ROIs (a voxel belongs
        to one ROI in the responses).
    """
    known = set(label_names)
    rois: dict[str, list[str]] = {}
    if not names:
        return {n: [n] for n in label_names}
    for entry in names:
        if isinstance(entry, str):
            roi, parts = entry, [entry]
        elif (isinstance(entry, Mapping) and len(entry) == 1
              and isinstance(next(iter(entry.values())), Sequence)
              and not isinstance(next(iter(entry.values())), str)
              and len(next(iter(entry.values()))) > 0):
            roi, parts = next(iter(entry.items()))
            roi, parts = str(roi), [str(p) for p in parts]
        else:
            raise error(
                f"Config key 'fmri.rois.names' has the entry {entry!r}: expected a label name or "
                "a mapping of one ROI name to a non-empty list of label names, e.g. "
                "{ventral_temporal: [Left-Fusiform, Right-Fusiform]}."
            )
        if roi in rois:
            raise error(
                f"Config key 'fmri.rois.names' names the ROI '{roi}' twice: expected each ROI "
                "once. Remove or rename one entry."
            )
        rois[roi] = parts
    unknown = [p for parts in rois.values() for p in parts if p not in known]
    if unknown:
        unknown = list(dict.fromkeys(unknown))
        raise error(
            f"ROI(s) {unknown} are not defined in {labels_path}: expected names from "
            f"{sorted(known)[:60]}.{close_label_names(unknown, list(known))} Fix "
            "fmri.rois.names or the labels TSV."
        )
    owner: dict[str, str] = {}
    for roi, parts in rois.items():
        for p in parts:
            if p in owner and owner[p] != roi:
                raise error(
                    f"Config key 'fmri.rois.names': label '{p}' is in the ROIs '{owner[p]}' and "
                    f"'{roi}': expected each label in one ROI (a voxel belongs to one ROI in the "
                    "responses). Drop it from one of them."
                )
            owner[p] = roi
    return rois


def roi_label_map(dseg_img, labels: pd.DataFrame,
                  names: Sequence[str | Mapping[str, Sequence[str]]]) -> dict[str, np.ndarray]:
    """Voxels of each selected ROI of an atlas.

    Parameters
    ----------
    dseg_img : nibabel image, 3D, shape (x, y, z)
        Integer label image.
    labels : pandas.DataFrame
        Columns ``index`` and ``name``.
    names : sequence of str or one-key mapping
        ROIs to keep (empty: every label except 0); ``{roi: [label, ...]}`` is the union of
        those labels (:func:`roi_definitions`).

    Returns
    -------
    rois : dict of str to ndarray of bool, shape (x, y, z)
        In the order of ``names``.
    """
    values = np.rint(np.asanyarray(dseg_img.dataobj)).astype(int)
    lut = dict(zip(labels["name"].astype(str), labels["index"].astype(int), strict=True))
    defs = roi_definitions(names, [n for n, i in lut.items() if i != 0] if not names else list(lut),
                           labels_path="the labels table")
    return {roi: np.isin(values, [lut[p] for p in parts]) for roi, parts in defs.items()}


def rois_mask(rois: Mapping[str, np.ndarray], ref_img):
    """The union of ROIs as a mask image on the reference grid.

    Parameters
    ----------
    rois : Mapping of str to ndarray of bool, shape (x, y, z)
        From :func:`roi_label_map`, on the grid of ``ref_img``.
    ref_img : nibabel image
        Gives the affine.

    Returns
    -------
    mask_img : nibabel.Nifti1Image, shape (x, y, z)
    """
    import nibabel as nib

    union = np.zeros(ref_img.shape[:3], dtype=bool)
    for voxels in rois.values():
        union |= voxels
    return nib.Nifti1Image(union.astype(np.uint8), ref_img.affine)


def resample_mask(mask_img, ref_img, *, what: str):
    """A mask image on the grid of a reference image (nearest neighbour when grids differ).

    Parameters
    ----------
    mask_img : nibabel image, 3D
    ref_img : nibabel image, 3D or 4D
    what : str
        The mask's file, for the error message.

    Returns
    -------
    mask : ndarray of bool, shape ref_img.shape[:3]
    """
    if mask_img.ndim != 3:
        raise BIDSInputError(
            f"Mask image {what}: expected a 3D image, got shape {mask_img.shape}. Give one "
            "3D mask per subject (fmri.mask.path)."
        )
    if mask_img.shape[:3] != ref_img.shape[:3] or not np.allclose(mask_img.affine,
                                                                   ref_img.affine):
        mask_img = atlas_on_grid(mask_img, ref_img)
    mask = np.asanyarray(mask_img.dataobj) > 0
    if not mask.any():
        raise BIDSInputError(
            f"Mask image {what} has no voxel inside the BOLD's field of view: expected a brain "
            "mask on (or overlapping) the BOLD grid. Check fmri.mask.path."
        )
    return mask


def roi_voxel_counts(rois: Mapping[str, np.ndarray], mask: np.ndarray, nonfinite: np.ndarray,
                     constant: np.ndarray | None = None) -> dict[str, dict[str, int]]:
    """How many voxels of each ROI a run's mask keeps, and why the others are left out.

    Parameters
    ----------
    rois : Mapping of str to ndarray of bool, shape (x, y, z)
    mask : ndarray of bool, shape (x, y, z)
        The run's final mask.
    nonfinite : ndarray of bool, shape (x, y, z)
        Voxels with a non-finite value in the run.
    constant : ndarray of bool, shape (x, y, z), optional
        Voxels whose signal never changes in the run.

    Returns
    -------
    counts : dict
        ``{roi: {"atlas": n, "in_mask": n, "nonfinite": n, "constant": n,
        "outside_mask": n}}``; each left-out voxel is counted once, under the first reason
        that applies (non-finite, constant, outside the mask).
    """
    constant = np.zeros_like(mask) if constant is None else constant
    out = {}
    for name, voxels in rois.items():
        out[name] = {
            "atlas": int(voxels.sum()),
            "in_mask": int((voxels & mask).sum()),
            "nonfinite": int((voxels & nonfinite).sum()),
            "constant": int((voxels & constant & ~nonfinite & ~mask).sum()),
            "outside_mask": int((voxels & ~mask & ~nonfinite & ~constant).sum()),
        }
    return out
