"""BIDS ingestion: index a dataset with pybids, select runs, check stimuli and metadata.

Everything here runs at DAG construction (in the Snakefile) so that bad input stops the
workflow before any job starts, with a message that names the subject, run and file.

What is checked, in order:

1. names (:mod:`brainalign.ingest.names`): every selected BOLD file sits in
   ``sub-<label>/[ses-<label>/]func/`` and its name is ``key-value`` pairs with BIDS labels
   (letters and digits; ``run`` a whole number); folder and file labels agree. pybids' own
   parser is lenient (a folder ``sub-01;x`` is read as subject ``01``), so names are checked
   here before anything is read;
2. one file per (subject, session, task, run), and, for now, run labels distinct across a
   subject's sessions (derivative names carry task and run only);
3. per run: the sidecar metadata (inheritance principle; invalid JSON named), the NIfTI header
   and its size (a truncated file is caught without reading the voxels), the events.tsv
   found by pybids' inheritance lookup;
4. one TR across runs, one voxel grid per subject;
5. every events.tsv (:mod:`brainalign.ingest.events`): columns, field counts, numeric finite
   onsets and durations, durations >= 0, distinct onsets, events inside the run,
   ``stim_file`` inside ``stimuli/``, existing and readable by PIL (``.txt``: UTF-8 text, not
   empty; with ``bids.text_column`` the texts are in events.tsv and ``stim_file`` names no
   file); all texts or all images.

EEG/MEG recordings (``bids.modalities``: ``auto`` finds whichever each subject has) are
selected and checked by :func:`brainalign.meeg.bids.find_meeg_runs` (names, one recording per
run, header against sidecar sampling rate, events.tsv by inheritance) and their events by
:func:`brainalign.ingest.events.check_meeg_events`; the index's stimuli are the union of both
modalities' stimuli.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError
from brainalign.ingest.checks import load_nifti_checked, read_json_file
from brainalign.ingest.events import (
    REQUIRED_EVENT_COLUMNS,
    TEXT_SUFFIX,
    EventsFinder,
    check_events,
    check_meeg_events,
    event_texts,
)
from brainalign.ingest.names import (
    BOLD_EXTENSIONS,
    LABEL,
    bold_name_problems,
    check_unique_runs,
    raise_name_problems,
)

__all__ = ["Run", "DatasetIndex", "index_dataset", "REQUIRED_EVENT_COLUMNS"]

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class Run:
    """One BOLD run selected for analysis.

    Attributes
    ----------
    subject, task, run : str
        BIDS entity labels (``run`` as written in the file name; "1" when the file name has
        no run entity).
    bold, events : str
        Absolute paths of the BOLD image and its events.tsv (the nearest one by the BIDS
        inheritance principle: per run, or shared from a higher level).
    t_r_s : float
        Repetition time (s) from the sidecar.
    shape : tuple of int
        BOLD image shape (x, y, z, n_volumes).
    session : str or None
        BIDS session label, None when the dataset has no sessions.
    """

    subject: str
    task: str
    run: str
    bold: str
    events: str
    t_r_s: float
    shape: tuple
    session: str | None = None

    @property
    def key(self) -> str:
        """``task-<task>_run-<run>``: the run's part of derivative file names."""
        return f"task-{self.task}_run-{self.run}"

    @property
    def where(self) -> str:
        """``sub-<subject> [ses-<session> ]task-<task>_run-<run>``, for messages."""
        ses = f" ses-{self.session}" if self.session else ""
        return f"sub-{self.subject}{ses} {self.key}"


