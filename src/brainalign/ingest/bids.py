"""BIDS ingestion: index a dataset with pybids, select runs, check stimuli and metadata.

Everything here runs at DAG construction (in the Snakefile) so that bad input stops the
workflow before any job starts, with a message that names the subject, run and file.

What is checked, in order:

1. names: every selected BOLD file sits in ``sub-<label>/[ses-<label>/]func/`` and its name is
   ``key-value`` pairs with BIDS labels (letters and digits; ``run`` a whole number); folder and
   file labels agree. pybids' own parser is lenient (a folder ``sub-01;x`` is read as subject
   ``01``), so names are checked here before anything is read;
2. one file per (subject, session, task, run), and, for now, run labels distinct across a
   subject's sessions (derivative names carry task and run only);
3. per run: the sidecar metadata (inheritance principle; invalid JSON named), the NIfTI header
   and its size (a truncated file is caught without reading the voxels), the events.tsv
   found by pybids' inheritance lookup;
4. one TR across runs, one voxel grid per subject;
5. every events.tsv: columns, field counts, numeric finite onsets and durations, durations
   >= 0, distinct onsets, events inside the run, ``stim_file`` inside ``stimuli/``, existing
   and readable by PIL.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError
from brainalign.ingest.checks import check_image_readable, load_nifti_checked, read_json_file

__all__ = ["Run", "DatasetIndex", "index_dataset", "REQUIRED_EVENT_COLUMNS"]

logger = logging.getLogger(__name__)

REQUIRED_EVENT_COLUMNS = ("onset", "duration", "stim_file")

#: A BIDS label: letters and digits only.
_LABEL = re.compile(r"[A-Za-z0-9]+")
#: A BIDS index (run, echo, ...): a non-negative integer.
_INDEX = re.compile(r"[0-9]+")
_INDEX_ENTITIES = frozenset({"run", "echo", "flip", "inv", "split", "chunk"})
_KEY = re.compile(r"[a-z]+")
_BOLD_EXTENSIONS = (".nii.gz", ".nii")
_MAX_LISTED = 10  # problems listed in one message


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


# --- names ------------------------------------------------------------------------------------


def _split_name(name: str, suffix: str, extensions: Sequence[str]) -> list[str] | None:
    """The ``key-value`` fields of ``<fields>_<suffix><ext>``, or None for another suffix/ext."""
    for ext in extensions:
        if name.endswith(f"_{suffix}{ext}"):
            return name[: -len(f"_{suffix}{ext}")].split("_")
    return None


def _name_entities(fields: list[str]) -> tuple[dict[str, str], list[str]]:
    """Entities of a file name's fields, and what BIDS would not accept in them."""
    ents: dict[str, str] = {}
    problems = []
    for field in fields:
        key, sep, value = field.partition("-")
        if not sep or not _KEY.fullmatch(key):
            problems.append(f"'{field}' is not a <key>-<label> pair")
        elif key in ents:
            problems.append(f"entity '{key}' appears twice")
        elif key in _INDEX_ENTITIES and not _INDEX.fullmatch(value):
            problems.append(f"{key} index {value!r} is not a non-negative whole number")
        elif key not in _INDEX_ENTITIES and not _LABEL.fullmatch(value):
            problems.append(f"{key} label {value!r} is not letters and digits only")
        ents.setdefault(key, value)
    return ents, problems


