"""fMRIPrep derivatives: the file names fMRIPrep writes for a run, and finding them with pybids.

:func:`fmriprep_run_files` gives the paths fMRIPrep writes (used when the workflow runs
fMRIPrep itself). :func:`find_fmriprep_runs` indexes an existing derivatives folder with
pybids and finds, per selected raw run, the preprocessed BOLD in the configured space, its
brain mask and the confounds table with its JSON sidecar. Runs are matched by entity value,
not by file name, so a raw ``run-01`` finds fMRIPrep's ``run-1`` (some fMRIPrep versions drop
the zero padding). Anything missing stops with the run, the file expected, the spaces that
are there and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from brainalign.errors import BIDSInputError

__all__ = [
    "RUN_FILE_KEYS",
    "fmriprep_run_files",
    "split_space",
    "fmriprep_layout",
    "find_fmriprep_run",
    "find_fmriprep_runs",
    "fmriprep_run_inputs",
]

#: Keys of the per-run file dictionaries (:func:`fmriprep_run_files`, :func:`find_fmriprep_run`).
RUN_FILE_KEYS = ("bold", "mask", "confounds", "confounds_json")

#: Folders of an fMRIPrep tree that hold no run files (reports, logs, FreeSurfer, work).
_IGNORED = re.compile(r"/(figures|log|logs|sourcedata|freesurfer|work|\.[^/]*)(/|$)")


def split_space(space: str) -> tuple[str, str | None]:
    """Split an fMRIPrep output space into template and resolution.

    Parameters
    ----------
    space : str
        As given to fMRIPrep's ``--output-spaces``: ``MNI152NLin2009cAsym`` or
        ``MNI152NLin2009cAsym:res-2``.

    Returns
    -------
    space : str
        The ``space-`` entity.
    res : str or None
        The ``res-`` entity, None when the space names no resolution.
    """
    name, _, modifier = space.partition(":")
    res = modifier.removeprefix("res-") if modifier.startswith("res-") else None
    return name, res


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


def fmriprep_layout(root: str | Path, subjects: Sequence[str] | None = None):
    """Index an fMRIPrep derivatives folder with pybids.

    Parameters
    ----------
    root : str or Path
        The folder fMRIPrep wrote (``<output_dir>`` of fMRIPrep >= 21, or its ``fmriprep/``
        subfolder for older versions); it must hold a ``dataset_description.json``.
    subjects : sequence of str, optional
        Index only these subjects' folders (a large study indexes in a fraction of the time).

    Returns
    -------
    layout : bids.BIDSLayout
        Indexed as a derivative dataset (no validation, no metadata; reports, logs and
        FreeSurfer outputs left out).

    Raises
    ------
    BIDSInputError
        The folder does not exist or holds no (valid) ``dataset_description.json``.
    """
    from bids import BIDSLayout, BIDSLayoutIndexer

    root = Path(root)
    fix = ("Set fmri.fmriprep.derivatives to the folder fMRIPrep wrote (the one with "
           "dataset_description.json and sub-*/func/), or null to run fMRIPrep in the workflow.")
    if not root.is_dir():
        raise BIDSInputError(
            f"fMRIPrep derivatives folder {root} (config key 'fmri.fmriprep.derivatives') does "
            f"not exist: expected a folder of fMRIPrep outputs. {fix}")
    desc_file = root / "dataset_description.json"
    if not desc_file.is_file():
        inner = [p.parent.name for p in root.glob("*/dataset_description.json")]
        hint = f" (found one in subfolder(s) {sorted(inner)})" if inner else ""
        raise BIDSInputError(
            f"No dataset_description.json in the fMRIPrep derivatives folder {root} (config key "
            f"'fmri.fmriprep.derivatives'){hint}: expected the file fMRIPrep writes at the top "
            f"of its output. {fix}")
    try:
        desc = json.loads(desc_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BIDSInputError(
            f"Invalid JSON in {desc_file}: {exc}. Expected fMRIPrep's dataset description "
            "(check it with `python -m json.tool`).") from exc
    if not isinstance(desc, dict) or not (desc.get("GeneratedBy")
                                          or desc.get("PipelineDescription")):
        raise BIDSInputError(
            f"{desc_file} does not describe a derivative dataset: expected 'GeneratedBy' (or "
            f"'PipelineDescription') naming fMRIPrep, got "
            f"{sorted(desc) if isinstance(desc, dict) else desc!r}. fMRIPrep writes it; for "
            "derivatives made another way add '\"GeneratedBy\": [{\"Name\": \"fMRIPrep\"}]' "
            f"(pybids indexes a derivative dataset only with it). {fix}")
    ignore = [_IGNORED]
    if subjects is not None:
        keep = "|".join(re.escape(sub) for sub in sorted(set(subjects)))
        # pybids matches "/" + the path relative to the root
        ignore.append(re.compile(rf"^/sub-(?!(?:{keep})(?:/|$))"))
    indexer = BIDSLayoutIndexer(validate=False, index_metadata=False, ignore=ignore)
    return BIDSLayout(root, is_derivative=True, indexer=indexer)


def _entities(subject: str, task: str, run: str | None, session: str | None) -> dict:
    from bids.layout import Query

    run_value = Query.NONE if run is None else (int(run) if run.isdigit() else run)
    return {"subject": subject, "task": task, "run": run_value,
            "session": session if session else Query.NONE}


def _spaces(files: Iterable) -> list[str]:
    """``space[:res-N]`` of each file, sorted; ``(no space entity)`` for native-space files."""
    out = set()
    for f in files:
        ent = f.get_entities()
        sp = ent.get("space", "(no space entity)")
        out.add(sp + (f":res-{ent['res']}" if ent.get("res") else ""))
    return sorted(out)


def find_fmriprep_run(
    layout,
    *,
    subject: str,
    task: str,
    run: str | None,
    space: str,
    session: str | None = None,
    where: str = "",
) -> dict[str, Path]:
    """Find one run's fMRIPrep files in an indexed derivatives folder.

    Parameters
    ----------
    layout : bids.BIDSLayout
        From :func:`fmriprep_layout`.
    subject, task : str
        BIDS labels.
    run : str or None
        Run label of the raw file (``01`` matches fMRIPrep's ``run-1``); None for a raw file
        without a run entity.
    space : str
        ``fmri.fmriprep.space``: ``MNI152NLin2009cAsym`` or ``MNI152NLin2009cAsym:res-2``.
        Without a resolution, a space with exactly one ``res-`` in the folder is used.
    session : str, optional
        Session label.
    where : str
        The run, for messages.

    Returns
    -------
    files : dict of str to Path
        :data:`RUN_FILE_KEYS`: ``bold`` (``desc-preproc_bold``), ``mask`` (``desc-brain_mask``
        of the same space and resolution), ``confounds`` and ``confounds_json``
        (``desc-confounds_timeseries``; the JSON is None when absent: nilearn needs it only
        for anatomical CompCor, and says so in the job).

    Raises
    ------
    BIDSInputError
        A file is missing (with the spaces that are there), or several files match.
    """
    where = where or f"sub-{subject} task-{task}" + (f"_run-{run}" if run else "")
    name, res = split_space(space)
    ent = _entities(subject, task, run, session)
    nii = [".nii.gz", ".nii"]
    root = Path(layout.root)
    expected = fmriprep_run_files(root, subject, task, run, name, session=session, res=res)
    fix = ("Set fmri.fmriprep.space to one of the available spaces, or rerun fMRIPrep with "
           f"--output-spaces {space} (or set fmri.fmriprep.derivatives: null to run it in the "
           "workflow).")
    all_bold = layout.get(**ent, desc="preproc", suffix="bold", extension=nii)
    bold = [f for f in all_bold if f.get_entities().get("space") == name]
    if res is not None:
        bold = [f for f in bold if str(f.get_entities().get("res")) == res]
    if not bold:
        spaces = _spaces(all_bold) or "none (no desc-preproc_bold at all: was it preprocessed?)"
        raise BIDSInputError(
            f"{where}: no preprocessed BOLD in space '{space}' in the fMRIPrep derivatives "
            f"{root}: expected {expected['bold'].relative_to(root)} (or with a res- entity). "
            f"Available spaces for this run: {spaces}. "
            f"{fix}")
    if len(bold) > 1:
        raise BIDSInputError(
            f"{where}: {len(bold)} preprocessed BOLD files match space '{space}' in {root}: "
            f"{sorted(Path(f.path).name for f in bold)}; expected exactly one. Name the "
            f"resolution in fmri.fmriprep.space, e.g. '{_spaces(bold)[0]}'.")
    found = bold[0]
    b_ent = found.get_entities()
    b_res = b_ent.get("res")
    masks = [f for f in layout.get(**ent, desc="brain", suffix="mask", extension=nii)
             if f.get_entities().get("space") == name and f.get_entities().get("res") == b_res]
    if len(masks) != 1:
        raise BIDSInputError(
            f"{where}: {'no' if not masks else len(masks)} brain mask(s) for "
            f"{Path(found.path).name} in {root}: expected exactly one "
            f"{Path(found.path).name.replace('desc-preproc_bold', 'desc-brain_mask')}"
            + (f", got {sorted(Path(m.path).name for m in masks)}" if masks else "")
            + ". Rerun fMRIPrep for this run (its outputs are incomplete).")
    out = {"bold": Path(found.path), "mask": Path(masks[0].path)}
    for key, ext in (("confounds", ".tsv"), ("confounds_json", ".json")):
        conf = layout.get(**ent, desc="confounds", suffix=["timeseries", "regressors"],
                          extension=ext)
        conf = [f for f in conf if Path(f.path).parent == out["bold"].parent]
        if key == "confounds_json" and not conf:
            # nilearn needs the sidecar only for anatomical CompCor (its own error says so)
            out[key] = None
            continue
        if len(conf) != 1:
            raise BIDSInputError(
                f"{where}: {'no' if not conf else len(conf)} confounds file(s) next to "
                f"{out['bold'].name} in {out['bold'].parent}: expected exactly one "
                f"{expected[key].name}"
                + (f", got {sorted(Path(c.path).name for c in conf)}" if conf else "")
                + ". Rerun fMRIPrep for this run (its outputs are incomplete).")
        out[key] = Path(conf[0].path)
    return out


def find_fmriprep_runs(root: str | Path, runs: Sequence, space: str) -> dict[tuple, dict]:
    """Find every selected run's fMRIPrep files; report every missing one at once.

    Parameters
    ----------
    root : str or Path
        The fMRIPrep derivatives folder (``fmri.fmriprep.derivatives``).
    runs : sequence of brainalign.ingest.bids.Run
        The selected raw runs.
    space : str
        ``fmri.fmriprep.space``.

    Returns
    -------
    files : dict
        ``(subject, run.key) -> {bold, mask, confounds, confounds_json}`` (absolute paths, str).

    Raises
    ------
    BIDSInputError
        The folder is not an fMRIPrep derivative dataset, or some runs lack files (each named,
        first five in full).
    """
    layout = fmriprep_layout(root, subjects=[r.subject for r in runs])
    out, problems = {}, []
    for r in runs:
        raw_run = r.run if f"_run-{r.run}_" in Path(r.bold).name else None
        try:
            files = find_fmriprep_run(layout, subject=r.subject, task=r.task, run=raw_run,
                                      space=space, session=r.session, where=r.where)
        except BIDSInputError as exc:
            problems.append(str(exc))
            continue
        out[(r.subject, r.key)] = {k: None if v is None else str(v) for k, v in files.items()}
    if problems:
        more = f" (and {len(problems) - 5} more runs)" if len(problems) > 5 else ""
        raise BIDSInputError(
            f"fMRIPrep derivatives (fmri.fmriprep.derivatives: {root}) lack files for "
            f"{len(problems)} of {len(runs)} runs{more}:\n" + "\n".join(problems[:5]))
    return out


def fmriprep_run_inputs(runs: Sequence, root: str | Path, space: str, *,
                        existing: bool) -> dict[tuple, dict]:
    """Per selected run, the fMRIPrep files the import step reads.

    Parameters
    ----------
    runs : sequence of brainalign.ingest.bids.Run
        The selected raw runs.
    root : str or Path
        The fMRIPrep derivatives folder (``fmriprep_root()`` in ``rules/common.smk``).
    space : str
        ``fmri.fmriprep.space``.
    existing : bool
        True: ``root`` holds existing derivatives (``fmri.fmriprep.derivatives``), found with
        pybids and checked now (:func:`find_fmriprep_runs`). False: the workflow's fMRIPrep
        rule writes them, at the paths of :func:`fmriprep_run_files`.

    Returns
    -------
    files : dict
        ``(subject, run.key) -> {bold, mask, confounds, confounds_json}`` (str paths).
    """
    if existing:
        return find_fmriprep_runs(root, runs, space)
    name, res = split_space(space)
    out = {}
    for r in runs:
        raw_run = r.run if f"_run-{r.run}_" in Path(r.bold).name else None
        files = fmriprep_run_files(root, r.subject, r.task, raw_run, name, session=r.session,
                                   res=res)
        out[(r.subject, r.key)] = {k: str(files[k]) for k in RUN_FILE_KEYS}
    return out
