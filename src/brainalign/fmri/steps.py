"""Steps of the fMRI domain: preprocessing, single-trial GLM, per-stimulus ROI responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign import fmri
from brainalign.errors import BIDSInputError, ConfigError
from brainalign.fmri import masks as fmasks
from brainalign.fmri.checks import read_roi_labels
from brainalign.ingest.checks import load_nifti_data
from brainalign.io import read_tsv, save_json, save_nifti, save_npz, save_tsv

__all__ = ["ROI_VOXEL_COLUMNS", "step_preprocess", "step_glm", "step_responses",
           "step_import_fmriprep", "sample_mask_table", "read_sample_mask"]

logger = logging.getLogger(__name__)

#: Columns of the per-subject table of ROI voxels before and after masking.
ROI_VOXEL_COLUMNS = ["subject", "roi", "n_voxels_atlas", "n_voxels_analysed",
                     "n_voxels_removed", "removed_runs", "reason"]


def _warn_roi_losses(counts: Mapping[str, Mapping], where: str) -> None:
    """Warn about every ROI that a run's mask leaves voxels out of, with the reasons."""
    for name, c in counts.items():
        if c["in_mask"] < c["atlas"]:
            logger.warning("%s: ROI %s keeps %d of its %d voxels in this run's mask (%d outside "
                           "the mask, %d with NaN/inf values, %d with a constant signal)",
                           where, name, c["in_mask"], c["atlas"], c["outside_mask"],
                           c["nonfinite"], c["constant"])


def step_preprocess(
    bold: str,
    *,
    method: str,
    params: Mapping,
    mask: Mapping,
    dseg: str,
    labels: str,
    roi_names: Sequence[str],
    mask_file: str | None = None,
    run: str = "",
    bold_out: str,
    mask_out: str,
    mask_json_out: str,
    confounds_out: str,
    sample_mask_out: str | None = None,
) -> None:
    """Preprocess one run with the configured backend, in the configured brain mask.

    Parameters
    ----------
    bold : str
        Raw BOLD run.
    method : str
        Key of ``brainalign.fmri.PREPROCESSORS``.
    params : Mapping
        Keyword arguments of the backend (``fmri.<method>`` config section).
    mask : Mapping
        ``fmri.mask`` config section (``method``: data, rois or file).
    dseg, labels : str
        The subject's ROI atlas and its labels TSV: ROI voxels never feed the confounds, and
        each ROI's voxels outside this run's mask are counted.
    roi_names : sequence of str
        Selected ROIs (empty: every label).
    mask_file : str, optional
        The subject's mask image (``fmri.mask.method: file``).
    run : str
        ``sub-<s> task-<t>_run-<r>``, for messages.
    bold_out, mask_out, mask_json_out, confounds_out : str
        Output paths; the mask's JSON sidecar records how it was made and, per ROI, how many
        voxels it keeps and why it leaves others out, and (light path with motion correction
        or DVARS) the run's motion summary (``Motion``).
    sample_mask_out : str, optional
        TSV with one row per volume, column ``keep`` (1 kept, 0 censored): the backend's
        ``info["sample_mask"]`` when it scrubs volumes, else every volume kept (not written
        when None).
    """
    import nibabel as nib

    img = load_nifti_data(bold, where=run or bold, what="BOLD image")
    rois = fmasks.roi_label_map(fmasks.atlas_on_grid(nib.load(dseg), img),
                                read_roi_labels(Path(labels)), roi_names)
    exclude = fmasks.rois_mask(rois, img)
    analysis = None
    if mask["method"] == "rois":
        analysis = exclude
    elif mask["method"] == "file":
        voxels = fmasks.resample_mask(nib.load(mask_file), img, what=str(mask_file))
        analysis = nib.Nifti1Image(voxels.astype(np.uint8), img.affine)
    preproc, mask_img, conf, info = fmri.PREPROCESSORS[method](
        img, mask_img=analysis, confound_exclude=np.asanyarray(exclude.dataobj) > 0, **params)
    n_bad = int(info["nonfinite"].sum())
    if n_bad:
        logger.warning("%s: %d voxels have NaN or inf values and are dropped from the mask",
                       run or bold, n_bad)
    counts = fmasks.roi_voxel_counts(rois, np.asanyarray(mask_img.dataobj) > 0,
                                     info["nonfinite"], info["constant"])
    _warn_roi_losses(counts, run or bold)
    how = {"data": f"data ({info['data_mask']})", "rois": "rois (union of the selected ROIs)",
           "file": f"file ({mask_file})"}[mask["method"]]
    save_nifti(preproc, bold_out)
    save_nifti(mask_img, mask_out)
    # light path with motion correction or DVARS: mean/max FD, volumes censored, ...
    motion = {"Motion": info["motion"]} if "motion" in info else {}
    save_json({"Type": "Brain", "MaskMethod": how, "NumberOfVoxels": info["n_voxels"],
               "NonFiniteVoxels": n_bad, "ROIVoxels": counts, **motion}, mask_json_out)
    save_tsv(conf, confounds_out)
    if sample_mask_out is not None:
        n_vol = img.shape[3] if img.ndim == 4 else 1
        save_tsv(sample_mask_table(info.get("sample_mask"), n_vol), sample_mask_out)


