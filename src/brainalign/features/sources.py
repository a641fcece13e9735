"""Model sources: any torch model, built offline, with named layers read from its graph or tree.

``features.models.<name>.source`` selects how a network is built and how its layers are named:

``registry``
    brainalign's own registry (:data:`~brainalign.features.models.ARCHITECTURES`): curated layer
    names (``conv3_2``, ``stage4``) read out of the traced graph.
``torchvision``
    Any torchvision classification architecture by name
    (``torchvision.models.get_model(name, weights=None, **kwargs)``); layers are the nodes of its
    eval-mode FX graph (:func:`~torchvision.models.feature_extraction.get_graph_node_names`).
``timm``
    ``timm.create_model(name, pretrained=False, **kwargs)``; layers are its modules.
``huggingface``
    A ``transformers`` vision model saved in a local folder (``save_pretrained``), loaded with
    ``AutoModel.from_pretrained(folder, local_files_only=True)`` and fed by the folder's own image
    processor; layers are its modules. Of an image-text model (CLIP, SigLIP: a model with
    ``get_image_features``) only the image tower runs. Folders with a tokenizer and no image
    processor are text models (:mod:`brainalign.features.text`).
``module``
    A user's ``nn.Module``: ``architecture: "package.module:factory"`` (a class or function,
    called with ``kwargs``), ``code_dir`` put on ``sys.path`` first; layers are its modules.

Weights are ``random`` (the constructor's initialisation, seeded), ``shipped`` (registry models
whose weights a package installs) or a local file (``.pth``/``.pt``/``.bin`` read with
``torch.load(weights_only=True)``, or ``.safetensors``) holding a state dict; for ``huggingface``
the local folder itself. Nothing is downloaded.

Module layers are read with forward hooks: the output of a module that returns a tuple, list or
mapping (``transformers`` outputs) is its first tensor, and each output is reduced (pooled or
copied) the moment the module returns, so an in-place operation later in the forward pass (an
in-place ReLU, ``x += shortcut``) cannot change what was read. A module called more than once in
a forward pass is read at its last call. FX graph read-outs get the same protection: the
reduction is inserted into the graph right after each read node.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from brainalign.errors import ConfigError, ModelError
from brainalign.features.extract import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "SOURCES",
    "ImagePreprocess",
    "LoadedModel",
    "check_source_spec",
    "is_text_spec",
    "layers_of_spec",
    "list_layers",
    "load_model",
    "load_state_dict",
    "spec_from_layers_args",
    "source_hint",
    "spec_source",
    "weight_inputs",
]

logger = logging.getLogger(__name__)

#: Model sources by config name (``features.models.<name>.source``).
SOURCES = ("registry", "torchvision", "timm", "huggingface", "module")


_STATE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def spec_source(spec: Mapping) -> str:
    """The source of a model entry (``registry`` when the key is absent).

    Parameters
    ----------
    spec : Mapping
        A ``features.models.<name>`` entry.

    Returns
    -------
    source : str
        One of :data:`SOURCES`.
    """
    return spec.get("source") or "registry"


def weight_inputs(spec: Mapping) -> list[str]:
    """The local weights of a model entry, as workflow inputs (a new file reruns the model).

    Parameters
    ----------
    spec : Mapping
        A ``features.models.<name>`` entry.

    Returns
    -------
    paths : list of str
        ``[weights]`` when it is a local file or folder; empty for ``shipped`` and ``random``.
    """
    weights = spec.get("weights")
    return [] if weights in (None, "", "shipped", "random") else [str(weights)]


# ---------------------------------------------------------------------------------------------
# The loaded model


@dataclass
class ImagePreprocess:
    """How stimulus images become the network's input.

    Attributes
    ----------
    image_size : int
        Side of the square the images are resized to (pixels); unused with ``processor``.
    mean, std : tuple of float
        Per-channel normalisation of the [0, 1] pixel values.
    processor : object or None
        A ``transformers`` image processor that turns PIL images into ``pixel_values`` (it then
        decides size, crop and normalisation, as the model was trained).
    """

    image_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    processor: object | None = None

    def load(self, paths: Sequence[str | Path]):
        """Decode and preprocess images.

        Parameters
        ----------
        paths : sequence of path-like
            Image files (any format PIL reads); converted to RGB.

        Returns
        -------
        images : torch.Tensor, shape (n_images, 3, height, width)
        """
        if self.processor is None:
            from brainalign.features.extract import load_images

            return load_images(paths, image_size=self.image_size, mean=self.mean, std=self.std)
        from PIL import Image

        images = []
        for path in paths:
            with Image.open(path) as img:
                images.append(img.convert("RGB"))
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    def dummy(self, n: int = 1, *, device: str = "cpu"):
        """A zero input batch of the right shape (for tracing and shapes)."""
        import torch

        side = self.image_size
        if self.processor is not None:
            side = _processor_side(self.processor) or side
        return torch.zeros(n, 3, side, side, device=device)


def _processor_side(processor) -> int | None:
    for attr in ("crop_size", "size"):
        size = getattr(processor, attr, None)
        if size is None:
            continue
        size = dict(size) if not isinstance(size, int) else {"height": size}
        for key in ("height", "shortest_edge"):
            if size.get(key):
                return int(size[key])
    return None


@dataclass
class LoadedModel:
    """A network ready for feature extraction, whatever its source.

    Attributes
    ----------
    name : str
        The model's name in the config (for messages).
    source : str
        One of :data:`SOURCES`.
    module : torch.nn.Module
        The network, in eval mode.
    input_type : {"image", "text"}
        What its stimuli are.
    preprocess : ImagePreprocess
        Image decoding and normalisation.
    layers : tuple of str
        Every layer name that can be read out (registry: the curated names; torchvision: FX
        graph nodes; others: module names).
    call : callable
        ``call(module, images)`` runs the bare forward pass (``module(x)``, or
        ``module(pixel_values=x)`` for Hugging Face models).
    """

    name: str
    source: str
    module: object
    input_type: str
    preprocess: ImagePreprocess
    layers: tuple[str, ...]
    call: Callable = field(repr=False)
    _make_readout: Callable = field(repr=False)

    def forward(self, images):
        """The bare forward pass (no read-out), as a benchmark reference."""
        return self.call(self.module, images)

    def readout(self, layers: Sequence[str], *, capture: Callable | None = None) -> Callable:
        """A function from an input batch to the named layers' outputs.

        Parameters
        ----------
        layers : sequence of str
            Names from :attr:`layers`.
        capture : callable, optional
            Applied to each layer's output tensor the moment it is computed (e.g. pooling);
            default: a detached copy.

        Returns
        -------
        run : callable
            ``run(images) -> dict[str, Tensor]`` in the order of ``layers``.

        Raises
        ------
        ModelError
            A name that is not a layer of this model.
        """
        unknown = [layer for layer in layers if layer not in set(self.layers)]
        if unknown:
            raise ModelError(
                f"Unknown layer(s) {unknown} for model '{self.name}' (source {self.source}): "
                f"expected names from `brainalign layers`, e.g. {_preview(self.layers)}."
            )
        return self._make_readout(list(dict.fromkeys(layers)), capture or _copy)


def _copy(tensor):
    return tensor.detach().clone()


def _preview(names: Sequence[str], n: int = 12) -> str:
    names = list(names)
    if len(names) <= n:
        return str(names)
    return f"{names[: n // 2]} ... {names[-(n // 2):]} ({len(names)} in all)"


# ---------------------------------------------------------------------------------------------
# Read-outs: FX graph nodes, or module forward hooks


def _first_tensor(out):
    """The first tensor in a module's output (a tensor, tuple/list, or mapping/ModelOutput)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        items = list(out.values())
    elif isinstance(out, (tuple, list)):
        items = list(out)
    else:
        return None
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def _hook_readout(module, call: Callable, name: str) -> Callable:
    """``make(layers, capture) -> run(images)`` reading modules with forward hooks."""
    modules = dict(module.named_modules())

    def make(layers: list[str], capture: Callable) -> Callable:
        def run(images) -> dict:
            store: dict = {}
            handles = []
            for layer in layers:
                def hook(mod, args, out, layer=layer):
                    tensor = _first_tensor(out)
                    if tensor is None:
                        raise ModelError(
                            f"Layer '{layer}' of model '{name}' returned no tensor "
                            f"({type(out).__name__}): choose another layer."
                        )
                    store[layer] = capture(tensor)
                handles.append(modules[layer].register_forward_hook(hook))
            try:
                call(module, images)
            finally:
                for handle in handles:
                    handle.remove()
            missing = [layer for layer in layers if layer not in store]
            if missing:
                raise ModelError(
                    f"Layer(s) {missing} of model '{name}' were not run by its forward pass "
                    "(modules defined but unused): choose layers that `brainalign layers` lists "
                    "with a shape."
                )
            return {layer: store[layer] for layer in layers}

        return run

    return make


