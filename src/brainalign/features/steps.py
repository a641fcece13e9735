"""Steps of the features domain: run a model over the stimulus set, one file per layer."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from brainalign.io import read_tsv, save_npz

__all__ = ["step_features"]

logger = logging.getLogger(__name__)


def step_features(
    stimuli_table: str, *, name: str, spec: Mapping, settings: Mapping, outputs: Mapping[str, str]
) -> None:
    """Run one model on the stimulus set and store each layer's features.

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
        ``n_components``, ``standardize`` (the ``features`` config section without models).
    outputs : Mapping of str to str
        Layer name -> output npz (``features`` (n_stimuli, n_features), ``stimuli``).
    """
    from brainalign.features.extract import extract_features
    from brainalign.features.models import build_model

    stim = read_tsv(stimuli_table)
    model = build_model(spec)
    feats = extract_features(
        model,
        spec["architecture"],
        stim["path"].tolist(),
        list(outputs),
        batch_size=settings["batch_size"],
        spatial_pool=settings["spatial_pool"],
        image_size=settings["image_size"],
        device=settings["device"],
        reduce=settings["reduce"],
        n_components=settings["n_components"],
        standardize=settings["standardize"],
        seed=int(spec.get("seed", 0)),
    )
    for layer, path in outputs.items():
        logger.info("model %s layer %s: features %s", name, layer, feats[layer].shape)
        save_npz(path, features=feats[layer], stimuli=stim["stim_file"].to_numpy(str))