def sample_mask_table(keep: np.ndarray | None, n_volumes: int) -> pd.DataFrame:
    """The sample-mask TSV of one run: column ``keep``, 1 for kept and 0 for censored volumes.

    Parameters
    ----------
    keep : ndarray of bool, shape (n_volumes,), optional
        Volumes kept; None keeps every volume.
    n_volumes : int
        Volumes in the run.

    Returns
    -------
    pandas.DataFrame, shape (n_volumes, 1)
    """
    if keep is None:
        keep = np.ones(n_volumes, bool)
    keep = np.asarray(keep, bool).ravel()
    if keep.size != n_volumes:
        raise BIDSInputError(f"The sample mask has {keep.size} entries but the run has "
                             f"{n_volumes} volumes; it needs one entry per volume.")
    return pd.DataFrame({"keep": keep.astype(int)})


def read_sample_mask(path: str | None, n_volumes: int) -> np.ndarray | None:
    """Read a sample-mask TSV (column ``keep``) into a bool array, checking its length.

    Parameters
    ----------
    path : str, optional
        The TSV written by :func:`sample_mask_table`; None keeps every volume.
    n_volumes : int
        Volumes in the run.

    Returns
    -------
    ndarray of bool, shape (n_volumes,), or None when every volume is kept.
    """
    if path is None:
        return None
    table = read_tsv(path)
    if "keep" not in table.columns:
        raise BIDSInputError(f"{path}: the sample mask has columns {list(table.columns)}; "
                             "expected one column 'keep' (1 kept, 0 censored). Rerun the "
                             "preprocessing rule that writes it.")
    keep = table["keep"].to_numpy()
    if len(keep) != n_volumes or not np.isin(keep, (0, 1)).all():
        raise BIDSInputError(f"{path}: the sample mask has {len(keep)} rows with values "
                             f"{sorted(set(keep.tolist()))[:5]}; expected {n_volumes} rows "
                             "(one per volume) of 0 or 1. Rerun the preprocessing rule.")
    keep = keep.astype(bool)
    return None if keep.all() else keep


