"""Environments per step family: conda env files and container recipes, pinned alike."""

from __future__ import annotations

import fnmatch
import re

import pytest
import yaml

from tests.conftest import REPO

FAMILIES = ("fmri", "meeg", "features", "analysis", "report")


def _pins(lines):
    out = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s#]+)\s*(#.*)?", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


REQUIREMENTS = _pins((REPO / "requirements.txt").read_text().splitlines())


def _env_pip(family):
    deps = yaml.safe_load((REPO / "envs" / f"{family}.yaml").read_text())["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)


@pytest.mark.parametrize("family", FAMILIES)
def test_env_pins_agree_with_requirements(family):
    env = yaml.safe_load((REPO / "envs" / f"{family}.yaml").read_text())
    assert env["name"] == f"brainalign-{family}"
    assert "python=3.11" in env["dependencies"]
    pip = _env_pip(family)
    pins = _pins(pip)
    assert pins, f"envs/{family}.yaml pins nothing"
    for name, version in pins.items():
        assert REQUIREMENTS.get(name) == version, (family, name, version)
    # every dependency is pinned exactly (brainalign itself comes from the post-deploy script)
    assert all("==" in p for p in pip), pip
    # the container images install envs/<family>.txt: the same pins, nothing more or less
    txt = (REPO / "envs" / f"{family}.txt").read_text().splitlines()
    assert _pins(txt) == pins
    assert all(line.startswith("#") or "==" in line for line in txt if line.strip())


def test_torch_and_torchvision_travel_together():
    feats = _pins(_env_pip("features"))
    assert feats["torch"] == REQUIREMENTS["torch"] == "2.14.1"
    assert feats["torchvision"] == REQUIREMENTS["torchvision"] == "0.29.1"


@pytest.mark.parametrize("family", FAMILIES)
def test_conda_env_installs_brainalign_after_creation(family):
    """Snakemake runs envs/<family>.post-deploy.sh in a new env (it is found by that name)."""
    script = REPO / "envs" / f"{family}.post-deploy.sh"
    assert script.resolve() == (REPO / "envs" / "post-deploy.sh").resolve()
    text = script.read_text()
    assert 'pip install --no-deps --no-cache-dir "$BRAINALIGN_SOURCE"' in text
    smk = (REPO / "rules" / "common.smk").read_text()
    assert "os.environ.update(BRAINALIGN_SOURCE=workflow.basedir)" in smk


def test_post_deploy_script_installs_the_workflow_version(tmp_path):
    """The post-deploy script, run in a fresh environment, installs this checkout's package."""
    import os
    import subprocess
    import sys

    venv = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "BRAINALIGN_SOURCE": str(REPO)}
    env.pop("VIRTUAL_ENV", None)
    res = subprocess.run(["bash", str(REPO / "envs" / "fmri.post-deploy.sh")], env=env,
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    from brainalign import __version__

    assert f"brainalign {__version__} installed in {venv}" in res.stdout
    # without BRAINALIGN_SOURCE it stops and says where it comes from
    env.pop("BRAINALIGN_SOURCE")
    res = subprocess.run(["bash", str(REPO / "envs" / "fmri.post-deploy.sh")], env=env,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode != 0 and "rules/common.smk" in res.stderr


def _def_sections(text):
    sections, current = {"header": []}, "header"
    for line in text.splitlines():
        if line.startswith("%"):
            current = line[1:].strip()
            sections[current] = []
        elif line.strip() and not line.lstrip().startswith("#"):
            sections[current].append(line.strip())
    return sections


@pytest.mark.parametrize("family", FAMILIES)
def test_apptainer_recipe_matches_the_containerfile(family):
    """containers/<family>.def and .Containerfile copy the same files and run the same script."""
    containerfile = (REPO / "containers" / f"{family}.Containerfile").read_text().splitlines()
    sections = _def_sections((REPO / "containers" / f"{family}.def").read_text())
    assert "Bootstrap: docker" in sections["header"]
    assert "From: debian:bookworm-slim" in sections["header"]
    assert "ARG BASE=docker.io/library/debian:bookworm-slim" in containerfile

    copied = set()
    for line in containerfile:
        if line.startswith("COPY "):
            *sources, dest = line.split()[1:]
            for src in sources:
                copied.add((src, dest + src if dest.endswith("/") else dest))
    assert {tuple(line.split()) for line in sections["files"]} == copied
    for src, _ in copied:
        assert (REPO / src).exists(), src
    run = [line[len("RUN "):] for line in containerfile if line.startswith("RUN ")]
    assert run == sections["post"] == [f"sh /opt/brainalign-src/containers/install.sh {family}"]
    assert "export PATH=/opt/venv/bin:$PATH" in sections["environment"]
    assert "ENV PATH=/opt/venv/bin:$PATH" in containerfile


def test_build_context_holds_what_install_needs():
    """.containerignore lets through exactly the files the Containerfiles copy."""
    ignore = (REPO / ".containerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for family in FAMILIES:
        for line in (REPO / "containers" / f"{family}.Containerfile").read_text().splitlines():
            if line.startswith("COPY "):
                for src in line.split()[1:-1]:
                    assert src in allowed or any(
                        fnmatch.fnmatch(src, pat) for pat in allowed), (family, src)


def test_job_context_refuses_a_different_package_version(tmp_path):
    """A job whose environment has another brainalign version stops, saying so."""
    from types import SimpleNamespace

    from brainalign.errors import BrainAlignError
    from brainalign.workflow import job_context

    log = tmp_path / "job.log"

    class Named(list):
        def items(self):
            return [("subject", "01")]

    smk = SimpleNamespace(rule="encoding_fit", wildcards=Named(), log=[str(log)], threads=1,
                          params=SimpleNamespace(version="9.9.9"))
    with pytest.raises(BrainAlignError, match="workflow is brainalign 9.9.9 but this job's"):
        with job_context(smk):
            pass
    text = log.read_text()
    assert "failed" in text and "subject=01" in text
