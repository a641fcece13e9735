"""Model sources (torchvision, timm, Hugging Face, own module): layers read out of any torch model.

Every source runs end to end on a few images with random weights or a tiny config; each layer's
features are compared with an independent read-out of the same network on the same input (plain
forward hooks that copy the output, torchvision's ``create_feature_extractor``, or Hugging Face's
``output_hidden_states``), and weights from a local file are shown to be the ones used.
"""

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brainalign.demo import draw_stimulus
from brainalign.errors import ConfigError, ModelError
from brainalign.features import check_model_spec, extract_image_features, load_images
from brainalign.features.sources import list_layers, load_model

POOL = 2


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for shape, colour, ori in [("circle", "red", 0), ("star", "blue", 60),
                               ("square", "green", 120)]:
        path = folder / f"{shape}_{colour}_{ori}.png"
        draw_stimulus(shape, colour, ori).save(path)
        paths.append(path)
    return paths


def _hook_reference(module, names, x, call=None):
    """Outputs of named submodules by plain forward hooks, copied the moment they return."""
    store = {}
    mods = dict(module.named_modules())
    handles = [
        mods[n].register_forward_hook(
            lambda m, a, out, n=n: store.__setitem__(
                n, (out[0] if isinstance(out, tuple) else out).detach().clone()))
        for n in names
    ]
    with torch.no_grad():
        (call or module)(x)
    for h in handles:
        h.remove()
    return store


def _reduce(t, pool=POOL):
    if t.ndim == 4:
        t = F.adaptive_avg_pool2d(t, pool)
    return t.flatten(1).float().numpy()


def _extract(loaded, paths, layers, **kw):
    kw = {"batch_size": 2, "spatial_pool": POOL, "device": "cpu", "progress": "none", **kw}
    return extract_image_features(loaded, paths, layers, **kw)


# ---------------------------------------------------------------------------------------------
# torchvision: FX graph nodes


def test_torchvision_nodes_match_hooks_and_feature_extractor(image_paths):
    from torchvision.models.feature_extraction import create_feature_extractor

    spec = {"source": "torchvision", "architecture": "resnet18", "weights": "random", "seed": 3,
            "kwargs": {"num_classes": 7}}
    loaded = load_model(spec, name="r18", image_size=64)
    assert "layer1.0.bn2" in loaded.layers and "layer1.0.add" in loaded.layers
    layers = ["conv1", "layer1.0.bn2", "layer1.0.add", "layer2", "layer2.1.relu_1", "flatten",
              "fc"]
    feats = _extract(loaded, image_paths, layers)
    # a module name reads its last node: both names can be asked for together
    np.testing.assert_array_equal(feats["layer2"], feats["layer2.1.relu_1"])
    x = load_images(image_paths, image_size=64)
    model = loaded.module
    hooked = _hook_reference(model, ["conv1", "maxpool", "layer1.0.bn2", "layer2", "fc"], x)
    with torch.no_grad():
        fx = create_feature_extractor(model, return_nodes=["flatten"])(x)
    # layer1.0.add is bn2's output plus the block's input (the max-pool output), before the ReLU
    ref = {**{k: _reduce(v) for k, v in hooked.items()},
           "layer1.0.add": _reduce(hooked["layer1.0.bn2"] + hooked["maxpool"]),
           "flatten": _reduce(fx["flatten"])}
    assert (feats["layer1.0.add"] < 0).any()
    for layer in set(layers) - {"layer2.1.relu_1"}:
        assert feats[layer].dtype == np.float32
        np.testing.assert_allclose(feats[layer], ref[layer], rtol=1e-4, atol=1e-5, err_msg=layer)
    assert feats["fc"].shape == (3, 7)  # kwargs reached the constructor
    # the sum is rectified in place by the next ReLU: a read-out that returns it at the end of
    # the pass sees the rectified tensor, ours the sum itself
    with torch.no_grad():
        late = create_feature_extractor(
            model, return_nodes=["layer1.0.add", "layer1.0.relu_1"])(x)["layer1.0.add"]
    assert late.min() >= 0 and not np.allclose(_reduce(late), feats["layer1.0.add"], atol=1e-3)
    # the same random init for the same seed
    again = _extract(load_model(spec, name="r18", image_size=64), image_paths, ["fc"])
    np.testing.assert_array_equal(again["fc"], feats["fc"])


