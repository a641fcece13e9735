"""BIDS ingestion: index a dataset with pybids, select runs, check stimuli and metadata.

Everything here runs at DAG construction (in the Snakefile) so that bad input stops the
workflow before any job starts, with a message that names the subject, run and file.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError

__all__ = ["Run", "DatasetIndex", "index_dataset", "REQUIRED_EVENT_COLUMNS"]

logger = logging.getLogger(__name__)

REQUIRED_EVENT_COLUMNS = ("onset", "duration", "stim_file")


@dataclass(frozen=True)
class Run:
    """One BOLD run selected for analysis.

    Attributes
    ----------
    subject, task, run : str
        BIDS entity labels (``run`` as written in the file name; "1" when the file name has
        no run entity).
    bold, events : str
        Absolute paths of the BOLD image and its events.tsv.
    t_r_s : float
        Repetition time (s) from the sidecar.
    shape : tuple of int
        BOLD image shape (x, y, z, n_volumes).
    """

    subject: str
    task: str
    run: str
    bold: str
    events: str
    t_r_s: float
    shape: tuple

    @property
    def key(self) -> str:
        """``task-<task>_run-<run>``: the run's part of derivative file names."""
        return f"task-{self.task}_run-{self.run}"


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
        """Runs of one subject, in task/run order."""
        return [r for r in self.runs if r.subject == subject]

    def run(self, subject: str, key: str) -> Run:
        """The run of ``subject`` whose :attr:`Run.key` is ``key``."""
        for r in self.runs_of(subject):
            if r.key == key:
                return r
        raise KeyError(f"sub-{subject} has no run {key}")

    def runs_table(self) -> pd.DataFrame:
        """One row per run: subject, task, run, bold, events, t_r_s, n_volumes."""
        return pd.DataFrame(
            [
                {
                    "subject": r.subject,
                    "task": r.task,
                    "run": r.run,
                    "bold": r.bold,
                    "events": r.events,
                    "t_r_s": r.t_r_s,
                    "n_volumes": r.shape[3],
                    "shape": "x".join(map(str, r.shape[:3])),
                }
                for r in self.runs
            ]
        )


def _label(subject: str, run: Run | None = None, path: str | None = None) -> str:
    where = f"sub-{subject}" + (f" {run.key}" if run else "")
    return where + (f" ({path})" if path else "")


