"""Glue between Snakemake and the package: derivative paths, target lists, the job context.

Everything here is a plain function of plain arguments so it can be unit-tested without
Snakemake; the rules call these and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path

from brainalign import __version__
from brainalign.errors import BrainAlignError

__all__ = [
    "DerivPaths",
    "entity_label",
    "encoding_parts",
    "job_context",
    "runtime_environment",
    "job_environment",
    "derivative_description",
    "container_images",
    "STEP_FAMILIES",
    "check_dataset_against_config",
    "check_stimuli_against_config",
    "subject_path",
]


def entity_label(name: str) -> str:
    """The BIDS entity label of a model or layer name: its letters and digits, in order.

    BIDS labels are alphanumeric, while model and layer names may hold other characters
    (``efficientnet_lite0``, ``conv1_1``). Derivative file names carry the label
    (``model-efficientnetlite0_layer-conv11``); tables, logs and the config keep the name.
    :func:`brainalign.features.check_model_spec` and :func:`brainalign.features.check_model_labels`
    reject configurations in which two names would get the same label.

    Parameters
    ----------
    name : str
        A model (config key) or layer name.

    Returns
    -------
    label : str
        ``name`` without its non-alphanumeric characters.

    Raises
    ------
    ValueError
        ``name`` has no ASCII letter or digit.
    """
    label = re.sub(r"[^A-Za-z0-9]", "", name)
    if not label:
        raise ValueError(
            f"Name {name!r} has no letter or digit to form a BIDS label: expected at least one "
            "of A-Z, a-z, 0-9. Rename it."
        )
    return label


class DerivPaths:
    """Every derivative path of the workflow, built from BIDS entities in one place.

    Parameters
    ----------
    output_dir : str
        Root of the derivative dataset.

    Notes
    -----
    Methods return Snakemake patterns when given wildcard strings such as ``"{subject}"``
    and concrete paths when given values.
    """

    def __init__(self, output_dir: str):
        self.root = str(output_dir).rstrip("/")

    def _p(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def description(self) -> str:
        """``dataset_description.json`` of the derivative dataset."""
        return self._p("dataset_description.json")

    def runs_manifest(self) -> str:
        """Table of the selected runs."""
        return self._p("manifest", "runs.tsv")

    def stimuli_manifest(self) -> str:
        """Table of the stimulus set (row order of every per-stimulus array)."""
        return self._p("manifest", "stimuli.tsv")

    def _func(self, subject: str, task: str, run: str, desc: str, suffix: str) -> str:
        name = f"sub-{subject}_task-{task}_run-{run}_desc-{desc}_{suffix}"
        return self._p(f"sub-{subject}", "func", name)

    def preproc_bold(self, subject: str, task: str, run: str) -> str:
        """Preprocessed BOLD (percent signal change)."""
        return self._func(subject, task, run, "preproc", "bold.nii.gz")

    def brain_mask(self, subject: str, task: str, run: str) -> str:
        """Brain mask of one run."""
        return self._func(subject, task, run, "brain", "mask.nii.gz")

    def brain_mask_json(self, subject: str, task: str, run: str) -> str:
        """JSON sidecar of a run's brain mask: how it was made, ROI voxels kept and removed."""
        return self._func(subject, task, run, "brain", "mask.json")

    def roi_voxels(self, subject: str) -> str:
        """Voxels of each ROI before and after masking, and why any were removed (TSV)."""
        return self._p(f"sub-{subject}", "func", f"sub-{subject}_desc-roivoxels_table.tsv")

    def confounds(self, subject: str, task: str, run: str) -> str:
        """Confound time series of one run."""
        return self._func(subject, task, run, "confounds", "timeseries.tsv")

    def sample_mask(self, subject: str, task: str, run: str) -> str:
        """Volumes of one run the GLM keeps (TSV, column ``keep``: 1 kept, 0 censored)."""
        return self._func(subject, task, run, "samplemask", "timeseries.tsv")

    def trial_betas(self, subject: str, task: str, run: str) -> str:
        """Single-trial betas of one run (4D NIfTI, one volume per trial)."""
        return self._func(subject, task, run, "singletrial", "statmap.nii.gz")

    def trial_table(self, subject: str, task: str, run: str) -> str:
        """The trials behind each beta volume."""
        return self._func(subject, task, run, "singletrial", "trials.tsv")

    def responses(self, subject: str) -> str:
        """Per-stimulus ROI responses with split halves and noise ceilings (npz)."""
        return self._p(f"sub-{subject}", "func", f"sub-{subject}_desc-stimulus_responses.npz")

    # --- M/EEG (datatype eeg or meg; files under sub-<subject>/<datatype>/) -------------------

    def _meeg(self, subject: str, datatype: str, name: str) -> str:
        return self._p(f"sub-{subject}", datatype, f"sub-{subject}_{name}")

    def meeg_epochs(self, subject: str, datatype: str, task: str, run: str) -> str:
        """Preprocessed epochs of one M/EEG run (MNE FIF; ``metadata`` has ``stim_file``)."""
        return self._meeg(subject, datatype, f"task-{task}_run-{run}_desc-clean_epo.fif")

    def meeg_preproc_log(self, subject: str, datatype: str, task: str, run: str) -> str:
        """What preprocessing removed from one M/EEG run (JSON: channels, components, epochs)."""
        return self._meeg(subject, datatype, f"task-{task}_run-{run}_desc-preproc_log.json")

    def meeg_responses(self, subject: str, datatype: str) -> str:
        """Per-stimulus evoked patterns with split halves and per-time noise ceilings (npz)."""
        return self._meeg(subject, datatype, "desc-stimulus_evoked.npz")

    def meeg_rdms(self, subject: str, datatype: str) -> str:
        """One RDM per time point and channel group, with split-half ceilings (npz)."""
        return self._meeg(subject, datatype, "desc-time_rdms.npz")

    def meeg_rsa_scores(self, subject: str, datatype: str, model: str) -> str:
        """Time-resolved RSA of one subject's channel groups with one model's layers (TSV)."""
        return self._meeg(subject, datatype, f"model-{self._label(model)}_desc-rsa_timescores.tsv")

    def meeg_encoding_scores(self, subject: str, datatype: str, model: str) -> str:
        """Time-resolved encoding of one subject's channel groups from one model's layers (TSV)."""
        return self._meeg(subject, datatype,
                          f"model-{self._label(model)}_desc-encoding_timescores.tsv")

    def meeg_fusion_scores(self, subject: str, datatype: str) -> str:
        """M/EEG-fMRI fusion: each time point's RDM against each fMRI ROI's RDM (TSV)."""
        return self._meeg(subject, datatype, "desc-fusion_timescores.tsv")

    def meeg_clusters(self) -> str:
        """Group cluster permutation tests over time (TSV, one row per cluster)."""
        return self._p("group", "meeg", "desc-clusters_stats.tsv")

    def meeg_peaks(self) -> str:
        """Group peak latency of each layer / ROI with bootstrap CIs over subjects (TSV)."""
        return self._p("group", "meeg", "desc-peaks_stats.tsv")

    @staticmethod
    def _label(name: str) -> str:
        """BIDS label of a model or layer name; a wildcard such as ``"{layer}"`` stays as is."""
        if name.startswith("{") and name.endswith("}"):
            return name
        return entity_label(name)

    def features(self, model: str, layer: str) -> str:
        """Features of one layer (npz: features, stimuli).

        File names carry the names' BIDS labels (:func:`entity_label`): model
        ``efficientnet_lite0``, layer ``conv1_1`` -> ``model-efficientnetlite0_layer-conv11``.
        """
        m, lay = self._label(model), self._label(layer)
        return self._p("features", f"model-{m}", f"model-{m}_layer-{lay}_features.npz")

    def layer_rdms(self, model: str) -> str:
        """RDMs of every configured layer of one model (npz; keyed by the real layer names)."""
        m = self._label(model)
        return self._p("features", f"model-{m}", f"model-{m}_desc-layers_rdms.npz")

    def voxel_scores(self, subject: str, model: str, layer: str) -> str:
        """Per-voxel encoding scores of one layer (model and layer as BIDS labels)."""
        m, lay = self._label(model), self._label(layer)
        return self._p(
            f"sub-{subject}",
            "encoding",
            f"sub-{subject}_model-{m}_layer-{lay}_voxelscores.tsv",
        )

    def encoding_part_scores(self, model: str, layer: str, part: str) -> str:
        """Per-voxel encoding scores of one layer for one part of the subjects.

        A TSV with a ``subject`` column; parts come from :func:`encoding_parts`.
        """
        m, lay = self._label(model), self._label(layer)
        return self._p("encoding", f"model-{m}_layer-{lay}_part-{part}_voxelscores.tsv")

    def encoding_summary(self, subject: str) -> str:
        """Per-ROI encoding scores of one subject."""
        return self._p(f"sub-{subject}", "encoding", f"sub-{subject}_desc-summary_scores.tsv")

    def roi_rdms(self, subject: str) -> str:
        """ROI RDMs and their split-half reliabilities of one subject (npz)."""
        return self._p(f"sub-{subject}", "rsa", f"sub-{subject}_desc-rois_rdms.npz")

    def rsa_scores(self, subject: str, model: str) -> str:
        """RSA comparison of one subject's ROIs with one model's layers (model as BIDS label)."""
        m = self._label(model)
        return self._p(f"sub-{subject}", "rsa", f"sub-{subject}_model-{m}_scores.tsv")

    def brain_rdms(self, rdmset: str) -> str:
        """An imported set of external brain RDMs (npz: one RDM per subject)."""
        return self._p("rdms", f"rdmset-{rdmset}_desc-brain_rdms.npz")

    def rsa_group_scores(self, rdmset: str, model: str) -> str:
        """Comparison of an external RDM set with one model's layers (model as BIDS label)."""
        m = self._label(model)
        return self._p("group", "rsa", f"rdmset-{rdmset}_model-{m}_scores.tsv")

    def subsample_curve(self, subject: str, model: str) -> str:
        """Subsampling curve of one subject's response areas against one model (TSV).

        Every draw's layer scores (external responses).
        """
        m = self._label(model)
        return self._p("group", "subsample", f"sub-{subject}_model-{m}_desc-draws_curve.tsv")

    def subsample_summary(self, subject: str, model: str) -> str:
        """Best layer per area and subsample size, and its agreement with the full data (TSV)."""
        m = self._label(model)
        return self._p("group", "subsample", f"sub-{subject}_model-{m}_desc-summary_curve.tsv")

    def scores(self) -> str:
        """Group table of every score."""
        return self._p("group", "scores.tsv")

    def report(self) -> str:
        """HTML report."""
        return self._p("group", "report.html")

    def provenance(self) -> str:
        """Resolved config, dataset and software versions of the run (JSON)."""
        return self._p("group", "provenance.json")

    def fmriprep_dir(self) -> str:
        """Where the workflow's own fMRIPrep jobs write (fmri.fmriprep.derivatives null)."""
        return self._p("fmriprep")

    def logs_dir(self) -> str:
        """Folder of every job's log (``<rule>/<name>.log``)."""
        return self._p("logs")

    def log(self, rule: str, name: str) -> str:
        """Log file of one job."""
        return self._p("logs", rule, f"{name}.log")