def test_torchvision_weights_file_is_loaded(image_paths, tmp_path):
    import torchvision

    torch.manual_seed(11)
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=5).eval()
    with torch.no_grad():
        net.fc.bias += 3.0  # a perturbation the random init would not give
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    spec = {"source": "torchvision", "architecture": "resnet18", "weights": "r18.pth",
            "kwargs": {"num_classes": 5}}
    check_model_spec("r18", {**spec, "layers": ["fc"]}, base_dir=tmp_path)
    loaded = load_model(spec, name="r18", base_dir=tmp_path, image_size=64)
    feats = _extract(loaded, image_paths, ["fc", "avgpool"])
    with torch.no_grad():
        expected = net(load_images(image_paths, image_size=64)).numpy()
    np.testing.assert_allclose(feats["fc"], expected, rtol=1e-4, atol=1e-5)
    random = _extract(load_model({**spec, "weights": "random"}, image_size=64), image_paths,
                      ["fc"])
    assert np.abs(random["fc"] - feats["fc"]).mean() > 1.0


# ---------------------------------------------------------------------------------------------
# timm: module tree, forward hooks


def test_timm_resnet_layers_equal_forward_hooks(image_paths, tmp_path):
    import timm
    from safetensors.torch import save_file

    spec = {"source": "timm", "architecture": "resnet10t", "weights": "random", "seed": 0,
            "kwargs": {"num_classes": 6}}
    layers = ["conv1", "layer1.0.bn2", "layer2", "global_pool", "fc"]
    check_model_spec("t", {**spec, "layers": layers})
    loaded = load_model(spec, name="t", image_size=64)
    feats = _extract(loaded, image_paths, layers)
    x = load_images(image_paths, image_size=64, mean=loaded.preprocess.mean,
                    std=loaded.preprocess.std)
    ref = _hook_reference(loaded.module, layers, x)
    for layer in layers:
        np.testing.assert_allclose(feats[layer], _reduce(ref[layer]), rtol=1e-4, atol=1e-5,
                                   err_msg=layer)
    # weights from a .safetensors file: a perturbed state dict changes the features accordingly
    torch.manual_seed(5)
    net = timm.create_model("resnet10t", pretrained=False, num_classes=6).eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["fc.weight"] = state["fc.weight"] * 2.0
    save_file(state, str(tmp_path / "w.safetensors"))
    net.load_state_dict(state)
    loaded_w = load_model({**spec, "weights": str(tmp_path / "w.safetensors")}, image_size=64)
    got = _extract(loaded_w, image_paths, ["fc"])["fc"]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, feats["fc"], atol=1e-2)


def test_timm_vit_blocks_equal_forward_hooks(image_paths):
    spec = {"source": "timm", "architecture": "vit_tiny_patch16_224", "weights": "random",
            "kwargs": {"depth": 3, "num_classes": 4}}
    layers = ["patch_embed", "blocks.0", "blocks.2", "norm", "head"]
    loaded = load_model(spec, name="vit")
    feats = _extract(loaded, image_paths, layers)
    x = load_images(image_paths, mean=loaded.preprocess.mean, std=loaded.preprocess.std)
    ref = _hook_reference(loaded.module, layers, x)
    assert feats["blocks.0"].shape == (3, 197 * 192)
    for layer in layers:
        np.testing.assert_allclose(feats[layer], _reduce(ref[layer]), rtol=1e-4, atol=1e-4,
                                   err_msg=layer)


# ---------------------------------------------------------------------------------------------
# Hugging Face: a tiny ViT saved locally, with its image processor


@pytest.fixture(scope="module")
def hf_vit(tmp_path_factory, monkeypatch_module):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path_factory.mktemp("tiny_vit")
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=48)
    torch.manual_seed(0)
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5, 0.4, 0.3],
                      image_std=[0.2, 0.25, 0.3]).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_huggingface_vit_layers_equal_hidden_states(image_paths, hf_vit):
    from PIL import Image
    from transformers import ViTImageProcessor, ViTModel

    spec = {"source": "huggingface", "architecture": None, "weights": str(hf_vit)}
    layers = ["embeddings", "layers.0", "layers.1", "layernorm"]
    check_model_spec("vit", {**spec, "layers": layers})
    loaded = load_model(spec, name="vit")
    feats = _extract(loaded, image_paths, layers)
    model = ViTModel.from_pretrained(hf_vit, local_files_only=True).eval()
    processor = ViTImageProcessor.from_pretrained(hf_vit, local_files_only=True)
    pixels = processor(images=[Image.open(p).convert("RGB") for p in image_paths],
                       return_tensors="pt")["pixel_values"]
    assert pixels.shape == (3, 3, 32, 32)
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    ref = {"embeddings": out.hidden_states[0], "layers.0": out.hidden_states[1],
           "layers.1": out.hidden_states[2], "layernorm": out.last_hidden_state}
    for layer in layers:
        assert feats[layer].shape == (3, 17 * 24)
        np.testing.assert_allclose(feats[layer], ref[layer].flatten(1).numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=layer)
    rows = dict(list_layers(spec, name="vit"))
    assert rows["layers.1"].endswith("output 17 x 24")


