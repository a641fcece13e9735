"""dataset_description.json of the derivatives: GeneratedBy names the containers that ran."""

from __future__ import annotations

import json
import subprocess

import pytest

from brainalign import __version__
from brainalign.steps import step_describe
from brainalign.workflow import STEP_FAMILIES, container_images, derivative_description
from tests.unit.test_demo import _find_validator


def test_container_images_follow_the_version():
    images = container_images("1.2.3")
    assert list(images) == list(STEP_FAMILIES) == ["fmri", "features", "analysis", "report"]
    assert images["features"] == "docker://localhost/brainalign-features:1.2.3"
    assert container_images()["fmri"].endswith(f":{__version__}")


def test_host_run_names_no_container(tmp_path):
    desc = derivative_description(str(tmp_path))
    [generated] = desc["GeneratedBy"]
    assert generated["Version"] == __version__ and "Container" not in generated
    assert desc["SourceDatasets"] == [{"URL": tmp_path.resolve().as_uri()}]


def test_container_run_names_each_family_image(tmp_path):
    desc = derivative_description(str(tmp_path), containers=container_images())
    assert [g["Container"] for g in desc["GeneratedBy"]] == [
        {"Type": "docker", "Tag": f"localhost/brainalign-{f}:{__version__}"}
        for f in STEP_FAMILIES]
    assert [g["Description"].split()[2] for g in desc["GeneratedBy"]] == list(STEP_FAMILIES)


def test_description_passes_the_bids_validator(tmp_path):
    """The derivative's description (with containers) is valid BIDS, checked by the validator."""
    validator = _find_validator()
    if validator is None:
        pytest.skip("bids-validator-deno is not installed (pip install bids-validator-deno)")
    root = tmp_path / "derivatives"
    step_describe(derivative_description(str(tmp_path), containers=container_images()),
                  description_out=str(root / "dataset_description.json"))
    assert json.loads((root / "dataset_description.json").read_text())["DatasetType"] == \
        "derivative"
    res = subprocess.run([validator, "--format", "json", str(root)], capture_output=True,
                         text=True, timeout=300)
    report = json.loads(res.stdout)
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"
              and "dataset_description" in str(i.get("location", ""))]
    assert not errors, errors