def _bold_name_problems(rel: PurePosixPath) -> tuple[dict[str, str], list[str]]:
    """Entities of a BOLD file (path relative to the dataset) and what BIDS would not accept.

    Expected: ``sub-<label>/[ses-<label>/]func/sub-<label>[_ses-<label>]_task-<label>
    [_<key>-<label>...][_run-<index>]_bold.nii[.gz]``, folder and file labels equal.
    """
    *folders, name = rel.parts
    problems = []
    fields = _split_name(name, "bold", _BOLD_EXTENSIONS) or []
    ents, name_problems = _name_entities(fields)
    problems += [f"file name: {p}" for p in name_problems]
    if not fields or fields[0].partition("-")[0] != "sub":
        problems.append("file name: does not start with sub-<label>")
    if "task" not in ents:
        problems.append("file name: has no task-<label>")
    folder_ents: dict[str, str] = {}
    folder_keys = set()  # sub/ses folders present, with a valid label or not
    shape_ok = len(folders) in (2, 3) and folders[-1] == "func"
    for folder, key in zip(folders[:-1], ("sub", "ses"), strict=False):
        prefix, sep, value = folder.partition("-")
        if prefix != key or not sep:
            shape_ok = False
            continue
        folder_keys.add(key)
        if _LABEL.fullmatch(value):
            folder_ents[key] = value
        else:
            problems.append(f"folder {folder!r}: {key} label {value!r} is not letters and "
                            "digits only")
    if not shape_ok:
        problems.append(f"folders {'/'.join(folders)!r}: expected sub-<label>/func/ or "
                        "sub-<label>/ses-<label>/func/")
    for key in ("sub", "ses"):
        if key in folder_ents and ents.get(key) not in (None, folder_ents[key]):
            problems.append(f"{key}-{ents[key]} in the file name but {key}-{folder_ents[key]} "
                            "in the folder name")
        elif key in folder_ents and key not in ents:
            problems.append(f"file name lacks the folder's {key}-{folder_ents[key]}")
        elif key in ents and key not in folder_keys and shape_ok:
            problems.append(f"{key}-{ents[key]} in the file name but no {key}-{ents[key]}/ "
                            "folder")
    return ents, problems


def _raise_name_problems(bids_dir: Path, bad: list[tuple[str, list[str]]]) -> None:
    listed = "; ".join(f"{rel!r} ({', '.join(p)})" for rel, p in bad[:_MAX_LISTED])
    more = f" (and {len(bad) - _MAX_LISTED} more)" if len(bad) > _MAX_LISTED else ""
    folders = sorted({rel.split("/")[0] for rel, _ in bad})
    raise BIDSInputError(
        f"Invalid BIDS names for {len(bad)} BOLD file(s) in {bids_dir} (folders {folders}): "
        "expected sub-<label>/[ses-<label>/]func/sub-<label>[_ses-<label>]_task-<label>"
        "[_run-<index>]_bold.nii[.gz] with labels of letters and digits only and run a "
        f"non-negative whole number, got {listed}{more}. Rename these folders and files to "
        "valid labels, or move them out of the dataset (nothing in them was read)."
    )


# --- the dataset ------------------------------------------------------------------------------


def index_dataset(
    bids_dir: str | Path,
    *,
    tasks: Sequence[str],
    participant_label: Sequence[str] = (),
    stimuli_dir: str | Path | None = None,
    sessions: Sequence[str] = (),
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
        voxel grid disagree.
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
                          if p.is_dir() and _LABEL.fullmatch(p.name[4:]))
    subjects = list(participant_label) or all_subjects
    missing = sorted(set(subjects) - set(all_subjects))
    if missing:
        invalid = sorted(p.name for p in bids_dir.glob("sub-*")
                         if p.is_dir() and not _LABEL.fullmatch(p.name[4:]))
        note = (f" (folders with invalid labels, not counted: {invalid}: rename them to "
                "sub-<letters and digits>)" if invalid else "")
        raise BIDSInputError(
            f"Subject(s) {missing} from bids.participant_label are not in {bids_dir}: expected "
            f"labels from {all_subjects}{note}. Fix bids.participant_label."
        )
    selected = _select_bold_files(layout, bids_dir, tasks=tasks, subjects=subjects,
                                  participant_label=participant_label, sessions=sessions)
    absent = sorted(set(tasks) - {ents["task"] for _, ents in selected})
    if absent:
        existing = sorted(layout.get_tasks(suffix="bold"))
        raise BIDSInputError(
            f"Task(s) {absent} from bids.tasks have no BOLD run in {bids_dir} (for the selected "
            f"subjects): expected tasks from {existing}. Fix bids.tasks."
        )
    for sub in sorted(subjects):
        if not any(ents["sub"] == sub for _, ents in selected):
            ses = f" in session(s) {list(sessions)}" if sessions else ""
            raise BIDSInputError(
                f"sub-{sub} has no BOLD run for task(s) {list(tasks)}{ses} in {bids_dir}: "
                f"expected sub-{sub}/func/sub-{sub}_task-<task>_bold.nii.gz. Check bids.tasks, "
                "or drop the subject from bids.participant_label."
            )
    _check_unique_runs(selected)

    sidecars = _SidecarCache(layout, bids_dir)
    events_finder = _EventsFinder(layout, bids_dir, tasks)
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
    _check_consistency(runs)
    stimuli = _check_events(runs, stimuli_dir)
    logger.info(
        "indexed %d runs of %d subjects, %d stimuli", len(runs), len(subjects), len(stimuli)
    )
    return DatasetIndex(bids_dir=bids_dir, stimuli_dir=stimuli_dir, runs=runs, stimuli=stimuli)


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
                       extension=list(_BOLD_EXTENSIONS), return_type="filename")
    wanted_subjects = set(subjects)
    selected, bad = [], []
    for path in sorted(files):
        rel = PurePosixPath(Path(path).relative_to(bids_dir).as_posix())
        ents, problems = _bold_name_problems(rel)
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
        _raise_name_problems(bids_dir, bad)
    selected.sort(key=lambda item: (item[1]["sub"], item[1].get("ses") or "", item[1]["task"],
                                    int(item[1].get("run", "1")), item[0]))
    return selected


