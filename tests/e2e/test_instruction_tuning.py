"""End-to-end: the instruction-tuning example recovers its planted truth through the workflow.

Tiny random GPT-2 models (base, and instruct = base + a brief instruction fine-tune, at two
sizes) and a simulated sentence-reading study whose language ROI reads out block ``h.1`` of the
instruct models (examples/instruction_tuning/). The example config runs as shipped, with only
its paths pointed at the generated data. About two minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest
import yaml

from brainalign.io import read_tsv
from brainalign.workflow import entity_label
from tests.conftest import REPO, run_snakemake

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "instruction_tuning"
SIZES = ("small", "large")


def _make_dataset():
    spec = importlib.util.spec_from_file_location("instruction_tuning_make_dataset",
                                                  EXAMPLE / "make_dataset.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.make_dataset


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """(workdir, example data folder, scores table) of one workflow run on the example."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = tmp_path_factory.mktemp("instruction_tuning_data")
    _make_dataset()(data)
    work = tmp_path_factory.mktemp("instruction_tuning_run")
    cfg = yaml.safe_load((REPO / "config" / "examples" / "instruction_tuning.yaml").read_text())
    shipped_prefix = "results/instruction_tuning_data"
    assert cfg["bids"]["bids_dir"].startswith(shipped_prefix)
    cfg["bids"]["bids_dir"] = str(data / "bids")
    for spec in cfg["features"]["models"].values():
        assert spec["weights"].startswith(shipped_prefix)
        spec["weights"] = spec["weights"].replace(shipped_prefix, str(data))
    cfg["output_dir"] = "results"
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = run_snakemake(work, path, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    scores = read_tsv(work / "results" / "group" / "scores.tsv")
    print(scores.to_string())  # the measured figures, for the report (pytest -s)
    return work, data, scores


def _score(g, model, layer, roi="language"):
    rows = g[g["model"].map(entity_label).eq(entity_label(model)) &
             g["layer"].map(entity_label).eq(entity_label(layer)) & g["roi"].eq(roi)]
    assert len(rows) == 1, (model, layer, roi, len(rows))
    return float(rows["score"].iloc[0])


def test_scores_cover_every_model_layer_and_roi(example_run):
    _, _, scores = example_run
    assert set(scores["analysis"]) == {"encoding", "rsa"}
    assert set(scores["subject"].astype(str).str.zfill(2)) == {"01", "02"}
    assert set(scores["roi"]) == {"language", "null"}
    # 2 analyses x 2 subjects x 2 ROIs x 4 models x 3 layers
    assert len(scores) == 96


@pytest.mark.parametrize("analysis", ["encoding", "rsa"])
def test_instruct_beats_base_at_the_planted_layer(example_run, analysis):
    _, data, scores = example_run
    truth = json.loads((data / "truth.json").read_text())
    planted = truth["planted"]["layer"]
    s = scores[scores["analysis"] == analysis]
    for subject, g in s.groupby("subject"):
        for size in SIZES:
            tuned = _score(g, f"instruct_{size}", planted)
            base = _score(g, f"base_{size}", planted)
            # the planted truth: the instruct model aligns better than the base one of its size
            assert tuned > base + 0.05, (subject, size, tuned, base)
            # and the planted layer is the best layer of the instruct model
            layers = g[g["model"].map(entity_label).eq(entity_label(f"instruct_{size}")) &
                       g["roi"].eq("language")]
            best = layers.sort_values("score").iloc[-1]["layer"]
            assert entity_label(best) == entity_label(planted), (subject, size, layers)
            assert tuned > 0.2
        # the family level: the best instruct score beats the best base score
        lang = g[g["roi"] == "language"]
        family = lang["model"].map(lambda m: "instruct" if "instruct" in m else "base")
        assert lang[family == "instruct"]["score"].max() > lang[family == "base"]["score"].max()
        # no signal in the null ROI (measured: |score| <= 0.1 for all 12 layers)
        null = g[g["roi"] == "null"]["score"]
        assert null.abs().max() < 0.15, null.tolist()
