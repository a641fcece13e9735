"""How long the dry-run DAG takes to build for large BIDS layouts.

    python benchmarks/bench_dag.py [--subjects 25 50 100 200] [--runs 8]

Generates a BIDS layout of N subjects x R runs (tiny NIfTI files, 48 stimuli, events, ROI
atlases), then times ``snakemake -n`` with the default analyses (one model, 5 layers) in a
fresh process: BIDS indexing (once, at DAG construction) plus DAG building. Prints the time per
size and the growth relative to the smallest size (linear growth means time/N is flat).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def make_layout(root: Path, n_subjects: int, n_runs: int) -> Path:
    """Write a minimal valid layout; the stimuli are shared across subjects."""
    import nibabel as nib
    import pandas as pd
    from PIL import Image

    bids = root / "bids"
    (bids / "stimuli").mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "dag benchmark", "BIDSVersion": "1.10.0"}))
    (bids / "task-demo_bold.json").write_text(json.dumps({"TaskName": "demo",
                                                          "RepetitionTime": 2.0}))
    stim = [f"s{i:02d}.png" for i in range(48)]
    for s in stim:
        Image.new("RGB", (8, 8)).save(bids / "stimuli" / s)
    img = nib.Nifti1Image(np.ones((4, 4, 4, 40), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 2.0
    labels = nib.Nifti1Image(np.ones((4, 4, 4), np.int16), np.eye(4))
    rois = bids / "derivatives" / "rois"
    rois.mkdir(parents=True)
    pd.DataFrame({"index": [1], "name": ["early"]}).to_csv(rois / "desc-demo_dseg.tsv",
                                                           sep="\t", index=False)
    events = pd.DataFrame({"onset": np.arange(24) * 3.0, "duration": 1.0,
                           "trial_type": "x", "stim_file": stim[:24]})
    for i in range(1, n_subjects + 1):
        sub = f"{i:03d}"
        func = bids / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        for run in range(1, n_runs + 1):
            stem = func / f"sub-{sub}_task-demo_run-{run}"
            nib.save(img, f"{stem}_bold.nii.gz")
            ev = events.copy()
            if run % 2 == 0:
                ev["stim_file"] = stim[24:]
            ev.to_csv(f"{stem}_events.tsv", sep="\t", index=False)
        anat = rois / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True)
        nib.save(labels, anat / f"sub-{sub}_desc-demo_dseg.nii.gz")
    return bids


def time_dry_run(work: Path, bids: Path) -> tuple[float, int]:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["bids"]["bids_dir"] = str(bids)
    cfg["fmri"]["rois"]["names"] = ["early"]
    cfg["output_dir"] = "results"
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules",
                          "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
                          "--configfile", str(work / "config.yaml")],
                         capture_output=True, text=True, cwd=work)
    elapsed = time.perf_counter() - t
    if res.returncode:
        raise RuntimeError(res.stdout[-2000:] + res.stderr[-2000:])
    total = [ln for ln in res.stdout.splitlines() if ln.startswith("total")]
    return elapsed, int(total[0].split()[1]) if total else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--subjects", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args()
    rows = []
    for n in args.subjects:
        tmp = Path(tempfile.mkdtemp(prefix=f"dag{n}-"))
        try:
            bids = make_layout(tmp, n, args.runs)
            seconds, jobs = time_dry_run(tmp, bids)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append((n, jobs, seconds))
        print(f"{n:4d} subjects x {args.runs} runs: {jobs:6d} jobs, dry run {seconds:6.1f} s "
              f"({seconds / n * 1000:.0f} ms per subject)", flush=True)
    n0, _, t0 = rows[0]
    for n, _, t in rows[1:]:
        print(f"growth {n0}->{n} subjects (x{n / n0:.0f}): time x{t / t0:.2f}")


if __name__ == "__main__":
    main()
