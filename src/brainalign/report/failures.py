"""Failure summary of a run that ended with failed jobs (``snakemake --keep-going``)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from brainalign.io import write_tsv
from brainalign.report.html import render_template

__all__ = [
    "FAILED_JOB_COLUMNS",
    "FAILURE_FILES",
    "FailedJob",
    "parse_snakemake_log",
    "last_error",
    "write_failure_report",
    "remove_failure_report",
]

#: Files written to ``<output_dir>/group/`` when a run ends with failed jobs; the next
#: successful run removes them. Named apart from the complete outputs on purpose.
FAILURE_FILES = ("failed_jobs.tsv", "failures.html")

#: Columns of ``group/failed_jobs.tsv``, in order.
FAILED_JOB_COLUMNS = ["rule", "subject", "wildcards", "log", "error"]

# Snakemake's job blocks: a header line, then "key: value" items indented 4 more spaces.
_START_HEADER = re.compile(r"^(?P<indent> *)(?:local)?(?:rule|checkpoint) (?P<rule>\S+):$")
_ERROR_HEADER = re.compile(r"^(?P<indent> *)Error in rule (?P<rule>\S+):$")
_ITEM = re.compile(r"^(?P<indent> *)(?P<key>[\w-]+): ?(?P<value>.*)$")
# a failed job that is retried (``retries``) or that finished after all is no failure
_NOT_FAILED = re.compile(r"^\s*(?:Trying to restart job (?P<a>\d+)\.|Finished jobid: (?P<b>\d+)\b)")
_LOG_HINT = " (check log file(s) for error details)"
_WILDCARD = re.compile(r"(\w+)=(.*?)(?=, \w+=|$)")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


@dataclass
class FailedJob:
    """A job that failed in a Snakemake run, as its log reports it.

    Attributes
    ----------
    rule : str
    jobid : str
        Job id within that run.
    wildcards : dict of str to str
    log : list of str
        The job's log files (``log:`` of the rule; an executor may add its own).
    output : list of str
    message : str or None
        Snakemake's message for the job (executor status, ``message:`` of the rule).
    """

    rule: str
    jobid: str
    wildcards: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    message: str | None = None


def _split_files(value: str) -> list[str]:
    value = value.removesuffix(_LOG_HINT).strip()
    return [f for f in value.split(", ") if f]


def parse_snakemake_log(text: str) -> tuple[list[FailedJob], set[str]]:
    """Failed jobs and written outputs of one run, from the text of its Snakemake log.

    Reads the blocks Snakemake (9.x) prints when a job starts (``rule X:`` or ``localrule X:``,
    with ``jobid``, ``output``, ``log`` and ``wildcards`` items) and when it fails
    (``Error in rule X:``, whose items lack the wildcards: they are taken from the job's start
    block by job id). A job that is retried (``Trying to restart job N.``) or finishes later
    (``Finished jobid: N``) is not counted as failed.

    Parameters
    ----------
    text : str
        Content of ``.snakemake/log/<time>.snakemake.log`` (or Snakemake's stderr).

    Returns
    -------
    failed : list of FailedJob
        In the order the failures were reported.
    written : set of str
        Outputs of the jobs that finished successfully, as Snakemake printed them.
    """
    started: dict[str, dict[str, str]] = {}
    failed: dict[str, FailedJob] = {}
    finished: set[str] = set()
    block: tuple[str, str, int, dict[str, str]] | None = None  # kind, rule, indent, items

    def close(kind: str, rule: str, items: dict[str, str]) -> None:
        jobid = items.get("jobid", "")
        if kind == "start":
            started[jobid] = items
            return
        start = started.get(jobid, {})
        wildcards = items.get("wildcards", start.get("wildcards", ""))
        failed.pop(jobid, None)  # keep the report order of the last failure
        failed[jobid] = FailedJob(
            rule=rule,
            jobid=jobid,
            wildcards={k: v for k, v in _WILDCARD.findall(wildcards)},
            log=_split_files(items.get("log", start.get("log", ""))),
            output=_split_files(items.get("output", start.get("output", ""))),
            message=None if items.get("message", "None") == "None" else items["message"],
        )

    for line in text.splitlines():
        if block is not None:
            kind, rule, indent, items = block
            m = _ITEM.match(line)
            if m and len(m["indent"]) == indent + 4:
                items[m["key"]] = m["value"]
                continue
            if line.startswith(" " * (indent + 5)):  # continuation (shell command)
                continue
            close(kind, rule, items)
            block = None
        if m := _START_HEADER.match(line):
            block = ("start", m["rule"], len(m["indent"]), {})
        elif m := _ERROR_HEADER.match(line):
            block = ("error", m["rule"], len(m["indent"]), {})
        elif m := _NOT_FAILED.match(line):
            jobid = m["a"] or m["b"]
            failed.pop(jobid, None)
            if m["b"]:
                finished.add(jobid)
    if block is not None:
        close(block[0], block[1], block[3])
    written = {
        os.path.normpath(f)
        for jobid in finished
        for f in _split_files(started.get(jobid, {}).get("output", ""))
    }
    return list(failed.values()), written


def last_error(text: str) -> str:
    """The error a job's log ends with, on one line.

    Parameters
    ----------
    text : str
        Content of a job's log file.

    Returns
    -------
    error : str
        The exception of the last Python traceback (type and message, every line of it);
        else the last line that says "error"; else an empty string.
    """
    lines = text.splitlines()
    tracebacks = [i for i, s in enumerate(lines) if s.startswith("Traceback (most recent call")]
    if tracebacks:
        rest = lines[tracebacks[-1] + 1 :]
        # the stack's lines are indented; the exception starts at the first line that is not
        start = next((i for i, s in enumerate(rest) if s and not s[0].isspace()), len(rest))
        message = []
        for s in rest[start:]:
            if _TIMESTAMP.match(s):  # the next log record
                break
            message.append(s.strip())
        return " ".join(s for s in message if s)
    errors = [s.strip() for s in lines if re.search(r"error", s, re.IGNORECASE)]
    return errors[-1] if errors else ""


def _job_error(job: FailedJob, max_chars: int = 1000) -> str:
    error = ""
    for log in job.log:
        if Path(log).is_file():
            error = last_error(Path(log).read_text(errors="replace"))
            if error:
                break
    if not error:
        error = job.message or (
            "no error in the job's log" if any(Path(f).is_file() for f in job.log)
            else "the job wrote no log; see the Snakemake log"
        )
    error = " ".join(error.split())
    return error if len(error) <= max_chars else error[: max_chars - 3] + "..."


def write_failure_report(
    snakemake_log: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    *,
    outputs: Sequence[str] = (),
) -> Path:
    """Summarise a run that ended with failed jobs: which jobs failed, why, where their logs are.

    Writes ``<output_dir>/group/failed_jobs.tsv`` (columns ``FAILED_JOB_COLUMNS``: the rule,
    the job's ``subject`` wildcard, all its wildcards, its log files separated by ``;``, and
    the error its log ends with) and ``<output_dir>/group/failures.html``, which lists the same
    jobs and whether each of ``outputs`` was written by this run, is left from an earlier run,
    or is missing. Paths are as Snakemake printed them (relative to the working directory).

    Parameters
    ----------
    snakemake_log : path-like or sequence of path-like
        The run's Snakemake log file(s) (the ``log`` argument of ``onerror``).
    output_dir : path-like
        Root of the derivative dataset.
    outputs : sequence of str
        Outputs whose state to list (the per-subject score tables).

    Returns
    -------
    html : Path
        The HTML summary.
    """
    logs = [snakemake_log] if isinstance(snakemake_log, str | Path) else list(snakemake_log)
    text = "\n".join(Path(p).read_text(errors="replace") for p in logs if Path(p).is_file())
    failed, written = parse_snakemake_log(text)
    table = pd.DataFrame(
        [
            {
                "rule": job.rule,
                "subject": job.wildcards.get("subject", "n/a"),
                "wildcards": " ".join(f"{k}={v}" for k, v in job.wildcards.items()) or "n/a",
                "log": ";".join(job.log) or "n/a",
                "error": _job_error(job),
            }
            for job in failed
        ],
        columns=FAILED_JOB_COLUMNS,
    )
    group = Path(output_dir) / "group"
    write_tsv(table, group / FAILURE_FILES[0])

    def state(path: str) -> str:
        if not Path(path).is_file():
            return "missing"
        if os.path.normpath(path) in written:
            return "complete (written by this run)"
        return "present from an earlier run (not rewritten by this run)"

    def link(path: str) -> dict[str, str]:
        """A file as a link relative to the HTML file, so that it opens from a browser."""
        href = os.path.relpath(os.path.abspath(path), os.path.abspath(group))
        return {"path": path, "href": href}

    text = render_template(
        "failures.html",
        snakemake_logs=[link(str(p)) for p in logs],
        table_name=FAILURE_FILES[0],
        jobs=[
            {"rule": row.rule, "wildcards": row.wildcards, "error": row.error,
             "logs": [link(f) for f in job.log]}
            for job, row in zip(failed, table.itertuples(), strict=True)
        ],
        outputs=[{"path": p, "state": state(p)} for p in outputs],
    )
    out = group / FAILURE_FILES[1]
    out.write_text(text)
    return out


def remove_failure_report(output_dir: str | Path) -> list[Path]:
    """Delete the failure summary of an earlier run (called when a run succeeds).

    Parameters
    ----------
    output_dir : path-like
        Root of the derivative dataset.

    Returns
    -------
    removed : list of Path
        The files that existed and were deleted.
    """
    removed = []
    for name in FAILURE_FILES:
        path = Path(output_dir) / "group" / name
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed
