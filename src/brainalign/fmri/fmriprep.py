"""Running fMRIPrep from its container: the exact command per engine, licence and TemplateFlow.

Pure functions build the argv (checked against fMRIPrep's own CLI, ``fmriprep/cli/parser.py``,
and its ``fmriprep-docker`` wrapper, ``wrapper/src/fmriprep_docker/__main__.py``, at the pinned
version); :func:`step_fmriprep` runs it for one subject, logs it and removes the work folder
after success. Nothing here downloads; :func:`fetch_templates` is the one place that asks
TemplateFlow's servers for templates, and only ``brainalign prepare`` calls it.

Engines:

- ``apptainer``: ``apptainer run --cleanenv`` of a ``.sif`` with explicit ``-B`` binds, each path
  bound at its own location (the BIDS folder, the licence and the TemplateFlow home read-only),
  and ``--env TEMPLATEFLOW_HOME=...`` (clusters).
- ``docker`` / ``podman``: ``<engine> run --rm`` with the same binds as ``-v`` and
  ``-e TEMPLATEFLOW_HOME=...`` (workstations; Podman is Docker-compatible).
- ``fmriprep-docker``: the nipreps wrapper, which mounts the folders itself (``/data``,
  ``/out``, ``/scratch``, the licence at ``/opt/freesurfer/license.txt``). It has no option to
  mount a TemplateFlow home, so fMRIPrep inside it downloads templates at run time (fine on a
  workstation with internet, not on an offline node).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from brainalign.errors import BrainAlignError, ConfigError

__all__ = [
    "ENGINES",
    "FMRIPREP_VERSION",
    "ALWAYS_TEMPLATES",
    "default_image",
    "resolve_fs_license",
    "resolve_templateflow_home",
    "fmriprep_args",
    "fmriprep_command",
    "group_subjects_by_runs",
    "template_plan",
    "missing_templates",
    "fetch_templates",
    "check_fmriprep_config",
    "prepare_fmriprep",
    "step_fmriprep",
]

logger = logging.getLogger(__name__)

#: Engines that can run the fMRIPrep container.
ENGINES = ("apptainer", "docker", "podman", "fmriprep-docker")
#: fMRIPrep version the config pins by default (its CLI options used here exist from 24.1.1 on).
FMRIPREP_VERSION = "25.2.5"
#: Templates every fMRIPrep run needs: the default standard space (registration, confounds
#: masks, carpet plot) and the skull-stripping template (--skull-strip-template default).
ALWAYS_TEMPLATES = ("MNI152NLin2009cAsym", "OASIS30ANTs")
#: Output spaces that are not TemplateFlow templates (niworkflows' NONSTANDARD_REFERENCES).
NONSTANDARD_SPACES = ("T1w", "T2w", "anat", "fsnative", "func", "run", "sbref", "session",
                      "individual", "boldref")
#: Where TemplateFlow keeps templates when TEMPLATEFLOW_HOME is unset (templateflow.conf).
TEMPLATEFLOW_DEFAULT = Path("~/.cache/templateflow")
#: How to get a FreeSurfer licence (fMRIPrep needs one even with --fs-no-reconall).
LICENSE_HELP = ("Get a free licence at https://surfer.nmr.mgh.harvard.edu/registration.html "
                "and set fmri.fmriprep.fs_license to its path (or export FS_LICENSE).")


def default_image(engine: str, version: str) -> str:
    """The image an engine runs when ``fmri.fmriprep.image`` is null.

    Parameters
    ----------
    engine : str
        One of :data:`ENGINES`.
    version : str
        fMRIPrep version (``fmri.fmriprep.version``).

    Returns
    -------
    image : str
        ``nipreps/fmriprep:<version>`` for Docker-like engines; for Apptainer the ``.sif`` file
        name ``apptainer build`` would give it (``fmriprep-<version>.sif``).
    """
    if engine == "apptainer":
        return f"fmriprep-{version}.sif"
    return f"nipreps/fmriprep:{version}"


def resolve_fs_license(configured: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The FreeSurfer licence file: ``fmri.fmriprep.fs_license``, else ``$FS_LICENSE``.

    Parameters
    ----------
    configured : str or None
        The config value.
    environ : mapping, optional
        Environment to read ``FS_LICENSE`` from (default ``os.environ``).

    Returns
    -------
    path : Path
        Absolute path of an existing file.

    Raises
    ------
    ConfigError
        If neither is set, or the file does not exist.
    """
    environ = os.environ if environ is None else environ
    if configured:
        source, value = "fmri.fmriprep.fs_license", configured
    elif environ.get("FS_LICENSE"):
        source, value = "$FS_LICENSE", environ["FS_LICENSE"]
    else:
        raise ConfigError("FreeSurfer licence for fMRIPrep (fmri.fmriprep.fs_license): expected "
                          "a licence file, got none (the key is null and $FS_LICENSE is unset). "
                          + LICENSE_HELP)
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise ConfigError(f"FreeSurfer licence for fMRIPrep ({source}): expected a file, got "
                          f"{value!r}, which does not exist. " + LICENSE_HELP)
    return path