def test_huggingface_clip_runs_its_image_tower(image_paths, tmp_path, monkeypatch):
    from PIL import Image
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "vocab_size": 99, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=8)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(tmp_path / "clip")
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    processor.save_pretrained(tmp_path / "clip")
    spec = {"source": "huggingface", "weights": str(tmp_path / "clip")}
    layers = ["vision_model.encoder.layers.1", "visual_projection"]
    check_model_spec("clip", {**spec, "layers": layers})
    feats = _extract(load_model(spec, name="clip"), image_paths, layers)
    model = CLIPModel.from_pretrained(tmp_path / "clip", local_files_only=True).eval()
    pixels = processor(images=[Image.open(p).convert("RGB") for p in image_paths],
                       return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        vision = model.vision_model(pixel_values=pixels, output_hidden_states=True)
        projected = model.visual_projection(vision.pooler_output)
    np.testing.assert_allclose(feats["vision_model.encoder.layers.1"],
                               vision.hidden_states[2].flatten(1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(feats["visual_projection"], projected.numpy(), rtol=1e-4,
                               atol=1e-5)
    assert feats["visual_projection"].shape == (3, 8)


# ---------------------------------------------------------------------------------------------
# module: a user's nn.Module from a folder


TINY = '''
import torch
from torch import nn


class Pair(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)), x


class Tiny(nn.Module):
    def __init__(self, width=4, n_out=3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pair = Pair()
        self.fc = nn.Linear(width, n_out)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        pooled, _ = self.pair(x)
        return self.fc(pooled)


def make_tiny(**kwargs):
    return Tiny(**kwargs)
'''


@pytest.fixture
def tiny_pkg(tmp_path):
    pkg = tmp_path / "code" / "tinynets"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(TINY)
    return tmp_path / "code"


def test_module_source_layers_weights_and_inplace_relu(image_paths, tiny_pkg, tmp_path):
    spec = {"source": "module", "architecture": "tinynets:make_tiny", "code_dir": str(tiny_pkg),
            "weights": "random", "seed": 1, "kwargs": {"width": 5, "n_out": 2}}
    layers = ["conv1", "relu", "pair", "fc"]
    check_model_spec("tiny", {**spec, "layers": layers})
    loaded = load_model(spec, name="tiny", image_size=16)
    feats = _extract(loaded, image_paths, layers)
    net = loaded.module
    x = load_images(image_paths, image_size=16)
    with torch.no_grad():  # the network's maths, written out
        conv = net.conv1(x)
        act = conv.clamp(min=0)
        logits = net.fc(act.mean(dim=(2, 3)))
    np.testing.assert_allclose(feats["conv1"], _reduce(conv), rtol=1e-5, atol=1e-6)
    assert (feats["conv1"] < 0).any()  # read before the in-place ReLU rewrote it
    np.testing.assert_allclose(feats["relu"], _reduce(act), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats["pair"], act.mean(dim=(2, 3)).numpy(), rtol=1e-5,
                               atol=1e-6)  # tuple output: its first tensor
    np.testing.assert_allclose(feats["fc"], logits.numpy(), rtol=1e-5, atol=1e-6)
    # a local state dict is loaded: doubling fc's weights and bias doubles the logits
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["fc.weight"] *= 2
    state["fc.bias"] *= 2
    torch.save({"state_dict": state}, tmp_path / "tiny.pth")  # wrapped, as trainers save it
    spec_w = {**spec, "weights": "tiny.pth", "seed": 99}
    check_model_spec("tiny", {**spec_w, "layers": layers}, base_dir=tmp_path)
    got = _extract(load_model(spec_w, base_dir=tmp_path, image_size=16), image_paths, ["fc"])
    np.testing.assert_allclose(got["fc"], 2 * feats["fc"], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# configuration errors at DAG time


def _raises(spec, *fragments, base_dir="."):
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in fragments)
    with pytest.raises(ConfigError, match=re.compile(pattern, re.DOTALL)):
        check_model_spec("m", spec, base_dir=base_dir)


def test_spec_errors_name_the_key_and_the_fix(tmp_path, tiny_pkg):
    base = {"weights": "random", "layers": ["fc"]}
    _raises({**base, "source": "torchvision", "architecture": "resnet1888"},
            "features.models.m.architecture", "'resnet1888'", "Did you mean", "'resnet18'")
    _raises({**base, "source": "timm", "architecture": "convnext_tiyn"},
            "Unknown timm architecture", "'convnext_tiny'")
    _raises({**base, "architecture": "vgg61"}, "Unknown architecture 'vgg61'", "'vgg16'",
            "source: torchvision")
    _raises({**base, "source": "torchvision", "architecture": "resnet18", "weights": "no.pth"},
            "features.models.m.weights", "does not exist", "weights: random")
    _raises({**base, "source": "torchvision", "architecture": "resnet18",
             "layers": ["layer5", "fc"]},
            "features.models.m.layers", "['layer5']", "Did you mean", "brainalign layers")
    _raises({**base, "source": "torchvision", "architecture": "vit_b_16",
             "layers": ["getitem", "encoder.layers.encoder_layer_5"]},  # a shape, not a tensor
            "Unknown layer(s) ['getitem']")
    _raises({**base, "source": "timm", "architecture": "resnet10t", "kwargs": {"widht": 2}},
            "features.models.m.kwargs", "widht")
    _raises({**base, "source": "module", "architecture": "nosuchpkg.nets:Net"},
            "features.models.m.architecture", "'nosuchpkg.nets' ", "not importable", "code_dir")
    _raises({**base, "source": "module", "architecture": "tinynets"},
            "package.module:factory")
    _raises({**base, "source": "module", "architecture": "tinynets:Nope",
             "code_dir": str(tiny_pkg)}, "has no 'Nope'", "Tiny")
    _raises({**base, "source": "module", "architecture": "tinynets:Tiny", "code_dir": "nowhere"},
            "features.models.m.code_dir", "does not exist")
    _raises({**base, "source": "huggingface", "weights": "missing_folder"},
            "features.models.m.weights", "does not exist", "Nothing is downloaded")
    (tmp_path / "empty").mkdir()
    _raises({**base, "source": "huggingface", "weights": "empty"}, "has no config.json",
            base_dir=tmp_path)


def test_unknown_layer_at_run_time_lists_valid_ones(tiny_pkg):
    loaded = load_model({"source": "module", "architecture": "tinynets:Tiny",
                         "code_dir": str(tiny_pkg), "weights": "random"})
    with pytest.raises(ModelError, match=r"Unknown layer\(s\) \['conv9'\].*'conv1'"):
        loaded.readout(["conv9"])


def test_weights_of_another_network_are_refused(tiny_pkg, tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    spec = {"source": "module", "architecture": "tinynets:Tiny", "code_dir": str(tiny_pkg),
            "weights": str(tmp_path / "other.pth")}
    with pytest.raises(ModelError, match=r"other.pth' does not fit model 'tiny'.*"
                                         r"features.models.tiny.weights.*Missing key"):
        load_model(spec, name="tiny")


def test_layers_command_for_any_source(capsys, tiny_pkg, tmp_path, hf_vit):
    import yaml

    from brainalign.cli import main

    assert main(["layers", "resnet10t", "--source", "timm", "--kwargs",
                 json.dumps({"num_classes": 3}), "--image-size", "64"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in out]
    assert names[0] == "conv1.0" and names.index("layer1") < names.index("layer4")
    assert any(line.startswith("fc ") and line.endswith("output 3") for line in out)
    assert main(["layers", "tinynets:Tiny", "--source", "module", "--code-dir",
                 str(tiny_pkg)]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "conv1", "relu", "pair", "fc"]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"features": {"models": {"v": {
        "source": "huggingface", "weights": str(hf_vit), "layers": ["layernorm"]}}}}))
    assert main(["layers", "--config", str(cfg), "--model", "v"]) == 0
    assert "layers.1 " in capsys.readouterr().out
    assert main(["layers", "vgg16"]) == 0  # the registry as before
    assert capsys.readouterr().out.startswith("conv1_1")
    assert main(["layers", "resnet18"]) == 2  # not in the registry: says where it is
    assert "'resnet18' is a torchvision and a timm model: add --source torchvision" in \
        capsys.readouterr().err
    # a text model goes to brainalign.features.text (the shipped MiniLM: 6 BERT blocks)
    assert main(["layers", "all-MiniLM-L6-v2", "--source", "huggingface", "--weights",
                 "shipped"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("embeddings") and "encoder.layer.5 " in out


def test_step_features_writes_one_file_per_layer(tmp_path, image_paths, tiny_pkg):
    from brainalign.features.steps import step_features
    from brainalign.io import read_features

    table = tmp_path / "stimuli.tsv"
    table.write_text("stim_file\tpath\n" + "".join(f"{p.name}\t{p}\n" for p in image_paths))
    spec = {"source": "module", "architecture": "tinynets:Tiny", "code_dir": str(tiny_pkg),
            "weights": "random", "seed": 0, "layers": ["conv1", "fc"]}
    settings = {"batch_size": 2, "spatial_pool": 1, "image_size": 16, "device": "cpu",
                "reduce": "none", "n_components": 8, "standardize": False,
                "precision": "float32", "progress": "none"}
    outputs = {layer: str(tmp_path / f"{layer}.npz") for layer in spec["layers"]}
    step_features(str(table), name="tiny", spec=spec, settings=settings, outputs=outputs)
    fc, stimuli = read_features(outputs["fc"])
    assert fc.shape == (3, 3)
    assert list(stimuli) == [p.name for p in image_paths]
    assert read_features(outputs["conv1"])[0].shape == (3, 4)
