"""The selected EEG/MEG recordings of a BIDS dataset and their DAG-time checks.

:func:`find_meeg_runs` selects the recordings (``sub-<label>/[ses-<label>/]eeg|meg/``) of the
selected subjects, sessions and tasks in the formats mne-bids reads: BrainVision (``.vhdr``),
EDF (``.edf``), BDF (``.bdf``), EEGLAB (``.set``) and FIF (``.fif``). For each one it checks,
at DAG construction and without reading the samples:

1. the file name (BIDS labels, folder and file labels agree) and one recording per
   (subject, datatype, task, run);
2. the header, read with MNE (``preload=False``): sampling rate and number of samples;
3. the JSON sidecar (BIDS inheritance principle): ``SamplingFrequency`` present and equal to
   the header's;
4. the events.tsv, found by the inheritance principle like the fMRI runs'.

The events themselves (stimulus files, timings inside the recording) are checked by
:func:`brainalign.ingest.events.check_meeg_events`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from brainalign.errors import BIDSInputError

__all__ = [
    "MEEGRun",
    "MEEG_DATATYPES",
    "MEEG_EXTENSIONS",
    "find_meeg_runs",
    "read_header",
    "channels_tsv",
    "channel_names",
    "check_meeg_config",
]

#: Datatypes (and suffixes) of M/EEG recordings.
MEEG_DATATYPES = ("eeg", "meg")
#: Extension of the file that names a recording -> its format.
MEEG_EXTENSIONS = {
    ".vhdr": "BrainVision",
    ".edf": "EDF",
    ".bdf": "BDF",
    ".set": "EEGLAB",
    ".fif": "FIF",
}
# companion files of a recording (not recordings themselves)
_COMPANIONS = {".json", ".eeg", ".vmrk", ".fdt", ".tsv"}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MEEGRun:
    """One EEG or MEG recording selected for analysis.

    Attributes
    ----------
    subject, task, run : str
        BIDS entity labels (``run`` "1" when the file name has no run entity).
    datatype : str
        ``eeg`` or ``meg``.
    raw : str
        Absolute path of the raw recording (for a BrainVision or EEGLAB recording, the header /
        ``.set`` file; ``mne_bids.read_raw_bids`` finds the rest).
    events : str
        Absolute path of its events.tsv.
    sfreq : float
        Sampling frequency (Hz), equal in the sidecar and the file.
    n_times : int
        Samples in the recording.
    session : str or None
        BIDS session label.
    """

    subject: str
    task: str
    run: str
    datatype: str
    raw: str
    events: str
    sfreq: float
    n_times: int
    session: str | None = None

    @property
    def key(self) -> str:
        """``task-<task>_run-<run>``: the run's part of derivative file names."""
        return f"task-{self.task}_run-{self.run}"

    @property
    def where(self) -> str:
        """``sub-<subject> [ses-<session> ]<datatype> task-<task>_run-<run>``, for messages."""
        ses = f" ses-{self.session}" if self.session else ""
        return f"sub-{self.subject}{ses} {self.datatype} {self.key}"

    @property
    def duration_s(self) -> float:
        """Length of the recording (s)."""
        return self.n_times / self.sfreq