def step_glm(
    bold: str,
    mask: str,
    confounds: str,
    events: str,
    *,
    sample_mask: str | None = None,
    t_r_s: float,
    glm: Mapping,
    betas_out: str,
    trials_out: str,
) -> None:
    """Single-trial GLM (LSA or LSS, ``glm["method"]``) of one run.

    The design is built on every volume; censored volumes of the sample mask are then dropped
    from design and data, as nilearn's ``FirstLevelModel(sample_masks=...)``.

    Parameters
    ----------
    bold, mask, confounds, events : str
        Preprocessed run, its mask, its confounds and its events.tsv.
    sample_mask : str, optional
        TSV of the volumes kept (column ``keep``); None keeps every volume.
    t_r_s : float
        Repetition time (s).
    glm : Mapping
        ``fmri.glm`` config section.
    betas_out, trials_out : str
        4D NIfTI of betas (one volume per trial) and the TSV of the trials behind them.
    """
    import nibabel as nib
    from nilearn.masking import apply_mask, unmask

    mask_img = nib.load(mask)
    data = apply_mask(bold, mask_img)
    ev = read_tsv(events)
    # a run without confounds (fmri.light.n_confounds: 0) has a TSV without columns
    conf = read_tsv(confounds) if Path(confounds).read_text().strip() else None
    design, cols = fmri.single_trial_design(
        ev,
        data.shape[0],
        t_r_s,
        confounds=conf,
        hrf_model=glm["hrf_model"],
        drift_model=glm["drift_model"],
        high_pass_hz=glm["high_pass_hz"],
        slice_time_ref=glm["slice_time_ref"],
    )
    keep = read_sample_mask(sample_mask, data.shape[0])
    method = glm.get("method", "lsa")
    if method == "lss" and "derivative" in glm["hrf_model"]:
        raise ConfigError(
            f"fmri.glm.method is 'lss' with fmri.glm.hrf_model {glm['hrf_model']!r}: LSS models "
            "one regressor per trial, and derivative HRF models are not supported with it. Set "
            "fmri.glm.hrf_model to 'spm' or 'glover', or fmri.glm.method to 'lsa'.")
    conditions = None
    if method == "lss" and glm.get("lss_others", "all") == "by_condition":
        if "trial_type" not in ev.columns:
            raise BIDSInputError(
                f"{events}: fmri.glm.lss_others is 'by_condition' but the events have no "
                f"'trial_type' column (columns: {list(ev.columns)}). Add a trial_type column to "
                "the events or set fmri.glm.lss_others: all.")
        conditions = ev["trial_type"].astype(str).tolist()
    betas = fmri.fit_single_trial_betas(data, design, cols, noise_model=glm["noise_model"],
                                        method=method, conditions=conditions, sample_mask=keep)
    logger.info("%s: %d trials, %d voxels, design %s, %d of %d volumes kept", method,
                betas.shape[0], betas.shape[1], design.shape,
                data.shape[0] if keep is None else int(keep.sum()), data.shape[0])
    save_nifti(unmask(betas.astype(np.float32), mask_img), betas_out)
    trials = ev[["onset", "duration", "stim_file"]].copy()
    trials.insert(0, "volume", range(len(trials)))
    save_tsv(trials, trials_out)


def _removal_reason(runs: Sequence[str], sidecars: Sequence[Mapping], roi: str) -> tuple[str, str]:
    """The runs whose mask leaves out voxels of an ROI, and why (from the masks' sidecars)."""
    removed, reasons = [], []
    for run, side in zip(runs, sidecars, strict=True):
        c = side["ROIVoxels"][roi]
        parts = []
        if c["outside_mask"]:
            parts.append(f"{c['outside_mask']} outside the brain mask ({side['MaskMethod']})")
        if c["nonfinite"]:
            parts.append(f"{c['nonfinite']} with NaN/inf values")
        if c.get("constant"):
            parts.append(f"{c['constant']} with a constant signal")
        if parts:
            removed.append(run)
            reasons.append(f"{run}: " + ", ".join(parts))
    return ", ".join(removed), "; ".join(reasons)


def _ncsnr_ceiling(betas: Sequence[np.ndarray], stim_files: Sequence[str],
                   stimuli: Sequence[str], *, zscore_within: str,
                   sessions: Sequence[str | None] | None) -> tuple[np.ndarray, np.ndarray]:
    """NCSNR and its ceiling (units of r) from per-run betas, z-scored per run or session."""
    from brainalign.fmri import responses as fresp

    if zscore_within == "session":
        if sessions is None:
            raise ValueError("zscore_within='session' needs the session of each run")
        groups = [str(ses) for ses, b in zip(sessions, betas, strict=True) for _ in b]
    elif zscore_within == "run":
        groups = [i for i, b in enumerate(betas) for _ in b]
    else:
        raise ValueError(f"zscore_within must be 'run' or 'session', got {zscore_within!r}")
    z = fresp.zscore_within(np.concatenate(betas), groups)
    keep = np.isin(stim_files, stimuli)
    snr, _ = fresp.ncsnr(z[keep], np.asarray(stim_files)[keep])
    counts = pd.Series(np.asarray(stim_files)[keep]).value_counts()
    return snr, fresp.noise_ceiling_from_ncsnr(snr, counts.loc[list(stimuli)].to_numpy())


