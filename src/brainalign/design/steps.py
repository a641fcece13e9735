"""I/O of the triplet design and choice scoring: image pools, features, tables, figures.

The maths lives in :mod:`brainalign.design.triplets` and :mod:`brainalign.design.behaviour`;
this module reads image pools and ``*_beh.tsv`` files, computes layer similarities through the
feature stage (:func:`layer_features` is the one place a model is built), and writes the tables
(with BIDS-style JSON sidecars) and figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.design.behaviour import (
    TASK_TYPES,
    bootstrap_accuracy,
    choice_accuracy,
    fit_choice_model,
    option_values,
)
from brainalign.design.triplets import CELLS, TripletDesign, similarity_matrix
from brainalign.errors import BIDSInputError, ConfigError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImagePool",
    "layer_features",
    "model_spec",
    "parse_space",
    "plot_design",
    "plot_scores",
    "read_beh",
    "read_pool",
    "score_choices",
    "space_similarities",
    "write_design",
    "write_scores",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

#: Choice codes: 0 = root, 1 = image1, 2 = image2.
ROLES = ("root", "image1", "image2")


class ImagePool:
    """The images of a pool: their files and the names used in tables (relative paths).

    Parameters
    ----------
    paths : sequence of Path
        Image files, in pool order.
    names : sequence of str
        Their names in stimulus tables and ``beh`` files (unique).
    """

    def __init__(self, paths: Sequence[Path], names: Sequence[str]):
        self.paths = [Path(p) for p in paths]
        self.names = list(names)
        self._index = {n: i for i, n in enumerate(self.names)}
        base: dict[str, list[int]] = {}
        for i, n in enumerate(self.names):
            base.setdefault(Path(n).name, []).append(i)
        self._base = {k: v[0] for k, v in base.items() if len(v) == 1}

    def __len__(self) -> int:
        return len(self.paths)

    def index(self, name: str, *, where: str) -> int:
        """Pool index of an image name (its relative path, or its file name when unique)."""
        if name in self._index:
            return self._index[name]
        if Path(name).name in self._base:
            return self._base[Path(name).name]
        some = ", ".join(self.names[:3])
        raise BIDSInputError(f"{where} names image '{name}', which is not in the image pool "
                             f"({len(self.names)} images, e.g. {some}). Use the pool's file "
                             "names, or point --pool at the folder that holds the image.")


def read_pool(pool: str | Path, *, stimuli_dir: str | Path | None = None) -> ImagePool:
    """Read an image pool: a folder of images, or a TSV with a ``file`` (or ``stim_file``) column.

    Parameters
    ----------
    pool : path-like
        A folder (every image file in it and its subfolders, sorted by relative path) or a
        ``.tsv`` file listing the images.
    stimuli_dir : path-like, optional
        Folder the TSV's file names are relative to (default: the TSV's folder).

    Returns
    -------
    pool : ImagePool
    """
    pool = Path(pool)
    if pool.is_dir():
        paths = sorted(p for p in pool.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and p.is_file())
        if len(paths) < 3:
            raise BIDSInputError(f"Image pool {pool} (--pool): expected at least 3 image files "
                                 f"({', '.join(IMAGE_SUFFIXES)}), found {len(paths)}.")
        return ImagePool(paths, [p.relative_to(pool).as_posix() for p in paths])
    if not pool.is_file():
        raise BIDSInputError(f"Image pool {pool} (--pool) does not exist. Pass a folder of "
                             "images or a TSV with a 'file' column.")
    table = pd.read_csv(pool, sep="\t", dtype=str)
    column = next((c for c in ("file", "stim_file") if c in table.columns), None)
    if column is None:
        raise BIDSInputError(f"Image list {pool} (--pool): expected a column 'file' or "
                             f"'stim_file', found {list(table.columns)}. Rename the column "
                             "that holds the image file names.")
    base = Path(stimuli_dir) if stimuli_dir is not None else pool.parent
    names = table[column].tolist()
    paths = [base / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BIDSInputError(f"Image list {pool} (--pool) names {len(missing)} image(s) that do "
                             f"not exist, e.g. {missing[0]}. File names are relative to {base}; "
                             "pass --stimuli-dir with the folder that holds them.")
    if len(set(names)) != len(names):
        raise BIDSInputError(f"Image list {pool} (--pool) names some images twice: each image "
                             "may appear once.")
    return ImagePool(paths, names)


def parse_space(text: str) -> tuple[str, list[str]]:
    """Split ``MODEL:LAYER[,LAYER...]`` (layers optional) into the model name and layers.

    Parameters
    ----------
    text : str
        E.g. ``efficientnet_lite0:stem`` or ``efficientnet_lite0:stage3,head``.

    Returns
    -------
    model, layers : str, list of str
        ``layers`` is empty when none were given (all the model's layers).
    """
    model, _, layers = text.partition(":")
    if not model:
        raise ConfigError(f"Model and layer '{text}': expected MODEL:LAYER, e.g. "
                          "efficientnet_lite0:stem.")
    return model, [x for x in layers.split(",") if x]


def model_spec(name: str, models: Mapping[str, dict] | None = None) -> dict:
    """The config entry of a model: from ``features.models`` of a config, or the registry.

    Parameters
    ----------
    name : str
        A model named in ``models``, or a registry architecture with shipped weights
        (e.g. ``efficientnet_lite0``).
    models : mapping, optional
        ``features.models`` of a configuration file (``--config``).

    Returns
    -------
    spec : dict
        At least ``architecture``, ``weights``, ``seed`` and ``layers``.
    """
    from brainalign.features import ARCHITECTURES

    models = models or {}
    if name in models:
        spec = dict(models[name])
        spec.setdefault("architecture", name)
        spec.setdefault("seed", 0)
        spec.setdefault("weights", "shipped")
    elif name in ARCHITECTURES:
        entry = ARCHITECTURES[name]
        if not entry.shipped_weights:
            raise ConfigError(f"Model '{name}' has no shipped weights: describe it in a config "
                              "file (features.models.<name> with architecture and weights: a "
                              "local file or 'random') and pass --config.")
        spec = {"architecture": name, "weights": "shipped", "seed": 0}
    else:
        known = sorted(set(models) | set(ARCHITECTURES))
        raise ConfigError(f"Unknown model '{name}': expected a model of --config's "
                          f"features.models or a registry architecture ({', '.join(known)}).")
    if not spec.get("layers"):
        registry = spec.get("source", "registry") == "registry"
        entry = ARCHITECTURES.get(spec["architecture"]) if registry else None
        spec["layers"] = list(entry.layers) if entry is not None else []
    return spec


def _cache_key(spec: dict, layer: str, paths: Sequence[Path], options: dict) -> str:
    files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    keep = {k: spec.get(k) for k in ("architecture", "source", "weights", "seed", "kwargs")}
    text = json.dumps([keep, layer, files, options], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def layer_features(
    paths: Sequence[Path],
    spec: dict,
    layers: Sequence[str],
    *,
    image_size: int = 224,
    spatial_pool: int = 4,
    batch_size: int = 16,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    name: str = "model",
    base_dir: str | Path = ".",
) -> dict[str, np.ndarray]:
    """Pooled activations of some layers of one model for the pool's images.

    This is the only place the design commands build a model; it goes through the feature
    stage: :func:`brainalign.features.sources.load_model` with
    :func:`brainalign.features.extract.extract_image_features`, for every source (the
    registry, and ``source: torchvision | timm | huggingface | module`` in a config entry).

    Parameters
    ----------
    paths : sequence of Path
        Image files.
    spec : dict
        The model's config entry (:func:`model_spec`).
    layers : sequence of str
        Layer names.
    image_size : int
        Input side in pixels.
    spatial_pool : int
        Convolutional maps are average-pooled to ``spatial_pool x spatial_pool``.
    batch_size : int
        Images per forward pass.
    device : str
        "auto", "cpu" or "cuda[:N]".
    cache_dir : path-like, optional
        Folder of cached features (``.npy`` per model, layer and image list); reused when the
        same images, model and options come again.
    name : str
        The model's name (for messages).
    base_dir : path-like
        Folder relative weights paths of ``spec`` are relative to (the config file's).

    Returns
    -------
    features : dict of str to ndarray, shape (n_images, n_features)
    """
    spec = dict(spec, layers=list(layers))
    from brainalign.features import check_model_spec

    check_model_spec(name, spec, base_dir=base_dir)
    options = {"image_size": image_size, "spatial_pool": spatial_pool}
    out: dict[str, np.ndarray] = {}
    cache = Path(cache_dir) if cache_dir is not None else None
    todo = []
    for layer in layers:
        if cache is not None:
            f = cache / f"{_cache_key(spec, layer, paths, options)}.npy"
            if f.is_file():
                out[layer] = np.load(f)
                continue
        todo.append(layer)
    if todo:  # the feature stage's own loader and extraction, for every source
        from brainalign.features.extract import extract_image_features
        from brainalign.features.sources import load_model

        loaded = load_model(spec, name=name, base_dir=base_dir, image_size=image_size)
        feats = extract_image_features(loaded, list(paths), todo, batch_size=batch_size,
                                       spatial_pool=spatial_pool, image_size=image_size,
                                       device=device)
    for layer in todo:
        out[layer] = feats[layer]
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            np.save(cache / f"{_cache_key(spec, layer, paths, options)}.npy", feats[layer])
    return {layer: out[layer] for layer in layers}


def space_similarities(pool: ImagePool, spaces: Sequence[str], *,
                       models: Mapping[str, dict] | None = None, metric: str = "correlation",
                       **kwargs) -> dict[tuple[str, str], np.ndarray]:
    """Similarity matrices of model layers over a pool.

    Parameters
    ----------
    pool : ImagePool
        The images.
    spaces : sequence of str
        ``MODEL[:LAYER,...]`` (all the model's layers when none are named).
    models : mapping, optional
        ``features.models`` of a configuration.
    metric : {"correlation", "cosine"}
        Similarity of the pooled features.
    **kwargs
        Passed to :func:`layer_features` (``base_dir``: the folder of the config file).

    Returns
    -------
    sims : dict of (model, layer) to ndarray, shape (n_images, n_images)
    """
    wanted: dict[str, list[str]] = {}
    for text in spaces:
        name, layers = parse_space(text)
        spec = model_spec(name, models)
        for layer in layers or spec["layers"]:
            if layer not in wanted.setdefault(name, []):
                wanted[name].append(layer)
    sims = {}
    for name, layers in wanted.items():
        if not layers:
            raise ConfigError(f"Model '{name}' has no layers listed (features.models.{name}."
                              f"layers): name them, as {name}:LAYER[,LAYER...] (`brainalign "
                              "layers` lists them).")
        feats = layer_features(pool.paths, model_spec(name, models), layers, name=name,
                               **kwargs)
        for layer in layers:
            sims[(name, layer)] = similarity_matrix(feats[layer], metric=metric)
    return sims


# ---------------------------------------------------------------------------------------------
# the design


DESIGN_COLUMNS = {
    "trial": {"LongName": "Trial number", "Description": "1-based, in presentation order "
              "(shuffled with the seed)."},
    "root": {"Description": "Image the other two are compared with (name in the pool)."},
    "image1": {"Description": "First comparison image."},
    "image2": {"Description": "Second comparison image."},
    "d_low": {"LongName": "Low-level similarity difference",
              "Description": "sim_low(root, image1) - sim_low(root, image2): positive when the "
              "low-level space says image1 is more similar to the root."},
    "d_high": {"LongName": "High-level similarity difference",
               "Description": "sim_high(root, image1) - sim_high(root, image2)."},
    "cell": {"Description": "Which image each space says is more similar to the root.",
             "Levels": {"low1_high1": "both spaces: image1", "low2_high2": "both spaces: image2",
                        "low1_high2": "low-level: image1, high-level: image2",
                        "low2_high1": "low-level: image2, high-level: image1"}},
}


def write_design(design: TripletDesign, pool: ImagePool, out_dir: str | Path, *,
                 parameters: dict) -> dict[str, Path]:
    """Write the stimulus table, its JSON sidecar, a summary and the design figure.

    Parameters
    ----------
    design : TripletDesign
        From :func:`brainalign.design.design_triplets`.
    pool : ImagePool
        The images the indices refer to.
    out_dir : path-like
        Output folder (created).
    parameters : dict
        What produced the design (spaces, metric, seed, ...), stored in the sidecar.

    Returns
    -------
    paths : dict
        ``table``, ``sidecar``, ``figure``.
    """
    from brainalign import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = np.array(pool.names, dtype=object)
    t = design.triplets
    table = pd.DataFrame({
        "trial": np.arange(1, len(t) + 1), "root": names[t[:, 0]], "image1": names[t[:, 1]],
        "image2": names[t[:, 2]], "d_low": design.d_low, "d_high": design.d_high,
        "cell": design.cells,
    })
    paths = {"table": out / "triplets.tsv", "sidecar": out / "triplets.json",
             "figure": out / "triplets_design.png"}
    table.to_csv(paths["table"], sep="\t", index=False, float_format="%.6g")
    summary = design_summary(design)
    sidecar = dict(DESIGN_COLUMNS)
    sidecar["GeneratedBy"] = [{"Name": "brainalign design-triplets", "Version": __version__}]
    sidecar["Parameters"] = parameters
    sidecar["Summary"] = summary
    paths["sidecar"].write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    plot_design(design, paths["figure"], low=parameters.get("low", "low"),
                high=parameters.get("high", "high"))
    return paths


def design_summary(design: TripletDesign) -> dict:
    """Numbers that describe how well a design decorrelates the two spaces.

    Parameters
    ----------
    design : TripletDesign
        A design.

    Returns
    -------
    summary : dict
        ``n_trials``, ``corr``, ``abs_corr``, ``random_corr``, ``candidate_corr``,
        ``cell_counts``, ``n_candidates``, image-use range, and the mean ``|d|`` of the design
        and of random triplets (in units of the candidates' root mean square).
    """
    return {
        "n_trials": len(design.triplets),
        "corr": round(design.corr, 6),
        "abs_corr": round(abs(design.corr), 6),
        "random_corr": round(design.random_corr, 6),
        "candidate_corr": round(design.candidate_corr, 6),
        "cell_counts": design.cell_counts,
        "n_candidates": design.n_candidates,
        "image_uses_min": int(design.uses.min()),
        "image_uses_max": int(design.uses.max()),
        "mean_abs_z_low": round(float(np.mean(np.abs(design.d_low)) / design.scale_low), 4),
        "mean_abs_z_high": round(float(np.mean(np.abs(design.d_high)) / design.scale_high), 4),
        "random_mean_abs_z_low": round(
            float(np.mean(np.abs(design.random_d_low)) / design.scale_low), 4),
        "random_mean_abs_z_high": round(
            float(np.mean(np.abs(design.random_d_high)) / design.scale_high), 4),
    }


CELL_COLOURS = {"low1_high1": "#1b9e77", "low2_high2": "#7570b3", "low1_high2": "#d95f02",
                "low2_high1": "#e7298a"}


def plot_design(design: TripletDesign, path: str | Path, *, low: str = "low",
                high: str = "high") -> Path:
    """Scatter of ``d_low`` against ``d_high``: the design by cell, over random triplets.

    Parameters
    ----------
    design : TripletDesign
        A design.
    path : path-like
        PNG file to write.
    low, high : str
        Labels of the two spaces.

    Returns
    -------
    path : Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(design.random_d_low, design.random_d_high, s=8, c="0.75",
               label=f"random triplets (r = {design.random_corr:.2f})")
    for cell in CELLS:
        m = design.cells == cell
        ax.scatter(design.d_low[m], design.d_high[m], s=12, c=CELL_COLOURS[cell],
                   label=f"{cell} (n = {int(m.sum())})")
    ax.axhline(0, c="k", lw=0.5)
    ax.axvline(0, c="k", lw=0.5)
    ax.set_xlabel(f"d_low: {low}")
    ax.set_ylabel(f"d_high: {high}")
    ax.set_title(f"Triplet design: r(d_low, d_high) = {design.corr:.3f}")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# choices


def _subject_of(path: Path) -> str:
    m = re.search(r"sub-([A-Za-z0-9]+)", path.name)
    return m.group(1) if m else path.stem


def read_beh(paths: Sequence[str | Path], pool: ImagePool, *,
             task_type: str | None = None) -> pd.DataFrame:
    """Read triplet choices from BIDS ``*_beh.tsv`` files.

    Each file needs the columns ``root``, ``image1``, ``image2`` (image names of the pool) and
    ``choice``: ``image1``/``image2`` (most-similar) or ``root``/``image1``/``image2``
    (odd-one-out), or the chosen image's name. ``response_time`` is optional; a column
    ``task_type`` overrides ``task_type`` row by row. Rows whose choice is ``n/a`` (no response)
    are dropped. The subject is the ``participant_id`` column, else the file's ``sub-<label>``.

    Parameters
    ----------
    paths : sequence of path-like
        The files (one per subject or run).
    pool : ImagePool
        The images.
    task_type : {"most-similar", "odd-one-out"}, optional
        The task of files without a ``task_type`` column (default most-similar).

    Returns
    -------
    trials : DataFrame
        ``subject``, ``root``, ``image1``, ``image2`` (pool indices), ``choice`` (0 = root,
        1 = image1, 2 = image2), ``task_type``.
    """
    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise BIDSInputError(f"Behaviour file {path} does not exist.")
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        need = ["root", "image1", "image2", "choice"]
        missing = [c for c in need if c not in table.columns]
        if missing:
            raise BIDSInputError(f"Behaviour file {path}: expected columns {need}, missing "
                                 f"{missing} (found {list(table.columns)}). Rename the columns "
                                 "or add them.")
        rows = table[table["choice"].str.strip().str.lower().isin(["n/a", ""]) == False]  # noqa: E712
        if len(rows) < len(table):
            logger.info("%s: %d trials without a response dropped", path.name,
                        len(table) - len(rows))
        idx = {r: np.array([pool.index(v, where=f"Behaviour file {path}, column '{r}'")
                            for v in rows[r]], dtype=np.int64) for r in ROLES}
        choice = []
        for k, value in enumerate(rows["choice"].str.strip()):
            if value in ROLES:
                choice.append(ROLES.index(value))
                continue
            try:
                img = pool.index(value, where=f"Behaviour file {path}, column 'choice'")
            except BIDSInputError as exc:
                raise BIDSInputError(
                    f"Behaviour file {path}, row {k + 1}: choice '{value}' is neither root, "
                    "image1, image2 nor an image of the pool. Write which image was chosen."
                ) from exc
            roles = [r for r in ROLES if idx[r][k] == img]
            if not roles:
                raise BIDSInputError(f"Behaviour file {path}, row {k + 1}: the chosen image "
                                     f"'{value}' is not one of the trial's three images.")
            choice.append(ROLES.index(roles[0]))
        types = (rows["task_type"].tolist() if "task_type" in rows.columns
                 else [task_type or "most-similar"] * len(rows))
        subject = (rows["participant_id"].str.removeprefix("sub-").tolist()
                   if "participant_id" in rows.columns else [_subject_of(path)] * len(rows))
        frames.append(pd.DataFrame({"subject": subject, **idx, "choice": choice,
                                    "task_type": types}))
    trials = pd.concat(frames, ignore_index=True)
    unknown = sorted(set(trials["task_type"]) - set(TASK_TYPES))
    if unknown:
        raise ConfigError(f"Task type(s) {unknown} in the behaviour files (--task-type or "
                          f"column task_type): expected one of {sorted(TASK_TYPES)}.")
    if trials["task_type"].nunique() > 1:
        raise ConfigError(f"The behaviour files mix task types {sorted(set(trials.task_type))}; "
                          "score each task separately.")
    bad = (trials["task_type"] == "most-similar") & (trials["choice"] == 0)
    if bad.any():
        raise BIDSInputError("A most-similar trial names the root as its choice: for this task "
                             "the choice is image1 or image2 (use --task-type odd-one-out for "
                             "odd-one-out choices).")
    return trials


def score_choices(trials: pd.DataFrame, sims: Mapping[tuple[str, str], np.ndarray], *,
                  n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Score each (model, layer) by how well its similarities predict the choices.

    Parameters
    ----------
    trials : DataFrame
        From :func:`read_beh`.
    sims : mapping of (model, layer) to ndarray, shape (n_images, n_images)
        Similarity matrices.
    n_boot : int
        Bootstrap resamples (shared by all layers, so their intervals are comparable).
    ci : float
        Coverage of the intervals.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    scores : DataFrame
        One row per (model, layer): ``accuracy`` with ``ci_low``/``ci_high``, ``chance``,
        ``above_chance`` (the interval excludes chance), ``p_best``, and the fitted softmax
        choice rule (``beta``, ``log_likelihood`` per trial, ``pseudo_r2``).
    """
    task = trials["task_type"].iloc[0]
    tri = trials[["root", "image1", "image2"]].to_numpy()
    choices = trials["choice"].to_numpy()
    keys = list(sims)
    values = [option_values(sims[k], tri, task) for k in keys]
    credit = np.stack([choice_accuracy(v, choices, task) for v in values])
    boot = bootstrap_accuracy(credit, trials["subject"].to_numpy(), n_boot=n_boot, ci=ci,
                              seed=seed)
    rows = []
    for i, (model, layer) in enumerate(keys):
        fit = fit_choice_model(values[i], choices, task)
        rows.append({
            "model": model, "layer": layer, "task_type": task, "n_trials": len(trials),
            "n_subjects": trials["subject"].nunique(), "accuracy": boot["accuracy"][i],
            "ci_low": boot["ci_low"][i], "ci_high": boot["ci_high"][i],
            "chance": TASK_TYPES[task], "above_chance": bool(boot["ci_low"][i] > TASK_TYPES[task]),
            "p_best": boot["p_best"][i], "beta": fit.beta, "log_likelihood": fit.log_likelihood,
            "pseudo_r2": fit.pseudo_r2,
        })
    return pd.DataFrame(rows)


SCORE_COLUMNS = {
    "accuracy": {"Description": "Proportion of choices the layer's similarities predict (ties "
                 "share the credit)."},
    "ci_low": {"Description": "Lower end of the percentile bootstrap interval of accuracy "
               "(over trials; over subjects then trials when there are several)."},
    "ci_high": {"Description": "Upper end of that interval."},
    "chance": {"Description": "Accuracy of guessing: 1/2 (most-similar) or 1/3 (odd-one-out)."},
    "above_chance": {"Description": "ci_low > chance."},
    "p_best": {"Description": "Fraction of bootstrap resamples in which this layer predicts best."},
    "beta": {"Description": "Inverse temperature of the fitted softmax choice rule on the "
             "standardised similarities."},
    "log_likelihood": {"Description": "Mean log-likelihood per trial of the choices under that "
                       "rule.", "Units": "nat"},
    "pseudo_r2": {"Description": "McFadden's 1 - log_likelihood / log(chance)."},
}


def write_scores(scores: pd.DataFrame, out_dir: str | Path, *, parameters: dict) -> dict:
    """Write the score table, its sidecar and the figure.

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_choices`.
    out_dir : path-like
        Output folder (created).
    parameters : dict
        What was run, stored in the sidecar.

    Returns
    -------
    paths : dict
        ``table``, ``sidecar``, ``figure``.
    """
    from brainalign import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "choice_scores.tsv", "sidecar": out / "choice_scores.json",
             "figure": out / "choice_scores.png"}
    scores.to_csv(paths["table"], sep="\t", index=False, float_format="%.6g")
    sidecar = dict(SCORE_COLUMNS)
    sidecar["GeneratedBy"] = [{"Name": "brainalign score-triplets", "Version": __version__}]
    sidecar["Parameters"] = parameters
    paths["sidecar"].write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    plot_scores(scores, paths["figure"])
    return paths


def plot_scores(scores: pd.DataFrame, path: str | Path) -> Path:
    """Accuracy per layer with bootstrap intervals, one line per model, chance dashed.

    Parameters
    ----------
    scores : DataFrame
        From :func:`score_choices`.
    path : path-like
        PNG file to write.

    Returns
    -------
    path : Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(scores["model"]))
    width = max(5.0, 0.5 * scores.groupby("model").size().max() + 2)
    fig, axes = plt.subplots(1, len(models), figsize=(width * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        s = scores[scores["model"] == model]
        x = np.arange(len(s))
        ax.errorbar(x, s["accuracy"], yerr=[s["accuracy"] - s["ci_low"],
                                            s["ci_high"] - s["accuracy"]], fmt="o-", capsize=3)
        ax.axhline(s["chance"].iloc[0], ls="--", c="0.5", label="chance")
        ax.set_xticks(x, s["layer"], rotation=45, ha="right")
        ax.set_ylabel("choices predicted")
        ax.set_title(f"{model} ({s['task_type'].iloc[0]}, {int(s['n_trials'].iloc[0])} trials)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