def _fx_readout(module, nodes: Sequence[str]) -> Callable:
    """``make(layers, capture) -> run(images)`` from FX graph nodes (capture inserted in graph)."""

    def make(layers: list[str], capture: Callable) -> Callable:
        import torch
        from torchvision.models.feature_extraction import create_feature_extractor

        node_of = _fx_canonical(nodes, layers)  # a module name reads its last node
        gm = create_feature_extractor(module, return_nodes={n: n for n in node_of.values()},
                                      suppress_diff_warning=True)
        graph = gm.graph
        output = next(n for n in graph.nodes if n.op == "output")
        returned = output.args[0]
        def capture_of(node_name: str) -> Callable:
            def brainalign_capture(tensor):  # a named function: FX names graph nodes after it
                if not isinstance(tensor, torch.Tensor):
                    raise ModelError(
                        f"Graph node '{node_name}' gives a {type(tensor).__name__}, not a tensor "
                        "(a shape or index computation): choose layers that `brainalign "
                        "layers` lists."
                    )
                return capture(tensor)

            return brainalign_capture

        captured = {}
        for layer, node in returned.items():
            with graph.inserting_after(node):
                captured[layer] = graph.call_function(capture_of(layer), (node,))
        output.args = (captured,)
        gm.recompile()

        def run(images) -> dict:
            out = gm(images)
            return {layer: out[node_of[layer]] for layer in layers}

        return run

    return make