@dataclass
class DatasetIndex:
    """The selected runs and stimuli of a BIDS dataset.

    Attributes
    ----------
    bids_dir : Path
    stimuli_dir : Path
    runs : list of Run
    stimuli : list of str
        Sorted unique ``stim_file`` values (relative to ``stimuli_dir``).
    """

    bids_dir: Path
    stimuli_dir: Path
    runs: list
    stimuli: list
    #: EEG/MEG recordings (:class:`brainalign.meeg.bids.MEEGRun`), empty without M/EEG
    meeg_runs: list = field(default_factory=list)
    #: stimulus -> text with ``bids.text_column`` (then ``stimuli`` are identifiers, not
    #: files); empty otherwise
    texts: dict = field(default_factory=dict)

    @property
    def stimulus_kind(self) -> str:
        """``text`` (a text column, or ``.txt`` stimulus files) or ``image``."""
        if self.texts or (self.stimuli and all(s.lower().endswith(TEXT_SUFFIX)
                                               for s in self.stimuli)):
            return "text"
        return "image"

    @property
    def stimulus_files(self) -> list[str]:
        """Absolute paths of the stimulus files (none when the texts are in events.tsv)."""
        if self.texts:
            return []
        return [str(self.stimuli_dir / s) for s in self.stimuli]

    @property
    def meeg_subjects(self) -> list[str]:
        """Sorted subject labels that have at least one selected EEG/MEG recording."""
        return sorted({r.subject for r in self.meeg_runs})

    def meeg_runs_table(self) -> pd.DataFrame:
        """One row per EEG/MEG recording.

        Columns: subject, session, task, run, datatype, raw, events, sfreq, n_times.
        """
        columns = ["subject", "session", "task", "run", "datatype", "raw", "events", "sfreq",
                   "n_times"]
        return pd.DataFrame([{c: getattr(r, c) for c in columns} for r in self.meeg_runs],
                            columns=columns)

    @property
    def subjects(self) -> list[str]:
        """Sorted subject labels that have at least one selected run."""
        return sorted({r.subject for r in self.runs})

    def runs_of(self, subject: str) -> list[Run]:
        """Runs of one subject, in session/task/run order."""
        return [r for r in self.runs if r.subject == subject]

    def run(self, subject: str, key: str) -> Run:
        """The run of ``subject`` whose :attr:`Run.key` is ``key``."""
        for r in self.runs_of(subject):
            if r.key == key:
                return r
        raise KeyError(f"sub-{subject} has no run {key}")

    def runs_table(self) -> pd.DataFrame:
        """One row per run: subject, session, task, run, bold, events, t_r_s, n_volumes, shape."""
        columns = ["subject", "session", "task", "run", "bold", "events", "t_r_s", "n_volumes",
                   "shape"]
        return pd.DataFrame(
            [
                {
                    "subject": r.subject,
                    "session": r.session,
                    "task": r.task,
                    "run": r.run,
                    "bold": r.bold,
                    "events": r.events,
                    "t_r_s": r.t_r_s,
                    "n_volumes": r.shape[3],
                    "shape": "x".join(map(str, r.shape[:3])),
                }
                for r in self.runs
            ],
            columns=columns,
        )


def _label(subject: str, run: Run | None = None, path: str | None = None) -> str:
    where = run.where if run else f"sub-{subject}"
    return where + (f" ({path})" if path else "")


