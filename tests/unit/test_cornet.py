"""CORnet-S (brainalign.features.cornet): architecture, checkpoint loading, registry read-out."""

import numpy as np
import pytest
import torch

from brainalign.errors import ConfigError, ModelError
from brainalign.features import (
    ARCHITECTURES,
    build_model,
    check_model_spec,
    describe_layers,
    extract_features,
)
from brainalign.features.cornet import CORnetS

CORNET = {"architecture": "cornet_s", "weights": "random", "seed": 0,
          "layers": ["V1", "V2", "V4", "IT", "decoder", "logits"]}
# the module whose (last) output each layer is, read with plain forward hooks
HOOKED = {"V1": "V1.output", "V2": "V2.output", "V4": "V4.output", "IT": "IT.output",
          "decoder": "decoder.flatten", "logits": "decoder.linear"}


def _paper_parameter_count() -> int:
    """CORnet-S's parameters, counted by hand from the architecture of Kubilius et al. (2019).

    V1: conv 7x7 3->64, BN(64), conv 3x3 64->64, BN(64). A CORblock-S(in, out, T): conv_input
    1x1 in->out, skip 1x1 out->out + BN(out), conv1 1x1 out->4out, conv2 3x3 4out->4out, conv3
    1x1 4out->out, and per time step BN(4out), BN(4out), BN(out) (weight and bias each).
    Decoder: linear 512->1000 with bias.
    """
    v1 = 3 * 64 * 7 * 7 + 2 * 64 + 64 * 64 * 3 * 3 + 2 * 64

    def block(c_in: int, c: int, times: int) -> int:
        w = 4 * c
        return (c_in * c + c * c + 2 * c + c * w + w * w * 9 + w * c
                + times * (2 * w + 2 * w + 2 * c))

    return (v1 + block(64, 128, 2) + block(128, 256, 4) + block(256, 512, 2)
            + 512 * 1000 + 1000)


def test_parameter_count_equals_the_papers_architecture():
    with torch.device("meta"):
        model = CORnetS()
    n = sum(p.numel() for p in model.parameters())
    # 53.4 M, the size given for CORnet-S by its authors (Brain-Score / the CORnet release)
    assert n == _paper_parameter_count() == 53_416_616
    # the release's module names: 164 state-dict entries (params + BN buffers)
    state = model.state_dict()
    assert len(state) == 164
    assert {"V1.conv1.weight", "V2.conv_input.weight", "V2.norm_skip.running_var",
            "V4.norm1_3.weight", "V4.norm3_3.bias", "IT.norm2_1.running_mean",
            "decoder.linear.bias"} <= set(state)
    assert not any(k.startswith("V4.norm1_4") or k.startswith("IT.norm1_2") for k in state)


@pytest.fixture(scope="module")
def cornet():
    model = build_model(CORNET)
    # non-trivial batch-norm statistics, so that eval mode is not the identity on each BN
    gen = torch.Generator().manual_seed(5)
    for name, buf in model.named_buffers():
        if name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
        elif name.endswith("running_mean"):
            buf.copy_(0.1 * torch.randn(buf.shape, generator=gen))
    return model


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def test_layer_shapes_at_224_px(cornet, images):
    out = ARCHITECTURES["cornet_s"].forward_layers(cornet, images, CORNET["layers"])
    shapes = {layer: tuple(t.shape[1:]) for layer, t in out.items()}
    assert shapes == {"V1": (64, 56, 56), "V2": (128, 28, 28), "V4": (256, 14, 14),
                      "IT": (512, 7, 7), "decoder": (512,), "logits": (1000,)}
    with torch.no_grad():
        logits = cornet(images)
    assert torch.equal(out["logits"], logits)
    # the decoder layer is IT averaged over space
    torch.testing.assert_close(out["decoder"], out["IT"].mean(dim=(2, 3)))


def test_readout_equals_forward_hooks_at_the_last_time_step(cornet, images):
    got = ARCHITECTURES["cornet_s"].forward_layers(cornet, images, CORNET["layers"])
    named = dict(cornet.named_modules())
    hooked, calls, handles = {}, {}, []
    for layer, path in HOOKED.items():
        def hook(_m, _i, out, layer=layer):
            hooked[layer] = out.clone()  # the last call wins
            calls[layer] = calls.get(layer, 0) + 1
        handles.append(named[path].register_forward_hook(hook))
    with torch.no_grad():
        cornet(images)
    for h in handles:
        h.remove()
    # one output per time step: V2 and IT unrolled twice, V4 four times
    assert calls == {"V1": 1, "V2": 2, "V4": 4, "IT": 2, "decoder": 1, "logits": 1}
    for layer in HOOKED:
        assert torch.equal(got[layer], hooked[layer]), layer