def _fx_canonical(names: Sequence[str], wanted: Sequence[str]) -> dict[str, str]:
    """The graph node each wanted name reads: itself, or for a module name its last node.

    ``names`` is :func:`_fx_nodes`'s list, in which a module name follows its last node.
    """
    last_inside: dict[str, str] = {}
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts)):
            last_inside[".".join(parts[:k])] = name

    def canonical(name: str) -> str:
        return canonical(last_inside[name]) if name in last_inside else name

    return {name: canonical(name) for name in wanted}


def _fx_nodes(module) -> list[str]:
    """Eval-mode graph nodes, each module that holds nodes listed after its last node.

    A module name (``layer2``, ``features.3``) stands for the last node inside it, as
    :func:`~torchvision.models.feature_extraction.create_feature_extractor` reads it.
    """
    from torchvision.models.feature_extraction import get_graph_node_names

    _, nodes = get_graph_node_names(module, suppress_diff_warning=True)
    nodes = [n for n in nodes if n not in ("x", "input")]
    names = set(nodes)
    last: dict[str, int] = {}
    for i, node in enumerate(nodes):
        parts = node.split(".")
        for k in range(1, len(parts)):
            last[".".join(parts[:k])] = i
    after: dict[int, list[str]] = {}
    for prefix, i in last.items():
        if prefix not in names:
            after.setdefault(i, []).append(prefix)
    out = []
    for i, node in enumerate(nodes):
        out.append(node)
        out += sorted(after.get(i, []), key=lambda p: -p.count("."))  # inner modules first
    return out


def _module_layers(module) -> list[str]:
    return [name for name, _ in module.named_modules() if name]


def _plain_call(module, images):
    return module(images)


def _hf_call(module, images):
    return module(pixel_values=images)


def _hf_image_call(module, images):
    """Image-text models (CLIP, SigLIP): only the image tower runs."""
    return module.get_image_features(pixel_values=images)


