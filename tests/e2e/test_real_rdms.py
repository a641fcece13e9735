"""End-to-end on real data: EfficientNet-Lite0 layers vs Algonauts 2019 EVC and IT RDMs."""

from __future__ import annotations

import pytest
import yaml

from brainalign.io import read_tsv
from tests.conftest import REPO, SHARED_DATA, run_snakemake

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SHARED_DATA / "algonauts2019_fmri_rdms").is_dir(),
                       reason="real data folder ../shared/data/algonauts2019_fmri_rdms absent"),
]


def test_algonauts_example_runs_and_orders_evc_before_it(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "examples" / "algonauts92.yaml").read_text())
    cfg["data"] = str(SHARED_DATA)
    cfg["output_dir"] = "results"
    cfg["rsa"] = {"n_bootstrap": 200}
    path = tmp_path / "alg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_snakemake(tmp_path, path, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    scores = read_tsv(tmp_path / "results" / "group" / "scores.tsv")
    group = scores[scores["subject"] == "group"]
    assert set(group["roi"]) == {"EVC", "IT"}
    assert (group["ci_low"] <= group["score"]).all() and (group["score"] <= group["ci_high"]).all()
    layers = cfg["features"]["models"]["efficientnet_lite0"]["layers"]
    best = {roi: g.sort_values("score").iloc[-1]["layer"] for roi, g in group.groupby("roi")}
    # the textbook result: EVC peaks at an earlier stage than IT
    assert layers.index(best["EVC"]) < layers.index(best["IT"])
    # the models stay below the noise ceiling's upper bound
    assert (group["score"] < group["noise_ceiling"]).all()
    # 15 subjects x 2 ROIs x 10 layers + group rows
    assert len(scores) == 15 * 2 * 10 + 2 * 10
    html = (tmp_path / "results" / "group" / "report.html").read_text()
    assert "noise ceiling" in html
