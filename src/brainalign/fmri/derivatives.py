"""fMRIPrep derivatives: the file names fMRIPrep writes for a run, and reading them back."""

from __future__ import annotations

from pathlib import Path

__all__ = ["fmriprep_run_files"]


def fmriprep_run_files(
    root: str | Path,
    subject: str,
    task: str,
    run: str | None,
    space: str,
    *,
    session: str | None = None,
    res: str | None = None,
) -> dict[str, Path]:
    """Paths of the files fMRIPrep writes for one BOLD run (its documented output layout).

    Parameters
    ----------
    root : str or Path
        The fMRIPrep derivatives folder (holds ``sub-<label>/``).
    subject, task : str
        BIDS labels, without prefixes.
    run : str or None
        Run label as in the raw dataset (fMRIPrep keeps it, e.g. ``1`` or ``01``); None for a
        run without a ``run-`` entity.
    space : str
        Output space (``MNI152NLin2009cAsym``, ``T1w``, ...).
    session : str, optional
        Session label.
    res : str, optional
        Resolution label of the space (``res-2``), when fMRIPrep was asked for one.

    Returns
    -------
    files : dict of str to Path
        ``bold`` (``space-<space>_desc-preproc_bold.nii.gz``), ``bold_json``, ``mask``
        (``space-<space>_desc-brain_mask.nii.gz``), ``confounds``
        (``desc-confounds_timeseries.tsv``) and ``confounds_json``.
    """
    ses = f"_ses-{session}" if session else ""
    stem = f"sub-{subject}{ses}_task-{task}" + (f"_run-{run}" if run else "")
    func = Path(root) / f"sub-{subject}" / (f"ses-{session}" if session else "") / "func"
    sp = f"_space-{space}" + (f"_res-{res}" if res else "")
    return {
        "bold": func / f"{stem}{sp}_desc-preproc_bold.nii.gz",
        "bold_json": func / f"{stem}{sp}_desc-preproc_bold.json",
        "mask": func / f"{stem}{sp}_desc-brain_mask.nii.gz",
        "confounds": func / f"{stem}_desc-confounds_timeseries.tsv",
        "confounds_json": func / f"{stem}_desc-confounds_timeseries.json",
    }
