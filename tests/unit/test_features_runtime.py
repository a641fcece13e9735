"""Feature extraction at run time: precision, progress output, and models of every source in
the workflow's DAG (weights as rule inputs, bad specs stopped before any job)."""

import re

import numpy as np
import pytest
import torch

from brainalign.demo import draw_stimulus
from brainalign.features import extract_image_features
from brainalign.features.sources import load_model
from tests.conftest import make_config, run_snakemake

TINY = """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(width, 3)

    def forward(self, x):
        return self.fc(self.relu(self.conv1(x)).mean(dim=(2, 3)))
"""


@pytest.fixture
def tiny_pkg(tmp_path):
    pkg = tmp_path / "code" / "tinyrt"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(TINY)
    return tmp_path / "code"


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for k in range(40):
        path = folder / f"img{k:02d}.png"
        draw_stimulus(("circle", "star", "square")[k % 3], "red", 9 * k).save(path)
        paths.append(path)
    return paths


def _extract(loaded, paths, layers, **kw):
    kw = {"batch_size": 2, "spatial_pool": 2, "device": "cpu", "progress": "none", **kw}
    return extract_image_features(loaded, paths, layers, **kw)


def test_bfloat16_close_to_float32(image_paths):
    loaded = load_model({"source": "timm", "architecture": "resnet10t", "weights": "random"},
                        image_size=64)
    f32 = _extract(loaded, image_paths[:3], ["layer2", "fc"])
    bf16 = _extract(loaded, image_paths[:3], ["layer2", "fc"], precision="bfloat16")
    for layer in f32:
        assert bf16[layer].dtype == np.float32
        rel = np.linalg.norm(bf16[layer] - f32[layer]) / np.linalg.norm(f32[layer])
        assert 0 < rel < 0.05, (layer, rel)  # rounded (not identical), but close


def test_progress_in_a_log_is_a_few_lines(image_paths, tiny_pkg, caplog):
    spec = {"source": "module", "architecture": "tinyrt:Tiny", "code_dir": str(tiny_pkg),
            "weights": "random"}
    loaded = load_model(spec, name="tiny", image_size=8)
    with caplog.at_level("INFO", logger="brainalign.features.extract"):
        feats = _extract(loaded, image_paths, ["fc"], batch_size=1, progress="auto")  # no TTY
    lines = [r.getMessage() for r in caplog.records if "images (" in r.getMessage()]
    assert feats["fc"].shape == (40, 3)
    assert 5 <= len(lines) <= 11, lines  # ~every 10 %, not one line per batch
    assert lines[-1] == "tiny: 40/40 images (100 %)"


def test_batches_in_any_order_of_size_give_the_same_rows(image_paths, tiny_pkg):
    """The prefetching pipeline keeps rows in stimulus order, whatever the batch size."""
    spec = {"source": "module", "architecture": "tinyrt:Tiny", "code_dir": str(tiny_pkg),
            "weights": "random"}
    loaded = load_model(spec, image_size=8)
    one = _extract(loaded, image_paths[:11], ["conv1", "fc"], batch_size=11)
    for bs, workers in ((1, 3), (3, 1), (4, 2)):  # several decoding threads, as on a GPU
        got = _extract(loaded, image_paths[:11], ["conv1", "fc"], batch_size=bs,
                       decode_workers=workers)
        for layer in one:
            np.testing.assert_allclose(got[layer], one[layer], rtol=1e-5, atol=1e-6)


def _jobs(stdout: str, rule: str) -> list[dict[str, str]]:
    return [dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
            for block in stdout.split("\nrule ")[1:] if block.startswith(f"{rule}:")]


@pytest.mark.slow
def test_models_of_every_source_in_the_dag(tmp_path, demo_root, tiny_pkg):
    import timm

    torch.manual_seed(0)
    weights = tmp_path / "w" / "resnet10t.pth"
    weights.parent.mkdir()
    torch.save(timm.create_model("resnet10t", pretrained=False, num_classes=4).state_dict(),
               weights)
    models = {
        "tv": {"source": "torchvision", "architecture": "resnet18", "weights": "random",
               "layers": ["layer1", "layer2.1.add", "fc"]},
        "tm": {"source": "timm", "architecture": "resnet10t", "weights": "w/resnet10t.pth",
               "kwargs": {"num_classes": 4}, "layers": ["layer2", "fc"]},
        "own": {"source": "module", "architecture": "tinyrt:Tiny", "code_dir": "code",
                "weights": "random", "layers": ["conv1", "fc"]},
    }
    cfg = make_config(tmp_path, demo_root / "bids", **{"features.models": models})
    res = run_snakemake(tmp_path, cfg, "-n", "--until", "features_extract_tv",
                        "features_extract_tm", "features_extract_own")
    assert res.returncode == 0, res.stdout + res.stderr
    jobs = {name: _jobs(res.stdout, f"features_extract_{name}") for name in models}
    assert all(len(j) == 1 for j in jobs.values()), jobs
    assert "w/resnet10t.pth" in jobs["tm"][0]["input"]  # local weights are a rule input
    assert "layer-layer21add" in jobs["tv"][0]["output"]
    # a layer the model lacks stops the DAG, naming the key and the valid names
    models["tm"]["layers"] = ["layer2", "layer9"]
    cfg = make_config(tmp_path, demo_root / "bids", **{"features.models": models})
    res = run_snakemake(tmp_path, cfg, "-n")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "features.models.tm.layers" in out and "['layer9']" in out and "Did you mean" in out