def read_header(path: str | Path, *, where: str) -> tuple[float, int, list[str]]:
    """Sampling rate, number of samples and channel names of a recording, from its header.

    Read with MNE without loading the samples (``preload=False``). BrainVision and EDF/BDF
    headers are parsed here instead, with MNE's arithmetic (BrainVision: sampling rate ``1e6 /
    SamplingInterval``, samples = data file size / (channels x bytes per value); EDF/BDF:
    samples per record / record duration, records x samples per record), because MNE also
    parses every marker or annotation (~0.1-0.5 s for 300 of them); anything unusual (ASCII or
    vectorised BrainVision, EDF channels at different rates, an unknown number of records, a
    file shorter than its header says) goes to MNE.

    Parameters
    ----------
    path : str or Path
        The recording (``.vhdr``, ``.edf``, ``.bdf``, ``.set`` or ``.fif``).
    where : str
        The subject and run, for messages.

    Returns
    -------
    sfreq : float
        Sampling rate (Hz).
    n_times : int
        Samples in the recording.
    ch_names : list of str
        Channel names.

    Raises
    ------
    BIDSInputError
        MNE cannot read the header (missing companion file, corrupt header, unknown format).
    """
    import mne

    path = Path(path)
    ext = path.suffix.lower()
    readers = {
        ".vhdr": mne.io.read_raw_brainvision,
        ".edf": mne.io.read_raw_edf,
        ".bdf": mne.io.read_raw_bdf,
        ".set": mne.io.read_raw_eeglab,
        ".fif": lambda p, **kw: mne.io.read_raw_fif(p, allow_maxshield=True, **kw),
    }
    if ext not in readers:
        raise BIDSInputError(
            f"Unsupported M/EEG format for {where} ({path}): expected one of "
            f"{sorted(MEEG_EXTENSIONS)} ({', '.join(MEEG_EXTENSIONS.values())}). Convert the "
            "recording with mne-bids (write_raw_bids) to BrainVision or FIF."
        )
    fast = {".vhdr": _brainvision_header, ".edf": _edf_header, ".bdf": _edf_header}.get(ext)
    if fast is not None:
        found = fast(path, where)
        if found is not None:
            return found
    try:
        raw = readers[ext](str(path), preload=False, verbose="error")
    except Exception as exc:  # MNE raises many types (OSError, ValueError, RuntimeError...)
        companions = {".vhdr": " (and the .vmrk and .eeg files its header names)",
                      ".set": " (and its .fdt data file, when there is one)"}.get(ext, "")
        raise BIDSInputError(
            f"Unreadable {MEEG_EXTENSIONS[ext]} recording for {where} ({path}): expected a "
            f"file MNE can read{companions}, got {type(exc).__name__}: {exc}. Replace or "
            "re-export the recording."
        ) from exc
    return float(raw.info["sfreq"]), int(raw.n_times), list(raw.ch_names)


_BV_BYTES = {"INT_16": 2, "UINT_16": 2, "INT_32": 4, "IEEE_FLOAT_32": 4}