def _hf_caller(module) -> Callable:
    return _hf_image_call if hasattr(module, "get_image_features") else _hf_call


# ---------------------------------------------------------------------------------------------
# Weights


def _resolve(path: str | Path, base_dir: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def load_state_dict(path: str | Path) -> dict:
    """Read a state dict from a local file.

    Parameters
    ----------
    path : path-like
        ``.safetensors`` (safetensors), anything else with ``torch.load(weights_only=True)``. A
        checkpoint that wraps the weights in ``state_dict`` or ``model`` is unwrapped, and a
        ``module.`` prefix (DataParallel) is dropped.

    Returns
    -------
    state : dict of str to Tensor
    """
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping) and not any(
                isinstance(v, torch.Tensor) for v in state.values()):
            state = state[key]
    if not isinstance(state, Mapping):
        raise ModelError(f"Weights file '{path}' holds a {type(state).__name__}, not a state "
                         "dict: save model.state_dict() instead.")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _load_weights(module, weights: str, *, name: str, base_dir) -> None:
    path = _resolve(weights, base_dir)
    state = load_state_dict(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(
            f"Weights file '{path}' does not fit model '{name}' (config key "
            f"'features.models.{name}.weights'): {' '.join(str(exc).split())[:400]} Give the "
            "state dict saved from the same architecture and kwargs."
        ) from exc


# ---------------------------------------------------------------------------------------------
# Builders (one per source): build(spec, base_dir) -> module, in eval mode, with its weights


def _torchvision_build(spec: Mapping):
    import torchvision

    return torchvision.models.get_model(spec["architecture"], weights=None,
                                        **dict(spec.get("kwargs") or {}))


def _timm_build(spec: Mapping):
    import timm

    return timm.create_model(spec["architecture"], pretrained=False,
                             **dict(spec.get("kwargs") or {}))


def _import_factory(spec: Mapping, base_dir, *, key: str) -> Callable:
    target = spec.get("architecture") or ""
    if ":" not in target:
        raise ConfigError(
            f"Config key '{key}.architecture' is '{target}': expected 'package.module:factory' "
            "(a class or function returning an nn.Module) for source 'module'."
        )
    mod_name, _, attr = target.partition(":")
    if spec.get("code_dir"):
        code_dir = str(_resolve(spec["code_dir"], base_dir).resolve())
        if not Path(code_dir).is_dir():
            raise ConfigError(
                f"Folder '{spec['code_dir']}' for config key '{key}.code_dir' does not exist "
                f"(looked at {code_dir}): expected the folder that holds package '{mod_name}'."
            )
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(
            f"Module '{mod_name}' of config key '{key}.architecture' is not importable: {exc}. "
            "Set code_dir to the folder that holds it, or install the package."
        ) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"'{mod_name}' has no '{attr}' (config key '{key}.architecture'): expected a "
                f"class or function there. Found: {_preview(sorted(vars(obj)), 10)}."
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"'{target}' (config key '{key}.architecture') is not callable: "
                          "expected a class or function returning an nn.Module.")
    return obj


def _module_build(spec: Mapping, base_dir, *, key: str):
    from torch import nn

    factory = _import_factory(spec, base_dir, key=key)
    module = factory(**dict(spec.get("kwargs") or {}))
    if not isinstance(module, nn.Module):
        raise ConfigError(f"'{spec['architecture']}' (config key '{key}.architecture') returned "
                          f"a {type(module).__name__}: expected an nn.Module.")
    return module


def _build(spec: Mapping, base_dir, *, name: str, meta: bool = False):
    """Build the bare network of a non-registry, non-HF spec (random init, or on meta)."""
    import torch

    source, key = spec_source(spec), f"features.models.{name}"
    build = {"torchvision": _torchvision_build, "timm": _timm_build}.get(source)

    def construct():
        try:
            if build is not None:
                return build(spec)
            return _module_build(spec, base_dir, key=key)
        except TypeError as exc:
            raise ConfigError(
                f"Building {source} model '{spec.get('architecture')}' failed with config key "
                f"'{key}.kwargs' = {dict(spec.get('kwargs') or {})}: {exc}. Expected keyword "
                "arguments of its constructor; fix or remove them."
            ) from exc

    if meta:
        try:
            with torch.device("meta"):
                return construct()
        except ConfigError:
            raise
        except Exception:  # noqa: BLE001 - constructors that cannot run on meta: build for real
            logger.debug("model %s cannot be built on the meta device; building on CPU", name)
    torch.manual_seed(int(spec.get("seed", 0) or 0))
    return construct()