def index_dataset(
    bids_dir: str | Path,
    *,
    tasks: Sequence[str],
    participant_label: Sequence[str] = (),
    stimuli_dir: str | Path | None = None,
    sessions: Sequence[str] = (),
    modalities: str | Sequence[str] = "auto",
    stim_column: str = "stim_file",
    text_column: str | None = None,
) -> DatasetIndex:
    """Index a BIDS dataset and check everything the workflow relies on.

    Parameters
    ----------
    bids_dir : str or Path
        Raw BIDS dataset.
    tasks : sequence of str
        Task labels to select.
    participant_label : sequence of str
        Subjects to select (empty: all).
    stimuli_dir : str or Path, optional
        Folder that ``stim_file`` paths are relative to (default ``<bids_dir>/stimuli``).
    sessions : sequence of str
        Session labels to select (empty: all, and runs without a session).
    modalities : str or sequence of str
        ``auto``: BOLD runs and EEG/MEG recordings, whichever each subject has (a subject
        needs at least one); or a list of ``fmri``, ``eeg``, ``meg``: only those (each must be
        found for at least one subject).
    stim_column : str
        events.tsv column naming the stimulus of an EEG/MEG event (``meeg.stim_column``).
    text_column : str, optional
        ``bids.text_column``: the events.tsv column holding each stimulus's text; ``stim_file``
        (``stim_column`` for EEG/MEG) then identifies the stimulus and names no file.

    Returns
    -------
    index : DatasetIndex

    Raises
    ------
    BIDSInputError
        Missing dataset, subjects or tasks; invalid or duplicated entity labels; run labels
        repeated across a subject's sessions; a run without events.tsv or RepetitionTime; an
        unreadable sidecar or truncated image; an events.tsv that is empty, ragged, lacks the
        required columns, has missing, non-numeric or negative timings or duplicate onsets, or
        names a stimulus file outside ``stimuli/``, missing or unreadable; runs whose TR or
        voxel grid disagree. For EEG/MEG recordings, the checks of
        :func:`brainalign.meeg.bids.find_meeg_runs` and
        :func:`brainalign.ingest.events.check_meeg_events`. A modality listed in
        ``modalities`` that no selected subject has; a subject with none of them.
    """
    from bids import BIDSLayout, BIDSLayoutIndexer

    bids_dir = Path(bids_dir).resolve()
    description = bids_dir / "dataset_description.json"
    if not description.is_file():
        raise BIDSInputError(
            f"No BIDS dataset at {bids_dir}: expected a dataset_description.json there. "
            "Set bids.bids_dir in the config (run `make demo` to create the demo dataset)."
        )
    read_json_file(description, what="dataset description")
    stimuli_dir = Path(stimuli_dir).resolve() if stimuli_dir else bids_dir / "stimuli"
    # Metadata indexing is pybids' slowest part (7.0 s of a 50-subject x 8-run layout against
    # 2.8 s without it, measured 2026-11-28); the workflow needs only RepetitionTime, which
    # sidecar_metadata() resolves with the BIDS inheritance principle.
    layout = _CachedLayout(BIDSLayout(bids_dir, validate=False, derivatives=False,
                                      indexer=BIDSLayoutIndexer(index_metadata=False)))
    # subjects = valid sub-<label> folders (pybids' get_subjects() loads every file's entities:
    # 40% of the indexing time; invalid folder names are reported below when selected)
    all_subjects = sorted(p.name[4:] for p in bids_dir.glob("sub-*")
                          if p.is_dir() and LABEL.fullmatch(p.name[4:]))
    subjects = list(participant_label) or all_subjects
    missing = sorted(set(subjects) - set(all_subjects))
    if missing:
        invalid = sorted(p.name for p in bids_dir.glob("sub-*")
                         if p.is_dir() and not LABEL.fullmatch(p.name[4:]))
        note = (f" (folders with invalid labels, not counted: {invalid}: rename them to "
                "sub-<letters and digits>)" if invalid else "")
        raise BIDSInputError(
            f"Subject(s) {missing} from bids.participant_label are not in {bids_dir}: expected "
            f"labels from {all_subjects}{note}. Fix bids.participant_label."
        )
    wanted = _modalities(modalities)
    sidecars = _SidecarCache(layout, bids_dir)
    events_finder = EventsFinder(layout, bids_dir, tasks)
    meeg_runs = []
    meeg_types = [m for m in ("eeg", "meg") if m in wanted]
    if meeg_types:
        from brainalign.meeg.bids import find_meeg_runs

        meeg_runs = find_meeg_runs(bids_dir, tasks=tasks, subjects=subjects, sessions=sessions,
                                   datatypes=meeg_types, layout=layout, sidecars=sidecars,
                                   events_finder=events_finder)
    selected = []
    if "fmri" in wanted:
        selected = _select_bold_files(layout, bids_dir, tasks=tasks, subjects=subjects,
                                      participant_label=participant_label, sessions=sessions)
    found = {"fmri"} if selected else set()
    found |= {r.datatype for r in meeg_runs}
    if modalities == "auto":
        # auto: the modalities the selected subjects have; none -> those of the dataset (any
        # task or subject; file names only), for the messages below (fMRI's when none)
        used = found or _present(layout, wanted, tasks=None) or {"fmri"}
    else:
        used = set(wanted)
        for m in _ordered(used - found):
            found = found | _present(layout, list(_MODALITY_TEXT), tasks=tasks)
            raise BIDSInputError(
                f"bids.modalities lists {m!r}, but no selected subject has "
                f"{_MODALITY_TEXT[m]} for task(s) {list(tasks)} in {bids_dir} (found: "
                f"{_ordered(found) or 'nothing'}). Remove {m!r} from bids.modalities (or set it "
                "to auto), or check bids.tasks and bids.participant_label."
            )
    _check_selection(layout, bids_dir, tasks=tasks, subjects=subjects, sessions=sessions,
                     used=used, selected=selected, meeg_runs=meeg_runs)
    check_unique_runs(selected)

    runs: list[Run] = []
    for path, ents in selected:
        run_label = ents.get("run", "1")  # a run without a run- entity is named run-1
        r_tmp = Run(ents["sub"], ents["task"], run_label, path, "", 0.0, (), ents.get("ses"))
        where = r_tmp.where
        meta, sources = sidecars.metadata(path, where=where)
        if "RepetitionTime" not in meta:
            raise BIDSInputError(
                f"{_label(r_tmp.subject, r_tmp, path)}: no RepetitionTime in the JSON sidecar. "
                "Add it to the run's (or the task's) _bold.json."
            )
        tr = _repetition_time(meta["RepetitionTime"], where=where,
                              source=sources["RepetitionTime"])
        img = load_nifti_checked(path, where=where, what="BOLD image")
        if img.ndim != 4:
            raise BIDSInputError(
                f"{_label(r_tmp.subject, r_tmp, path)}: expected a 4D image, got shape "
                f"{img.shape}."
            )
        header_tr = float(img.header.get_zooms()[3])
        if header_tr > 0 and not np.isclose(header_tr, tr, rtol=1e-3):
            raise BIDSInputError(
                f"{_label(r_tmp.subject, r_tmp, path)}: RepetitionTime {tr} s in the sidecar "
                f"disagrees with the NIfTI header's {header_tr} s. Fix the header or sidecar."
            )
        events = events_finder.find(path, ents, where=where)
        runs.append(Run(ents["sub"], ents["task"], run_label, path, events, tr,
                        tuple(img.shape), ents.get("ses")))
    stimuli: set[str] = set()
    if runs:
        _check_consistency(runs)
        stimuli.update(check_events(runs, stimuli_dir, text_column=text_column))
    if meeg_runs:
        stimuli.update(check_meeg_events(meeg_runs, stimuli_dir, stim_column=stim_column,
                                         text_column=text_column))
    texts: dict[str, str] = {}
    if text_column:
        texts = event_texts(runs, text_column=text_column)
        texts.update(event_texts(meeg_runs, text_column=text_column, stim_column=stim_column))
    else:
        _check_one_stimulus_kind(sorted(stimuli), stimuli_dir)
    logger.info(
        "indexed %d BOLD runs and %d EEG/MEG recordings of %d subjects, %d stimuli",
        len(runs), len(meeg_runs), len(subjects), len(stimuli)
    )
    return DatasetIndex(bids_dir=bids_dir, stimuli_dir=stimuli_dir, runs=runs,
                        stimuli=sorted(stimuli), meeg_runs=meeg_runs, texts=texts)


