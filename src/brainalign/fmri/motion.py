"""Head-motion correction and motion confounds for the light path (nipy, nipype).

Realignment is nipy's 4D rigid realigner (Roche 2011; the algorithm behind nipype's
``SpaceTimeRealigner``), framewise displacement and DVARS are nipype's confound algorithms
(``FramewiseDisplacement``, ``ComputeDVARS``), run on files in a temporary folder.

Motion parameters follow nipy's convention: translations (mm) then a rotation vector (radians)
per volume, the rigid transform that maps the reference grid onto the volume (world mm,
rotations about the scanner origin). The confound table reports them as fMRIPrep does:
``trans_x/y/z`` (mm) and ``rot_x/y/z`` (Euler angles, radians, as nipype's
``normalize_mc_params`` converts nipy parameters).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import ConfigError, DataShapeError

__all__ = ["MOTION_CONFOUNDS", "MOTION_REFERENCES", "PARAM_COLUMNS", "check_motion_options",
           "realign", "motion_parameters_table", "framewise_displacement", "compute_dvars",
           "expand_params24", "scrub_sample_mask", "select_motion_confounds"]

logger = logging.getLogger(__name__)

#: Reference of each run's realignment (``fmri.light.motion_reference``): ``mean`` is nipy's
#: default (every volume against the run's mean image, refined over the loops), ``first`` the
#: first volume.
MOTION_REFERENCES = ("mean", "first")
#: Six motion parameters, fMRIPrep's names.
PARAM_COLUMNS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
#: Choices of ``fmri.light.motion_confounds`` and the columns each adds to the GLM.
MOTION_CONFOUNDS = {
    "params6": PARAM_COLUMNS,
    "params24": [f"{c}{s}" for c in PARAM_COLUMNS
                 for s in ("", "_derivative1", "_power2", "_derivative1_power2")],
    "fd": ["framewise_displacement"],
    "dvars": ["dvars"],
    "std_dvars": ["std_dvars"],
}
_NEED_REALIGN = ("params6", "params24", "fd")


def _offline_nipype() -> None:
    """Stop nipype's online version check before any interface is created.

    Each nipype interface otherwise queries the network (etelemetry) when created, which hangs
    or fails on offline compute nodes.
    """
    os.environ.setdefault("NIPYPE_NO_ET", "1")


def check_motion_options(options: Mapping, *, where: str = "fmri.light") -> None:
    """Check the motion keys of the light path's config section.

    Parameters
    ----------
    options : Mapping
        The ``fmri.light`` section (keys ``motion_correction``, ``motion_reference``,
        ``motion_confounds``, ``scrub_fd_mm``, ``scrub_before``, ``scrub_after``).
    where : str
        Config path of the section, for messages.

    Raises
    ------
    ConfigError
        An unknown reference or confound name, both params6 and params24, a repeated name, or
        a motion-derived confound or FD scrubbing without ``motion_correction: true``.
    """
    ref = options.get("motion_reference", "mean")
    if ref not in MOTION_REFERENCES:
        raise ConfigError(f"Config key '{where}.motion_reference' is '{ref}': expected one of "
                          f"{list(MOTION_REFERENCES)}. Set it to mean or first.")
    chosen = list(options.get("motion_confounds", []) or [])
    unknown = [c for c in chosen if c not in MOTION_CONFOUNDS]
    if unknown:
        raise ConfigError(f"Config key '{where}.motion_confounds' names {unknown}: expected "
                          f"names from {list(MOTION_CONFOUNDS)}. Remove or correct them.")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"Config key '{where}.motion_confounds' repeats names {chosen}: "
                          "expected each at most once. Remove the duplicates.")
    if {"params6", "params24"} <= set(chosen):
        raise ConfigError(f"Config key '{where}.motion_confounds' holds both params6 and "
                          "params24: params24 already contains the six parameters. Keep one.")
    if not options.get("motion_correction", False):
        needs = [c for c in chosen if c in _NEED_REALIGN]
        if needs:
            raise ConfigError(f"Config key '{where}.motion_confounds' asks for {needs}, which "
                              f"come from realignment, but '{where}.motion_correction' is "
                              "false. Set motion_correction: true, or keep only dvars/std_dvars.")
        if options.get("scrub_fd_mm") is not None:
            raise ConfigError(f"Config key '{where}.scrub_fd_mm' is {options['scrub_fd_mm']} "
                              f"but '{where}.motion_correction' is false: framewise "
                              "displacement needs the realignment parameters. Set "
                              "motion_correction: true or scrub_fd_mm: null.")
    thr = options.get("scrub_fd_mm")
    if thr is not None and not (isinstance(thr, int | float) and thr > 0):
        raise ConfigError(f"Config key '{where}.scrub_fd_mm' is {thr!r}: expected a positive "
                          "threshold in mm (e.g. 0.5) or null to keep every volume.")
    for key in ("scrub_before", "scrub_after"):
        n = options.get(key, 0)
        if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
            raise ConfigError(f"Config key '{where}.{key}' is {n!r}: expected a whole number "
                              "of volumes >= 0.")


def realign(bold_img, *, reference: str = "mean", speedup: int = 5, loops: int = 5):
    """Rigid-body realignment of one run with nipy's 4D realigner.

    nipy's ``Realign4d`` without slice times (what nipype's ``SpaceTimeRealigner`` runs when it
    gets no slice timing); it is called directly because nipy 0.6.1's ``SpaceRealign`` fails
    under numpy >= 2.3 while guessing the slice axis, and because the nipype interface fixes
    the reference to the mean.

    Parameters
    ----------
    bold_img : nibabel image, 4D, shape (x, y, z, n_volumes)
        The run, finite values only.
    reference : {"mean", "first"}
        Realign every volume to the run's mean image or to its first volume.
    speedup : int
        Sub-sampling factor of the grid during estimation (nipy's default, 5).
    loops : int
        Estimation passes (nipy's default, 5).

    Returns
    -------
    realigned_img : nibabel.Nifti1Image, shape (x, y, z, n_volumes), float32
        The run resampled (cubic spline) onto the reference position.
    params : ndarray, shape (n_volumes, 6)
        Per volume: translations (mm) and rotation vector (radians) of the rigid transform
        from the reference to the volume (nipy's convention).
    """
    import nibabel as nib
    from nipy.algorithms.registration.groupwise_registration import Realign4d

    if reference not in MOTION_REFERENCES:
        raise ConfigError(f"Motion reference '{reference}': expected one of "
                          f"{list(MOTION_REFERENCES)}.")
    if bold_img.ndim != 4 or bold_img.shape[3] < 2 or min(bold_img.shape[:3]) < 4:
        raise DataShapeError(
            f"Realignment needs a 4D run of at least 4 voxels along each axis and 2 volumes, "
            f"got shape {bold_img.shape} (nipy leaves out the first and last slice of each "
            "axis; a slab of a few slices cannot be realigned in 3D). Set "
            "fmri.light.motion_correction: false for this dataset.")
    data = np.asarray(bold_img.dataobj, dtype=np.float64)
    img = nib.Nifti1Image(data, bold_img.affine)
    # slice_info given explicitly: with slice_times None it is not used (no time interpolation),
    # and it avoids nipy's slice-axis guess that breaks under numpy >= 2.3.
    reg = Realign4d(img, tr=1.0, slice_times=None, slice_info=(2, 1))
    with np.errstate(all="ignore"):
        reg.estimate(refscan=0 if reference == "first" else None, speedup=speedup, loops=loops)
        out = reg.resample(0)
    params = np.array([np.hstack((t.translation, t.rotation)) for t in reg._transforms[0]])
    realigned = np.asarray(out.get_fdata(), dtype=np.float32)
    res = nib.Nifti1Image(realigned, bold_img.affine, bold_img.header)
    res.header.set_data_dtype(np.float32)
    return res, params


def motion_parameters_table(params: np.ndarray) -> pd.DataFrame:
    """Motion parameters as fMRIPrep names them, rotations as Euler angles.

    Parameters
    ----------
    params : ndarray, shape (n_volumes, 6)
        nipy parameters (translations mm, rotation vector radians).

    Returns
    -------
    pandas.DataFrame, shape (n_volumes, 6)
        ``trans_x/y/z`` (mm), ``rot_x/y/z`` (radians), from nipype's ``normalize_mc_params``
        (source NIPY), the conversion its framewise displacement uses.
    """
    _offline_nipype()
    from nipype.utils.misc import normalize_mc_params

    norm = np.array([normalize_mc_params(np.asarray(p, float), "NIPY") for p in params])
    return pd.DataFrame(norm.reshape(-1, 6), columns=PARAM_COLUMNS)


def framewise_displacement(params: np.ndarray, *, radius_mm: float = 50.0) -> np.ndarray:
    """Framewise displacement (Power et al. 2012) with nipype's ``FramewiseDisplacement``.

    Parameters
    ----------
    params : ndarray, shape (n_volumes, 6)
        nipy parameters (translations mm, rotation vector radians), nipype's ``NIPY`` source.
    radius_mm : float
        Head radius turning rotations into displacements.

    Returns
    -------
    fd : ndarray, shape (n_volumes,)
        Sum of absolute backward differences of the translations and of the Euler angles times
        ``radius_mm`` (mm); 0 for the first volume.
    """
    _offline_nipype()
    from nipype.algorithms.confounds import FramewiseDisplacement

    params = np.asarray(params, float)
    with tempfile.TemporaryDirectory(prefix="brainalign-fd-") as tmp:
        par = Path(tmp) / "motion.par"
        np.savetxt(par, params, fmt="%.10f")
        iface = FramewiseDisplacement(in_file=str(par), parameter_source="NIPY",
                                      radius=float(radius_mm),
                                      out_file=str(Path(tmp) / "fd.txt"))
        res = iface.run(cwd=tmp)
        fd = np.atleast_1d(np.loadtxt(res.outputs.out_file, skiprows=1))
    return np.concatenate([[0.0], fd])


def compute_dvars(bold_img, mask_img) -> pd.DataFrame:
    """DVARS with nipype's ``ComputeDVARS`` (Power et al. 2012; Nichols 2013).

    Parameters
    ----------
    bold_img : nibabel image, 4D, shape (x, y, z, n_volumes)
        The run in scanner units (after realignment, before scaling).
    mask_img : nibabel image, 3D
        Brain mask.

    Returns
    -------
    pandas.DataFrame, shape (n_volumes, 2)
        ``dvars`` (RMS over voxels of the backward difference, after scaling the data to a
        median of 1000) and ``std_dvars`` (divided by its expected value under an AR(1) model);
        NaN for the first volume.
    """
    import nibabel as nib
    _offline_nipype()
    from nipype.algorithms.confounds import ComputeDVARS

    with tempfile.TemporaryDirectory(prefix="brainalign-dvars-") as tmp:
        bold = Path(tmp) / "bold.nii.gz"
        mask = Path(tmp) / "mask.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(bold_img.dataobj, np.float32), bold_img.affine),
                 bold)
        nib.save(nib.Nifti1Image((np.asarray(mask_img.dataobj) > 0).astype(np.uint8),
                                 mask_img.affine), mask)
        res = ComputeDVARS(in_file=str(bold), in_mask=str(mask), save_all=True).run(cwd=tmp)
        table = np.atleast_2d(np.loadtxt(res.outputs.out_all, skiprows=1))
    first = np.full((1, 2), np.nan)
    return pd.DataFrame(np.vstack([first, table[:, [1, 0]]]), columns=["dvars", "std_dvars"])


def expand_params24(params6: pd.DataFrame) -> pd.DataFrame:
    """The 24 motion regressors (Friston 1996; Satterthwaite 2013), fMRIPrep's names.

    Parameters
    ----------
    params6 : pandas.DataFrame, shape (n_volumes, 6)
        Columns :data:`PARAM_COLUMNS`.

    Returns
    -------
    pandas.DataFrame, shape (n_volumes, 24)
        Each parameter, its backward difference (0 for the first volume), and both squared.
    """
    cols = {}
    for c in PARAM_COLUMNS:
        x = params6[c].to_numpy(float)
        d = np.concatenate([[0.0], np.diff(x)])
        cols.update({c: x, f"{c}_derivative1": d, f"{c}_power2": x ** 2,
                     f"{c}_derivative1_power2": d ** 2})
    return pd.DataFrame(cols)


def scrub_sample_mask(fd: np.ndarray, *, threshold_mm: float, before: int = 0,
                      after: int = 0) -> np.ndarray:
    """Volumes kept after censoring those whose framewise displacement exceeds a threshold.

    Parameters
    ----------
    fd : ndarray, shape (n_volumes,)
        Framewise displacement (mm), 0 for the first volume.
    threshold_mm : float
        Volumes with ``fd > threshold_mm`` are censored.
    before, after : int
        Volumes also censored before and after each of them (Power et al. 2012 used 1 and 2).

    Returns
    -------
    keep : ndarray of bool, shape (n_volumes,)
        True for kept volumes.
    """
    fd = np.asarray(fd, float)
    bad = np.flatnonzero(fd > threshold_mm)
    keep = np.ones(fd.size, bool)
    for i in bad:
        keep[max(i - before, 0):i + after + 1] = False
    return keep


def select_motion_confounds(table: pd.DataFrame, chosen: Sequence[str]) -> pd.DataFrame:
    """The GLM's motion regressors: the chosen groups' columns, without missing values.

    Parameters
    ----------
    table : pandas.DataFrame, shape (n_volumes, n_columns)
        Every motion column computed (parameters, params24 terms, FD, DVARS).
    chosen : sequence of str
        Keys of :data:`MOTION_CONFOUNDS`.

    Returns
    -------
    pandas.DataFrame, shape (n_volumes, n_selected)
        The first volume's undefined DVARS is set to the run's mean DVARS, so that it adds no
        spike to the regressor.
    """
    cols = [c for name in chosen for c in MOTION_CONFOUNDS[name]]
    out = table[cols].copy()
    for c in ("dvars", "std_dvars"):
        if c in out and out[c].isna().any():
            out[c] = out[c].fillna(out[c].mean())
    return out