def _hf_folder(spec: Mapping, base_dir, *, key: str) -> Path:
    weights = spec.get("weights") or ""
    folder = _resolve(weights, base_dir)
    if weights in ("random", "shipped") or not folder.is_dir():
        found = "not a folder" if weights in ("random", "shipped") else f"{folder} does not exist"
        raise ConfigError(
            f"Config key '{key}.weights' is '{weights}': expected the local folder of a "
            f"Hugging Face model (written by save_pretrained, with config.json), got {found}. "
            "Nothing is downloaded at run time: download it elsewhere (huggingface-cli download "
            "<repo> --local-dir <folder>) and give the folder."
        )
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"Folder '{folder}' of config key '{key}.weights' has no config.json: expected a "
            "folder written by save_pretrained / huggingface-cli download."
        )
    return folder


def _hf_processor(folder: Path, *, key: str):
    from transformers import AutoImageProcessor

    if not any((folder / f).is_file() for f in ("preprocessor_config.json",
                                                 "image_processor_config.json")):
        raise ConfigError(
            f"Folder '{folder}' of config key '{key}.weights' has no image processor config "
            "(preprocessor_config.json) and no tokenizer: expected a vision model saved with its "
            "image processor (processor.save_pretrained(folder)) or a text model with its "
            "tokenizer."
        )
    return AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)


def _hf_build(spec: Mapping, folder: Path, *, meta: bool):
    from transformers import AutoConfig, AutoModel

    kwargs = dict(spec.get("kwargs") or {})
    if meta:
        import torch

        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, **kwargs)
        with torch.device("meta"):
            return AutoModel.from_config(config)
    # float32 whatever dtype the folder stores (features.precision sets autocast instead)
    return AutoModel.from_pretrained(str(folder), local_files_only=True, **kwargs).float()


def is_text_spec(spec: Mapping, base_dir: str | Path = ".") -> bool:
    """Whether a model entry is a text model (handled by :mod:`brainalign.features.text`).

    Parameters
    ----------
    spec : Mapping
        A ``features.models.<name>`` entry.
    base_dir : str or Path
        Directory a relative weights path is relative to.

    Returns
    -------
    text : bool
        True for text models: Hugging Face entries that
        :func:`brainalign.features.text.is_text_model` claims (a folder with a tokenizer and no
        image processor, or a shipped text model).
    """
    source = spec_source(spec)
    if source != "huggingface":
        return False
    from brainalign.features.text import is_text_model

    return bool(is_text_model(spec, base_dir))


# ---------------------------------------------------------------------------------------------
# Public: load, list layers, check a spec