def _brainvision_header(path: Path, where: str) -> tuple[float, int, list[str]] | None:
    """Sampling rate, samples and channel names of a binary multiplexed BrainVision file.

    None when the header is anything else (or incomplete): MNE reads it then.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields: dict[tuple[str, str], str] = {}
    names: dict[int, str] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if not line or line.startswith(";") or "=" not in line:
            continue
        key, value = (x.strip() for x in line.split("=", 1))
        if section == "channel infos" and key.lower().startswith("ch") and key[2:].isdigit():
            names[int(key[2:])] = value.split(",")[0].replace("\\1", ",")
        else:
            fields[(section, key.lower())] = value
    try:
        n_chan = int(fields[("common infos", "numberofchannels")])
        interval = float(fields[("common infos", "samplinginterval")])
        data = path.parent / fields[("common infos", "datafile")]
        fmt = fields.get(("binary infos", "binaryformat"), "")
    except (KeyError, ValueError):
        return None
    if (fields.get(("common infos", "dataformat"), "BINARY").upper() != "BINARY"
            or fields.get(("common infos", "dataorientation"), "MULTIPLEXED").upper()
            != "MULTIPLEXED"
            or fmt not in _BV_BYTES or interval <= 0 or n_chan < 1
            or sorted(names) != list(range(1, n_chan + 1)) or not data.is_file()):
        return None
    n_times = data.stat().st_size // (n_chan * _BV_BYTES[fmt])
    return 1e6 / interval, int(n_times), [names[i] for i in range(1, n_chan + 1)]


def _edf_header(path: Path, where: str) -> tuple[float, int, list[str]] | None:
    """Sampling rate, samples and channel names of an EDF/BDF file whose signals share one rate.

    None for anything else (MNE reads it then). Annotation channels are left out, as MNE does.
    A file shorter than its header promises is an error (MNE would read fewer records, with a
    warning only).
    """
    try:
        with open(path, "rb") as fh:
            fixed = fh.read(256)
            n_records = int(fixed[236:244].decode("latin-1").strip())
            duration = float(fixed[244:252].decode("latin-1").strip())
            ns = int(fixed[252:256].decode("latin-1").strip())
            signals = fh.read(256 * ns)
        header_bytes = int(fixed[184:192].decode("latin-1").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if n_records < 1 or duration <= 0 or ns < 1 or len(signals) < 256 * ns:
        return None
    labels = [signals[16 * i: 16 * (i + 1)].decode("latin-1").strip() for i in range(ns)]
    # per signal: label 16, transducer 80, unit 8, physical/digital min/max 4 x 8, prefilter 80
    offset = 216 * ns
    try:
        samples = [int(signals[offset + 8 * i: offset + 8 * (i + 1)].decode("latin-1").strip())
                   for i in range(ns)]
    except ValueError:
        return None
    data = [i for i, lab in enumerate(labels) if lab not in ("EDF Annotations", "BDF Annotations")]
    rates = {samples[i] for i in data}
    if not data or len(rates) != 1:
        return None
    n = rates.pop()
    width = 3 if path.suffix.lower() == ".bdf" else 2
    expected = header_bytes + n_records * sum(samples) * width
    size = path.stat().st_size
    if size < expected:
        raise BIDSInputError(
            f"Truncated {path.suffix[1:].upper()} recording for {where} ({path}): expected "
            f"{expected} bytes ({n_records} records of {duration:g} s, as its header says), got "
            f"{size}. Copy the file again from its source (it was cut short, e.g. by an "
            "interrupted transfer)."
        )
    return n / duration, n_records * n, [labels[i] for i in data]


def channels_tsv(raw: str | Path) -> Path | None:
    """The channels.tsv next to a recording (``<name>_channels.tsv``), or None.

    Parameters
    ----------
    raw : str or Path
        The recording.

    Returns
    -------
    path : Path or None
    """
    raw = Path(raw)
    for suffix in MEEG_DATATYPES:
        marker = f"_{suffix}{raw.suffix}"
        if raw.name.endswith(marker):
            stem = raw.name[: -len(marker)]
            # split-01 of a FIF recording: channels.tsv has no split entity
            stem = "_".join(f for f in stem.split("_") if not f.startswith("split-"))
            path = raw.with_name(f"{stem}_channels.tsv")
            return path if path.is_file() else None
    return None


def channel_names(raw: str | Path, *, where: str = "") -> list[str]:
    """Channel names of a recording: its channels.tsv's ``name`` column, else its header's.

    Parameters
    ----------
    raw : str or Path
        The recording.
    where : str
        The subject and run, for messages.

    Returns
    -------
    names : list of str

    Raises
    ------
    BIDSInputError
        The channels.tsv has no ``name`` column, or the header cannot be read.
    """
    import csv

    path = channels_tsv(raw)
    if path is None:
        return read_header(raw, where=where or str(raw))[2]
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if not rows or "name" not in rows[0]:
        raise BIDSInputError(
            f"channels.tsv of {where or raw} ({path}) has no 'name' column: expected the BIDS "
            f"columns name, type, units, got {rows[0] if rows else 'an empty file'}. Fix it."
        )
    i = rows[0].index("name")
    return [r[i] for r in rows[1:] if len(r) > i]


def find_meeg_runs(
    bids_dir: str | Path,
    *,
    tasks: Sequence[str],
    subjects: Sequence[str] = (),
    sessions: Sequence[str] = (),
    datatypes: Sequence[str] = MEEG_DATATYPES,
    layout=None,
    sidecars=None,
    events_finder=None,
) -> list[MEEGRun]:
    """Find and check the EEG/MEG recordings of the selected subjects, sessions and tasks.

    Parameters
    ----------
    bids_dir : str or Path
        Raw BIDS dataset.
    tasks : sequence of str
        Task labels to select.
    subjects : sequence of str
        Subjects to select (empty: all).
    sessions : sequence of str
        Sessions to select (empty: all, and recordings without a session).
    datatypes : sequence of str
        ``eeg`` and/or ``meg``.
    layout : bids.BIDSLayout, optional
        The dataset's layout (built here when not given; :func:`brainalign.ingest.bids.
        index_dataset` passes its cached one).
    sidecars, events_finder : optional
        The index's sidecar cache and events finder (built here when not given).

    Returns
    -------
    runs : list of MEEGRun
        Sorted by subject, session, datatype, task and run.

    Raises
    ------
    BIDSInputError
        Invalid BIDS names; two recordings for one subject, datatype, task and run (e.g. two
        formats, or an ``acq-``/``proc-`` variant: keep one); a run label repeated across
        sessions; an unreadable header; a sidecar without ``SamplingFrequency`` or one that
        disagrees with the file; no events.tsv.
    """
    from brainalign.ingest.bids import _CachedLayout, _SidecarCache
    from brainalign.ingest.events import EventsFinder
    from brainalign.ingest.names import data_name_problems

    bids_dir = Path(bids_dir).resolve()
    if layout is None:
        from bids import BIDSLayout, BIDSLayoutIndexer

        layout = _CachedLayout(BIDSLayout(bids_dir, validate=False, derivatives=False,
                                          indexer=BIDSLayoutIndexer(index_metadata=False)))
    sidecars = sidecars or _SidecarCache(layout, bids_dir)
    events_finder = events_finder or EventsFinder(layout, bids_dir, tasks)
    datatypes = [d for d in MEEG_DATATYPES if d in datatypes]
    if not datatypes or not tasks:
        return []
    files = layout.get(task=list(tasks), datatype=datatypes, suffix=datatypes,
                       return_type="filename")
    wanted = set(subjects)
    selected, bad = [], []
    for path in sorted(files):
        p = Path(path)
        rel = PurePosixPath(p.relative_to(bids_dir).as_posix())
        ext = p.suffix.lower()
        datatype = rel.parts[-2] if len(rel.parts) > 1 else ""
        if datatype not in datatypes or ext not in MEEG_EXTENSIONS:
            continue
        ents, problems = data_name_problems(rel, datatype=datatype, suffix=datatype,
                                            extensions=(p.suffix,))
        if problems:
            lenient = layout.parse_file_entities(path)
            if not wanted or str(lenient.get("subject")) in wanted:
                bad.append((str(rel), problems))
            continue
        if (wanted and ents["sub"] not in wanted) or ents["task"] not in tasks:
            continue
        if sessions and ents.get("ses") not in sessions:
            continue
        if ents.get("split", "01").lstrip("0") not in ("", "1"):
            continue  # later parts of a split FIF recording: MNE reads them with the first
        selected.append((path, ents, datatype))
    if bad:
        listed = "; ".join(f"{rel!r} ({', '.join(pr)})" for rel, pr in bad[:10])
        raise BIDSInputError(
            f"Invalid BIDS names for {len(bad)} EEG/MEG file(s) in {bids_dir}: expected "
            "sub-<label>/[ses-<label>/]eeg|meg/sub-<label>[_ses-<label>]_task-<label>"
            "[_run-<index>]_eeg|meg.<ext> with labels of letters and digits only, got "
            f"{listed}. Rename them, or move them out of the dataset (nothing in them was read)."
        )
    _check_unsupported(bids_dir, selected, tasks=tasks, subjects=wanted, sessions=sessions,
                       datatypes=datatypes)
    selected.sort(key=lambda it: (it[1]["sub"], it[1].get("ses") or "", it[2], it[1]["task"],
                                  int(it[1].get("run", "1")), it[0]))
    _check_unique(selected)

    runs = []
    for path, ents, datatype in selected:
        run_label = ents.get("run", "1")
        stub = MEEGRun(ents["sub"], ents["task"], run_label, datatype, path, "", 1.0, 0,
                       ents.get("ses"))
        where = stub.where
        sfreq, n_times, _ = read_header(path, where=where)
        if n_times < 1:
            raise BIDSInputError(
                f"Empty recording for {where} ({path}): expected samples, got 0 (the data file "
                "is empty: an unfinished copy, or a git-annex/DataLad file whose content was "
                "not fetched). Copy the recording again, or run `datalad get` on it."
            )
        meta, sources = sidecars.metadata(path, where=where)
        if "SamplingFrequency" not in meta:
            raise BIDSInputError(
                f"{where} ({path}): no SamplingFrequency in the JSON sidecar: expected the "
                f"REQUIRED BIDS field in the recording's _{datatype}.json (the file says "
                f"{sfreq:g} Hz). Add it (mne-bids' write_raw_bids writes it)."
            )
        side = meta["SamplingFrequency"]
        try:
            side_f = float(side)
        except (TypeError, ValueError):
            side_f = math.nan
        if isinstance(side, bool) or not math.isclose(side_f, sfreq, rel_tol=1e-6, abs_tol=1e-6):
            raise BIDSInputError(
                f"Sampling rate mismatch for {where}: SamplingFrequency {side!r} Hz in the "
                f"sidecar {sources['SamplingFrequency']} disagrees with the {sfreq:g} Hz in "
                f"the recording's header {path}. Fix the sidecar (or re-export the recording)."
            )
        events = events_finder.find(path, {k: v for k, v in ents.items() if k != "split"},
                                    where=where)
        runs.append(MEEGRun(ents["sub"], ents["task"], run_label, datatype, path, events,
                            sfreq, n_times, ents.get("ses")))
    return runs


def _check_unsupported(bids_dir: Path, selected: list, *, tasks, subjects, sessions,
                       datatypes) -> None:
    """Stop at a selected recording in a format brainalign does not read (e.g. CTF ``.ds``).

    Recordings are matched by name (files and folders: a CTF recording is a folder); one
    whose run also exists in a supported format is left alone.
    """
    from brainalign.ingest.names import name_entities

    def run_key(ents, datatype):
        return (ents.get("sub"), ents.get("ses"), datatype, ents.get("task"),
                int(ents.get("run", "1")) if ents.get("run", "1").isdigit() else ents.get("run"))

    have = {run_key(ents, dt) for _, ents, dt in selected}
    found = []
    for datatype in datatypes:
        for entry in sorted([*bids_dir.glob(f"sub-*/{datatype}/*_{datatype}.*"),
                             *bids_dir.glob(f"sub-*/ses-*/{datatype}/*_{datatype}.*")]):
            ext = "".join(entry.suffixes[-1:]).lower()
            if ext in MEEG_EXTENSIONS or ext in _COMPANIONS:
                continue
            ents, problems = name_entities(entry.name[: -len(f"_{datatype}{ext}")].split("_"))
            if problems or ents.get("task") not in tasks:
                continue
            if (subjects and ents.get("sub") not in subjects) or (
                    sessions and ents.get("ses") not in sessions):
                continue
            if run_key(ents, datatype) not in have:
                found.append(str(entry.relative_to(bids_dir)))
    if found:
        raise BIDSInputError(
            f"{len(found)} selected EEG/MEG recording(s) in {bids_dir} are in a format "
            f"brainalign does not read: {found[:10]}: expected one of {sorted(MEEG_EXTENSIONS)} "
            f"({', '.join(MEEG_EXTENSIONS.values())}). Convert them with MNE and mne-bids "
            "(e.g. mne.io.read_raw_ctf, then write_raw_bids(..., format='FIF')), or leave the "
            "datatype out (bids.modalities) or the task (bids.tasks)."
        )


def _check_unique(selected: list[tuple[str, dict[str, str], str]]) -> None:
    """One recording per (subject, session, datatype, task, run), run labels distinct.

    Derivative names carry datatype, task and run only, so run labels must also differ across a
    subject's sessions.
    """
    by_key: dict[tuple, list[str]] = defaultdict(list)
    by_label: dict[tuple, dict[str, str]] = defaultdict(dict)
    for path, ents, datatype in selected:
        run_index = int(ents.get("run", "1"))
        by_key[(ents["sub"], ents.get("ses"), datatype, ents["task"], run_index)].append(path)
        by_label[(ents["sub"], datatype, ents["task"], run_index)].setdefault(
            ents.get("ses") or "", path)
    for (sub, ses, datatype, task, run_index), paths in by_key.items():
        if len(paths) > 1:
            ses_txt = f" ses-{ses}" if ses else ""
            raise BIDSInputError(
                f"Duplicate {datatype} recording for sub-{sub}{ses_txt} task-{task} "
                f"run-{run_index}: expected one recording per subject, session, task and run, "
                f"got {len(paths)}: {paths}. Keep one (move the others out of the dataset, e.g. "
                "a second format or an acq-/proc- variant), or give them distinct run-<index> "
                "labels; a file without run- counts as run-1."
            )
    for (sub, datatype, task, run_index), by_session in by_label.items():
        if len(by_session) > 1:
            names = [f"ses-{s}" for s in sorted(by_session)]
            raise BIDSInputError(
                f"Run label repeated across sessions for sub-{sub} {datatype} task-{task} "
                f"run-{run_index}: expected distinct run labels per subject, datatype and task, "
                f"got it in {names} ({sorted(by_session.values())}). Select one session "
                "(bids.sessions) or renumber the runs of the other sessions."
            )


def _close(name: str, options: Sequence[str]) -> str:
    """A " (did you mean ...?)" hint: case-insensitive close matches of ``name``."""
    import difflib

    lower = {o.lower(): o for o in options}
    match = difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(lower[m]) for m in match)}?)" if match else ""


def check_meeg_config(runs: Sequence[MEEGRun], meeg: dict) -> None:
    """Cross-check the ``meeg`` config section against the selected recordings.

    ``meeg.rois`` channel names must be channels of the recordings (their channels.tsv, else
    their header): a channel group applies to the datatype(s) whose recordings have any of
    the groups' channels (EEG names for EEG, MEG names for MEG), and there every named channel
    must exist in every recording. ``meeg.epochs_tmin`` must be before ``meeg.epochs_tmax``.

    Parameters
    ----------
    runs : sequence of MEEGRun
        The selected recordings.
    meeg : dict
        The validated ``meeg`` config section.

    Raises
    ------
    ConfigError
        A channel named in ``meeg.rois`` is missing (with close matches), or the epoch window
        is empty.
    """
    from brainalign.errors import ConfigError

    tmin, tmax = meeg.get("epochs_tmin", -0.2), meeg.get("epochs_tmax", 0.8)
    if not tmin < tmax:
        raise ConfigError(
            f"Config keys 'meeg.epochs_tmin' ({tmin}) and 'meeg.epochs_tmax' ({tmax}): expected "
            "tmin < tmax (seconds around each stimulus onset). Fix them (e.g. -0.2 and 0.8)."
        )
    rois = meeg.get("rois") or {}
    if not rois or not runs:
        return
    names = {r.raw: channel_names(r.raw, where=r.where) for r in runs}
    wanted = {ch for chans in rois.values() for ch in chans}
    datatypes = sorted({r.datatype for r in runs
                        if wanted & set(names[r.raw])})
    if not datatypes:
        every = sorted({c for chans in names.values() for c in chans})
        missing = sorted(wanted)
        hints = "".join(f" {c!r}{_close(c, every)}" for c in missing[:10])
        raise ConfigError(
            f"Config key 'meeg.rois': expected channel names of the recordings, got none of "
            f"them:{hints}. The recordings' channels (channels.tsv): {every[:64]}. Fix "
            "meeg.rois (or set it to null: one group of every channel)."
        )
    for r in runs:
        if r.datatype not in datatypes:
            continue
        have = names[r.raw]
        for roi, chans in rois.items():
            missing = [c for c in chans if c not in have]
            if missing:
                hints = "; ".join(f"{c!r}{_close(c, have)}" for c in missing)
                where = channels_tsv(r.raw) or r.raw
                raise ConfigError(
                    f"Config key 'meeg.rois.{roi}': channel(s) {hints} not in {r.where} "
                    f"({where}): expected channels of the recording, got {have}. Fix "
                    "meeg.rois."
                )
