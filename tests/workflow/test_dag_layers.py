"""Dry-run DAG: every layer that `brainalign layers` lists, of every architecture, can run.

Layer and model names may hold '_' (conv1_1, efficientnet_lite0); derivative file names carry
their BIDS labels (conv11, efficientnetlite0), and the {model}/{layer} wildcards match those.
"""

from __future__ import annotations

import re

from brainalign.cli import main
from brainalign.features import ARCHITECTURES
from brainalign.workflow import entity_label
from tests.conftest import job_counts, make_config, run_snakemake

N_SUBJECTS = 2  # the demo study


def _listed_layers(architecture: str, capsys) -> list[str]:
    """Layer names as `brainalign layers ARCH` prints them (first token of each line)."""
    assert main(["layers", architecture]) == 0
    return [line.split()[0] for line in capsys.readouterr().out.splitlines()]


def _model(architecture: str, layers: list[str]) -> dict:
    entry = ARCHITECTURES[architecture]
    return {"architecture": architecture, "seed": 0, "layers": layers,
            "weights": "shipped" if entry.shipped_weights else "random"}


def test_every_listed_layer_of_every_architecture_is_scheduled(tmp_path, demo_root, capsys):
    layers = {arch: _listed_layers(arch, capsys) for arch in sorted(ARCHITECTURES)}
    assert layers["vgg16"][:3] == ["conv1_1", "conv1_2", "conv2_1"]
    assert all(names == list(ARCHITECTURES[a].layers) for a, names in layers.items())
    cfg = make_config(tmp_path, demo_root / "bids", **{
        "features.models": {arch: _model(arch, names) for arch, names in layers.items()}})
    res = run_snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    counts = job_counts(res.stdout)
    n_layers = sum(len(names) for names in layers.values())
    assert {f"features_extract_{arch}": 1 for arch in layers}.items() <= counts.items()
    assert counts["encoding_fit"] == n_layers  # every subject in one job per layer
    assert counts["rsa_layer_rdms"] == len(layers)
    assert counts["rsa_compare"] == N_SUBJECTS * len(layers)

    # one encoding job per model x layer (both subjects in part 1), under the file-name labels
    fits = set(re.findall(r"wildcards: model=(\w+), layer=(\w+), part=(\w+)\n", res.stdout))
    assert fits == {
        (entity_label(arch), entity_label(layer), "1")
        for arch, names in layers.items() for layer in names
    }
    # and every layer's features file comes from its model's extraction job
    for arch, names in layers.items():
        m = entity_label(arch)
        for layer in names:
            path = f"results/features/model-{m}/model-{m}_layer-{entity_label(layer)}_features.npz"
            assert path in res.stdout, (arch, layer)
    assert not (tmp_path / "results").exists()


def test_model_names_sharing_a_label_fail_at_dag_construction(tmp_path, demo_root):
    models = {name: _model("alexnet", ["conv1"]) for name in ("alex_net", "alexnet")}
    cfg = make_config(tmp_path, demo_root / "bids", **{"features.models": models})
    res = run_snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "Config key 'features.models'" in out
    assert "['alex_net', 'alexnet'] would share the file-name label 'alexnet'" in out
    assert not (tmp_path / "results").exists()
