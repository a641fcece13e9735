"""profiles/slurm on a real SLURM cluster: the demo gives the same scores as a local run, and a
job that fails once is resubmitted and succeeds.

Jobs go through the real snakemake-executor-plugin-slurm: sbatch, then sacct for their state.
Only the test's scale differs from the profile: ``--jobs 4`` and a 2 s first status check.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_same_scores, job_counts, make_config, run_snakemake
from tests.slurm import local_slurm
from tests.slurm.conftest import PROFILE

RUN_ID = re.compile(r"SLURM run ID: (\S+)")
COMMENT = re.compile(r"rule_(.+?)(_wildcards_.*)?$")


def slurm_args(*extra: str) -> list[str]:
    """Command-line options of a run through the cluster profile, at test scale."""
    return ["--workflow-profile", str(PROFILE), "--jobs", "4",
            "--slurm-init-seconds-before-status-checks", "2", *extra]


def run_id(output: str) -> str:
    """The executor's run ID: the SLURM job name of every job the run submitted."""
    found = RUN_ID.findall(output)
    assert len(found) == 1, f"expected one 'SLURM run ID' line in the output:\n{output[-3000:]}"
    return found[0]


def rules_of(rows: list[dict[str, str]]) -> Counter:
    """Rule name of each SLURM job, from the comment the executor gives it."""
    matches = [COMMENT.match(r["Comment"]) for r in rows]
    assert all(matches), f"a job without the executor's rule_<name> comment: {rows}"
    return Counter(m.group(1) for m in matches)


def planned_resources(output: str, rule: str) -> dict[str, str]:
    """``threads`` and the ``resources`` Snakemake printed for the first job of ``rule``."""
    block = output[output.index(f"rule {rule}:"):]
    block = block[:block.index("\nSelect jobs") if "\nSelect jobs" in block else None]
    threads = re.search(r"^\s+threads: (\d+)$", block, re.MULTILINE)
    resources = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE).group(1)
    return {"threads": threads.group(1) if threads else "1",
            **dict(item.split("=", 1) for item in resources.split(", "))}


def test_profile_parses_and_names_existing_rules(demo_root, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm",
                        reason="pip install -r requirements-slurm.txt")
    cfg = make_config(tmp_path, demo_root / "bids")
    res = run_snakemake(tmp_path, cfg, *slurm_args("-n"))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    # the cluster profile replaces profiles/default/ instead of merging with it
    assert f"Using workflow specific profile {PROFILE}" in out
    assert "profiles/default" not in out
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    # every rule the profile names exists: in the demo's DAG, or in rules/*.smk (fmriprep,
    # which the demo's light preprocessing does not include)
    rules = set(job_counts(res.stdout))
    assert {"fmri_glm", "report_html"} <= rules
    named = r"^\s*rule (\w+):|^\s*name:\s*\n\s*\"(\w+)\""  # rule x: / rule: name: "x"
    defined = rules | {m.group(1) or m.group(2)
                       for f in (PROFILE.parents[1] / "rules").glob("*.smk")
                       for m in re.finditer(named, f.read_text(), re.M)}
    assert "fmriprep" in defined
    assert set(profile["set-resources"]) <= defined, "set-resources names an unknown rule"


@pytest.mark.slow
def test_demo_through_slurm_equals_local_run(finished_run, slurm_cluster, tmp_path_factory):
    # finished_run (tests/conftest.py): the demo run locally with --cores 2, shared with e2e/
    local, _, demo_root = finished_run
    remote = tmp_path_factory.mktemp("slurm")
    res = run_snakemake(remote, make_config(remote, demo_root / "bids"), *slurm_args())
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]

    # every job except the local rule `all` went through sbatch, and sacct lists exactly those
    planned = job_counts(out)
    planned.pop("all")
    rows = slurm_cluster.accounting(job_name=run_id(out))
    assert {r["State"] for r in rows} == {"COMPLETED"}, rows
    assert rules_of(rows) == Counter(planned)
    assert {r["Partition"] for r in rows} == {slurm_cluster.partition}
    assert {Path(r["WorkDir"]) for r in rows} == {remote}
    # threads -> --cpus-per-task, mem_mb -> --mem, runtime (set-resources of the profile) -> -t
    rule = "features_extract_efficientnet_lite0"
    [features] = [r for r in rows if r["Comment"] == f"rule_{rule}"]
    plan = planned_resources(out, rule)
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert plan["runtime"] == str(profile["set-resources"][rule]["runtime"])
    hours, minutes = divmod(int(plan["runtime"]), 60)
    assert (features["AllocCPUS"], features["ReqMem"], features["Timelimit"]) == (
        plan["threads"], f"{plan['mem_mb']}M", f"{hours:02d}:{minutes:02d}:00")
    # the profile's gpu: 1 -> --gpus=1: the feature job got the node's GPU, no other job did
    assert profile["set-resources"][rule]["gpu"] == 1
    assert "gres/gpu=1" in features["AllocTRES"].split(","), features
    assert not [r for r in rows if r is not features and "gres/gpu" in r["AllocTRES"]]

    assert_same_scores(remote, local)


FLAKY_SNAKEFILE = """\
# Fails on its first attempt, succeeds on the second.
rule flaky:
    output: "done.txt"
    resources:
        mem_mb=300,
        runtime=5,
        try_no=lambda wildcards, attempt: attempt,
    shell: "test {resources.try_no} -ge 2 && echo {resources.try_no} > {output}"
"""


@pytest.mark.slow
def test_transient_failure_is_retried(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FLAKY_SNAKEFILE)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(tmp_path / "Snakefile"),
           "--directory", str(tmp_path), *slurm_args()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert (tmp_path / "done.txt").read_text().strip() == "2"

    rows = slurm_cluster.accounting(job_name=run_id(out))
    assert [r["State"] for r in rows] == ["FAILED", "COMPLETED"], rows
    assert rules_of(rows) == Counter({"flaky": 2})
    assert [r["ReqMem"] for r in rows] == ["300M", "300M"]


def test_harness_explains_why_it_cannot_run(monkeypatch):
    monkeypatch.setattr(local_slurm.sys, "platform", "linux")
    monkeypatch.setattr(local_slurm.os, "geteuid", lambda: 1000)
    assert "needs root" in local_slurm.unavailable_reason()