def load_model(spec: Mapping, *, name: str = "model", base_dir: str | Path = ".",
               image_size: int = 224):
    """Build a model from its config entry, with its weights, in eval mode, on the CPU.

    Parameters
    ----------
    spec : Mapping
        ``features.models.<name>`` entry (``source``, ``architecture``, ``weights``,
        ``kwargs``, ``code_dir``, ``seed``).
    name : str
        The model's name in the config (for messages).
    base_dir : str or Path
        Directory relative ``weights`` and ``code_dir`` paths are relative to.
    image_size : int
        Input side (pixels) for sources without their own image processor.

    Returns
    -------
    model : LoadedModel
    """
    source = spec_source(spec)
    key = f"features.models.{name}"
    pre = ImagePreprocess(image_size=image_size)
    if source == "registry":
        from brainalign.features.models import ARCHITECTURES, build_model

        entry = ARCHITECTURES[spec["architecture"]]
        module = build_model(dict(spec))

        def make(layers, capture):
            run_raw = entry.readout(module, layers)

            def run(images):
                return {layer: capture(out) for layer, out in run_raw(images).items()}

            return run

        return LoadedModel(name, source, module, "image", pre, tuple(entry.layers),
                           _plain_call, make)
    if source == "huggingface":
        folder = _hf_folder(spec, base_dir, key=key)
        processor = _hf_processor(folder, key=key)
        module = _hf_build(spec, folder, meta=False).eval()
        pre = ImagePreprocess(image_size=image_size, processor=processor)
        return LoadedModel(name, source, module, "image", pre, tuple(_module_layers(module)),
                           _hf_caller(module), _hook_readout(module, _hf_caller(module), name))
    module = _build(spec, base_dir, name=name)
    weights = spec.get("weights", "random")
    if weights == "shipped":
        raise ConfigError(f"Config key '{key}.weights' is 'shipped': no package ships weights "
                          f"for source {source}. Give a local state dict file, or 'random'.")
    if weights != "random":
        _load_weights(module, weights, name=name, base_dir=base_dir)
    module.eval()
    if source == "timm":
        cfg = getattr(module, "pretrained_cfg", None) or {}
        pre = ImagePreprocess(image_size=image_size, mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
                              std=tuple(cfg.get("std", IMAGENET_STD)))
    if source == "torchvision":
        try:
            nodes = _fx_nodes(module)
        except Exception as exc:  # noqa: BLE001 - untraceable: fall back to module hooks
            logger.warning("model %s: FX tracing failed (%s); reading module outputs instead",
                           name, exc)
        else:
            return LoadedModel(name, source, module, "image", pre, tuple(nodes), _plain_call,
                               _fx_readout(module, nodes))
    return LoadedModel(name, source, module, "image", pre, tuple(_module_layers(module)),
                       _plain_call, _hook_readout(module, _plain_call, name))


def _structure(spec: Mapping, *, name: str, base_dir, image_size: int):
    """(module on meta or CPU, layer names, preprocess, call) without loading weights."""
    source = spec_source(spec)
    key = f"features.models.{name}"
    if source == "huggingface":
        folder = _hf_folder(spec, base_dir, key=key)
        processor = _hf_processor(folder, key=key)
        module = _hf_build(spec, folder, meta=True).eval()
        return (module, _module_layers(module),
                ImagePreprocess(image_size=image_size, processor=processor), _hf_caller(module))
    module = _build(spec, base_dir, name=name, meta=True).eval()
    layers = None
    if source == "torchvision":
        try:
            layers = _fx_nodes(module)
        except Exception:  # noqa: BLE001
            layers = None
    return module, layers or _module_layers(module), ImagePreprocess(image_size), _plain_call


def list_layers(spec: Mapping, *, name: str = "model", base_dir: str | Path = ".",
                image_size: int = 224) -> list[tuple[str, str]]:
    """Every layer of a model, from input to output, with what it is and its output shape.

    The network is built on torch's meta device where it can be (no weights, no computation)
    and one input is passed through it.

    Parameters
    ----------
    spec : Mapping
        ``features.models.<name>`` entry.
    name : str
        The model's name (for messages).
    base_dir : str or Path
        Directory relative paths are relative to.
    image_size : int
        Input side in pixels (sources without their own image processor).

    Returns
    -------
    rows : list of (str, str)
        ``(layer, description)``; layers the forward pass does not run come last, marked
        "not run".
    """
    import torch

    source = spec_source(spec)
    if source == "registry":
        from brainalign.features.models import describe_layers

        return describe_layers(spec["architecture"], image_size=image_size)
    module, layers, pre, call = _structure(spec, name=name, base_dir=base_dir,
                                           image_size=image_size)
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    x = pre.dummy(1, device=str(device))
    shapes: dict[str, str] = {}
    with torch.no_grad():
        if source == "torchvision":
            try:
                from torchvision.models.feature_extraction import create_feature_extractor

                node_of = _fx_canonical(layers, layers)
                gm = create_feature_extractor(
                    module, return_nodes=list(dict.fromkeys(node_of.values())),
                    suppress_diff_warning=True)
                outs = gm(x)
                outs = {layer: outs.get(node_of[layer]) for layer in layers}
                modules = dict(module.named_modules())
                for node in layers:
                    out = outs.get(node)
                    if isinstance(out, torch.Tensor):
                        what = type(modules[node]).__name__ if node in modules else "operation"
                        shapes[node] = f"{what}; {_shape(out)}"
                return [(node, shapes[node]) for node in layers if node in shapes]
            except Exception:  # noqa: BLE001 - fall back to module hooks
                layers = _module_layers(module)
        modules = dict(module.named_modules())
        order: dict[str, str] = {}

        def hook(mod, args, out, layer):
            tensor = _first_tensor(out)
            order.pop(layer, None)
            order[layer] = (f"{type(mod).__name__}; "
                            + (_shape(tensor) if tensor is not None else "no tensor output"))

        handles = [modules[layer].register_forward_hook(functools.partial(hook, layer=layer))
                   for layer in layers]
        try:
            call(module, x)
        finally:
            for handle in handles:
                handle.remove()
    rows = list(order.items())
    rows += [(layer, f"{type(modules[layer]).__name__}; not run")
             for layer in layers if layer not in order]
    return rows


