"""The BIDS-App command line: brainalign BIDS_DIR OUTPUT_DIR participant|group."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import job_counts


def _app(*args: str):
    return subprocess.run([sys.executable, "-m", "brainalign.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_participant_level_runs_only_the_selected_subjects_outputs(tmp_path, demo_root):
    out = tmp_path / "derivatives"
    res = _app(str(demo_root / "bids"), str(out), "participant", "--participant-label",
               "sub-02", "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout)
    assert counts["fmri_glm"] == 4 and counts["encoding_fit"] == 5
    assert "report_html" not in counts and "participant" in counts
    assert (out / "code" / "brainalign_config.yaml").is_file()


def test_group_level_includes_the_report(tmp_path, demo_root):
    res = _app(str(demo_root / "bids"), str(tmp_path / "d"), "group", "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout)
    assert counts["report_html"] == 1 and counts["fmri_glm"] == 8


def test_bad_participant_label_and_missing_config_are_named(tmp_path, demo_root):
    res = _app(str(demo_root / "bids"), str(tmp_path / "d"), "participant",
               "--participant-label", "07", "--dry-run")
    assert res.returncode != 0
    assert "['07']" in res.stdout + res.stderr
    res = _app(str(demo_root / "bids"), str(tmp_path / "d"), "group", "--config",
               str(tmp_path / "nope.yaml"))
    assert res.returncode == 1
    assert "nope.yaml (--config) does not exist" in res.stderr


def test_prepare_lists_what_an_offline_node_would_miss(tmp_path, demo_root):
    import yaml

    from brainalign.cli import prepare_report
    from tests.conftest import make_config

    cfg = yaml.safe_load(make_config(tmp_path, demo_root / "bids").read_text())
    assert prepare_report(cfg) == []
    cfg["bids"]["bids_dir"] = str(tmp_path / "elsewhere")
    assert any("bids.bids_dir" in m and "elsewhere" in m for m in prepare_report(cfg))
    cfg["features"]["models"]["vgg"] = {"architecture": "vgg16", "weights": "w/vgg16.pth",
                                        "layers": ["fc7"]}
    (msg,) = prepare_report(cfg)
    assert "Weights file 'w/vgg16.pth'" in msg and "Nothing is downloaded" in msg
    res = _app("prepare", "--config", str(tmp_path / "config.yaml"))
    assert res.returncode == 0 and "Everything this configuration needs is local" in res.stdout


def test_prepare_lists_step_images_missing_for_apptainer(tmp_path):
    """With --containers apptainer, prepare looks for the files Snakemake pulls them to."""
    import hashlib

    from brainalign.cli import missing_images
    from brainalign.workflow import container_images

    images = container_images()
    assert len(missing_images("apptainer", apptainer_prefix=str(tmp_path))) == 5
    for url in list(images.values())[:4]:
        (tmp_path / f"{hashlib.md5(url.encode()).hexdigest()}.simg").write_text("image")
    (msg,) = missing_images("apptainer", apptainer_prefix=str(tmp_path))
    assert images["report"] in msg and "step family report" in msg
    res = _app("prepare", "--containers", "apptainer", "--apptainer-prefix", str(tmp_path))
    assert res.returncode == 1 and "brainalign-report" in res.stdout


def test_prepare_needs_the_meeg_image_only_for_m_eeg_studies(tmp_path):
    from brainalign.cli import needed_families

    bids = tmp_path / "bids"
    (bids / "sub-01" / "func").mkdir(parents=True)
    base = ["fmri", "features", "analysis", "report"]
    assert needed_families({"bids": {"bids_dir": str(bids)}}) == base
    assert needed_families({"bids": {"bids_dir": str(bids), "modalities": ["eeg"]}}) == [
        "fmri", "meeg", "features", "analysis", "report"]
    (bids / "sub-02" / "ses-1" / "eeg").mkdir(parents=True)
    assert "meeg" in needed_families({"bids": {"bids_dir": str(bids)}})
    assert "meeg" not in needed_families(
        {"bids": {"bids_dir": str(bids), "participant_label": ["01"]}})
    assert "meeg" not in needed_families({"bids": {"bids_dir": str(bids),
                                                   "modalities": ["fmri"]}})
    assert needed_families({"bids": None, "external": {}}) == base