def _check_one_stimulus_kind(stimuli: list[str], stimuli_dir: Path) -> None:
    """Texts (``.txt``) and images are not mixed: every model runs over every stimulus."""
    texts = [s for s in stimuli if s.lower().endswith(TEXT_SUFFIX)]
    if texts and len(texts) < len(stimuli):
        images = [s for s in stimuli if not s.lower().endswith(TEXT_SUFFIX)]
        raise BIDSInputError(
            f"The selected events mix text and image stimuli in {stimuli_dir}: expected one "
            f"kind (every model runs over every stimulus), got {len(texts)} .txt file(s) (e.g. "
            f"{texts[0]!r}) and {len(images)} other(s) (e.g. {images[0]!r}). Analyse them "
            "separately (bids.tasks selects the runs)."
        )


_MODALITY_TEXT = {"fmri": "a BOLD run", "eeg": "an EEG recording", "meg": "an MEG recording"}


def _present(layout, modalities: Sequence[str], *, tasks: Sequence[str] | None) -> set[str]:
    """The modalities with data files in the dataset (for ``tasks``, or any task).

    From file names only (nothing is read), for messages and selection.
    """
    filters = {"task": list(tasks)} if tasks else {}
    suffix = {"fmri": ("bold", "func"), "eeg": ("eeg", "eeg"), "meg": ("meg", "meg")}
    return {m for m in modalities
            if layout.get(suffix=suffix[m][0], datatype=suffix[m][1], return_type="filename",
                          **filters)}


def _ordered(modalities) -> list[str]:
    """Modalities in the order fmri, eeg, meg."""
    return [m for m in _MODALITY_TEXT if m in modalities]


def _modalities(modalities: str | Sequence[str]) -> list[str]:
    """The modalities to look for: every one for ``auto``, else the list, checked."""
    if isinstance(modalities, str):
        if modalities == "auto":
            return list(_MODALITY_TEXT)
        modalities = [modalities]
    unknown = [m for m in modalities if m not in _MODALITY_TEXT]
    if unknown or not modalities:
        raise BIDSInputError(
            f"Invalid bids.modalities {list(modalities)!r}: expected auto or a non-empty list "
            f"of {list(_MODALITY_TEXT)}. Fix bids.modalities."
        )
    return [m for m in _MODALITY_TEXT if m in modalities]


