"""Feature extraction: run a model over images batch by batch, layer by layer, on CPU or GPU.

Only one batch of full activations is in memory at a time; each layer is pooled (or streamed
through a sparse random projection) as soon as it is read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainalign.errors import ConfigError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PRECISIONS",
    "PROGRESS",
    "REDUCERS",
    "Progress",
    "extract_features",
    "extract_image_features",
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


def load_images(paths: Sequence[str | Path], *, image_size: int = 224,
                mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
    """Load images as a normalised float tensor.

    Parameters
    ----------
    paths : sequence of path-like
        Image files (any format PIL reads); converted to RGB.
    image_size : int
        Side of the square the images are resized to (pixels).
    mean, std : sequence of float
        Per-channel normalisation of the [0, 1] values (ImageNet's by default).

    Returns
    -------
    images : torch.Tensor, shape (n_images, 3, image_size, image_size)
        Normalised pixel values.
    """
    import torch
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose(
        [
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
            transforms.Normalize(tuple(mean), tuple(std)),
        ]
    )
    tensors = []
    for path in paths:
        with Image.open(path) as img:
            tensors.append(tf(img.convert("RGB")))
    return torch.stack(tensors)


def _capture(tensor, *, spatial_pool: int):
    """Reduce one layer's output on its device, the moment it is computed.

    Convolutional maps (4-d) are average-pooled to ``spatial_pool x spatial_pool``; every output
    is flattened to (n_images, n_features) float32. The result never shares memory with the
    network's own tensor, so a later in-place operation cannot change it.
    """
    import torch.nn.functional as F

    out = tensor.detach()
    if out.ndim == 4 and spatial_pool > 0:
        out = F.adaptive_avg_pool2d(out, spatial_pool)
    out = out.flatten(1).float()
    if out.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr():
        out = out.clone()
    return out


def _to_numpy(outputs: dict) -> dict:
    return {layer: t.to("cpu").numpy() for layer, t in outputs.items()}


#: Forward-pass precisions (``features.precision``).
PRECISIONS = ("float32", "bfloat16", "float16")

#: Progress report modes (``features.progress``).
PROGRESS = ("auto", "bar", "log", "none")


class Progress:
    """Progress of an extraction: a bar on a terminal, a log line every ~10 % otherwise.

    Parameters
    ----------
    total : int
        Number of images.
    mode : {"auto", "bar", "log", "none"}
        "auto" draws a bar when stderr is a terminal, else logs (so a Snakemake log file gets
        about ten lines, whatever the number of batches).
    label : str
        What is being extracted (in the bar and the log lines).
    """

    def __init__(self, total: int, *, mode: str = "auto", label: str = "features"):
        import sys

        if mode not in PROGRESS:
            raise ConfigError(f"Config key 'features.progress' is '{mode}': expected one of "
                              f"{', '.join(PROGRESS)}.")
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.total, self.mode, self.label, self.done, self._next = total, mode, label, 0, 0.1
        self._bar = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="img", file=sys.stderr, leave=False)

    def update(self, n: int) -> None:
        """Count ``n`` more images done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log" and self.total:
            frac = self.done / self.total
            if frac + 1e-9 >= self._next or self.done == self.total:
                logger.info("%s: %d/%d images (%.0f %%)", self.label, self.done, self.total,
                            100 * frac)
                while self._next <= frac + 1e-9:
                    self._next += 0.1

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()


def _iter_batches(loaded, image_paths, layers, *, batch_size, spatial_pool, dev,
                  precision="float32", progress="auto", label="features", decode_workers=None):
    """Yield each batch's reduced layer outputs as numpy arrays, in order.

    Images are decoded in background threads (the next batches while the network runs on
    this one; several at once on a GPU), and a batch's outputs are copied to the host only
    after the next batch has been queued on the device, so neither decoding nor the copy
    stalls the forward passes.
    """
    import functools
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    import torch

    if precision not in PRECISIONS:
        raise ConfigError(f"Config key 'features.precision' is '{precision}': expected one of "
                          f"{', '.join(PRECISIONS)}.")
    capture = functools.partial(_capture, spatial_pool=spatial_pool)
    run = loaded.readout(layers, capture=capture)  # built (traced) once, run on every batch
    device_type = torch.device(dev).type
    autocast = functools.partial(torch.autocast, device_type=device_type,
                                 dtype=getattr(torch, precision),
                                 enabled=precision != "float32")
    pin = device_type == "cuda"
    # on a GPU, decoding is often slower than the network: several batches are decoded at once
    # (PIL and torch release the GIL); on the CPU one thread, which competes with the network
    workers = decode_workers or (max(1, min(8, (os.cpu_count() or 2) - 1)) if pin else 1)

    def decode(paths):
        x = loaded.preprocess.load(paths)
        return x.pin_memory() if pin else x

    starts = range(0, len(image_paths), batch_size)
    bar = Progress(len(image_paths), mode=progress, label=label)
    pending = None
    with ThreadPoolExecutor(max_workers=workers) as pool, torch.inference_mode():
        queue = deque()
        for start in starts:
            queue.append(pool.submit(decode, image_paths[start : start + batch_size]))
            if len(queue) <= workers + 1:
                continue
            pending = yield from _step(queue.popleft(), run, autocast, dev, pending, bar)
        while queue:
            pending = yield from _step(queue.popleft(), run, autocast, dev, pending, bar)
        if pending is not None:
            yield _to_numpy(pending[0])
            bar.update(pending[1])
    bar.close()


def _step(future, run, autocast, dev, pending, bar):
    batch = future.result().to(dev, non_blocking=True)
    with autocast():
        outputs = run(batch)
    if pending is not None:  # the previous batch's copy waits only for the previous batch
        yield _to_numpy(pending[0])
        bar.update(pending[1])
    return outputs, len(batch)


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
    **kwargs,
) -> dict[str, np.ndarray]:
    """Run a registry model on images and return each requested layer's activations.

    A shortcut of :func:`extract_image_features` for a network of the registry.

    Parameters
    ----------
    model : torch.nn.Module
        The network (from :func:`~brainalign.features.models.build_model`).
    architecture : str
        Its registry name (selects how layers are read out).
    image_paths : sequence of path-like
        Stimulus images, in the order of the returned rows.
    layers : sequence of str
        Layer names from the architecture's registry entry.
    **kwargs
        Keyword arguments of :func:`extract_image_features` (``image_size`` also sets the input
        size).

    Returns
    -------
    features : dict of str to ndarray, shape (n_images, n_features)
        float32 activations per layer.
    """
    from brainalign.features.models import ARCHITECTURES
    from brainalign.features.sources import ImagePreprocess, LoadedModel

    entry = ARCHITECTURES[architecture]

    def make(wanted, capture):
        run_raw = entry.readout(model, wanted)
        return lambda images: {k: capture(v) for k, v in run_raw(images).items()}

    loaded = LoadedModel(architecture, "registry", model, "image",
                         ImagePreprocess(image_size=kwargs.get("image_size", 224)),
                         tuple(entry.layers), lambda m, x: m(x), make)
    return extract_image_features(loaded, image_paths, layers, **kwargs)