def _check_unique_runs(selected: list[tuple[str, dict[str, str]]]) -> None:
    """One file per (subject, session, task, run); run labels distinct across sessions."""
    by_key: dict[tuple, list[str]] = defaultdict(list)
    by_label: dict[tuple, dict[str, str]] = defaultdict(dict)
    for path, ents in selected:
        run_index = int(ents.get("run", "1"))
        by_key[(ents["sub"], ents.get("ses"), ents["task"], run_index)].append(path)
        by_label[(ents["sub"], ents["task"], ents.get("run", "1"))].setdefault(
            ents.get("ses") or "", path)
    for (sub, ses, task, run_index), paths in by_key.items():
        if len(paths) > 1:
            ses_txt = f" ses-{ses}" if ses else ""
            raise BIDSInputError(
                f"Duplicate run for sub-{sub}{ses_txt} task-{task} run-{run_index}: expected "
                f"one BOLD file per subject, session, task and run, got {len(paths)}: {paths}. "
                "Keep one of them (move the others out of the dataset) or give them distinct "
                "run-<index> labels; a file without run- counts as run-1, and run-01 equals "
                "run-1."
            )
    for (sub, task, run), by_session in by_label.items():
        if len(by_session) > 1:
            names = [f"ses-{s}" for s in sorted(by_session)]
            raise BIDSInputError(
                f"Run label repeated across sessions for sub-{sub} task-{task}_run-{run}: "
                f"expected distinct run labels per subject and task, got run-{run} in {names} "
                f"({sorted(by_session.values())}). Multi-session datasets need distinct run "
                "labels per subject for now (derivative names carry task and run only): "
                "select one session (bids.sessions: ['<label>']) or renumber the runs of the "
                "other sessions."
            )


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


