"""Steps of the fMRI domain: preprocessing, single-trial GLM, per-stimulus ROI responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign import fmri
from brainalign.errors import BIDSInputError
from brainalign.fmri import masks as fmasks
from brainalign.ingest.checks import load_nifti_data
from brainalign.io import read_tsv, save_json, save_nifti, save_npz, save_tsv

__all__ = ["ROI_VOXEL_COLUMNS", "step_preprocess", "step_glm", "step_responses"]

logger = logging.getLogger(__name__)

#: Columns of the per-subject table of ROI voxels before and after masking.
ROI_VOXEL_COLUMNS = ["subject", "roi", "n_voxels_atlas", "n_voxels_analysed",
                     "n_voxels_removed", "removed_runs", "reason"]


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
        voxels it keeps and why it leaves others out.
    """
    import nibabel as nib

    img = load_nifti_data(bold, where=run or bold, what="BOLD image")
    rois = fmasks.roi_label_map(fmasks.atlas_on_grid(nib.load(dseg), img), read_tsv(labels),
                                roi_names)
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
    for name, c in counts.items():
        if c["in_mask"] < c["atlas"]:
            logger.warning("%s: ROI %s keeps %d of its %d voxels in this run's mask (%d outside "
                           "the mask, %d with NaN/inf values, %d with a constant signal)",
                           run or bold, name, c["in_mask"], c["atlas"], c["outside_mask"],
                           c["nonfinite"], c["constant"])
    how = {"data": f"data ({info['data_mask']})", "rois": "rois (union of the selected ROIs)",
           "file": f"file ({mask_file})"}[mask["method"]]
    save_nifti(preproc, bold_out)
    save_nifti(mask_img, mask_out)
    save_json({"Type": "Brain", "MaskMethod": how, "NumberOfVoxels": info["n_voxels"],
               "NonFiniteVoxels": n_bad, "ROIVoxels": counts}, mask_json_out)
    save_tsv(conf, confounds_out)


def step_glm(
    bold: str,
    mask: str,
    confounds: str,
    events: str,
    *,
    t_r_s: float,
    glm: Mapping,
    betas_out: str,
    trials_out: str,
) -> None:
    """Single-trial GLM of one run.

    Parameters
    ----------
    bold, mask, confounds, events : str
        Preprocessed run, its mask, its confounds and its events.tsv.
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
    betas = fmri.fit_single_trial_betas(data, design, cols, noise_model=glm["noise_model"])
    logger.info("%d trials, %d voxels, design %s", betas.shape[0], betas.shape[1], design.shape)
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
    roi_names: Sequence[str],
    out: str,
    voxels_out: str,
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
    roi_names : sequence of str
        ROIs to keep (empty: every label).
    out : str
        npz with ``responses``, ``half1``, ``half2`` (n_stimuli, n_voxels), ``roi``,
        ``noise_ceiling``, ``reliability`` (n_voxels,), ``stimuli`` and ``n_repeats``.
    voxels_out : str
        TSV with columns :data:`ROI_VOXEL_COLUMNS`, one row per ROI.
    """
    import json

    import nibabel as nib
    from nilearn.masking import apply_mask

    mask_imgs = [nib.load(m) for m in masks]
    mask = np.logical_and.reduce([np.asanyarray(m.dataobj) > 0 for m in mask_imgs])
    sidecars = [json.loads(Path(s).read_text()) for s in mask_sidecars]
    rois = fmasks.roi_label_map(fmasks.atlas_on_grid(nib.load(dseg), mask_imgs[0]),
                                read_tsv(labels), roi_names)
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
    for name in np.unique(roi):
        sel = roi == name
        logger.info("ROI %s: %d voxels, mean noise ceiling %.3f", name, sel.sum(), nc[sel].mean())
    save_npz(
        out,
        responses=mean,
        half1=h1,
        half2=h2,
        roi=roi,
        noise_ceiling=nc,
        reliability=rel,
        stimuli=np.array(stimuli_seen),
        n_repeats=n_rep,
    )