def step_responses(
    betas: Sequence[str],
    trials: Sequence[str],
    masks: Sequence[str],
    mask_sidecars: Sequence[str],
    *,
    subject: str,
    runs: Sequence[str],
    stimuli_table: str,
    dseg: str,
    labels: str,
    roi_names: Sequence[str | Mapping[str, Sequence[str]]],
    out: str,
    voxels_out: str,
    zscore_within: str = "run",
    sessions: Sequence[str | None] | None = None,
) -> None:
    """Per-stimulus ROI responses of one subject: average repeats, split halves, ceilings.

    A voxel is analysed when it lies in the subject's ROIs and in the brain mask of every run.
    ROI voxels that a run's mask leaves out are counted per run with the reason (outside the
    mask, or NaN/inf values): a warning names them, and an ROI left without voxels stops the
    step with its cause and the config keys that change it.

    Parameters
    ----------
    betas, trials, masks, mask_sidecars : sequence of str
        Per run: single-trial betas, their trial table, the run's brain mask and its JSON.
    subject : str
        Subject label (for messages and the voxel table).
    runs : sequence of str
        Per run: ``task-<t>_run-<r>``.
    stimuli_table : str
        The stimulus manifest (row order of the output).
    dseg, labels : str
        ROI atlas image and its labels TSV.
    roi_names : sequence of str or one-key mapping
        ROIs to keep (empty: every label); ``{name: [label, ...]}`` is the union of labels
        (:func:`brainalign.fmri.masks.roi_label_map`).
    out : str
        npz with ``responses``, ``half1``, ``half2`` (n_stimuli, n_voxels), ``roi``,
        ``noise_ceiling``, ``reliability``, ``ncsnr``, ``noise_ceiling_ncsnr`` (n_voxels,),
        ``stimuli`` and ``n_repeats``. Both ceilings are in units of correlation (Pearson r
        between the noise-free signal and the averaged response, the units of the encoding
        scores): ``noise_ceiling`` is the square root of the prophesied split-half
        reliability, ``noise_ceiling_ncsnr`` the square root of NSD's variance fraction
        ``ncsnr**2 / (ncsnr**2 + 1/n)`` (NSD reports that fraction x 100, in percent).
    voxels_out : str
        TSV with columns :data:`ROI_VOXEL_COLUMNS`, one row per ROI.
    zscore_within : {"run", "session"}
        Unit within which each voxel's single-trial betas are z-scored before the NCSNR
        (NSD z-scores within sessions).
    sessions : sequence of str or None, optional
        Per run: its BIDS session (``zscore_within: session``; runs without one form one
        group).
    """
    import json

    import nibabel as nib
    from nilearn.masking import apply_mask

    mask_imgs = [nib.load(m) for m in masks]
    mask = np.logical_and.reduce([np.asanyarray(m.dataobj) > 0 for m in mask_imgs])
    sidecars = [json.loads(Path(s).read_text()) for s in mask_sidecars]
    rois = fmasks.roi_label_map(fmasks.atlas_on_grid(nib.load(dseg), mask_imgs[0]),
                                read_roi_labels(Path(labels)), roi_names)
    rows, empty = [], []
    roi_of = np.full(mask.shape, "", dtype=object)
    for name, voxels in rois.items():
        kept = voxels & mask
        roi_of[kept] = name
        removed_runs, reason = _removal_reason(runs, sidecars, name)
        rows.append({"subject": subject, "roi": name, "n_voxels_atlas": int(voxels.sum()),
                     "n_voxels_analysed": int(kept.sum()),
                     "n_voxels_removed": int(voxels.sum() - kept.sum()),
                     "removed_runs": removed_runs or None, "reason": reason or None})
        if not voxels.any():
            empty.append(f"ROI '{name}' has no voxel in the atlas {dseg}")
        elif not kept.any():
            empty.append(f"ROI '{name}' loses all {int(voxels.sum())} atlas voxels ({reason})")
        elif kept.sum() < voxels.sum():
            logger.warning("sub-%s ROI %s: %d of %d voxels removed by masking (%s)", subject,
                           name, voxels.sum() - kept.sum(), voxels.sum(), reason)
    table = pd.DataFrame(rows, columns=ROI_VOXEL_COLUMNS)
    save_tsv(table, voxels_out)
    if empty:
        raise BIDSInputError(
            f"sub-{subject}: " + "; ".join(empty) + ". Expected at least one voxel per ROI "
            "inside the brain mask of every run. The mask comes from fmri.mask.method "
            f"('{sidecars[0]['MaskMethod']}'): set it to 'rois' to analyse every ROI voxel, or "
            "'file' with your own mask; check that the atlas is on the BOLD grid "
            f"({voxels_out} lists every ROI)."
        )
    keep = roi_of != ""
    keep_img = nib.Nifti1Image(keep.astype(np.uint8), mask_imgs[0].affine)
    roi = roi_of[keep].astype(str)
    all_betas, stim_files = [], []
    for b, t in zip(betas, trials, strict=True):
        all_betas.append(apply_mask(b, keep_img))
        stim_files += read_tsv(t)["stim_file"].astype(str).tolist()
    stimuli = read_tsv(stimuli_table)["stim_file"].astype(str).tolist()
    shown = set(stim_files)
    stimuli_seen = [s for s in stimuli if s in shown]
    mean, h1, h2, n_rep = fmri.average_repeats(np.concatenate(all_betas), stim_files, stimuli_seen)
    rel = fmri.split_half_reliability(h1, h2)
    nc = fmri.noise_ceiling_from_reliability(rel, n_repeats=n_rep)
    snr, nc_snr = _ncsnr_ceiling(all_betas, stim_files, stimuli_seen, zscore_within=zscore_within,
                                 sessions=sessions)
    for name in np.unique(roi):
        sel = roi == name
        logger.info("ROI %s: %d voxels, mean noise ceiling %.3f (split-half), %.3f (NCSNR)",
                    name, sel.sum(), nc[sel].mean(), nc_snr[sel].mean())
    save_npz(
        out,
        responses=mean,
        half1=h1,
        half2=h2,
        roi=roi,
        noise_ceiling=nc,
        reliability=rel,
        ncsnr=snr,
        noise_ceiling_ncsnr=nc_snr,
        stimuli=np.array(stimuli_seen),
        n_repeats=n_rep,
    )


