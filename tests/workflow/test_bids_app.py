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
