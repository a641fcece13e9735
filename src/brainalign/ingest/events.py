"""events.tsv: found by the BIDS inheritance principle, read and checked at DAG construction.

Checked per file: the required columns, field counts, numeric finite onsets and durations,
durations >= 0, distinct onsets, events inside the run, and every ``stim_file`` inside
``stimuli/``, existing and readable by PIL (a ``.txt`` stim_file: readable UTF-8 text,
not empty). With ``bids.text_column`` the stimuli are texts held in that events column:
``stim_file`` is then the stimulus's identifier (not a file) and :func:`event_texts` collects
and checks the texts.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from brainalign.errors import BIDSInputError
from brainalign.ingest.checks import check_image_readable, read_text_stimulus
from brainalign.ingest.names import name_entities, split_name

if TYPE_CHECKING:  # pragma: no cover
    from brainalign.ingest.bids import Run
    from brainalign.meeg.bids import MEEGRun

__all__ = ["REQUIRED_EVENT_COLUMNS", "EventsFinder", "read_events", "check_events",
           "check_meeg_events", "event_texts", "TEXT_SUFFIX"]

#: Suffix of a stimulus file that holds a text (a word or sentence) instead of an image.
TEXT_SUFFIX = ".txt"

#: Columns every events.tsv needs.
REQUIRED_EVENT_COLUMNS = ("onset", "duration", "stim_file")


class EventsFinder:
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
            fields = split_name(Path(path).name, "events", (".tsv",))
            if fields is None:
                continue
            ents, problems = name_entities(fields)
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
            name = re.sub(r"_(bold|eeg|meg)\.[^/]*$", "", Path(bold).name)
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


def read_events(path: str, where: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
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


def check_events(runs: list[Run], stimuli_dir: Path, *,
                 text_column: str | None = None) -> list[str]:
    """Check every run's events.tsv and stimuli; return the stimulus files they name.

    Parameters
    ----------
    runs : list of Run
        The selected runs (their ``events`` found by :class:`EventsFinder`).
    stimuli_dir : Path
        The folder ``stim_file`` is relative to.
    text_column : str, optional
        ``bids.text_column``: the stimuli are texts in this column and ``stim_file`` only
        identifies them (no file is looked up; :func:`event_texts` checks the texts).

    Returns
    -------
    stimuli : list of str
        Sorted unique ``stim_file`` values.

    Raises
    ------
    BIDSInputError
        Missing columns, ragged rows, missing or non-numeric timings, negative durations,
        duplicate onsets, events past the end of the run, ``stim_file`` values that are n/a,
        leave ``stimuli/``, or name a missing or unreadable image.
    """
    stimuli: set[str] = set()
    checked: set[str] = set()
    for r in runs:
        where = r.where
        header, rows = read_events(r.events, where)
        lacking = [c for c in REQUIRED_EVENT_COLUMNS if c not in header]
        if lacking:
            raise BIDSInputError(
                f"{r.where} ({r.events}): events.tsv lacks column(s) {lacking}: "
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
                    f"{r.where} ({r.events}): line {line} has stim_file n/a: "
                    "expected a file under stimuli/. Fill it in or drop the row."
                )
            if name not in checked and text_column is None:
                _check_stimulus(name, stimuli_dir, r, line)
                checked.add(name)
            stimuli.add(name)
        n_vol = r.shape[3]
        if last > n_vol * r.t_r_s + 1e-6:
            raise BIDSInputError(
                f"{r.where} ({r.events}): an event ends at {last:.1f} s but the run "
                f"lasts {n_vol} x {r.t_r_s} s = {n_vol * r.t_r_s:.1f} s. Fix the onsets."
            )
    return sorted(stimuli)


def _check_stimulus(name: str, stimuli_dir: Path, r: Run, line: int) -> None:
    """A stim_file names a readable image (or ``.txt`` text) inside the stimuli folder."""
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
    where = f"line {line} of {r.events} ({r.where})"
    if name.lower().endswith(TEXT_SUFFIX):
        read_text_stimulus(path, where=where)
    else:
        check_image_readable(path, where=where)


def check_meeg_events(runs: list[MEEGRun], stimuli_dir: Path, *,
                      stim_column: str = "stim_file",
                      text_column: str | None = None) -> list[str]:
    """Check every EEG/MEG recording's events.tsv and stimuli; return the stimuli they name.

    The fMRI checks (:func:`check_events`) with two differences: rows whose ``stim_column``
    is n/a are other events (responses, triggers, ...) and are allowed (their duration may be
    n/a too) as long as the recording has at least one stimulus event; every event must lie
    inside the recording (``0 <= onset`` and ``onset + duration <= n_times / sfreq``).

    Parameters
    ----------
    runs : list of MEEGRun
        The selected recordings (their ``events`` found by :class:`EventsFinder`).
    stimuli_dir : Path
        The folder ``stim_column`` values are relative to.
    stim_column : str
        The events.tsv column that names each event's stimulus (``meeg.stim_column``).
    text_column : str, optional
        ``bids.text_column``: ``stim_column`` only identifies text stimuli (no file lookup).

    Returns
    -------
    stimuli : list of str
        Sorted unique stimulus files named by the recordings' events.

    Raises
    ------
    BIDSInputError
        Missing columns, ragged rows, missing or non-numeric onsets (or durations of stimulus
        events), negative durations, duplicate stimulus onsets, an event outside the recording
        (the line is named), a recording without any stimulus event, stimulus files that leave
        ``stimuli/``, are missing or are unreadable.
    """
    stimuli: set[str] = set()
    checked: set[str] = set()
    required = ("onset", "duration", stim_column)
    for r in runs:
        where = r.where
        header, rows = read_events(r.events, where)
        lacking = [c for c in required if c not in header]
        if lacking:
            hint = (" (meeg.stim_column names the stimulus column)"
                    if stim_column in lacking else "")
            raise BIDSInputError(
                f"{where} ({r.events}): events.tsv lacks column(s) {lacking}: expected "
                f"{list(required)}{hint}. Add them, or set meeg.stim_column to the column that "
                "names each event's stimulus file."
            )
        col = {c: header.index(c) for c in required}
        end = r.n_times / r.sfreq
        onsets: dict[float, int] = {}
        n_stim = 0
        for line, fields in rows:
            onset = _number(fields[col["onset"]], column="onset", line=line, path=r.events,
                            where=where)
            name = fields[col[stim_column]]
            is_stim = name.strip() not in ("n/a", "")
            raw_duration = fields[col["duration"]]
            if not is_stim and raw_duration.strip() in ("n/a", ""):
                duration = 0.0
            else:
                duration = _number(raw_duration, column="duration", line=line, path=r.events,
                                   where=where)
            if duration < 0:
                raise BIDSInputError(
                    f"Negative duration on line {line} of events.tsv for {where} ({r.events}): "
                    f"expected a duration >= 0 s, got {duration:g} s. Fix the duration."
                )
            # one sample of slack: onsets are rounded to the sampling grid by the writers
            if onset < -0.5 / r.sfreq or onset + duration > end + 1.0 / r.sfreq:
                ends = (f"onset {onset:g} s" if duration == 0 else
                        f"onset {onset:g} s + duration {duration:g} s = {onset + duration:g} s")
                raise BIDSInputError(
                    f"Event outside the recording on line {line} of events.tsv for {where} "
                    f"({r.events}): expected 0 <= onset and onset + duration <= the recording's "
                    f"{r.n_times} samples / {r.sfreq:g} Hz = {end:.3f} s ({r.raw}), got {ends}. "
                    "Fix the onsets (seconds from the start of this recording), or drop the row."
                )
            if not is_stim:
                continue
            n_stim += 1
            key = round(onset, 6)
            if key in onsets:
                raise BIDSInputError(
                    f"Duplicate onset on lines {onsets[key]} and {line} of events.tsv for "
                    f"{where} ({r.events}): expected one stimulus per onset, got two at "
                    f"{onset:g} s (their epochs would be identical). Fix the onsets or merge "
                    "the rows."
                )
            onsets[key] = line
            if name not in checked and text_column is None:
                _check_stimulus(name, stimuli_dir, r, line)
                checked.add(name)
            stimuli.add(name)
        if not n_stim:
            raise BIDSInputError(
                f"No stimulus event in events.tsv for {where} ({r.events}): expected at least "
                f"one row whose {stim_column!r} names a file under {stimuli_dir}/, got "
                f"{len(rows)} row(s) with {stim_column} n/a. Fill in {stim_column}, set "
                "meeg.stim_column, or drop the recording (bids.tasks / bids.modalities)."
            )
    return sorted(stimuli)


def event_texts(runs: Sequence, *, text_column: str,
                stim_column: str = "stim_file") -> dict[str, str]:
    """The text of every stimulus, from an events.tsv column (``bids.text_column``).

    Each stimulus is identified by its ``stim_column`` value (e.g. ``s01``) and its text is
    the ``text_column`` value of its rows; rows whose ``stim_column`` is n/a (M/EEG responses,
    triggers) are skipped.

    Parameters
    ----------
    runs : sequence of Run or MEEGRun
        Recordings whose ``events`` files hold the column.
    text_column : str
        The events.tsv column holding each stimulus's text.
    stim_column : str
        The column identifying the stimulus.

    Returns
    -------
    texts : dict of str to str
        Stimulus identifier -> text (surrounding whitespace stripped).

    Raises
    ------
    BIDSInputError
        An events.tsv without the column; a stimulus row whose text is n/a or empty; one
        identifier with two different texts (the lines are named).
    """
    texts: dict[str, str] = {}
    first: dict[str, str] = {}
    for r in runs:
        header, rows = read_events(r.events, r.where)
        if text_column not in header:
            raise BIDSInputError(
                f"{r.where} ({r.events}): events.tsv lacks the text column {text_column!r} named "
                f"by bids.text_column: expected it next to {stim_column!r}, got columns "
                f"{header}. Add the column, or set bids.text_column to the column holding each "
                "stimulus's text (null for image stimuli)."
            )
        col, text_col = header.index(stim_column), header.index(text_column)
        for line, fields in rows:
            name = fields[col].strip()
            if name in ("n/a", ""):
                continue
            text = fields[text_col].strip()
            if text in ("n/a", ""):
                raise BIDSInputError(
                    f"Empty text on line {line} of events.tsv for {r.where} ({r.events}): "
                    f"expected the stimulus text in column {text_column!r} (bids.text_column), "
                    f"got {'n/a' if text else 'an empty field'} for {stim_column} {name!r}. "
                    "Fill in the text or drop the row."
                )
            here = f"line {line} of {r.events}"
            if name in texts and texts[name] != text:
                raise BIDSInputError(
                    f"Two texts for stimulus {name!r}: {first[name]} has {texts[name]!r}, {here} "
                    f"has {text!r}: expected one text per {stim_column} (it identifies the "
                    "stimulus). Give the texts different identifiers or make them equal."
                )
            texts.setdefault(name, text)
            first.setdefault(name, here)
    return texts