def resolve_templateflow_home(configured: str | None,
                              environ: Mapping[str, str] | None = None) -> Path:
    """The TemplateFlow home: config, else ``$TEMPLATEFLOW_HOME``, else TemplateFlow's default.

    Parameters
    ----------
    configured : str or None
        ``fmri.fmriprep.templateflow_home``.
    environ : mapping, optional
        Environment (default ``os.environ``).

    Returns
    -------
    path : Path
        Absolute path (it may not exist yet).
    """
    environ = os.environ if environ is None else environ
    value = configured or environ.get("TEMPLATEFLOW_HOME") or str(TEMPLATEFLOW_DEFAULT)
    return Path(value).expanduser().absolute()


def fmriprep_args(
    bids_dir: str | Path,
    out_dir: str | Path,
    subject: str,
    *,
    spaces: Sequence[str],
    fs_license: str | Path,
    work_dir: str | Path,
    nthreads: int,
    omp_nthreads: int,
    mem_mb: int,
    fs_no_reconall: bool,
    random_seed: int,
    skip_bids_validation: bool = True,
    extra_args: Sequence[str] = (),
    mem_option: str = "--mem-mb",
) -> list[str]:
    """The arguments of fMRIPrep itself for one participant (what follows the image).

    Parameters
    ----------
    bids_dir, out_dir : str or Path
        Positional ``bids_dir`` and ``output_dir`` as fMRIPrep sees them.
    subject : str
        Participant label without ``sub-``.
    spaces : sequence of str
        ``--output-spaces`` (e.g. ``MNI152NLin2009cAsym:res-2``, ``T1w``).
    fs_license, work_dir : str or Path
        ``--fs-license-file`` and ``-w`` as fMRIPrep sees them.
    nthreads, omp_nthreads, mem_mb : int
        ``--nthreads``, ``--omp-nthreads``, ``--mem-mb`` (the job's threads and memory).
    fs_no_reconall : bool
        Add ``--fs-no-reconall`` (no FreeSurfer surfaces; much faster).
    random_seed : int
        ``--random-seed``; with ``--skull-strip-fixed-seed`` (always given) and
        ``omp_nthreads=1`` fMRIPrep's results are replicable run to run.
    skip_bids_validation : bool
        Add ``--skip-bids-validation``.
    extra_args : sequence of str
        Appended as given (``fmri.fmriprep.extra_args``).
    mem_option : str
        Spelling of the memory option (the ``fmriprep-docker`` wrapper only recognises
        ``--mem_mb`` when it decides whether to prompt about memory).

    Returns
    -------
    args : list of str
    """
    if nthreads < 1 or omp_nthreads < 1 or mem_mb < 1:
        raise ValueError(f"fMRIPrep resources must be positive, got nthreads={nthreads}, "
                         f"omp_nthreads={omp_nthreads}, mem_mb={mem_mb}")
    args = [str(bids_dir), str(out_dir), "participant", "--participant-label", subject,
            "--output-spaces", *spaces, "--fs-license-file", str(fs_license),
            "-w", str(work_dir), "--nthreads", str(nthreads),
            "--omp-nthreads", str(min(omp_nthreads, nthreads)), mem_option, str(mem_mb),
            "--notrack", "--random-seed", str(random_seed), "--skull-strip-fixed-seed"]
    if fs_no_reconall:
        args.append("--fs-no-reconall")
    if skip_bids_validation:
        args.append("--skip-bids-validation")
    return args + [str(a) for a in extra_args]


