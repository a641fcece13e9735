"""External response matrices through the whole DAG: planted layers are recovered (NWB input)."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, SHARED_DATA, job_counts, run_snakemake

K92 = SHARED_DATA / "kriegeskorte2008_92images"
needs_data = pytest.mark.skipif(not K92.is_dir(),
                                reason=f"real data folder {K92} is absent (../shared/data)")


def _make_nwb():
    path = REPO / "examples" / "mouse_visual_cortex" / "make_nwb.py"
    spec = importlib.util.spec_from_file_location("make_nwb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(tmp_path, n_images: int = 40) -> tuple:
    """The example config on the first ``n_images`` images, fewer units and layers."""
    stimuli = pd.read_csv(K92 / "stimuli.tsv", sep="\t").iloc[:n_images]
    stimuli.to_csv(tmp_path / "stimuli.tsv", sep="\t", index=False)
    planted = _make_nwb().make(SHARED_DATA, tmp_path / "mvc.nwb",
                               n_units={"VISp": 60, "VISl": 50, "VISam": 40}, n_repeats=6,
                               noise_sd=1.5, seed=0, stimuli=stimuli["file"].tolist())
    cfg = yaml.safe_load((REPO / "config" / "examples" / "mouse_visual_cortex.yaml").read_text())
    cfg["data"] = str(SHARED_DATA)
    cfg["output_dir"] = str(tmp_path / "out")
    cfg["external"]["stimuli"] = str(tmp_path / "stimuli.tsv")
    for spec in cfg["external"]["responses"].values():
        spec["path"] = str(tmp_path / "mvc.nwb")
    cfg["external"]["subsample"] = {"units": [5, 20], "stimuli": [10, 20], "n_draws": 4,
                                    "seed": 0}
    # each planted layer with a competitor deeper than it (and shallower, but for stage2)
    cfg["features"]["models"]["efficientnet_lite0"]["layers"] = [
        "stage2", "stage4", "stage6", "stage7"]
    cfg["encoding"] = {"ridge": {"n_folds": 3, "n_inner_folds": 3}}
    path = tmp_path / "mvc.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, planted


@needs_data
@pytest.mark.slow
def test_planted_layers_are_recovered_by_encoding_rsa_and_subsampling(tmp_path):
    path, planted = _config(tmp_path)
    dry = run_snakemake(tmp_path, path, "-n")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    counts = job_counts(dry.stdout)
    assert counts["responses_import"] == 1 and counts["responses_subsample"] == 1
    assert counts["encoding_fit"] == 4 and counts["rsa_compare"] == 1
    res = run_snakemake(tmp_path, path, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "out"
    scores = pd.read_csv(out / "group" / "scores.tsv", sep="\t")
    for analysis in ("rsa", "encoding"):
        sub = scores[scores["analysis"] == analysis]
        best = sub.loc[sub.groupby("roi")["score"].idxmax()].set_index("roi")["layer"]
        assert best.to_dict() == planted, (analysis, best.to_dict())
        assert sub["noise_ceiling"].notna().all() and (sub["noise_ceiling"] > 0.5).all()
    summary = pd.read_csv(out / "group" / "subsample" /
                          "sub-sim01_model-efficientnetlite0_desc-summary_curve.tsv", sep="\t")
    assert set(zip(summary["analysis"], summary["axis"], strict=True)) == {
        ("rsa", "units"), ("rsa", "stimuli"), ("encoding", "units")}
    for (analysis, axis), g in summary.groupby(["analysis", "axis"]):
        full = g[g["size"] == g.groupby("roi")["size"].transform("max")]
        assert dict(zip(full["roi"], full["full_best_layer"], strict=True)) == planted, (
            analysis, axis)
        assert (full["agreement"] == 1.0).all() and (full["n_draws"] == 1).all()
    html = (out / "group" / "report.html").read_text()
    assert "Subsampling curves" in html and "VISam" in html