#: Step families, each with its own conda env (envs/) and container image (containers/).
STEP_FAMILIES = ("fmri", "meeg", "features", "analysis", "report")


def container_images(version: str = __version__) -> dict[str, str]:
    """The container image of each step family, as the rules name them.

    Parameters
    ----------
    version : str
        brainalign version the images carry (their tag).

    Returns
    -------
    images : dict
        ``{family: "docker://localhost/brainalign-<family>:<version>"}``.
    """
    return {f: f"docker://localhost/brainalign-{f}:{version}" for f in STEP_FAMILIES}


def derivative_description(source_dir: str, *,
                           containers: Mapping[str, str] | None = None) -> dict:
    """``dataset_description.json`` content of the derivative dataset.

    Parameters
    ----------
    source_dir : str
        The source dataset (BIDS folder, or the external stimulus folder).
    containers : mapping, optional
        ``{step family: image}`` of the container images that ran the steps, when the run
        used containers; each family gets its own ``GeneratedBy`` entry naming its image.

    Returns
    -------
    description : dict
    """
    generated = {
        "Name": "brainalign",
        "Version": __version__,
        "CodeURL": "https://github.com/brainalign/brainalign",
    }
    if containers:
        generated_by = []
        for family, image in containers.items():
            kind, _, tag = image.partition("://")
            generated_by.append({
                **generated,
                "Description": f"step family {family} (envs/{family}.txt)",
                "Container": {"Type": kind or "docker", "Tag": tag or image},
            })
    else:
        generated_by = [{**generated, "Description": "all steps on the host (no container)"}]
    return {
        "Name": "brainalign derivatives",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": generated_by,
        "SourceDatasets": [{"URL": Path(source_dir).resolve().as_uri()}],
    }