class _EventsFinder:
    """The events.tsv of each BOLD run, by the BIDS inheritance principle.

    pybids' ``BIDSLayout.get_nearest`` walks up from the BOLD file and returns the nearest
    events.tsv whose entities agree with the run's. It costs ~10 ms per call, so the common
    case, an events.tsv in the run's folder with exactly the run's entities (which
    ``get_nearest`` would return first), is looked up among the layout's events files first.
    """

    def __init__(self, layout, root: Path, tasks: Sequence[str]):
        self.layout = layout
        self.root = root
        self._same_entities: dict[tuple[str, frozenset], str] = {}
        self._parsed: dict[str, dict] = {}  # pybids entities of candidate events files
        files = layout.get(suffix="events", extension=".tsv", task=list(tasks),
                           return_type="filename")
        for path in files:
            fields = _split_name(Path(path).name, "events", (".tsv",))
            if fields is None:
                continue
            ents, problems = _name_entities(fields)
            if not problems:
                self._same_entities[(str(Path(path).parent), frozenset(ents.items()))] = path

    def find(self, bold: str, ents: dict[str, str], *, where: str) -> str:
        """Absolute path of the events.tsv that applies to ``bold``.

        Parameters
        ----------
        bold : str
            BOLD file.
        ents : dict
            Its entities, from the checked file name.
        where : str
            Subject and run, for messages.

        Returns
        -------
        events : str
        """
        key = (str(Path(bold).parent), frozenset(ents.items()))
        if key in self._same_entities:
            return self._same_entities[key]
        return self._nearest(bold, where=where)

    def _nearest(self, bold: str, *, where: str) -> str:
        from bids.layout import Query

        target = self.layout.parse_file_entities(bold)
        filters = {"subject": [target["subject"], Query.NONE], "task": target["task"]}
        found = self.layout.get_nearest(bold, suffix="events", extension=".tsv", all_=True,
                                        ignore_strict_entities=["suffix", "extension"],
                                        **filters)
        # BIDS: a file applies only if its entities are a subset of the data file's
        # (get_nearest compares shared entities only, so an acq-x file would apply to any run)
        scope = {k: v for k, v in target.items() if k not in ("suffix", "extension")}
        candidates = []
        for path in found:
            if path not in self._parsed:
                self._parsed[path] = {k: v for k, v in self.layout.parse_file_entities(path).items()
                                      if k not in ("suffix", "extension")}
            cand = self._parsed[path]
            if all(k in scope and scope[k] == v for k, v in cand.items()):
                candidates.append((Path(path).parent, len(cand), path))
        if not candidates:
            name = Path(bold).name.split("_bold.nii")[0]
            raise BIDSInputError(
                f"No events.tsv for {where} ({bold}): expected {name}_events.tsv next to it, or "
                f"one that applies to it higher up (e.g. task-{target['task']}_events.tsv at the "
                "dataset root, by the BIDS inheritance principle). Add it or drop the run."
            )
        first = candidates[0]
        ties = [c[2] for c in candidates if c[:2] == first[:2]]
        if len(ties) > 1:
            raise BIDSInputError(
                f"Ambiguous events.tsv for {where} ({bold}): expected one applicable file per "
                f"level (BIDS inheritance principle), got {len(ties)} equally specific ones in "
                f"{first[0]}: {ties}. Keep one, or add the run's own events.tsv."
            )
        return first[2]


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


