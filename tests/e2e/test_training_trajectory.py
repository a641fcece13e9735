"""End-to-end: a family of checkpoints runs as one DAG, one features job per checkpoint.

The checkpoints are examples/training_trajectory/make_checkpoints.py's synthetic trajectory of
EfficientNet-Lite0 (random init -> shipped ImageNet weights, alpha 0 ... 1); the brain is a
one-subject demo, whose early and late ROIs were planted from the shipped network's stage2 and
stage6.
"""

from __future__ import annotations

import importlib.util
import re
from html import unescape

import pandas as pd
import pytest

from brainalign.io import read_tsv
from tests.conftest import REPO, job_counts, make_config, run_snakemake

pytestmark = pytest.mark.slow

ALPHAS = (0.0, 0.5, 1.0)
LABELS = ("a000", "a050", "a100")


def _make_checkpoints(outdir):
    path = REPO / "examples" / "training_trajectory" / "make_checkpoints.py"
    spec = importlib.util.spec_from_file_location("make_checkpoints", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_checkpoints(outdir, alphas=ALPHAS)


def _detailed_summary(stdout: str) -> pd.DataFrame:
    lines = [ln for ln in stdout.splitlines() if "\t" in ln]
    header, *rows = (ln.split("\t") for ln in lines)
    return pd.DataFrame([r[: len(header)] for r in rows], columns=header)


def test_checkpoint_family_runs_once_per_checkpoint_and_is_plotted(tmp_path):
    from brainalign.demo import DemoSpec, make_demo_dataset

    # one subject, fMRI only, on a small grid; 4 runs = 2 repeats (split-half ceilings)
    bids = make_demo_dataset(tmp_path / "demo", spec=DemoSpec(
        n_subjects=1, n_runs=4, grid_shape=(12, 12, 8), n_roi_voxels=20, eeg=None))
    ckpts = _make_checkpoints(tmp_path / "ckpt")
    assert list(ckpts) == list(LABELS)
    family = {"architecture": "efficientnet_lite0", "seed": 0, "layers": ["stage2", "stage6"],
              "checkpoints": {label: str(p) for label, p in ckpts.items()}}
    cfg = make_config(tmp_path, bids, **{"features.models": {"lite0": family}})

    dry = run_snakemake(tmp_path, cfg, "-n")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    counts = job_counts(dry.stdout)
    features_jobs = {r: n for r, n in counts.items() if r.startswith("features_extract")}
    assert features_jobs == {f"features_extract_lite0_{lab}": 1 for lab in LABELS}

    res = run_snakemake(tmp_path, cfg, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    # who wrote and who read each feature file: the summary's rule and input columns
    summary = run_snakemake(tmp_path, cfg, "--detailed-summary")
    assert summary.returncode == 0, summary.stderr
    table = _detailed_summary(summary.stdout)
    feats = table[table["rule"].str.startswith("features_extract")]
    assert sorted(feats["rule"].unique()) == [f"features_extract_lite0_{lab}" for lab in LABELS]
    for lab in LABELS:
        written = set(feats.loc[feats["rule"] == f"features_extract_lite0_{lab}",
                                "output_file"])
        assert len(written) == 2  # one file per layer
        assert all(f"model-lite0{lab}_" in f for f in written)

        def read_by(rule, lab=lab):
            rows = table[table["rule"] == rule]
            files = {f for cell in rows["input-file(s)"] for f in cell.split(",")}
            return {f for f in files if f"model-lite0{lab}_" in f and "features" in f}

        # encoding and RSA of this checkpoint read exactly the files its one job wrote
        assert read_by("encoding_fit") == written
        assert read_by("rsa_layer_rdms") == written

    scores = read_tsv(tmp_path / "results" / "group" / "scores.tsv")
    best = (scores.groupby(["analysis", "roi", "model"])["score"].max().unstack("model"))
    print("best-layer score per checkpoint:\n", best.round(3).to_string())
    for analysis in ("encoding", "rsa"):
        for roi in ("early", "late"):
            row = best.loc[(analysis, roi)]
            assert row["lite0_a100"] > row["lite0_a000"] + 0.05, (analysis, roi, row.to_dict())

    html = unescape((tmp_path / "results" / "group" / "report.html").read_text())
    section = re.search(r'<section id="model-families">(.*?)</section>', html, re.S)
    assert section, "no section 'model-families' in the report"
    assert "data:image/png;base64," in section.group(1)
    assert all(f"lite0_{lab}" in section.group(1) for lab in LABELS)