class _WildcardFilter(logging.Filter):
    def __init__(self, tag: str):
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        record.job = self.tag
        return True


@contextlib.contextmanager
def job_context(smk) -> Iterator[logging.Logger]:
    """Run a rule's script body with logging, thread limits and a version check.

    Sends log records of ``brainalign`` (and warnings) to the rule's log file, tagging every
    line with the job's wildcards; limits BLAS and torch threads to the job's ``threads``;
    checks that the installed package is the version the workflow was built with
    (``params.version``); logs any exception with its traceback and re-raises it so Snakemake
    marks the job failed and removes its outputs.

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The ``snakemake`` object of a ``script:`` rule.

    Yields
    ------
    logger : logging.Logger
        Logger for the script.
    """
    from threadpoolctl import threadpool_limits

    wildcards = dict(smk.wildcards.items()) if hasattr(smk.wildcards, "items") else {}
    tag = " ".join(f"{k}={v}" for k, v in wildcards.items()) or smk.rule
    log_path = smk.log[0] if len(smk.log) else None
    handler: logging.Handler
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_path, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s [{smk.rule} %(job)s] %(name)s: %(message)s")
    )
    handler.addFilter(_WildcardFilter(tag))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logger = logging.getLogger(f"brainalign.rule.{smk.rule}")
    threads = int(getattr(smk, "threads", 1) or 1)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        expected = getattr(smk.params, "version", None)
        if expected is not None and expected != __version__:
            raise BrainAlignError(
                f"Rule {smk.rule}: the workflow is brainalign {expected} but this job's "
                f"environment has brainalign {__version__}. Rebuild the environment/container "
                "at the workflow's version."
            )
        # torch reads OMP_NUM_THREADS when it is first imported; set it if it already was
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        with threadpool_limits(limits=threads):
            logger.info("start (threads=%d, %s)", threads, runtime_environment())
            yield logger
            logger.info("done")
    except BaseException:
        logger.error("failed:\n%s", traceback.format_exc())
        raise
    finally:
        # what the job imported, done or failed; the report gathers these lines
        with contextlib.suppress(Exception):
            logger.info("environment: %s", json.dumps(job_environment(), sort_keys=True))
        root.removeHandler(handler)
        handler.close()