def _shape(tensor) -> str:
    return "output " + " x ".join(str(int(s)) for s in tensor.shape[1:])


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_source_spec(name: str, spec: Mapping, *, base_dir: str | Path = ".") -> None:
    """Check a non-registry model entry at DAG time (no weights are loaded).

    Parameters
    ----------
    name : str
        The model's name in the config.
    spec : Mapping
        Its entry.
    base_dir : str or Path
        Directory relative ``weights`` and ``code_dir`` paths are relative to.

    Raises
    ------
    ConfigError
        Unknown architecture (with the closest names), a missing weights file or folder, a module
        path that does not import, or layer names the model does not have (with the valid ones).
    """
    source = spec_source(spec)
    key = f"features.models.{name}"
    arch = spec.get("architecture")
    weights = spec.get("weights", "random")
    if source in ("torchvision", "timm", "module") and not arch:
        example = {"module": "mypkg.nets:MyNet", "timm": "convnext_tiny"}.get(source, "resnet18")
        raise ConfigError(f"Config key '{key}.architecture' is empty: expected a name for "
                          f"source {source}, e.g. {example}.")
    if source == "torchvision":
        import torchvision

        names = torchvision.models.list_models(module=torchvision.models)
        if arch not in names:
            raise ConfigError(
                f"Unknown torchvision architecture '{arch}' for config key '{key}.architecture': "
                f"expected a classification model of torchvision.models.list_models()."
                f"{_did_you_mean(arch, names)}"
            )
    elif source == "timm":
        import timm

        names = timm.list_models()
        if arch not in names:
            raise ConfigError(
                f"Unknown timm architecture '{arch}' for config key '{key}.architecture': "
                f"expected a name of timm.list_models().{_did_you_mean(arch, names)}"
            )
    if source in ("torchvision", "timm", "module"):
        if weights == "shipped":
            raise ConfigError(
                f"Config key '{key}.weights' is 'shipped', but no package ships weights for "
                f"source {source}: expected a local state dict file (.pth or .safetensors) or "
                "'random' for an explicitly untrained network."
            )
        if weights != "random":
            path = _resolve(weights, base_dir)
            if not path.is_file():
                raise ConfigError(
                    f"Weights file '{weights}' for config key '{key}.weights' does not exist "
                    f"(looked at {path}): expected a local state dict (.pth or .safetensors). "
                    "Nothing is downloaded at run time: copy the file there, or set weights: "
                    "random to use an untrained network on purpose."
                )
    elif source == "huggingface":
        if is_text_spec(spec, base_dir):
            from brainalign.features.text import check_text_spec

            check_text_spec(name, spec, base_dir)
            return
        _hf_folder(spec, base_dir, key=key)
    if source == "torchvision":  # graph nodes that give tensors (not shapes or indices)
        valid = [layer for layer, _ in list_layers(spec, name=name, base_dir=base_dir)]
    else:
        _, valid, _, _ = _structure(spec, name=name, base_dir=base_dir, image_size=224)
    bad = [layer for layer in spec["layers"] if layer not in set(valid)]
    if bad:
        hints = "; ".join(f"'{b}':{_did_you_mean(b, valid) or ' no close name.'}" for b in bad[:3])
        raise ConfigError(
            f"Unknown layer(s) {bad} for config key '{key}.layers' ({source} model "
            f"'{arch or spec.get('weights')}'): expected names from {_preview(valid, 16)}. "
            f"{hints} List them all with `brainalign layers --config <config> --model {name}`."
        )
    from brainalign.features.models import _check_labels

    _check_labels(spec["layers"], what="layers", key=f"{key}.layers")


