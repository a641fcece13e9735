"""A run killed half-way leaves nothing that counts as complete; rerunning finishes it.

The rerun (the README's command) gives results equal to an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from brainalign.io import read_tsv
from tests.conftest import REPO, make_config, run_snakemake

pytestmark = pytest.mark.slow


def test_kill_mid_run_then_rerun_equals_uninterrupted(tmp_path, demo_root, finished_run):
    cfg = make_config(tmp_path, demo_root / "bids")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(cfg), "--cores", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    glm_logs = tmp_path / "results" / "logs" / "fmri_glm"
    deadline = time.time() + 600
    # kill the whole process group (Snakemake and its running jobs) once some GLMs are done
    while time.time() < deadline and proc.poll() is None:
        if glm_logs.is_dir() and len(list(glm_logs.glob("*.log"))) >= 3:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = tmp_path / "results"
    assert not (out / "group" / "scores.tsv").exists()
    # whatever carries a final name was written whole (steps write a temporary name and
    # rename it at the end): every such file loads
    import nibabel as nib
    import numpy as np

    for path in out.rglob("*"):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.name.endswith(".nii.gz"):
            nib.load(path).get_fdata()
        elif path.suffix == ".npz":
            with np.load(path) as z:
                [z[k] for k in z.files]
        elif path.suffix == ".tsv":
            read_tsv(path)

    # the README's rerun command (`make rerun`): release the killed run's lock, then the same
    # snakemake call; the default profile sets rerun-incomplete, so jobs that were running
    # when the run was killed are redone
    assert run_snakemake(tmp_path, cfg, "--unlock").returncode == 0
    res = run_snakemake(tmp_path, cfg, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert not list(out.rglob(".partial-*"))

    ref_dir = finished_run[0]
    pd.testing.assert_frame_equal(read_tsv(out / "group" / "scores.tsv"),
                                  read_tsv(ref_dir / "results" / "group" / "scores.tsv"),
                                  rtol=1e-10, atol=1e-12)