def runtime_environment() -> str:
    """Where the running job's code comes from, for its log.

    Returns
    -------
    text : str
        brainalign's version and folder, the Python executable, and the step family of the
        container image when the job runs in one of brainalign's images (they record it in
        ``/opt/brainalign/family``).
    """
    import brainalign

    text = (f"brainalign {__version__} from {Path(brainalign.__file__).parent}, "
            f"python {sys.executable}")
    family = _image_family()
    if family:
        text += f", container image of step family {family}"
    return text


def _image_family() -> str | None:
    """Step family of the brainalign image this runs in (containers/install.sh records it)."""
    family = Path("/opt/brainalign/family")
    return family.read_text().strip() if family.is_file() else None


def job_environment() -> dict:
    """What the running job ran with, as recorded in its log and in provenance.json.

    Returns
    -------
    environment : dict
        ``python`` (executable and version), ``brainalign`` (version and folder),
        ``container_family`` (None outside brainalign's images) and ``packages``: the version
        of every installed distribution whose code the job has imported so far
        (:func:`brainalign.report.imported_package_versions`).
    """
    import platform

    import brainalign
    from brainalign.report import imported_package_versions

    return {
        "python": {"executable": sys.executable, "version": platform.python_version()},
        "brainalign": {"version": __version__, "path": str(Path(brainalign.__file__).parent)},
        "container_family": _image_family(),
        "packages": {k: v for k, v in imported_package_versions().items() if k != "brainalign"},
    }