def step_import_fmriprep(
    bold: str,
    brain_mask: str,
    *,
    confounds_options: Mapping,
    mask: Mapping,
    dseg: str,
    labels: str,
    roi_names: Sequence[str],
    mask_file: str | None = None,
    run: str = "",
    bold_out: str,
    mask_out: str,
    mask_json_out: str,
    confounds_out: str,
    sample_mask_out: str,
) -> None:
    """Bring one run of fMRIPrep derivatives in: the same outputs as :func:`step_preprocess`.

    The BOLD is fMRIPrep's ``desc-preproc_bold`` (already realigned, slice-time corrected and
    resampled to the output space by fMRIPrep); here it is only converted to percent signal
    change around each voxel's mean over the kept volumes, inside the analysis mask (BOLD
    without a positive baseline, a median voxel mean not above 5 median SDs, is only
    demeaned, with a warning, and the sidecar's ``Scaling`` says so). The
    confounds and the sample mask come from fMRIPrep's confounds table through nilearn
    (:func:`brainalign.fmri.confounds.load_fmriprep_confounds`).

    Parameters
    ----------
    bold : str
        fMRIPrep's ``space-<space>_desc-preproc_bold`` (its confounds table lies next to it).
    brain_mask : str
        fMRIPrep's ``desc-brain_mask`` of the same run and space.
    confounds_options : Mapping
        ``fmri.fmriprep.confounds``.
    mask : Mapping
        ``fmri.mask``: ``data`` uses fMRIPrep's brain mask, ``rois`` the union of the ROIs,
        ``file`` the subject's mask image. Voxels with NaN/inf values or a constant signal are
        always left out.
    dseg, labels : str
        The subject's ROI atlas and its labels TSV (resampled to the BOLD grid if needed).
    roi_names : sequence of str
        Selected ROIs (empty: every label).
    mask_file : str, optional
        The subject's mask image (``fmri.mask.method: file``).
    run : str
        ``sub-<s> task-<t>_run-<r>``, for messages.
    bold_out, mask_out, mask_json_out, confounds_out, sample_mask_out : str
        Output paths: BOLD in percent signal change (float32, 0 outside the mask), the mask,
        its JSON sidecar (as :func:`step_preprocess` writes it), the selected confounds
        (every volume) and the sample mask (column ``keep``: 1 kept, 0 censored).
    """
    import nibabel as nib

    from brainalign.fmri.confounds import load_fmriprep_confounds

    img = load_nifti_data(bold, where=run or bold, what="fMRIPrep BOLD image")
    where = run or bold
    if img.ndim != 4:
        raise BIDSInputError(f"{where}: fMRIPrep BOLD {bold} has shape {img.shape}: expected a "
                             "4D image (x, y, z, volumes). Check fmri.fmriprep.space.")
    n_vol = img.shape[3]
    conf, keep = load_fmriprep_confounds(bold, confounds_options, n_volumes=n_vol)
    raw = np.asanyarray(img.dataobj)
    nonfinite = ~fmasks.finite_voxels(raw)
    data = np.where(nonfinite[..., None], 0, raw) if nonfinite.any() else raw
    rois = fmasks.roi_label_map(fmasks.atlas_on_grid(nib.load(dseg), img),
                                read_roi_labels(Path(labels)), roi_names)
    if mask["method"] == "rois":
        given = np.asanyarray(fmasks.rois_mask(rois, img).dataobj) > 0
        how = "rois (union of the selected ROIs)"
    elif mask["method"] == "file":
        given = fmasks.resample_mask(nib.load(mask_file), img, what=str(mask_file))
        how = f"file ({mask_file})"
    else:
        given = fmasks.resample_mask(nib.load(brain_mask), img, what=str(brain_mask))
        how = f"data (fMRIPrep desc-brain_mask: {Path(brain_mask).name})"
    kept = data[..., keep]
    mean = kept.mean(axis=-1)
    sd = kept.std(axis=-1)
    constant = given & ~nonfinite & (sd == 0)
    varying = given & ~nonfinite & ~constant
    # fMRIPrep's BOLD is in scanner units (a positive baseline far above the fluctuations):
    # percent signal change. BOLD that is already centred or standardised (a median voxel mean
    # not above 5 median SDs) has no baseline to divide by: it is only demeaned.
    centred = bool(varying.any()) and np.median(mean[varying]) <= 5 * np.median(sd[varying])
    voxels = varying if centred else varying & (mean > 0)
    constant |= given & ~nonfinite & ~voxels  # a non-positive mean: no percent signal change
    if centred:
        logger.warning("%s: the BOLD has no positive baseline (median voxel mean %.3g, median "
                       "SD %.3g): analysed demeaned, in its own units, not in percent signal "
                       "change", where, np.median(mean[varying]), np.median(sd[varying]))
    n_bad = int((given & nonfinite).sum())
    if n_bad:
        logger.warning("%s: %d voxels have NaN or inf values and are dropped from the mask",
                       where, n_bad)
    psc = np.zeros(img.shape, dtype=np.float32)
    if centred:
        psc[voxels] = data[voxels] - mean[voxels, None]
    else:
        psc[voxels] = 100.0 * (data[voxels] - mean[voxels, None]) / mean[voxels, None]
    counts = fmasks.roi_voxel_counts(rois, voxels, nonfinite, constant)
    _warn_roi_losses(counts, where)
    logger.info("%s: %d voxels in the mask (%s); %d confounds (%s); %d of %d volumes kept",
                where, int(voxels.sum()), how, conf.shape[1],
                confounds_options.get("strategy"), int(keep.sum()), n_vol)
    out = nib.Nifti1Image(psc, img.affine, img.header)
    out.header.set_data_dtype(np.float32)
    save_nifti(out, bold_out)
    save_nifti(nib.Nifti1Image(voxels.astype(np.uint8), img.affine), mask_out)
    save_json({"Type": "Brain", "MaskMethod": how, "NumberOfVoxels": int(voxels.sum()),
               "NonFiniteVoxels": n_bad, "ROIVoxels": counts,
               "Scaling": "demeaned (no baseline)" if centred else "percent signal change",
               "Sources": [str(bold), str(brain_mask)]}, mask_json_out)
    save_tsv(conf, confounds_out)
    save_tsv(sample_mask_table(keep, n_vol), sample_mask_out)