def _check_selection(layout, bids_dir: Path, *, tasks, subjects, sessions, used: set,
                     selected: list, meeg_runs: list) -> None:
    """Every task has data in a used modality; every subject has at least one run.

    With fMRI only, the messages are the fMRI branch's own (BOLD runs).
    """
    task_found = {ents["task"] for _, ents in selected} | {r.task for r in meeg_runs}
    absent = sorted(set(tasks) - task_found)
    fmri_only = used == {"fmri"}
    if absent:
        existing = set(layout.get_tasks(suffix="bold")) if "fmri" in used else set()
        for m in _ordered(used - {"fmri"}):
            existing |= set(layout.get_tasks(suffix=m, datatype=m))
        what = "BOLD run" if fmri_only else " or ".join(
            _MODALITY_TEXT[m].split(" ", 1)[1] for m in _ordered(used))
        raise BIDSInputError(
            f"Task(s) {absent} from bids.tasks have no {what} in {bids_dir} (for the selected "
            f"subjects): expected tasks from {sorted(existing)}. Fix bids.tasks."
        )
    have = {ents["sub"] for _, ents in selected} | {r.subject for r in meeg_runs}
    for sub in sorted(subjects):
        if sub in have:
            continue
        ses = f" in session(s) {list(sessions)}" if sessions else ""
        if fmri_only:
            raise BIDSInputError(
                f"sub-{sub} has no BOLD run for task(s) {list(tasks)}{ses} in {bids_dir}: "
                f"expected sub-{sub}/func/sub-{sub}_task-<task>_bold.nii.gz. Check bids.tasks, "
                "or drop the subject from bids.participant_label."
            )
        expected = {"fmri": f"sub-{sub}/func/sub-{sub}_task-<task>_bold.nii.gz",
                    "eeg": f"sub-{sub}/eeg/sub-{sub}_task-<task>_eeg.<vhdr|edf|bdf|set|fif>",
                    "meg": f"sub-{sub}/meg/sub-{sub}_task-<task>_meg.fif"}
        raise BIDSInputError(
            f"sub-{sub} has no "
            f"{' and no '.join(_MODALITY_TEXT[m].split(' ', 1)[1] for m in _ordered(used))} "
            f"for task(s) {list(tasks)}{ses} in {bids_dir}: expected "
            f"{' or '.join(expected[m] for m in _ordered(used))}. Check bids.tasks and "
            "bids.modalities, or drop the subject from bids.participant_label."
        )


class _CachedLayout:
    """A read-only view of a ``BIDSLayout`` whose entity table and file queries are cached.

    pybids re-reads the entity table on every ``get`` (its own "TODO: memoize results"; ~60 ms
    on a 400-run layout) and builds each query anew (~30 ms), and ``get_nearest`` does both
    per call. The layout does not change while it is indexed here, so both are cached, and
    pybids' ``get_nearest`` runs on this view: one query per subject and task instead of one
    per run.
    """

    def __init__(self, layout):
        self._layout = layout
        self._entities: dict = {}
        self._queries: dict = {}

    def __getattr__(self, name):
        return getattr(self._layout, name)

    def get_entities(self, scope="all", metadata=None):
        """``BIDSLayout.get_entities``, cached."""
        key = (repr(scope), metadata)
        if key not in self._entities:
            self._entities[key] = self._layout.get_entities(scope=scope, metadata=metadata)
        return self._entities[key]

    def get(self, return_type="object", **filters):
        """``BIDSLayout.get``, cached (on this view, whose entity table is cached too)."""
        from bids import BIDSLayout

        key = (return_type, repr(sorted(filters.items(), key=lambda kv: kv[0])))
        if key not in self._queries:
            self._queries[key] = BIDSLayout.get(self, return_type=return_type, **filters)
        return list(self._queries[key])

    def get_nearest(self, path, **kwargs):
        """``BIDSLayout.get_nearest``, run on this cached view."""
        from bids import BIDSLayout

        return BIDSLayout.get_nearest(self, path, **kwargs)