def encoding_parts(subjects: list[str], subjects_per_job: int | None) -> dict[str, list[str]]:
    """Subjects of each encoding job (``encoding.subjects_per_job``).

    One encoding job fits one layer for the subjects of one part (sharing the decompositions
    of the features); parts are consecutive runs of ``subjects_per_job`` subjects, in the
    given order, labelled ``"1"``, ``"2"``, ...

    Parameters
    ----------
    subjects : list of str
        The study's subjects, in order.
    subjects_per_job : int or None
        Largest part; None puts every subject in one part.

    Returns
    -------
    parts : dict of str to list of str
        Part label -> its subjects.
    """
    size = len(subjects) if subjects_per_job is None else int(subjects_per_job)
    size = max(size, 1)
    return {
        str(k + 1): list(subjects[i : i + size])
        for k, i in enumerate(range(0, len(subjects), size))
    }


def subject_path(pattern: str, bids_dir: str | Path, subject: str) -> str:
    """A subject's file from a config path pattern (``{subject}``; relative to the dataset).

    Parameters
    ----------
    pattern : str
        Path with an optional ``{subject}`` placeholder (e.g. ``fmri.rois.dseg``).
    bids_dir : str or Path
        The raw dataset; relative patterns are relative to it.
    subject : str
        Subject label (without ``sub-``).

    Returns
    -------
    path : str
    """
    path = pattern.replace("{subject}", subject)
    return path if os.path.isabs(path) else os.path.join(str(bids_dir), path)


def check_dataset_against_config(index, config: dict) -> None:
    """Cross-checks between the indexed dataset and the configuration, at DAG construction.

    Parameters
    ----------
    index : brainalign.bids.DatasetIndex
    config : dict
        Validated configuration.

    Raises
    ------
    ConfigError
        Folds outnumber stimuli; BOLD runs selected with ``fmri: null``; ``meeg.rois`` names
        a channel the recordings lack, or ``meeg.epochs_tmin >= meeg.epochs_tmax``
        (:func:`brainalign.meeg.bids.check_meeg_config`).
        A text model with image stimuli, or an image model with text stimuli
        (:func:`brainalign.features.text.check_models_against_stimuli`).
    BIDSInputError
        An ROI atlas, labels table or mask image is missing or unusable
        (:func:`brainalign.fmri.checks.check_roi_inputs`).
    """
    from brainalign.errors import ConfigError
    from brainalign.fmri.checks import check_roi_inputs
    from brainalign.meeg.bids import check_meeg_config

    # the folds matter only where a ridge is cross-validated: fMRI encoding, M/EEG encoding
    meeg_encoding = bool(getattr(index, "meeg_runs", None)) and "encoding" in (
        config.get("meeg") or {}).get("analyses", ())
    if index.runs or meeg_encoding:
        check_stimuli_against_config(len(index.stimuli), config)
    if index.runs and not config.get("fmri"):
        raise ConfigError(
            f"Config key 'fmri' is null, but the dataset has {len(index.runs)} selected BOLD "
            "run(s): expected an fmri section to analyse them. Add the fmri section, or set "
            "bids.modalities to the M/EEG datatypes only (e.g. [eeg])."
        )
    if index.runs:
        check_roi_inputs(index, config["fmri"])
    if getattr(index, "meeg_runs", None) and config.get("meeg"):
        check_meeg_config(index.meeg_runs, config["meeg"])
    kind = getattr(index, "stimulus_kind", "image")
    if index.stimuli and (kind == "text" or any(
            (spec or {}).get("source") == "huggingface"
            for spec in config["features"]["models"].values())):
        from brainalign.features.text import check_models_against_stimuli

        check_models_against_stimuli(config["features"]["models"], kind)


def check_stimuli_against_config(n_stim: int, config: dict) -> None:
    """Check that the cross-validation folds fit the number of stimuli.

    Parameters
    ----------
    n_stim : int
        Stimuli in the stimulus set.
    config : dict
        Validated configuration.

    Raises
    ------
    ConfigError
        Folds outnumber stimuli.
    """
    from brainalign.errors import ConfigError

    ridge = config["encoding"]["ridge"]
    # the inner split sees only the outer training set
    n_train = n_stim - -(-n_stim // ridge["n_folds"])
    if ridge["n_folds"] > n_stim or ridge["n_inner_folds"] > n_train:
        raise ConfigError(
            f"Config keys 'encoding.ridge.n_folds' ({ridge['n_folds']}) / 'n_inner_folds' "
            f"({ridge['n_inner_folds']}): expected at most {n_stim} outer and {n_train} inner "
            f"folds for this dataset's {n_stim} stimuli. Lower them."
        )
