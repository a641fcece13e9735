"""The step images build from this checkout with Podman, and the demo's steps run inside them.

The demo through ``--software-deployment-method apptainer`` (Podman behind a stand-in
``apptainer``, tests/containers/apptainer_shim.py) must give the same scores as the host run,
with every job inside the image of its step family and without network.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from brainalign import __version__
from tests.conftest import REPO, assert_same_scores, job_counts, make_config, run_snakemake
from tests.containers.conftest import podman_run

FAMILIES = ("fmri", "meeg", "features", "analysis", "report")
SHIM = Path(__file__).with_name("apptainer_shim.py")
#: step family of each rule, by rule-name prefix (rules/*.smk: container: CONTAINERS[family])
# (first match wins: the M/EEG analysis rules run in the analysis image, the MNE ones in meeg)
RULE_FAMILY = {"ingest_": "fmri", "fmri_": "fmri", "features_": "features",
               "meeg_preprocess": "meeg", "meeg_responses": "meeg", "meeg_group": "meeg",
               "meeg_": "analysis", "encoding_": "analysis", "rsa_": "analysis",
               "report_": "report"}


def _family(rule: str) -> str:
    return next(f for prefix, f in RULE_FAMILY.items() if rule.startswith(prefix))


def _pins(family: str) -> dict[str, str]:
    lines = (REPO / "envs" / f"{family}.txt").read_text().splitlines()
    return dict(line.lower().split("==") for line in lines if "==" in line)


@pytest.mark.parametrize("family", FAMILIES)
def test_image_holds_its_family_at_the_workflow_version(step_images, family):
    image = step_images[family]
    res = podman_run(image, "python", "-c",
                     "import brainalign, sys; print(brainalign.__version__, sys.executable, "
                     "open('/opt/brainalign/family').read().strip())")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [__version__, "/opt/venv/bin/python", family]

    freeze = podman_run(image, "cat", "/opt/brainalign/pip-freeze.txt")
    installed = dict(line.lower().split("==") for line in freeze.stdout.splitlines()
                     if "==" in line)
    for name, version in _pins(family).items():
        assert installed.get(name) == version, (family, name, installed.get(name))
    # each family carries only what its steps need: torch is in the features image alone
    has_torch = podman_run(image, "python", "-c", "import torch").returncode == 0
    assert has_torch == (family == "features")


@pytest.mark.slow
def test_demo_steps_in_their_images_equal_host_run(step_images, finished_run,
                                                     tmp_path_factory, monkeypatch):
    local, _, demo_root = finished_run
    work = tmp_path_factory.mktemp("containers")
    shim_bin = work / "shim-bin"
    shim_bin.mkdir()
    (shim_bin / "apptainer").symlink_to(SHIM)
    shim_log = work / "shim.jsonl"
    monkeypatch.setenv("PATH", f"{shim_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SHIM_LOG", str(shim_log))

    res = run_snakemake(work, make_config(work, demo_root / "bids"), "--cores", "2",
                        "--software-deployment-method", "apptainer")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]

    # every job but the local rule `all` ran through the stand-in, in one of the step images
    planned = job_counts(out)
    planned.pop("all")
    calls = [json.loads(line) for line in shim_log.read_text().splitlines()]
    assert len(calls) == sum(planned.values())
    # (the demo run here is its fMRI part: the meeg image is checked above, not run)
    assert {c["image"] for c in calls} == {step_images[_family(r)] for r in planned}
    assert all("--network=none" in c["argv"] for c in calls)

    # each job's log says it ran the image's brainalign, in the image of its rule's family
    logs = sorted((work / "results" / "logs").rglob("*.log"))
    assert len(logs) == sum(planned.values())
    for log in logs:
        rule = log.parent.name
        family = next(f for prefix, f in RULE_FAMILY.items() if rule.startswith(prefix))
        text = log.read_text()
        assert re.search(rf"brainalign {re.escape(__version__)} from "
                         r"/opt/venv/lib/python3\.\d+/site-packages/brainalign, "
                         rf"python /opt/venv/bin/python3?, container image of step family "
                         rf"{family}\b", text), (log, text[:500])

    # the derivative's dataset_description.json names the image of each step family
    desc = json.loads((work / "results" / "dataset_description.json").read_text())
    tags = {g["Description"].split()[2]: g["Container"] for g in desc["GeneratedBy"]}
    assert tags == {f: {"Type": "docker", "Tag": step_images[f]} for f in FAMILIES}

    # provenance.json records, per rule, the environment its jobs ran in: their image's
    envs = json.loads((work / "results" / "group" / "provenance.json").read_text())[
        "job_environments"]
    assert {r for r in envs} == {log.parent.name for log in logs}
    for rule, (env,) in envs.items():
        family = next(f for prefix, f in RULE_FAMILY.items() if rule.startswith(prefix))
        assert env["container_family"] == family, rule
        assert env["python"]["executable"].startswith("/opt/venv/bin/python")
        # the packages each job imported, at the versions pinned for its image
        imported = {k.lower(): v for k, v in env["packages"].items()}
        assert ("torch" in imported) == rule.startswith("features_extract"), rule
        assert imported.keys() & _pins(family).keys(), rule
        for name, version in _pins(family).items():
            if name in imported:
                assert imported[name] == version, (rule, name)

    # prepare, as on a login node before an offline run, finds every image: in Podman's
    # storage, and where this run's Snakemake keeps the pulled images
    for args in (["--containers", "podman"],
                 ["--containers", "apptainer", "--apptainer-prefix",
                  str(work / ".snakemake" / "singularity")]):
        res = subprocess.run([sys.executable, "-m", "brainalign.cli", "prepare", "--config",
                              str(work / "config.yaml"), *args],
                             capture_output=True, text=True, timeout=300, cwd=work)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "images); nothing will be downloaded" in res.stdout

    assert_same_scores(work, local)
