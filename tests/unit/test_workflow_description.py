"""dataset_description.json of the derivatives: GeneratedBy names the containers that ran."""

from __future__ import annotations

import json
import subprocess

import pytest

from brainalign import __version__
from brainalign.report.steps import step_describe
from brainalign.workflow import STEP_FAMILIES, container_images, derivative_description
from tests.unit.test_demo import _find_validator


def test_container_images_follow_the_version():
    images = container_images("1.2.3")
    assert list(images) == list(STEP_FAMILIES) == ["fmri", "meeg", "features", "analysis", "report"]
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


def _run_job(log, rule, **wildcards):
    """Run an empty job body through the real job_context, logging to ``log``."""
    from types import SimpleNamespace

    from brainalign.workflow import job_context

    class Named(dict):
        pass

    smk = SimpleNamespace(rule=rule, wildcards=Named(wildcards), log=[str(log)], threads=1,
                          params=SimpleNamespace(version=__version__))
    with job_context(smk):
        pass


def test_job_environments_are_collected_from_the_job_logs(tmp_path):
    import sys

    from brainalign.report import collect_job_environments

    logs = tmp_path / "logs"
    _run_job(logs / "fmri_glm" / "sub-01_run-1.log", "fmri_glm", subject="01", run="1")
    _run_job(logs / "fmri_glm" / "sub-02_run-1.log", "fmri_glm", subject="02", run="1")
    _run_job(logs / "report_scores" / "group.log", "report_scores")
    (logs / "broken").mkdir()
    (logs / "broken" / "x.log").write_text("no environment line here\n")
    envs = collect_job_environments(logs)
    assert list(envs) == ["fmri_glm", "report_scores"]
    (env,) = envs["fmri_glm"]  # two jobs, one environment
    assert env == envs["report_scores"][0]
    assert env["python"]["executable"] == sys.executable
    assert env["brainalign"]["version"] == __version__
    import numpy

    assert env["packages"]["numpy"] == numpy.__version__
    # a job that ran elsewhere shows up as a second environment of its rule
    text = (logs / "fmri_glm" / "sub-02_run-1.log").read_text()
    (logs / "fmri_glm" / "sub-02_run-1.log").write_text(
        text.replace(f'"version": "{__version__}"', '"version": "0.0.9"', 1))
    assert len(collect_job_environments(logs)["fmri_glm"]) == 2


def test_imported_package_versions_read_the_copy_that_was_loaded(tmp_path):
    """Planted: a second numpy on another search path, as a container sees the host's."""
    from importlib import metadata
    from types import SimpleNamespace

    import numpy

    from brainalign.report import imported_package_versions

    site = tmp_path / "site-packages"
    (site / "numpy").mkdir(parents=True)
    (site / "numpy" / "__init__.py").write_text("")
    (site / "numpy-0.0.1.dist-info").mkdir()
    (site / "numpy-0.0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: numpy\nVersion: 0.0.1\n")
    loaded = {"numpy": SimpleNamespace(__file__=str(site / "numpy" / "__init__.py")),
              "numpy.linalg": numpy.linalg, "json": __import__("json")}
    assert metadata.version("numpy") == numpy.__version__ != "0.0.1"
    assert imported_package_versions(loaded) == {"numpy": "0.0.1"}
    # the real modules: the interpreter's own numpy, and nothing that was not imported
    real = imported_package_versions({"numpy": numpy, "json": __import__("json")})
    assert real == {"numpy": numpy.__version__}
