"""BIDS names: entity labels in folder and file names, and one file per run.

pybids parses names leniently (a folder ``sub-01;x`` is read as subject ``01``), so the names
of the selected BOLD files are checked here against BIDS before anything in them is read.
Nothing is ever executed from a name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from brainalign.errors import BIDSInputError

__all__ = [
    "LABEL",
    "BOLD_EXTENSIONS",
    "split_name",
    "name_entities",
    "bold_name_problems",
    "data_name_problems",
    "raise_name_problems",
    "check_unique_runs",
]

#: A BIDS label: letters and digits only.
LABEL = re.compile(r"[A-Za-z0-9]+")
#: A BIDS index (run, echo, ...): a non-negative integer.
_INDEX = re.compile(r"[0-9]+")
_INDEX_ENTITIES = frozenset({"run", "echo", "flip", "inv", "split", "chunk"})
_KEY = re.compile(r"[a-z]+")
#: File extensions of BOLD images.
BOLD_EXTENSIONS = (".nii.gz", ".nii")
_MAX_LISTED = 10  # problems listed in one message


def split_name(name: str, suffix: str, extensions: Sequence[str]) -> list[str] | None:
    """The ``key-value`` fields of ``<fields>_<suffix><ext>``, or None for another suffix/ext."""
    for ext in extensions:
        if name.endswith(f"_{suffix}{ext}"):
            return name[: -len(f"_{suffix}{ext}")].split("_")
    return None


def name_entities(fields: list[str]) -> tuple[dict[str, str], list[str]]:
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
        elif key not in _INDEX_ENTITIES and not LABEL.fullmatch(value):
            problems.append(f"{key} label {value!r} is not letters and digits only")
        ents.setdefault(key, value)
    return ents, problems


def bold_name_problems(rel: PurePosixPath) -> tuple[dict[str, str], list[str]]:
    """Entities of a BOLD file (path relative to the dataset) and what BIDS would not accept.

    Expected: ``sub-<label>/[ses-<label>/]func/sub-<label>[_ses-<label>]_task-<label>
    [_<key>-<label>...][_run-<index>]_bold.nii[.gz]``, folder and file labels equal.
    """
    return data_name_problems(rel, datatype="func", suffix="bold", extensions=BOLD_EXTENSIONS)


def data_name_problems(rel: PurePosixPath, *, datatype: str, suffix: str,
                       extensions: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Entities of a data file (path relative to the dataset) and what BIDS would not accept.

    Parameters
    ----------
    rel : PurePosixPath
        The file, relative to the dataset root.
    datatype : str
        Its datatype folder (``func``, ``eeg``, ``meg``).
    suffix : str
        Its suffix (``bold``, ``eeg``, ``meg``).
    extensions : sequence of str
        Its possible extensions.

    Returns
    -------
    entities : dict
        ``key -> label`` of the file name.
    problems : list of str
        What BIDS would not accept (empty when the name is valid).
    """
    *folders, name = rel.parts
    problems = []
    fields = split_name(name, suffix, extensions) or []
    ents, name_problems = name_entities(fields)
    problems += [f"file name: {p}" for p in name_problems]
    if not fields or fields[0].partition("-")[0] != "sub":
        problems.append("file name: does not start with sub-<label>")
    if "task" not in ents:
        problems.append("file name: has no task-<label>")
    folder_ents: dict[str, str] = {}
    folder_keys = set()  # sub/ses folders present, with a valid label or not
    shape_ok = len(folders) in (2, 3) and folders[-1] == datatype
    for folder, key in zip(folders[:-1], ("sub", "ses"), strict=False):
        prefix, sep, value = folder.partition("-")
        if prefix != key or not sep:
            shape_ok = False
            continue
        folder_keys.add(key)
        if LABEL.fullmatch(value):
            folder_ents[key] = value
        else:
            problems.append(f"folder {folder!r}: {key} label {value!r} is not letters and "
                            "digits only")
    if not shape_ok:
        problems.append(f"folders {'/'.join(folders)!r}: expected sub-<label>/{datatype}/ or "
                        f"sub-<label>/ses-<label>/{datatype}/")
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


def raise_name_problems(bids_dir: Path, bad: list[tuple[str, list[str]]]) -> None:
    """Stop with one message that lists the invalid names (their folders first).

    Parameters
    ----------
    bids_dir : Path
        The dataset.
    bad : list of (str, list of str)
        Relative path of each invalid BOLD file and what BIDS would not accept in its name.

    Raises
    ------
    BIDSInputError
        Always.
    """
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


def check_unique_runs(selected: list[tuple[str, dict[str, str]]]) -> None:
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


