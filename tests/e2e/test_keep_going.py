"""One subject's broken input does not stop the others (--keep-going); the failure is reported.

sub-02's run-1 BOLD is corrupt inside its gzip stream: its header, its size and its gzip
trailer are intact (the checks at DAG construction pass), but its data do not decode (a
truncated file is caught at DAG construction instead), so only its preprocessing job fails.
sub-01 is finished, the group outputs are not written, and group/failed_jobs.tsv +
group/failures.html name the failed job and its log. Repairing the input and rerunning (the
README's command) finishes the study and deletes the failure summary.
"""

from __future__ import annotations

import shutil
from html import unescape

import numpy as np
import pytest
import yaml

from brainalign.io import read_tsv
from tests.conftest import job_counts, make_config, run_snakemake

pytestmark = pytest.mark.slow

BROKEN = "sub-02/func/sub-02_task-demo_run-1_bold.nii.gz"


def test_keep_going_finishes_other_subjects_and_reports_the_failure(tmp_path, demo_root):
    bids = tmp_path / "bids"
    shutil.copytree(demo_root / "bids", bids)
    data = (bids / BROKEN).read_bytes()
    broken = bytearray(data)
    broken[len(data) // 2: len(data) // 2 + 64] = bytes(64)  # inside the compressed stream
    (bids / BROKEN).write_bytes(bytes(broken))
    # one encoding job per subject: with the default parts (encoding.subjects_per_job: 10),
    # sub-01's encoding would wait for sub-02's responses, as the README says
    cfg = make_config(tmp_path, bids, **{"encoding.subjects_per_job": 1})
    settings = yaml.safe_load(cfg.read_text())
    layers = settings["features"]["models"]["efficientnet_lite0"]["layers"]
    rois = settings["fmri"]["rois"]["names"]
    out = tmp_path / "results"

    res = run_snakemake(tmp_path, cfg, "--keep-going", "--cores", "2")
    log = res.stdout + res.stderr
    assert res.returncode != 0, log[-3000:]
    assert "Error in rule fmri_preprocess" in log, log[-3000:]

    # the other subject is finished: complete score tables, no temporary files left
    tables = {
        "encoding": out / "sub-01" / "encoding" / "sub-01_desc-summary_scores.tsv",
        "rsa": out / "sub-01" / "rsa" / "sub-01_model-efficientnetlite0_scores.tsv",
    }
    for analysis, path in tables.items():
        table = read_tsv(path)
        assert set(table["analysis"]) == {analysis}
        assert set(table["subject"]) == {"01"}
        assert sorted(zip(table["roi"], table["layer"], strict=True)) == sorted(
            (r, layer) for r in rois for layer in layers)
        assert np.isfinite(table["score"]).all()
    assert not list(out.rglob(".partial-*"))
    assert not (out / "sub-02" / "encoding").exists()
    # group outputs are never written from part of the subjects
    assert not (out / "group" / "scores.tsv").exists()
    assert not (out / "group" / "report.html").exists()

    # the failure summary: the failed job, its log (which holds the error), the error
    failed = read_tsv(out / "group" / "failed_jobs.tsv")
    assert list(failed.columns) == ["rule", "subject", "wildcards", "log", "error"]
    assert len(failed) == 1, failed
    job = failed.iloc[0]
    assert (job["rule"], job["subject"]) == ("fmri_preprocess", "02")
    assert job["wildcards"] == "subject=02 task=demo run=1"
    job_log = tmp_path / job["log"]
    assert job_log.is_file()
    assert "could not be read" in job_log.read_text()
    assert job["error"].startswith("brainalign.errors.BIDSInputError: Corrupt BOLD image for "
                                   "sub-02 task-demo_run-1"), job["error"]
    assert "truncated or corrupt" in job["error"]
    html_path = out / "group" / "failures.html"
    assert f"failure summary: {html_path}" in res.stderr
    html = unescape(html_path.read_text())
    assert "results/logs/fmri_preprocess/sub-02_task-demo_run-1.log" in html
    assert f"{tables['rsa'].relative_to(tmp_path)}</td><td>complete (written by this run)" in html
    assert "sub-02_desc-summary_scores.tsv</td><td>missing" in html

    # repair the input and rerun the README's way (make rerun): only what is missing runs,
    # the study completes and the failure summary of the earlier run is gone
    (bids / BROKEN).write_bytes(data)
    assert run_snakemake(tmp_path, cfg, "--unlock").returncode == 0
    res = run_snakemake(tmp_path, cfg, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rerun = job_counts(res.stdout + res.stderr)
    assert rerun["fmri_preprocess"] == 1 and rerun["encoding_summarize"] == 1, rerun
    assert set(read_tsv(out / "group" / "scores.tsv")["subject"]) == {"01", "02"}
    assert (out / "group" / "report.html").is_file()
    assert not (out / "group" / "failed_jobs.tsv").exists()
    assert not (out / "group" / "failures.html").exists()
