"""Feature extraction: run a model over images batch by batch, layer by layer, on CPU or GPU.

Only one batch of full activations is in memory at a time; each layer is pooled (or streamed
through a sparse random projection) as soon as it is read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainalign.errors import ConfigError
from brainalign.features.models import ARCHITECTURES

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "REDUCERS",
    "extract_features",
    "load_images",
    "resolve_device",
    "sparse_projection",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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

    readout = entry.readout(model, layers)  # traced once, run on every batch
    with torch.inference_mode():
        for start in range(0, len(image_paths), batch_size):
            batch = load_images(image_paths[start : start + batch_size], image_size=image_size)
            outputs = readout(batch.to(dev))
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
            # a unit is constant when its spread is at the float32 rounding level of its
            # values (different batch sizes take different conv kernels, which differ there)
            varies = sd > np.maximum(1e-8 * sd.max(), 1e-5 * np.abs(mean))
            scale[layer] = np.divide(1.0, sd, out=np.zeros_like(sd), where=varies
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
