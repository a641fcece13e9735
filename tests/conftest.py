"""Shared fixtures: the demo dataset (generated once per session) and a Snakemake runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# with CI=true a skipped test fails (tests/ci_no_skips.py)
pytest_plugins = ["tests.ci_no_skips"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """The built-in demo study (bids/ + truth.json), generated once for the session."""
    from brainalign.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("demo") / "demo"
    make_demo_dataset(root)
    return root


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A one-subject demo (fMRI + EEG) on a small grid, for the unit tests: (out, bids)."""
    from brainalign.demo import DemoSpec, make_demo_dataset

    out = tmp_path_factory.mktemp("small_demo") / "out"
    bids = make_demo_dataset(out, spec=DemoSpec(n_subjects=1, n_runs=2, grid_shape=(12, 12, 8),
                                                n_roi_voxels=20))
    return out, bids


def make_config(workdir: Path, bids_dir: Path, **sections) -> Path:
    """Write the repo's config with bids_dir pointed at ``bids_dir`` and sections updated.

    ``bids.modalities`` is ``[fmri]`` unless a test sets it (e.g. ``**{"bids.modalities":
    "auto"}``) or sets ``fmri=None`` (an M/EEG-only study: then ``auto``): the demo also has
    EEG, which the fMRI tests leave out to stay as fast as before.
    """
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["bids"]["bids_dir"] = str(bids_dir)
    if sections.get("fmri", {}) is not None:
        cfg["bids"]["modalities"] = ["fmri"]
    cfg["output_dir"] = "results"
    for key, value in sections.items():
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_snakemake(workdir: Path, configfile: Path, *args: str, timeout: int = 1800):
    """Run the workflow's Snakefile in ``workdir`` (a subprocess, like a user would)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)


def job_counts(stdout: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    counts, in_table = {}, False
    for line in stdout.splitlines():
        if line.startswith("Job stats"):
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    break
                counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, demo_root):
    """One complete, uninterrupted workflow run on the demo study: (workdir, config, demo)."""
    work = tmp_path_factory.mktemp("e2e")
    cfg = make_config(work, demo_root / "bids")
    res = run_snakemake(work, cfg, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, cfg, demo_root


def assert_same_scores(got_workdir: Path, want_workdir: Path, *, rtol: float = 1e-10) -> None:
    """The group scores table of two runs is the same: labels exactly, numbers to ``rtol``."""
    import pandas as pd

    from brainalign.io import read_tsv

    want = read_tsv(want_workdir / "results" / "group" / "scores.tsv")
    got = read_tsv(got_workdir / "results" / "group" / "scores.tsv")
    assert list(got.columns) == list(want.columns)
    numeric = want.select_dtypes("number").columns
    assert len(numeric) >= 3
    pd.testing.assert_frame_equal(got.drop(columns=numeric), want.drop(columns=numeric))
    pd.testing.assert_frame_equal(got[numeric], want[numeric], check_exact=False, rtol=rtol,
                                  atol=0)
