"""Steps of the features domain: run a model over the stimulus set, one file per layer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from brainalign.io import atomic_output, read_tsv

__all__ = ["save_features", "step_features"]

logger = logging.getLogger(__name__)


def step_features(
    stimuli_table: str,
    *,
    name: str,
    spec: Mapping,
    settings: Mapping,
    outputs: Mapping[str, str],
    base_dir: str | Path = ".",
) -> None:
    """Run one model on the stimulus set and store each layer's features.

    Image models of every source (:mod:`brainalign.features.sources`) run through
    :func:`~brainalign.features.extract.extract_image_features`; text models (Hugging Face
    folders with a tokenizer, the shipped MiniLM) through
    :func:`brainalign.features.text.extract_text_features`.

    Parameters
    ----------
    stimuli_table : str
        The stimulus manifest (its ``path`` column gives the files, in row order).
    name : str
        Model name in the config.
    spec : Mapping
        ``features.models.<name>`` config entry.
    settings : Mapping
        ``device``, ``batch_size``, ``spatial_pool``, ``image_size``, ``reduce``,
        ``n_components``, ``standardize``, ``precision``, ``progress`` (the ``features`` config
        section without models).
    outputs : Mapping of str to str
        Layer name -> output npz (``features`` (n_stimuli, n_features), ``stimuli``).
    base_dir : str or Path
        Directory relative ``weights``/``code_dir`` paths are relative to (the workflow passes
        absolute paths).
    """
    from brainalign.features.sources import is_text_spec, load_model

    stim = read_tsv(stimuli_table)
    layers = list(outputs)
    if is_text_spec(spec, base_dir):
        from brainalign.features.text import extract_text_features

        feats = extract_text_features(spec, stim, layers, settings=settings, base_dir=base_dir)
    else:
        from brainalign.features.extract import extract_image_features

        loaded = load_model(spec, name=name, base_dir=base_dir,
                            image_size=settings["image_size"])
        feats = extract_image_features(
            loaded,
            stim["path"].tolist(),
            layers,
            batch_size=settings["batch_size"],
            spatial_pool=settings["spatial_pool"],
            device=settings["device"],
            reduce=settings["reduce"],
            n_components=settings["n_components"],
            standardize=settings["standardize"],
            seed=int(spec.get("seed", 0) or 0),
            precision=settings.get("precision", "float32"),
            progress=settings.get("progress", "auto"),
        )
    for layer, path in outputs.items():
        logger.info("model %s layer %s: features %s", name, layer, feats[layer].shape)
        save_features(path, feats[layer], stim["stim_file"].to_numpy(str))


def save_features(path: str | Path, features: np.ndarray, stimuli: np.ndarray) -> None:
    """Write one layer's features to an uncompressed ``.npz``, atomically.

    Activations are float32 values that zlib shrinks little and slowly (a ViT layer's tokens
    take longer to compress than to compute), so feature files are stored uncompressed;
    :func:`brainalign.io.read_features` reads either form.

    Parameters
    ----------
    path : str or Path
        Output file.
    features : ndarray, shape (n_stimuli, n_features)
    stimuli : ndarray of str, shape (n_stimuli,)
        Stimulus file of each row.
    """
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, features=features, stimuli=stimuli)
