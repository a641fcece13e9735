"""The ``brainalign design-triplets`` and ``brainalign score-triplets`` subcommands."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

__all__ = ["DESIGN_COMMANDS", "add_design_commands"]

logger = logging.getLogger(__name__)

#: Names of the subcommands this module adds.
DESIGN_COMMANDS = ("design-triplets", "score-triplets")


def _models_from_config(path: Path | None) -> dict:
    if path is None:
        return {}
    import yaml

    from brainalign.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"Config file {path} (--config) does not exist.")
    cfg = yaml.safe_load(path.read_text()) or {}
    models = (cfg.get("features") or {}).get("models") or {}
    if not isinstance(models, dict):
        raise ConfigError(f"Config file {path} (--config): features.models must be a mapping of "
                          f"model names to entries, got {type(models).__name__}.")
    return models


def _feature_kwargs(args: argparse.Namespace) -> dict:
    return {"image_size": args.image_size, "spatial_pool": args.spatial_pool,
            "batch_size": args.batch_size, "device": args.device, "cache_dir": args.cache,
            "base_dir": args.config.parent if args.config else Path(".")}


def _design(args: argparse.Namespace) -> int:
    from brainalign.design.steps import (
        design_summary,
        parse_space,
        read_pool,
        space_similarities,
        write_design,
    )
    from brainalign.design.triplets import design_triplets
    from brainalign.errors import ConfigError

    for flag, text in (("--low", args.low), ("--high", args.high)):
        if len(parse_space(text)[1]) != 1:
            raise ConfigError(f"{flag} '{text}': expected exactly one layer, as MODEL:LAYER "
                              "(e.g. efficientnet_lite0:stem).")
    if args.n_trials <= 0 or args.n_trials % 4:
        raise ConfigError(f"--n-trials {args.n_trials}: expected a positive multiple of 4 (the "
                          "four cells are filled equally).")
    pool = read_pool(args.pool, stimuli_dir=args.stimuli_dir)
    models = _models_from_config(args.config)
    sims = space_similarities(pool, [args.low, args.high], models=models, metric=args.metric,
                              **_feature_kwargs(args))
    (lo_model, (lo_layer,)), (hi_model, (hi_layer,)) = map(parse_space, (args.low, args.high))
    low, high = sims[(lo_model, lo_layer)], sims[(hi_model, hi_layer)]
    design = design_triplets(low, high, args.n_trials, seed=args.seed,
                             max_candidates=args.max_candidates)
    params = {"pool": str(args.pool), "n_images": len(pool), "low": args.low,
              "high": args.high, "metric": args.metric, "n_trials": args.n_trials,
              "seed": args.seed, "image_size": args.image_size,
              "spatial_pool": args.spatial_pool, "max_candidates": args.max_candidates}
    paths = write_design(design, pool, args.out, parameters=params)
    summary = design_summary(design)
    print(json.dumps(summary, indent=1))
    print(f"design written to {paths['table']} (figure {paths['figure']})")
    return 0


def _score(args: argparse.Namespace) -> int:
    from brainalign.design.steps import (
        read_beh,
        read_pool,
        score_choices,
        space_similarities,
        write_scores,
    )

    pool = read_pool(args.pool, stimuli_dir=args.stimuli_dir)
    trials = read_beh(args.beh, pool, task_type=args.task_type)
    models = _models_from_config(args.config)
    sims = space_similarities(pool, args.model, models=models, metric=args.metric,
                              **_feature_kwargs(args))
    scores = score_choices(trials, sims, n_boot=args.n_boot, ci=args.ci, seed=args.seed)
    params = {"pool": str(args.pool), "beh": [str(p) for p in args.beh], "models": args.model,
              "metric": args.metric, "n_boot": args.n_boot, "ci": args.ci, "seed": args.seed,
              "image_size": args.image_size, "spatial_pool": args.spatial_pool}
    paths = write_scores(scores, args.out, parameters=params)
    cols = ["model", "layer", "accuracy", "ci_low", "ci_high", "p_best", "pseudo_r2"]
    print(scores[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"scores written to {paths['table']} (figure {paths['figure']})")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, type=Path,
                   help="folder of images, or a TSV with a 'file' column")
    p.add_argument("--stimuli-dir", type=Path,
                   help="folder the TSV's file names are relative to (default: the TSV's)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--config", type=Path,
                   help="YAML config whose features.models entries MODEL may name")
    p.add_argument("--metric", default="correlation", choices=("correlation", "cosine"),
                   help="similarity of pooled features (default correlation)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--image-size", type=int, default=224, help="input side in pixels")
    p.add_argument("--spatial-pool", type=int, default=4,
                   help="conv maps average-pooled to N x N before the similarity (default 4)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--cache", type=Path, help="folder to cache features in (reused)")


def add_design_commands(subparsers) -> None:
    """Add ``design-triplets`` and ``score-triplets`` to the ``brainalign`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``; each subcommand sets ``func``.
    """
    d = subparsers.add_parser(
        "design-triplets", prog="brainalign design-triplets",
        help="pick triplets whose low- and high-level similarities are decorrelated",
        description="Pick triplets (root, image1, image2) from an image pool so that the "
        "low-level similarity difference (one model layer) and the high-level one (another) "
        "are decorrelated, the four agree/disagree cells filled equally. Writes triplets.tsv "
        "(+ .json sidecar) and triplets_design.png.")
    _common(d)
    d.add_argument("--low", required=True, help="MODEL:LAYER of the low-level space, e.g. "
                   "efficientnet_lite0:stem")
    d.add_argument("--high", required=True, help="MODEL:LAYER of the high-level space, e.g. "
                   "efficientnet_lite0:head")
    d.add_argument("--n-trials", type=int, default=200,
                   help="number of triplets, a multiple of 4 (default 200)")
    d.add_argument("--max-candidates", type=int, default=200_000,
                   help="candidate triplets sampled from large pools (default 200000)")
    d.set_defaults(func=_design)

    s = subparsers.add_parser(
        "score-triplets", prog="brainalign score-triplets",
        help="score model layers by how well their similarities predict triplet choices",
        description="Read most-similar / odd-one-out choices (*_beh.tsv with root, image1, "
        "image2, choice) and score each layer of each model: proportion of choices predicted, "
        "with bootstrap CIs over trials (and subjects), and the log-likelihood of a fitted "
        "softmax choice rule. Writes choice_scores.tsv (+ .json) and choice_scores.png.")
    _common(s)
    s.add_argument("--beh", required=True, nargs="+", type=Path, help="*_beh.tsv files")
    s.add_argument("--model", required=True, action="append",
                   help="MODEL or MODEL:LAYER[,LAYER...] (repeatable; all layers when none)")
    s.add_argument("--task-type", choices=("most-similar", "odd-one-out"),
                   help="task of files without a task_type column (default most-similar)")
    s.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    s.add_argument("--ci", type=float, default=0.95, help="interval coverage (default 0.95)")
    s.set_defaults(func=_score)