def _read_events(path: str, where: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` rows of an events.tsv, checked for shape.

    The file must have a header and at least one row, and every row one field per column.
    (csv module: ~50x faster than pandas.)
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines = list(csv.reader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BIDSInputError(
            f"Unreadable events.tsv for {where} ({path}): expected a UTF-8 tab-separated text "
            f"file, got {type(exc).__name__}: {exc}. Fix or re-export the file."
        ) from exc
    fix = "Write one row per trial under the header, or drop the run."
    if not lines or not any(lines[0]):
        raise BIDSInputError(
            f"Empty events.tsv for {where} ({path}): expected a header line (onset, duration, "
            f"stim_file, ...) and one row per trial, got an empty file. {fix}"
        )
    header = lines[0]
    rows = [(i + 1, fields) for i, fields in enumerate(lines) if i > 0 and fields]
    if not rows:
        raise BIDSInputError(
            f"No events in events.tsv for {where} ({path}): expected one row per trial under "
            f"the header, got the header only. {fix}"
        )
    for line, fields in rows:
        if len(fields) != len(header):
            raise BIDSInputError(
                f"Wrong number of fields on line {line} of events.tsv for {where} ({path}): "
                f"expected {len(header)} tab-separated fields (one per header column), got "
                f"{len(fields)}. Fix the line (write n/a for a missing value; separate fields "
                "with tabs, not spaces)."
            )
    return header, rows


def _number(text: str, *, column: str, line: int, path: str, where: str) -> float:
    """A finite number from an events.tsv field, or an error naming the line."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if text.strip() in ("n/a", "") or value is None or not math.isfinite(value):
        got = "a missing value" if text.strip() in ("n/a", "") else repr(text)
        raise BIDSInputError(
            f"Invalid {column} on line {line} of events.tsv for {where} ({path}): expected a "
            f"finite number of seconds, got {got}. Fix the value or drop the row."
        )
    return value


def _stim_outside(name: str) -> str | None:
    """Why ``stim_file`` leaves the stimuli folder, or None.

    The test is on the name (absolute, or a ``..`` component), not on the resolved file:
    symlinks inside stimuli/ that point elsewhere are fine (DataLad and git-annex datasets
    store every file as a symlink into .git/annex).
    """
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", name):
        return "an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "a path that climbs out with '..'"
    return None


def _check_events(runs: list[Run], stimuli_dir: Path) -> list[str]:
    stimuli: set[str] = set()
    checked: set[str] = set()
    for r in runs:
        where = r.where
        header, rows = _read_events(r.events, where)
        lacking = [c for c in REQUIRED_EVENT_COLUMNS if c not in header]
        if lacking:
            raise BIDSInputError(
                f"{_label(r.subject, r, r.events)}: events.tsv lacks column(s) {lacking}: "
                f"expected {list(REQUIRED_EVENT_COLUMNS)}. Add them."
            )
        col = {c: header.index(c) for c in REQUIRED_EVENT_COLUMNS}
        onsets: dict[float, int] = {}
        last = 0.0
        for line, fields in rows:
            onset = _number(fields[col["onset"]], column="onset", line=line, path=r.events,
                            where=where)
            duration = _number(fields[col["duration"]], column="duration", line=line,
                               path=r.events, where=where)
            if duration < 0:
                raise BIDSInputError(
                    f"Negative duration on line {line} of events.tsv for {where} ({r.events}): "
                    f"expected a duration >= 0 s, got {duration:g} s (it would flip the sign of "
                    "that trial's regressor and beta). Fix the duration."
                )
            key = round(onset, 6)
            if key in onsets:
                raise BIDSInputError(
                    f"Duplicate onset on lines {onsets[key]} and {line} of events.tsv for "
                    f"{where} ({r.events}): expected one trial per onset, got two at "
                    f"{onset:g} s (their single-trial regressors would be identical). Fix the "
                    "onsets or merge the rows."
                )
            onsets[key] = line
            last = max(last, onset + duration)
            name = fields[col["stim_file"]]
            if name in ("n/a", ""):
                raise BIDSInputError(
                    f"{_label(r.subject, r, r.events)}: line {line} has stim_file n/a: "
                    "expected a file under stimuli/. Fill it in or drop the row."
                )
            if name not in checked:
                _check_stimulus(name, stimuli_dir, r, line)
                checked.add(name)
            stimuli.add(name)
        n_vol = r.shape[3]
        if last > n_vol * r.t_r_s + 1e-6:
            raise BIDSInputError(
                f"{_label(r.subject, r, r.events)}: an event ends at {last:.1f} s but the run "
                f"lasts {n_vol} x {r.t_r_s} s = {n_vol * r.t_r_s:.1f} s. Fix the onsets."
            )
    return sorted(stimuli)


def _check_stimulus(name: str, stimuli_dir: Path, r: Run, line: int) -> None:
    """A stim_file names a readable image inside the stimuli folder."""
    outside = _stim_outside(name)
    if outside:
        raise BIDSInputError(
            f"stim_file {name!r} on line {line} of events.tsv for {r.where} ({r.events}) "
            f"leaves the stimuli folder: expected a path relative to {stimuli_dir}/ (BIDS), "
            f"got {outside}. Copy the file into stimuli/ and name it relative to that folder."
        )
    path = stimuli_dir / name
    if not path.is_file():
        hint = ""
        if name.startswith("stimuli/") and (stimuli_dir / name[len("stimuli/"):]).is_file():
            hint = " (stim_file is relative to stimuli/: drop the 'stimuli/' prefix)"
        raise BIDSInputError(
            f"{r.where}: events.tsv names stim_file '{name}', which is not "
            f"in {stimuli_dir}/ ({r.events}). Add the file or drop the row{hint}."
        )
    check_image_readable(path, where=f"line {line} of {r.events} ({r.where})")
