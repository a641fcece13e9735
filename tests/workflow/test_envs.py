"""Environment files: one per step family, pinned to the same versions as requirements.txt."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO

FAMILIES = ("fmri", "features", "analysis", "report")


def _pins(lines):
    out = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s#]+)\s*(#.*)?", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


REQUIREMENTS = _pins((REPO / "requirements.txt").read_text().splitlines())


@pytest.mark.parametrize("family", FAMILIES)
def test_env_pins_agree_with_requirements(family):
    env = yaml.safe_load((REPO / "envs" / f"{family}.yaml").read_text())
    assert env["name"] == f"brainalign-{family}"
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    pins = _pins(pip)
    assert pins, f"envs/{family}.yaml pins nothing"
    for name, version in pins.items():
        assert REQUIREMENTS.get(name) == version, (family, name, version)
    # every dependency is pinned exactly, and brainalign itself comes from this checkout
    assert all("==" in p or p == "-e ../" for p in pip), pip


def test_torch_and_torchvision_travel_together():
    feats = _pins(next(d["pip"] for d in yaml.safe_load(
        (REPO / "envs" / "features.yaml").read_text())["dependencies"] if isinstance(d, dict)))
    assert feats["torch"] == REQUIREMENTS["torch"] == "2.14.1"
    assert feats["torchvision"] == REQUIREMENTS["torchvision"] == "0.29.1"


@pytest.mark.parametrize("family", FAMILIES)
def test_container_definition_installs_the_pinned_requirements(family):
    text = (REPO / "containers" / f"{family}.Containerfile").read_text()
    assert "requirements.txt" in text and "/opt/brainalign" in text


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