def layers_of_spec(spec: Mapping, *, name: str = "model", base_dir: str | Path = ".",
                   image_size: int = 224) -> list[tuple[str, str]]:
    """The layers of any model entry, image or text (what ``brainalign layers`` prints).

    Parameters
    ----------
    spec : Mapping
        ``features.models.<name>`` entry.
    name : str
        The model's name (for messages).
    base_dir : str or Path
        Directory relative paths are relative to.
    image_size : int
        Input side in pixels (image models without their own image processor).

    Returns
    -------
    rows : list of (str, str)
        ``(layer, description)``, input to output.
    """
    if is_text_spec(spec, base_dir):
        from brainalign.features.text import list_text_layers

        return list_text_layers(spec, base_dir)
    return list_layers(spec, name=name, base_dir=base_dir, image_size=image_size)


def spec_from_layers_args(args) -> tuple[dict, Path, str]:
    """A model entry from the options of ``brainalign layers``.

    Parameters
    ----------
    args : argparse.Namespace
        ``architecture``, ``source``, ``weights``, ``kwargs`` (JSON), ``code_dir``, or
        ``config`` and ``model`` (a model of a config file; a checkpoint family's members are
        named ``<family>_<label>``).

    Returns
    -------
    spec : dict
    base_dir : Path
        The config file's folder, or the current directory.
    name : str
    """
    import json

    if args.config:
        import yaml

        from brainalign.features.checkpoints import expand_checkpoints

        path = Path(args.config)
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
        models = (config.get("features") or {}).get("models") or {}
        if args.model not in models:
            try:
                models = {**models, **expand_checkpoints(models)}
            except ConfigError:
                pass
        if args.model not in models:
            raise ConfigError(
                f"--model '{args.model}' is not a model of {path} (features.models): expected "
                f"one of {sorted(models)}."
            )
        return dict(models[args.model]), path.parent, args.model
    try:
        kwargs = json.loads(args.kwargs or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--kwargs '{args.kwargs}' is not JSON ({exc}): expected e.g. "
                          "'{\"num_classes\": 10}'.") from exc
    if args.source != "huggingface" and not args.architecture:
        raise ConfigError(f"brainalign layers --source {args.source}: expected an architecture "
                          "name, e.g. brainalign layers convnext_tiny --source timm.")
    weights = args.weights or ("shipped" if args.source == "registry" else "random")
    spec = {"source": args.source, "architecture": args.architecture, "weights": weights,
            "kwargs": kwargs, "code_dir": args.code_dir, "seed": 0}
    name = args.architecture or Path(weights).name
    return spec, Path.cwd(), name


def source_hint(architecture: str | None) -> str:
    """Which sources know an architecture name, as a hint for messages ("" when none).

    Parameters
    ----------
    architecture : str or None
        A model name that is not in the registry.

    Returns
    -------
    hint : str
        E.g. " 'resnet18' is a torchvision model: add --source torchvision."
    """
    if not architecture:
        return ""
    import torchvision

    found = []
    if architecture in torchvision.models.list_models(module=torchvision.models):
        found.append("torchvision")
    try:
        import timm

        if architecture in timm.list_models():
            found.append("timm")
    except ImportError:  # pragma: no cover - timm is pinned
        pass
    if not found:
        return ""
    return (f" '{architecture}' is a {' and a '.join(found)} model: add --source "
            f"{found[0]}.")
