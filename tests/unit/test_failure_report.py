"""The failure summary of a run with failed jobs, read from real Snakemake 9.27.1 output.

tests/unit/data/snakemake_failures/ holds logs written by real failing runs: demo/ by this
workflow with sub-02's run-1 BOLD truncated (--keep-going, one preprocessing job per subject),
capture/ by its own small Snakefile (retries, a shell tool's error, a rule script failing in
brainalign's job_context, a job without a log).
"""

from __future__ import annotations

import shutil
from html import unescape
from pathlib import Path

import pytest

from brainalign.io import read_tsv
from brainalign.report import (
    FAILED_JOB_COLUMNS,
    last_error,
    parse_snakemake_log,
    remove_failure_report,
    write_failure_report,
)

DATA = Path(__file__).parent / "data" / "snakemake_failures"
DEMO_LOG = DATA / "demo" / "keep_going.snakemake.log"
CAPTURE_LOG = DATA / "capture" / "keep_going.snakemake.log"


def test_parse_demo_run_finds_the_failed_job_with_its_wildcards_and_log():
    failed, written = parse_snakemake_log(DEMO_LOG.read_text())
    assert len(failed) == 1
    job = failed[0]
    assert job.rule == "fmri_preprocess"
    # 9.27.1 prints no wildcards in the error block: they come from the job's start block
    assert job.wildcards == {"subject": "02", "task": "demo", "run": "1"}
    assert job.log == ["results/logs/fmri_preprocess/sub-02_task-demo_run-1.log"]
    assert job.output[0] == "results/sub-02/func/sub-02_task-demo_run-1_desc-preproc_bold.nii.gz"
    assert job.message is None
    # the other subject's job finished: its three outputs were written by this run
    assert written == {
        f"results/sub-01/func/sub-01_task-demo_run-1_desc-{name}"
        for name in ("preproc_bold.nii.gz", "brain_mask.nii.gz", "confounds_timeseries.tsv")
    }


def test_parse_counts_a_retried_job_only_when_its_last_attempt_fails():
    failed, written = parse_snakemake_log(CAPTURE_LOG.read_text())
    by_rule = {(j.rule, tuple(j.wildcards.items())): j for j in failed}
    assert set(by_rule) == {
        ("no_log", ()),
        ("retried", (("outcome", "fail"),)),  # failed on both attempts
        ("python_fail", (("subject", "03"),)),
        ("shell_fail", ()),
    }  # retried/outcome=ok failed once, was restarted and finished: not a failure
    assert by_rule[("no_log", ())].log == []
    assert by_rule[("shell_fail", ())].log == ["logs/shell_fail.log"]
    assert written == {"out/retried_ok.txt", "out/ok_sub-01.txt"}


def test_parse_ignores_text_without_failures():
    assert parse_snakemake_log("") == ([], set())
    text = DEMO_LOG.read_text().split("RuleException:")[0]  # the run before the failure
    failed, written = parse_snakemake_log(text)
    assert failed == [] and written == set()


@pytest.mark.parametrize(
    ("log", "error"),
    [
        ("demo/results/logs/fmri_preprocess/sub-02_task-demo_run-1.log",
         "EOFError: Compressed file ended before the end-of-stream marker was reached"),
        # chained exception with a two-line message: the last exception, all of it
        ("capture/logs/python_fail/sub-03.log",
         "ValueError: sub-03: run 2 has 0 volumes expected at least 10"),
        ("capture/logs/shell_fail.log", "tool: ERROR cannot open input.dat"),
        ("capture/logs/retried/fail.log", "error: disk quota exceeded"),
        ("demo/results/logs/fmri_preprocess/sub-01_task-demo_run-1.log", ""),
        ("capture/logs/ok/sub-01.log", ""),
    ],
)
def test_last_error_of_real_job_logs(log, error):
    assert last_error((DATA / log).read_text()) == error


def test_write_failure_report_lists_failed_jobs_and_the_state_of_outputs(tmp_path, monkeypatch):
    run = tmp_path / "run"  # the run's working directory: log paths are relative to it
    shutil.copytree(DATA / "capture", run)
    monkeypatch.chdir(run)
    Path("out").mkdir()  # what the run wrote (outputs are not kept in data/)
    Path("out/ok_sub-01.txt").write_text("")
    Path("out/earlier.txt").write_text("")
    # the onerror handler's log argument: a list of Snakemake logs
    html_path = write_failure_report(
        [str(run / "keep_going.snakemake.log")], "results",
        outputs=["out/ok_sub-01.txt", "out/earlier.txt", "out/python_fail_sub-03.txt"])
    assert html_path == Path("results/group/failures.html")

    table = read_tsv("results/group/failed_jobs.tsv")
    assert list(table.columns) == FAILED_JOB_COLUMNS
    rows = {r["rule"]: r for r in table.to_dict("records")}
    assert set(rows) == {"no_log", "retried", "python_fail", "shell_fail"}
    assert rows["python_fail"]["subject"] == "03"  # stays a string
    assert rows["python_fail"]["wildcards"] == "subject=03"
    assert rows["python_fail"]["log"] == "logs/python_fail/sub-03.log"
    assert rows["python_fail"]["error"] == (
        "ValueError: sub-03: run 2 has 0 volumes expected at least 10")
    assert rows["retried"]["error"] == "error: disk quota exceeded"
    assert rows["no_log"]["error"] == "the job wrote no log; see the Snakemake log"
    for row in rows.values():  # every log named exists and holds the error
        if isinstance(row["log"], str):
            assert row["error"].split()[0] in Path(row["log"]).read_text()

    html = unescape(html_path.read_text())
    assert "4 job(s) failed" in html
    # links relative to the HTML file, so they open from a browser
    assert "<a href='../../logs/python_fail/sub-03.log'>logs/python_fail/sub-03.log</a>" in html
    assert "out/ok_sub-01.txt</td><td>complete (written by this run)" in html
    assert "out/earlier.txt</td><td>present from an earlier run" in html
    assert "out/python_fail_sub-03.txt</td><td>missing" in html
    # never named like the complete outputs
    assert sorted(p.name for p in Path("results/group").iterdir()) == [
        "failed_jobs.tsv", "failures.html"]


def test_write_failure_report_without_a_snakemake_log(tmp_path):
    html_path = write_failure_report([], tmp_path)
    assert read_tsv(tmp_path / "group" / "failed_jobs.tsv").empty
    html = html_path.read_text()
    assert "none (file logging was off)" in html
    assert "No failed job was found" in html


def test_remove_failure_report_deletes_only_the_failure_files(tmp_path):
    write_failure_report(str(DEMO_LOG), tmp_path)
    (tmp_path / "group" / "scores.tsv").write_text("kept")
    removed = remove_failure_report(tmp_path)
    assert sorted(p.name for p in removed) == ["failed_jobs.tsv", "failures.html"]
    assert [p.name for p in (tmp_path / "group").iterdir()] == ["scores.tsv"]
    assert remove_failure_report(tmp_path) == []