def _select_bold_files(layout, bids_dir: Path, *, tasks: Sequence[str], subjects: Sequence[str],
                       participant_label: Sequence[str],
                       sessions: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """The selected BOLD files, with their entities, after their names are checked.

    One pybids query for every subject (a query per subject costs ~0.1 s each). pybids parses
    names leniently, so each name is checked against BIDS here; a file whose name does not
    parse counts as selected when pybids' reading of it would be.
    """
    files = layout.get(task=list(tasks), suffix="bold", datatype="func",
                       extension=list(BOLD_EXTENSIONS), return_type="filename")
    wanted_subjects = set(subjects)
    selected, bad = [], []
    for path in sorted(files):
        rel = PurePosixPath(Path(path).relative_to(bids_dir).as_posix())
        ents, problems = bold_name_problems(rel)
        if problems:
            lenient = layout.parse_file_entities(path)
            in_selection = (not participant_label
                            or str(lenient.get("subject")) in wanted_subjects)
            if in_selection:
                bad.append((str(rel), problems))
            continue
        if ents["sub"] not in wanted_subjects or ents["task"] not in tasks:
            continue
        if sessions and ents.get("ses") not in sessions:
            continue
        selected.append((path, ents))
    if bad:
        raise_name_problems(bids_dir, bad)
    selected.sort(key=lambda item: (item[1]["sub"], item[1].get("ses") or "", item[1]["task"],
                                    int(item[1].get("run", "1")), item[0]))
    return selected


def _repetition_time(value, *, where: str, source: str) -> float:
    try:
        tr = float(value)
    except (TypeError, ValueError):
        tr = math.nan
    if isinstance(value, bool) or not math.isfinite(tr) or tr <= 0:
        raise BIDSInputError(
            f"Invalid RepetitionTime for {where}: expected a positive number of seconds, got "
            f"{value!r} (from {source}). Fix the sidecar."
        )
    return tr


class _SidecarCache:
    """JSON sidecar metadata by the BIDS inheritance principle, with cached directory scans.

    A sidecar applies to a data file when it has the same suffix and its entities are a subset
    of the file's; sidecars nearer the file (deeper folders, then more entities) override.
    """

    def __init__(self, layout, root: Path):
        self.layout = layout
        self.root = root
        self._dirs: dict[Path, list[tuple[dict, Path]]] = {}
        self._json: dict[Path, dict] = {}

    def _jsons(self, folder: Path) -> list[tuple[dict, Path]]:
        if folder not in self._dirs:
            found = []
            for p in sorted(folder.glob("*.json")):
                ent = self.layout.parse_file_entities(str(p))
                found.append((ent, p))
            self._dirs[folder] = found
        return self._dirs[folder]

    def _read(self, path: Path, where: str) -> dict:
        if path not in self._json:
            self._json[path] = read_json_file(path, what="JSON sidecar", where=where)
        return self._json[path]

    def metadata(self, path: str, *, where: str) -> tuple[dict, dict[str, str]]:
        """Merged sidecar metadata of one data file, and the sidecar each key came from."""
        target = self.layout.parse_file_entities(path)
        keys = {k: v for k, v in target.items() if k not in ("extension",)}
        rel = Path(path).parent.relative_to(self.root)
        folders = [self.root] + [self.root.joinpath(*rel.parts[: i + 1])
                                 for i in range(len(rel.parts))]
        applicable = []
        for depth, folder in enumerate(folders):
            for ent, p in self._jsons(folder):
                ent = {k: v for k, v in ent.items() if k != "extension"}
                if ent.get("suffix") == keys.get("suffix") and all(
                    keys.get(k) == v for k, v in ent.items()
                ):
                    applicable.append((depth, len(ent), p))
        merged: dict = {}
        sources: dict[str, str] = {}
        for _, _, p in sorted(applicable):
            obj = self._read(p, where)
            merged.update(obj)
            sources.update(dict.fromkeys(obj, str(p)))
        return merged, sources


def _check_consistency(runs: list[Run]) -> None:
    ref = runs[0]
    for r in runs[1:]:
        if not np.isclose(r.t_r_s, ref.t_r_s):
            raise BIDSInputError(
                f"{_label(r.subject, r, r.bold)}: TR {r.t_r_s} s differs from "
                f"{ref.where}'s {ref.t_r_s} s: expected one TR across selected "
                "runs. Select runs with the same TR (bids.tasks / bids.participant_label)."
            )
        if r.subject == ref.subject and r.shape[:3] != ref.shape[:3]:
            raise BIDSInputError(
                f"{_label(r.subject, r, r.bold)}: voxel grid {r.shape[:3]} differs from "
                f"{ref.key}'s {ref.shape[:3]}: expected one grid per subject."
            )
        if r.subject != ref.subject:
            ref = r


# --- events -----------------------------------------------------------------------------------