def index_dataset(
    bids_dir: str | Path,
    *,
    tasks: Sequence[str],
    participant_label: Sequence[str] = (),
    stimuli_dir: str | Path | None = None,
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

    Returns
    -------
    index : DatasetIndex

    Raises
    ------
    BIDSInputError
        Missing dataset, subjects or tasks; a run without events.tsv or RepetitionTime; an
        events.tsv without the required columns or naming a stimulus file that does not exist;
        runs whose TR or voxel grid disagree.
    """
    import nibabel as nib
    from bids import BIDSLayout, BIDSLayoutIndexer

    bids_dir = Path(bids_dir).resolve()
    if not (bids_dir / "dataset_description.json").is_file():
        raise BIDSInputError(
            f"No BIDS dataset at {bids_dir}: expected a dataset_description.json there. "
            "Set bids.bids_dir in the config (run `make demo` to create the demo dataset)."
        )
    stimuli_dir = Path(stimuli_dir).resolve() if stimuli_dir else bids_dir / "stimuli"
    # Metadata indexing is pybids' slowest part (7.0 s of a 50-subject x 8-run layout against
    # 2.8 s without it, measured 2026-11-28); the workflow needs only RepetitionTime, which
    # sidecar_metadata() resolves with the BIDS inheritance principle.
    layout = BIDSLayout(bids_dir, validate=False, derivatives=False,
                        indexer=BIDSLayoutIndexer(index_metadata=False))
    sidecars = _SidecarCache(layout, bids_dir)
    all_subjects = layout.get_subjects()
    subjects = list(participant_label) or all_subjects
    missing = sorted(set(subjects) - set(all_subjects))
    if missing:
        raise BIDSInputError(
            f"Subject(s) {missing} from bids.participant_label are not in {bids_dir}: expected "
            f"labels from {all_subjects}. Fix bids.participant_label."
        )
    runs: list[Run] = []
    # one query for every selected subject (a query per subject costs ~0.1 s each)
    files = layout.get(subject=sorted(subjects), task=list(tasks), suffix="bold",
                       datatype="func", extension=[".nii", ".nii.gz"])
    by_subject: dict[str, list] = {sub: [] for sub in subjects}
    for f in files:
        by_subject[layout.parse_file_entities(f.path)["subject"]].append(f)
    for sub in sorted(subjects):
        if not by_subject[sub]:
            raise BIDSInputError(
                f"sub-{sub} has no BOLD run for task(s) {list(tasks)} in {bids_dir}: expected "
                f"sub-{sub}/func/sub-{sub}_task-<task>_bold.nii.gz. Check bids.tasks, or drop "
                "the subject from bids.participant_label."
            )
        for f in sorted(by_subject[sub], key=lambda f: f.path):
            ent = layout.parse_file_entities(f.path)  # from the file name, no database query
            run_label = "1"  # a run without a run- entity is named run-1 in derivatives
            if "run" in ent:
                # keep the run label exactly as written in the file name (zero padding)
                run_label = f.filename.split("_run-")[1].split("_")[0]
            meta = sidecars.metadata(f.path)
            img = nib.load(f.path)
            r_tmp = Run(sub, ent["task"], run_label, f.path, "", 0.0, tuple(img.shape))
            if "RepetitionTime" not in meta:
                raise BIDSInputError(
                    f"{_label(sub, r_tmp, f.path)}: no RepetitionTime in the JSON sidecar. "
                    "Add it to the run's (or the task's) _bold.json."
                )
            events = Path(
                f.path.replace("_bold.nii.gz", "_events.tsv").replace("_bold.nii", "_events.tsv")
            )
            if not events.is_file():
                raise BIDSInputError(
                    f"{_label(sub, r_tmp)}: events file {events} is missing: expected one "
                    "events.tsv per BOLD run. Add it or drop the run."
                )
            if img.ndim != 4:
                raise BIDSInputError(
                    f"{_label(sub, r_tmp, f.path)}: expected a 4D image, got shape {img.shape}."
                )
            header_tr = float(img.header.get_zooms()[3])
            tr = float(meta["RepetitionTime"])
            if header_tr > 0 and not np.isclose(header_tr, tr, rtol=1e-3):
                raise BIDSInputError(
                    f"{_label(sub, r_tmp, f.path)}: RepetitionTime {tr} s in the sidecar "
                    f"disagrees with the NIfTI header's {header_tr} s. Fix the header or sidecar."
                )
            runs.append(Run(sub, ent["task"], run_label, f.path, str(events), tr, tuple(img.shape)))
    _check_consistency(runs)
    stimuli = _check_events(runs, stimuli_dir)
    logger.info(
        "indexed %d runs of %d subjects, %d stimuli", len(runs), len(subjects), len(stimuli)
    )
    return DatasetIndex(bids_dir=bids_dir, stimuli_dir=stimuli_dir, runs=runs, stimuli=stimuli)


class _SidecarCache:
    """JSON sidecar metadata by the BIDS inheritance principle, with cached directory scans.

    A sidecar applies to a data file when it has the same suffix and its entities are a subset
    of the file's; sidecars nearer the file (deeper folders, then more entities) override.
    """

    def __init__(self, layout, root: Path):
        self.layout = layout
        self.root = root
        self._dirs: dict[Path, list[tuple[dict, Path]]] = {}

    def _jsons(self, folder: Path) -> list[tuple[dict, Path]]:
        if folder not in self._dirs:
            found = []
            for p in sorted(folder.glob("*.json")):
                ent = self.layout.parse_file_entities(str(p))
                found.append((ent, p))
            self._dirs[folder] = found
        return self._dirs[folder]

    def metadata(self, path: str) -> dict:
        """Merged sidecar metadata of one data file."""
        import json

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
        for _, _, p in sorted(applicable):
            merged.update(json.loads(p.read_text()))
        return merged


def _check_consistency(runs: list[Run]) -> None:
    ref = runs[0]
    for r in runs[1:]:
        if not np.isclose(r.t_r_s, ref.t_r_s):
            raise BIDSInputError(
                f"{_label(r.subject, r, r.bold)}: TR {r.t_r_s} s differs from "
                f"sub-{ref.subject} {ref.key}'s {ref.t_r_s} s: expected one TR across selected "
                "runs. Select runs with the same TR (bids.tasks / bids.participant_label)."
            )
        if r.subject == ref.subject and r.shape[:3] != ref.shape[:3]:
            raise BIDSInputError(
                f"{_label(r.subject, r, r.bold)}: voxel grid {r.shape[:3]} differs from "
                f"{ref.key}'s {ref.shape[:3]}: expected one grid per subject."
            )
        if r.subject != ref.subject:
            ref = r


def _read_events(path: str) -> dict[str, list[str]]:
    """Columns of an events.tsv as lists of strings (csv module: ~50x faster than pandas)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if not rows:
        return {}
    header, body = rows[0], [r for r in rows[1:] if r]
    return {col: [r[i] if i < len(r) else "n/a" for r in body] for i, col in enumerate(header)}


def _check_events(runs: list[Run], stimuli_dir: Path) -> list[str]:
    stimuli: set[str] = set()
    exists: dict[str, bool] = {}
    for r in runs:
        ev = _read_events(r.events)
        lacking = [c for c in REQUIRED_EVENT_COLUMNS if c not in ev]
        if lacking:
            raise BIDSInputError(
                f"{_label(r.subject, r, r.events)}: events.tsv lacks column(s) {lacking}: "
                f"expected {list(REQUIRED_EVENT_COLUMNS)}. Add them."
            )
        for row, name in enumerate(ev["stim_file"]):
            if name in ("n/a", ""):
                raise BIDSInputError(
                    f"{_label(r.subject, r, r.events)}: row {row + 1} has stim_file n/a: "
                    "expected a file under stimuli/. Fill it in or drop the row."
                )
            if name not in exists:
                exists[name] = (stimuli_dir / name).is_file()
            if not exists[name]:
                raise BIDSInputError(
                    f"sub-{r.subject} {r.key}: events.tsv names stim_file '{name}', which is not "
                    f"in {stimuli_dir}/ ({r.events}). Add the file or drop the row."
                )
            stimuli.add(name)
        try:
            ends = [float(o) + float(d) for o, d in zip(ev["onset"], ev["duration"], strict=True)]
        except ValueError as exc:
            raise BIDSInputError(
                f"{_label(r.subject, r, r.events)}: onset/duration must be numbers ({exc})."
            ) from exc
        n_vol = r.shape[3]
        last = max(ends, default=0.0)
        if last > n_vol * r.t_r_s + 1e-6:
            raise BIDSInputError(
                f"{_label(r.subject, r, r.events)}: an event ends at {last:.1f} s but the run "
                f"lasts {n_vol} x {r.t_r_s} s = {n_vol * r.t_r_s:.1f} s. Fix the onsets."
            )
    return sorted(stimuli)
