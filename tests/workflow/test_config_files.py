"""Config that does what the user wrote: a user's file replaces the default, relative paths
resolve the same way in the brainalign command and in Snakemake, messages that guide."""

from __future__ import annotations

import shutil
import subprocess
import sys

import yaml

from tests.conftest import REPO, job_counts, make_config


def _snakemake_from_repo_root(*args: str):
    """snakemake run the way a user runs it in a checkout: from the repository root."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)


def test_user_configfile_replaces_the_default_from_the_repo_root(tmp_path, demo_root):
    # a user's study: another model, one ROI, its own output folder. Nothing of the demo's
    # config/config.yaml (EfficientNet, three ROIs) may leak into it.
    cfg = {
        "output_dir": str(tmp_path / "out"),
        "bids": {"bids_dir": str(demo_root / "bids"), "tasks": ["demo"]},
        "fmri": {"preprocessing": "light", "glm": {},
                 "rois": {"dseg": "derivatives/rois/sub-{subject}/anat/"
                                  "sub-{subject}_desc-demo_dseg.nii.gz",
                          "labels": "derivatives/rois/desc-demo_dseg.tsv",
                          "names": ["late"]}},
        "features": {"models": {"alex": {"architecture": "alexnet", "weights": "random",
                                         "layers": ["conv1", "fc6"]}}},
    }
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = _snakemake_from_repo_root("--configfile", str(path))
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout)
    assert counts["features_extract_alex"] == 1
    assert not any("efficientnet" in rule for rule in counts)
    assert counts["encoding_fit"] == 2  # the user's 2 layers, both subjects in one job each
    assert str(tmp_path / "out") in res.stdout and "results/" not in res.stdout


def test_without_configfile_the_demo_config_is_used_and_config_updates_it(tmp_path, demo_root):
    # `--config key=value` alone still starts from config/config.yaml
    res = _snakemake_from_repo_root(
        "--config", f"output_dir={tmp_path / 'o'}",
        f"bids={{'bids_dir': '{demo_root / 'bids'}', 'tasks': ['demo']}}")
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout)
    assert counts["features_extract_efficientnet_lite0"] == 1
    assert counts["encoding_fit"] == 5  # one job per layer for both subjects


def test_relative_paths_resolve_like_the_user_wrote_them(tmp_path, demo_root):
    """The brainalign command runs Snakemake in OUTPUT_DIR; a relative stimuli_dir written for
    the folder the user ran the command from must still be found."""
    cwd = tmp_path / "study"
    cwd.mkdir()
    shutil.copytree(demo_root / "bids" / "stimuli", cwd / "my_stimuli")
    cfg = yaml.safe_load(make_config(tmp_path, demo_root / "bids").read_text())
    cfg["bids"]["stimuli_dir"] = "my_stimuli"  # relative to cwd
    (cwd / "my.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run(
        [sys.executable, "-m", "brainalign.cli", str(demo_root / "bids"), "out", "group",
         "--config", "my.yaml", "--dry-run"],
        capture_output=True, text=True, timeout=600, cwd=cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    written = yaml.safe_load((cwd / "out" / "code" / "brainalign_config.yaml").read_text())
    assert written["bids"]["stimuli_dir"] == str(cwd / "my_stimuli")
    assert written["output_dir"] == str(cwd / "out")
    assert str(cwd / "my_stimuli") in res.stdout  # the stimuli the jobs read
    # the same config given to snakemake from the same folder reads the same stimuli
    direct = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
         "--configfile", "my.yaml"], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert direct.returncode == 0, direct.stdout + direct.stderr
    assert str(cwd / "my_stimuli") in direct.stdout


def test_help_shows_the_bids_app_usage():
    res = subprocess.run([sys.executable, "-m", "brainalign.cli", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert "brainalign BIDS_DIR OUTPUT_DIR {participant,group}" in res.stdout
    assert "--participant-label" in res.stdout and "demo-data" in res.stdout