def fmriprep_command(
    engine: str,
    *,
    image: str,
    bids_dir: str | Path,
    out_dir: str | Path,
    work_dir: str | Path,
    fs_license: str | Path,
    templateflow_home: str | Path,
    subject: str,
    spaces: Sequence[str],
    nthreads: int,
    omp_nthreads: int,
    mem_mb: int,
    fs_no_reconall: bool = False,
    random_seed: int = 0,
    skip_bids_validation: bool = True,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The full argv that runs fMRIPrep for one participant with ``engine``.

    Every host path is bound at the same path inside the container (apptainer, docker,
    podman), so the argv names the files the user knows; ``fmriprep-docker`` mounts them itself.

    Parameters
    ----------
    engine : {"apptainer", "docker", "podman", "fmriprep-docker"}
        How to run the container.
    image : str
        ``.sif`` file (apptainer) or image reference.
    bids_dir, out_dir, work_dir, fs_license, templateflow_home : str or Path
        Host paths (absolute).
    subject : str
        Participant label without ``sub-``.
    spaces, nthreads, omp_nthreads, mem_mb, fs_no_reconall, random_seed, skip_bids_validation,
    extra_args
        As in :func:`fmriprep_args`.

    Returns
    -------
    argv : list of str

    Raises
    ------
    ConfigError
        For an unknown engine.
    """
    if engine not in ENGINES:
        raise ConfigError(f"fmri.fmriprep.engine: expected one of {', '.join(ENGINES)}, got "
                          f"{engine!r}.")
    paths = {k: str(Path(v).absolute()) for k, v in
             dict(bids=bids_dir, out=out_dir, work=work_dir, lic=fs_license,
                  tf=templateflow_home).items()}
    common = dict(subject=subject, spaces=spaces, fs_license=paths["lic"],
                  work_dir=paths["work"], nthreads=nthreads, omp_nthreads=omp_nthreads,
                  mem_mb=mem_mb, fs_no_reconall=fs_no_reconall, random_seed=random_seed,
                  skip_bids_validation=skip_bids_validation, extra_args=extra_args)
    if engine == "fmriprep-docker":
        # the wrapper maps bids/out/-w/--fs-license-file/--output-spaces to its own mounts and
        # passes the rest through; --no-tty: no terminal under a workflow manager
        return ["fmriprep-docker", "-i", image, "--no-tty",
                *fmriprep_args(paths["bids"], paths["out"], mem_option="--mem_mb", **common)]
    binds = [(paths["bids"], "ro"), (paths["out"], "rw"), (paths["work"], "rw"),
             (paths["lic"], "ro"), (paths["tf"], "ro")]
    inner = fmriprep_args(paths["bids"], paths["out"], **common)
    if engine == "apptainer":
        opts = [a for p, mode in binds for a in ("-B", f"{p}:{p}:{mode}")]
        return ["apptainer", "run", "--cleanenv", *opts,
                "--env", f"TEMPLATEFLOW_HOME={paths['tf']}", image, *inner]
    opts = [a for p, mode in binds for a in ("-v", f"{p}:{p}" + (":ro" if mode == "ro" else ""))]
    return [engine, "run", "--rm", *opts, "-e", f"TEMPLATEFLOW_HOME={paths['tf']}", image,
            *inner]


def group_subjects_by_runs(runs: Mapping[str, Sequence[tuple]]) -> list[tuple[tuple, list[str]]]:
    """Subjects grouped by their exact set of runs (one Snakemake rule per group).

    A Snakemake rule's outputs are one pattern list for all its jobs, so subjects with the same
    runs share a rule; most studies make a single group.

    Parameters
    ----------
    runs : mapping of str to sequence of tuple
        Subject label -> its ``(session, task, run)`` tuples.

    Returns
    -------
    groups : list of (runs, subjects)
        In order of first appearance; ``runs`` a tuple of the run tuples.
    """
    groups: dict[tuple, list[str]] = {}
    for subject, subject_runs in runs.items():
        groups.setdefault(tuple(subject_runs), []).append(subject)
    return list(groups.items())


def template_plan(spaces: Sequence[str]) -> list[str]:
    """TemplateFlow templates a run with these output spaces needs, in a stable order.

    Parameters
    ----------
    spaces : sequence of str
        ``--output-spaces`` values (``MNI152NLin6Asym:res-2``, ``T1w``, ``fsaverage:den-10k``).

    Returns
    -------
    templates : list of str
        :data:`ALWAYS_TEMPLATES` first, then each standard space's template once (modifiers
        after ``:`` dropped; non-standard spaces such as ``T1w`` need none).
    """
    out = list(ALWAYS_TEMPLATES)
    for space in spaces:
        name = space.split(":")[0]
        if name not in NONSTANDARD_SPACES and name not in out:
            out.append(name)
    return out


def missing_templates(home: str | Path, templates: Sequence[str]) -> dict[str, str]:
    """Templates not (fully) downloaded in a TemplateFlow home.

    TemplateFlow's client first lays out a skeleton of empty placeholder files and fills each
    one on download; a template counts as present when its ``tpl-<name>/`` folder holds image
    files and none of them is such an empty placeholder.

    Parameters
    ----------
    home : str or Path
        The TemplateFlow home.
    templates : sequence of str
        Template names (:func:`template_plan`).

    Returns
    -------
    missing : dict of str to str
        Template name -> why it counts as missing; empty when all are there.
    """
    missing = {}
    for name in templates:
        folder = Path(home) / f"tpl-{name}"
        images = sorted(folder.rglob("*.nii.gz")) + sorted(folder.rglob("*.gii"))
        if not folder.is_dir():
            missing[name] = f"no folder {folder}"
        elif not images:
            missing[name] = f"{folder} holds no image files"
        else:
            empty = [p for p in images if p.stat().st_size == 0]
            if empty:
                missing[name] = (f"{len(empty)} of {len(images)} image files in {folder} are "
                                 "empty placeholders (not downloaded)")
    return missing


def fetch_templates(home: str | Path, templates: Sequence[str], *,
                    timeout_s: float = 3600) -> None:
    """Download templates into a TemplateFlow home with ``templateflow.api.get``.

    Runs in a child Python, because TemplateFlow reads ``TEMPLATEFLOW_HOME`` once, on import.

    Parameters
    ----------
    home : str or Path
        The TemplateFlow home (created if needed).
    templates : sequence of str
        Template names; every file of each is fetched (fMRIPrep's advice for offline nodes).
    timeout_s : float
        Limit of the whole download.

    Raises
    ------
    BrainAlignError
        If the templateflow package is missing, or the download fails (e.g. offline).
    """
    if not templates:
        return
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    code = ("import sys\nfrom templateflow import api\n"
            "for name in sys.argv[1:]:\n    api.get(name, raise_empty=True)\n")
    env = {**os.environ, "TEMPLATEFLOW_HOME": str(home)}
    try:
        res = subprocess.run([sys.executable, "-c", code, *templates], env=env,
                             capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BrainAlignError(f"TemplateFlow download of {', '.join(templates)} into {home} took "
                              f"over {timeout_s:.0f} s and was stopped.") from exc
    if "No module named 'templateflow'" in res.stderr:
        raise BrainAlignError("Fetching TemplateFlow templates needs the templateflow package: "
                              "pip install -r requirements.txt.")
    still = missing_templates(home, templates)
    if res.returncode != 0 or still:
        last = (res.stderr.strip().splitlines() or ["(no error output)"])[-1]
        raise BrainAlignError(
            f"Could not download TemplateFlow templates {', '.join(still or templates)} into "
            f"{home}: {last[:500]}. Run `brainalign prepare` on a machine with internet access "
            "(a cluster's login node), or copy a complete TemplateFlow home here and set "
            "fmri.fmriprep.templateflow_home (or $TEMPLATEFLOW_HOME) to it.")


def _settings(config: Mapping, environ: Mapping[str, str] | None) -> dict:
    """The resolved fMRIPrep settings of a validated config (licence checked)."""
    fp = config["fmri"]["fmriprep"]
    engine = fp["engine"]
    image = fp["image"] or default_image(engine, fp["version"])
    if engine == "apptainer":
        image = str(Path(image).expanduser().absolute())
    work = fp["work_dir"] or Path(config["output_dir"]) / "fmriprep_work"
    return {
        "engine": engine,
        "image": image,
        "bids_dir": str(Path(config["bids"]["bids_dir"]).absolute()),
        "out_dir": str((Path(config["output_dir"]) / "fmriprep").absolute()),
        "work_dir": str(Path(work).expanduser().absolute()),
        "fs_license": str(resolve_fs_license(fp["fs_license"], environ)),
        "templateflow_home": str(resolve_templateflow_home(fp["templateflow_home"], environ)),
        "spaces": [fp["space"]],
        "omp_nthreads": fp["omp_nthreads"],
        "fs_no_reconall": fp["fs_no_reconall"],
        "random_seed": fp["random_seed"],
        "skip_bids_validation": fp["skip_bids_validation"],
        "extra_args": list(fp["extra_args"]),
    }


def check_fmriprep_config(config: Mapping, environ: Mapping[str, str] | None = None) -> dict:
    """Check, at DAG construction, what fMRIPrep jobs need before any job runs.

    Parameters
    ----------
    config : mapping
        Validated configuration with ``fmri.preprocessing: fmriprep`` and
        ``fmri.fmriprep.derivatives: null``.
    environ : mapping, optional
        Environment (``FS_LICENSE``, ``TEMPLATEFLOW_HOME``; default ``os.environ``).

    Returns
    -------
    settings : dict
        What :func:`step_fmriprep` takes: ``engine``, ``image``, ``bids_dir``, ``out_dir``
        (``<output_dir>/fmriprep``), ``work_dir``, ``fs_license``, ``templateflow_home``
        (absolute paths as str), ``spaces`` and the other ``fmri.fmriprep`` options.

    Raises
    ------
    ConfigError
        Missing licence, an Apptainer image file that does not exist, or a TemplateFlow home
        that does not exist (apptainer/docker/podman bind it).
    """
    s = _settings(config, environ)
    if s["engine"] == "apptainer" and not Path(s["image"]).is_file():
        raise ConfigError(
            f"fMRIPrep image (fmri.fmriprep.image): expected an Apptainer image file, got "
            f"{s['image']!r}, which does not exist. Build it once on a login node: apptainer "
            f"build {s['image']} docker://nipreps/fmriprep:{config['fmri']['fmriprep']['version']}"
            " and set fmri.fmriprep.image to its path.")
    if s["engine"] != "fmriprep-docker" and not Path(s["templateflow_home"]).is_dir():
        raise ConfigError(
            f"TemplateFlow home for fMRIPrep (fmri.fmriprep.templateflow_home or "
            f"$TEMPLATEFLOW_HOME): expected a folder, got {s['templateflow_home']!r}, which "
            "does not exist. Run `brainalign prepare --config ...` (on a machine with internet "
            "access) to download the templates the run needs into it.")
    return s


def prepare_fmriprep(config: Mapping, environ: Mapping[str, str] | None = None, *,
                     fetch: bool = False) -> list[str]:
    """What an fMRIPrep run of ``config`` lacks on this machine (``brainalign prepare``).

    Parameters
    ----------
    config : mapping
        Validated configuration.
    environ : mapping, optional
        Environment (default ``os.environ``).
    fetch : bool
        Try to download the missing TemplateFlow templates first (needs internet).

    Returns
    -------
    missing : list of str
        One line per missing item with its fix; empty when fMRIPrep is not run by the workflow
        or everything it needs is here.
    """
    fmri = config.get("fmri") or {}
    if not config.get("bids") or fmri.get("preprocessing") != "fmriprep" \
            or fmri["fmriprep"]["derivatives"]:
        return []
    fp = fmri["fmriprep"]
    missing = []
    try:
        resolve_fs_license(fp["fs_license"], environ)
    except ConfigError as exc:
        missing.append(str(exc))
    engine = fp["engine"]
    image = fp["image"] or default_image(engine, fp["version"])
    if engine == "apptainer" and not Path(image).is_file():
        missing.append(f"fmri.fmriprep.image: Apptainer image {image} does not exist; build it "
                       f"with `apptainer build {image} docker://nipreps/fmriprep:{fp['version']}`"
                       " on a machine with internet access.")
    if engine == "fmriprep-docker":
        return missing  # the wrapper cannot mount a TemplateFlow home (module docstring)
    home = resolve_templateflow_home(fp["templateflow_home"], environ)
    plan = template_plan([fp["space"]])
    absent = missing_templates(home, plan)
    if absent and fetch:
        try:
            fetch_templates(home, list(absent))
        except BrainAlignError as exc:
            missing.append(str(exc))
        absent = missing_templates(home, plan)
    missing += [f"TemplateFlow template {name} ({why}); fMRIPrep would try to download it on "
                "the compute node: run `brainalign prepare` where there is internet access."
                for name, why in absent.items()]
    return missing


def step_fmriprep(
    settings: Mapping,
    *,
    subject: str,
    nthreads: int,
    mem_mb: int,
    outputs: Sequence[str],
    log: str | Path | None = None,
) -> list[str]:
    """Run one subject's fMRIPrep in its container, then remove its work folder after success.

    Parameters
    ----------
    settings : mapping
        ``engine``, ``image``, ``bids_dir``, ``out_dir``, ``work_dir`` (the subject's ``-w`` is
        ``<work_dir>/sub-<subject>``), ``fs_license``, ``templateflow_home``, ``spaces``,
        ``omp_nthreads`` (null: ``min(nthreads, 8)``), ``fs_no_reconall``, ``random_seed``,
        ``skip_bids_validation``, ``extra_args`` (the rule's params).
    subject : str
        Participant label.
    nthreads, mem_mb : int
        The job's threads and memory (``--nthreads``, ``--mem-mb``).
    outputs : sequence of str
        Files the job must leave behind (the rule's outputs).
    log : str or Path, optional
        File that gets fMRIPrep's stdout and stderr (else this process's); not the job's own
        log, which its logging handler owns.

    Returns
    -------
    argv : list of str
        The command that ran (also logged).

    Raises
    ------
    BrainAlignError
        If the engine is not installed, fMRIPrep fails (its work folder is kept, with the crash
        files, and a rerun resumes from it), or an expected output is missing.
    """
    work = Path(settings["work_dir"]) / f"sub-{subject}"
    omp = settings.get("omp_nthreads") or min(nthreads, 8)
    argv = fmriprep_command(
        settings["engine"], image=settings["image"], bids_dir=settings["bids_dir"],
        out_dir=settings["out_dir"], work_dir=work, fs_license=settings["fs_license"],
        templateflow_home=settings["templateflow_home"], subject=subject,
        spaces=settings["spaces"], nthreads=nthreads, omp_nthreads=omp, mem_mb=mem_mb,
        fs_no_reconall=settings["fs_no_reconall"], random_seed=settings["random_seed"],
        skip_bids_validation=settings["skip_bids_validation"],
        extra_args=settings["extra_args"])
    if shutil.which(argv[0]) is None:
        raise BrainAlignError(f"fMRIPrep engine {argv[0]!r} (fmri.fmriprep.engine) is not "
                              "installed on this machine (not on PATH). Install it, or choose "
                              "another engine.")
    work.mkdir(parents=True, exist_ok=True)
    Path(settings["out_dir"]).mkdir(parents=True, exist_ok=True)
    logger.info("running: %s", subprocess.list2cmdline(argv))
    fh = open(log, "w") if log else None  # noqa: SIM115 - closed below
    try:
        res = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT if fh else None,
                             stdin=subprocess.DEVNULL, check=False)
    finally:
        if fh:
            fh.close()
    if res.returncode != 0:
        raise BrainAlignError(f"fMRIPrep for sub-{subject} failed (exit code {res.returncode}); "
                              f"its output is in {log or 'the job output'} and its work folder "
                              f"{work} is kept (crash files; a rerun resumes from it).")
    absent = [o for o in outputs if not Path(o).is_file()]
    if absent:
        raise BrainAlignError(f"fMRIPrep for sub-{subject} finished but did not write "
                              f"{len(absent)} expected file(s), e.g. {absent[0]}. Check "
                              "fmri.fmriprep.space and the subject's runs in the BIDS folder.")
    shutil.rmtree(work, ignore_errors=True)
    logger.info("done; removed work folder %s", work)
    return argv