def extract_image_features(
    loaded,
    image_paths: Sequence[str | Path],
    layers: Sequence[str],
    *,
    batch_size: int = 16,
    spatial_pool: int = 4,
    image_size: int | None = None,
    device: str = "auto",
    reduce: str = "none",
    n_components: int = 4096,
    standardize: bool = False,
    seed: int = 0,
    precision: str = "float32",
    progress: str = "auto",
    decode_workers: int | None = None,
) -> dict[str, np.ndarray]:
    """Run a model on images, batch by batch, and return each requested layer's activations.

    Only one batch of full activations is held in memory at a time: each layer is pooled the
    moment it is computed. With ``reduce="srp"`` each layer is streamed through a sparse random
    projection to ``n_components`` dimensions, so the stored size no longer grows with the
    layer's width (an early VGG-16 layer has 3.2 M values per image); with ``standardize`` a
    first pass computes each unit's mean and standard deviation over the stimuli, and units are
    z-scored before the projection (two passes).

    Parameters
    ----------
    loaded : LoadedModel
        The network (from :func:`brainalign.features.sources.load_model`).
    image_paths : sequence of path-like
        Stimulus images, in the order of the returned rows.
    layers : sequence of str
        Layer names of the model (``brainalign layers``).
    batch_size : int
        Images per forward pass.
    spatial_pool : int
        Convolutional maps are average-pooled to ``spatial_pool x spatial_pool`` (0 = keep all).
    image_size : int, optional
        Input side length in pixels (default: the model's preprocessing).
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
    precision : {"float32", "bfloat16", "float16"}
        Forward pass under ``torch.autocast`` in this precision; features are float32.
    progress : {"auto", "bar", "log", "none"}
        See :class:`Progress`.
    decode_workers : int, optional
        Threads decoding images ahead of the network (default: 1 on the CPU, up to 8 on a GPU).

    Returns
    -------
    features : dict of str to ndarray, shape (n_images, n_features)
        float32 activations per layer.
    """
    if reduce not in REDUCERS:
        raise ConfigError(f"Unknown feature reduction '{reduce}': expected one of {REDUCERS}.")
    if image_size is not None:
        loaded.preprocess.image_size = image_size
    dev = resolve_device(device)
    loaded.module.to(dev)
    layers = list(layers)
    logger.info("extracting %d layers of %s for %d images on %s (reduce=%s, precision=%s)",
                len(layers), loaded.name, len(image_paths), dev, reduce, precision)
    kwargs = dict(batch_size=batch_size, spatial_pool=spatial_pool, dev=dev,
                  precision=precision, progress=progress, label=loaded.name,
                  decode_workers=decode_workers)
    chunks: dict[str, list] = {layer: [] for layer in layers}
    if reduce == "none":
        for feats in _iter_batches(loaded, image_paths, layers, **kwargs):
            for layer, x in feats.items():
                chunks[layer].append(x)
        return {layer: np.concatenate(chunks[layer]).astype(np.float32, copy=False)
                for layer in layers}

    shift: dict[str, np.ndarray] = {}
    scale: dict[str, np.ndarray] = {}
    if standardize:
        sums: dict[str, np.ndarray] = {}
        sq: dict[str, np.ndarray] = {}
        for feats in _iter_batches(loaded, image_paths, layers, **kwargs):
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
    for feats in _iter_batches(loaded, image_paths, layers, **kwargs):
        for layer, x in feats.items():
            if standardize:
                x = (x - shift[layer]) * scale[layer]
            if x.shape[1] <= n_components:
                chunks[layer].append(x.astype(np.float32))
                continue
            if layer not in projections:
                projections[layer] = sparse_projection(
                    x.shape[1], n_components, seed=seed + layers.index(layer))
            chunks[layer].append(np.asarray(projections[layer] @ x.T).T.astype(np.float32))
    return {layer: np.concatenate(chunks[layer]) for layer in layers}


#: Feature reductions by config name (``features.reduce``).
REDUCERS = ("none", "srp")
