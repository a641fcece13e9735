"""End-to-end: the whole workflow on the demo study recovers the planted truth.

One real run (about two minutes on 2 cores), then: a second dry run finds nothing to do,
editing only the ridge settings reruns only encoding, summary and report jobs, and the outputs
are a BIDS derivative with a log per job and a report with figures and provenance.
"""

from __future__ import annotations

import json
import sys
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
import yaml

from brainalign.io import read_tsv
from tests.conftest import job_counts, run_snakemake

pytestmark = pytest.mark.slow


def _scores(work) -> pd.DataFrame:
    return read_tsv(work / "results" / "group" / "scores.tsv")


def test_scores_table_has_the_documented_columns(finished_run):
    work, _, _ = finished_run
    scores = _scores(work)
    for col in ["analysis", "subject", "roi", "model", "layer", "metric", "score",
                "noise_ceiling"]:
        assert col in scores.columns
    assert set(scores["analysis"]) == {"encoding", "rsa"}
    assert set(scores["subject"]) == {"01", "02"}
    # 2 analyses x 2 subjects x 3 ROIs x 5 layers
    assert len(scores) == 60


@pytest.mark.parametrize("analysis", ["encoding", "rsa"])
def test_planted_layers_are_recovered(finished_run, analysis):
    work, _, demo = finished_run
    truth = json.loads((demo / "truth.json").read_text())
    layers = yaml.safe_load((work / "config.yaml").read_text())["features"]["models"][
        "efficientnet_lite0"]["layers"]
    scores = _scores(work)
    s = scores[scores["analysis"] == analysis]
    for subject, g in s.groupby("subject"):
        best = {roi: g[g["roi"] == roi].sort_values("score").iloc[-1]["layer"]
                for roi in ("early", "late")}
        # the planted layer ranks first for its ROI
        assert best["early"] == truth["planted"]["early"], (subject, best)
        assert best["late"] == truth["planted"]["late"], (subject, best)
        # the early ROI's best layer comes from an earlier stage than the late ROI's
        assert layers.index(best["early"]) < layers.index(best["late"])
        null = g[g["roi"] == "null"]["score"]
        assert (null.abs() < 0.1).all(), null.tolist()
        # signal ROIs are well above the null ROI and below their noise ceiling (+ slack)
        sig = g[g["roi"].isin(["early", "late"])]
        assert sig["score"].max() > 0.5
        assert (sig["score"] <= sig["noise_ceiling"] + 0.05).all()


def test_second_dry_run_has_nothing_to_do(finished_run):
    work, cfg, _ = finished_run
    res = run_snakemake(work, cfg, "-n")
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


def test_editing_ridge_reruns_only_encoding_and_report(finished_run, tmp_path):
    work, cfg, _ = finished_run
    edited = yaml.safe_load(cfg.read_text())
    edited["encoding"]["ridge"]["alphas"] = [1.0, 100.0, 10000.0]
    new_cfg = tmp_path / "edited.yaml"
    # keys sorted on purpose: reordering YAML keys must not rerun anything
    new_cfg.write_text(yaml.safe_dump(edited, sort_keys=True))
    res = run_snakemake(work, new_cfg, "-n")
    assert res.returncode == 0, res.stdout + res.stderr
    assert set(job_counts(res.stdout)) == {
        "encoding_fit", "encoding_summarize", "report_scores", "report_html", "all"}


def test_outputs_are_a_bids_derivative_with_logs(finished_run):
    work, _, _ = finished_run
    out = work / "results"
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    # a run on the host names no container
    [generated] = desc["GeneratedBy"]
    assert generated["Name"] == "brainalign" and "Container" not in generated
    assert (out / "sub-01" / "func" /
            "sub-01_task-demo_run-1_desc-singletrial_statmap.nii.gz").is_file()
    logs = sorted((out / "logs").rglob("*.log"))
    # one log per job: ingest 1, preprocess 8, GLM 8, responses 2, features 1, layer RDMs 1,
    # encoding fits 5 (one per layer for both subjects), summaries 2, ROI RDMs 2, RSA compare
    # 2, scores 1, report 1, description 1
    assert len(logs) == 35
    assert len(list((out / "logs" / "encoding_fit").glob("*.log"))) == 5
    glm_log = (out / "logs" / "fmri_glm" / "sub-01_task-demo_run-1.log").read_text()
    assert "subject=01" in glm_log and "done" in glm_log
    assert not list(out.rglob(".partial-*"))


def test_provenance_json_has_config_and_versions(finished_run):
    work, _, _ = finished_run
    prov = json.loads((work / "results" / "group" / "provenance.json").read_text())
    assert prov["config"]["encoding"]["ridge"]["n_folds"] == 5
    assert prov["software"]["brainalign"] == "0.1.0" and prov["software"]["torch"] == "2.14.1"
    assert prov["dataset"]["subjects"] == ["01", "02"] and prov["dataset"]["n_stimuli"] == 48
    # the environment of every rule's jobs, read from their logs: here all on the host venv
    envs = prov["job_environments"]
    rules = {p.name for p in (work / "results" / "logs").iterdir() if p.is_dir()}
    assert set(envs) == rules and len(rules) == 13
    for (env,) in envs.values():
        assert Path(env["python"]["executable"]).resolve() == Path(sys.executable).resolve()
        assert env["brainalign"]["version"] == "0.1.0" and env["container_family"] is None
        assert env["packages"]["numpy"] == "2.4.6"
    # packages are those each job imported: torch only where the network ran
    with_torch = {rule for rule, (env,) in envs.items() if "torch" in env["packages"]}
    assert with_torch == {r for r in rules if r.startswith("features_extract")}
    assert {envs[r][0]["packages"]["torch"] for r in with_torch} == {"2.14.1"}


def test_report_has_figures_and_provenance(finished_run):
    work, _, _ = finished_run
    html = unescape((work / "results" / "group" / "report.html").read_text())
    assert html.count("<img src='data:image/png;base64,") >= 5  # 2 analyses + 2 + 1 RDM rows
    assert "Provenance" in html and '"brainalign": "0.1.0"' in html
    assert '"ridge"' in html and "brainalign demo" in html
