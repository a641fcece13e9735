"""Unit tests of brainalign.features: config checks, model building and layer read-out."""

import re

import numpy as np
import pytest
import torch

from brainalign.demo import draw_stimulus
from brainalign.errors import ConfigError
from brainalign.features import (
    _ALEXNET,
    ARCHITECTURES,
    build_model,
    check_model_spec,
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


def test_check_model_spec_accepts_valid_specs(tmp_path):
    check_model_spec("m", EFFNET)
    check_model_spec("m", {"architecture": "vgg16", "weights": "random", "layers": ["fc7"]})
    # a relative weights path is resolved against base_dir
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "resnet50.pth").write_bytes(b"")
    check_model_spec(
        "m",
        {"architecture": "resnet50", "weights": "w/resnet50.pth", "layers": ["layer4"]},
        base_dir=tmp_path,
    )


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
    # different images give different features
    assert not np.allclose(a["stage6"][0], a["stage6"][1], atol=1e-3)


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
    # the shipped ImageNet weights are loaded: logits are not those of a random network
    random = build_model({**EFFNET, "weights": "random"})
    with torch.no_grad():
        random_logits = random(load_images(image_paths[:1])).numpy()
    assert not np.allclose(direct[:1], random_logits, atol=1e-2)


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
    assert not np.allclose(f0["fc8"], f1["fc8"])  # the seed matters

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


def test_registry_layers_exist_in_torchvision_models():
    # every hooked layer name points at a real module of the torchvision network
    for name in ("alexnet", "vgg16", "resnet50"):
        entry = ARCHITECTURES[name]
        assert entry.shipped_weights is False
        assert len(entry.layers) == len(set(entry.layers))
    modules = dict(build_model(ALEX).named_modules())
    assert set(_ALEXNET.values()) <= set(modules)


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