def test_describe_layers_and_the_layers_command(capsys):
    rows = dict(describe_layers("cornet_s"))
    assert list(rows) == ["V1", "V2", "V4", "IT", "decoder", "logits"]
    assert rows["V4"] == ("V4: CORblock-S (256 channels) after its 4th and last time step "
                          "(V4.output_3; 256 channels, 14x14 at 224 px)")
    assert rows["decoder"].endswith("(decoder.flatten; 512 units)")
    from brainalign.cli import main

    assert main(["layers", "cornet_s"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(rows)


def _perturbed_state(seed: int) -> dict:
    model = CORnetS()
    torch.manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if value.is_floating_point():
            value.copy_(torch.randn_like(value) * 0.05 + (1.0 if "running_var" in key else 0.0))
            if "running_var" in key:
                value.abs_()
    return state


def test_checkpoint_in_the_official_layout_loads(tmp_path, images):
    state = _perturbed_state(seed=3)
    reference = CORnetS()
    reference.load_state_dict(state)
    reference.eval()
    with torch.no_grad():
        expected = reference(images[:1])
    # as released: torch.save of a dict with 'state_dict' from nn.DataParallel ('module.' keys)
    path = tmp_path / "cornet_s-1d3f7974.pth"
    torch.save({"epoch": 43, "arch": "CORnet_S",
                "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    check_model_spec("cornet", {**CORNET, "weights": str(path)})
    model = build_model({**CORNET, "weights": str(path)})
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key
    got = ARCHITECTURES["cornet_s"].forward_layers(model, images[:1], ["IT", "logits"])
    torch.testing.assert_close(got["logits"], expected, rtol=0, atol=0)
    # a plain state dict without the prefix and without the BN counters of torch >= 0.4.1
    plain = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(plain, path)
    model = build_model({**CORNET, "weights": str(path), "seed": 9})
    with torch.no_grad():
        torch.testing.assert_close(model(images[:1]), expected, rtol=0, atol=0)
    # and not the random initialisation of a seed
    fresh = torch.manual_seed(9) and CORnetS().V1.conv1.weight
    assert not torch.allclose(model.V1.conv1.weight, fresh)


def test_malformed_checkpoints_say_what_is_wrong(tmp_path):
    wrong_keys = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"module.features.0.weight": torch.zeros(3),
                               "module.V1.conv1.weight": torch.zeros(64, 3, 7, 7)}}, wrong_keys)
    # 135 tensors besides the 29 batch-norm counters (which old checkpoints lack); one is given
    with pytest.raises(ModelError, match=r"(?s)resnet\.pth.*missing keys 134 \(IT\.conv1\.weight,"
                                         r".*unexpected keys 1 \(features\.0\.weight\).*"
                                         r"cornet_s-1d3f7974\.pth"):
        build_model({**CORNET, "weights": str(wrong_keys)})
    # every key right, but shapes of another model (e.g. a CORnet-S with 10 classes)
    shapes = tmp_path / "shapes.pth"
    with torch.device("meta"):
        keys = list(CORnetS().state_dict())
    torch.save({k: torch.zeros(1) for k in keys}, shapes)
    with pytest.raises(ModelError, match=r"shapes\.pth.*missing keys none, unexpected keys "
                                         r"none, wrong shapes 164"):
        build_model({**CORNET, "weights": str(shapes)})
    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("not a checkpoint")
    with pytest.raises(ModelError, match=r"notes\.pth' cannot be read as a state dict"):
        build_model({**CORNET, "weights": str(not_torch)})
    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], a_list)
    with pytest.raises(ModelError, match=r"list\.pth' holds a list, not a state dict"):
        build_model({**CORNET, "weights": str(a_list)})


def test_shipped_weights_are_refused_with_the_way_to_get_them():
    spec = {**CORNET, "weights": "shipped"}
    with pytest.raises(ConfigError, match=r"(?s)features\.models\.cornet\.weights.*'cornet_s'"
                                          r".*cornet_s-1d3f7974\.pth.*login node.*path"):
        check_model_spec("cornet", spec)
    with pytest.raises(ConfigError, match=r"'shipped' are not available for 'cornet_s'.*login"):
        build_model(spec)
    assert not ARCHITECTURES["cornet_s"].shipped_weights


def test_extraction_of_cornet_layers(cornet, tmp_path):
    from brainalign.demo import draw_stimulus

    paths = []
    for i, shape in enumerate(["circle", "star", "square"]):
        path = tmp_path / f"{shape}.png"
        draw_stimulus(shape, "red", 30 * i).save(path)
        paths.append(path)
    feats = extract_features(cornet, "cornet_s", paths, ["V4", "IT", "logits"], device="cpu",
                             batch_size=2, spatial_pool=2)
    assert {k: v.shape for k, v in feats.items()} == {
        "V4": (3, 256 * 4), "IT": (3, 512 * 4), "logits": (3, 1000)}
    assert np.all(np.isfinite(feats["IT"]))
    assert feats["IT"].std(axis=0).max() > 0  # the three images differ
