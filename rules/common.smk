# Configuration validation and BIDS indexing at DAG construction: bad config or bad input stops
# here, before any job runs. Path builders and target lists come from the package.
import os
from pathlib import Path

from brainalign import __version__ as BRAINALIGN_VERSION
from brainalign.ingest.bids import index_dataset
from brainalign.config import validate_config
from brainalign.features.text import check_models_against_stimuli
from brainalign.fmri.derivatives import fmriprep_run_files, split_space
from brainalign.ingest.external import read_stimulus_table
from brainalign.workflow import (
    DerivPaths,
    check_dataset_against_config,
    check_stimuli_against_config,
    container_images,
    derivative_description,
    entity_label,
    subject_path,
)

CFG = validate_config(config, base_dir=os.getcwd())
P = DerivPaths(CFG["output_dir"])
MODELS = CFG["features"]["models"]
# File names carry BIDS labels (letters and digits only) of model and layer names, and so do the
# {model} and {layer} wildcards (efficientnet_lite0 -> efficientnetlite0, conv1_1 -> conv11; see
# brainalign.workflow.entity_label). Rules that need a real name map the label back; config
# validation rejects names that would share a label.
MODEL_OF_LABEL = {entity_label(m): m for m in MODELS}
MODEL_LABELS = list(MODEL_OF_LABEL)
# Input mode: a raw BIDS dataset, or external brain RDMs plus a stimulus table.
MODE = "bids" if CFG["bids"] else "external"
if MODE == "bids":
    INDEX = index_dataset(
        CFG["bids"]["bids_dir"],
        tasks=CFG["bids"]["tasks"],
        participant_label=CFG["bids"]["participant_label"],
        stimuli_dir=CFG["bids"]["stimuli_dir"],
        sessions=CFG["bids"]["sessions"],
        modalities=CFG["bids"]["modalities"],
        stim_column=CFG["meeg"]["stim_column"],
        text_column=CFG["bids"]["text_column"],
    )
    check_dataset_against_config(INDEX, CFG)
    # SUBJECTS: the subjects with fMRI runs; MEEG_SUBJECTS: those with EEG/MEG recordings
    SUBJECTS = sorted({r.subject for r in INDEX.runs})
    ROIS = CFG["fmri"]["rois"] if CFG["fmri"] else {}
    MEEG_RUNS = INDEX.meeg_runs
    # stimulus files the features jobs read (none when bids.text_column holds the texts:
    # they are in the stimulus manifest)
    STIMULUS_FILES = INDEX.stimulus_files
    RDMSETS = []
else:
    EXT = CFG["external"]
    STIMULI = read_stimulus_table(
        EXT["stimuli"], stimuli_dir=EXT["stimuli_dir"], column=EXT["stim_column"]
    )
    check_stimuli_against_config(len(STIMULI), CFG)
    # a text model on image stimuli (or the reverse) stops here, before any job runs
    check_models_against_stimuli(
        MODELS,
        (
            "text"
            if STIMULI["stim_file"].str.lower().str.endswith(".txt").any()
            else "image"
        ),
    )
    MEEG_RUNS = []
    STIMULUS_FILES = STIMULI["path"].tolist()
    RDMSETS = list(EXT["rdms"])
    # external.responses: areas grouped by subject label, each subject analysed like an fMRI
    # subject (rules/responses.smk imports, rules/encoding.smk and rules/rsa.smk analyse)
    RESPONSE_AREAS = {}
    for _area, _spec in EXT["responses"].items():
        RESPONSE_AREAS.setdefault(_spec["subject"], {})[_area] = _spec
    SUBJECTS = sorted(RESPONSE_AREAS)

# Where the post-deploy script of each conda env (envs/post-deploy.sh) installs brainalign
# from, at the workflow's version, under --software-deployment-method conda.
os.environ.update(BRAINALIGN_SOURCE=workflow.basedir)

# one container image per step family, tagged with the package version (containers/)
CONTAINERS = container_images(BRAINALIGN_VERSION)
# whether this run executes the rules in those containers (--sdm apptainer)
USES_CONTAINERS = any(
    m.name == "APPTAINER" for m in workflow.deployment_settings.deployment_method
)


wildcard_constraints:
    subject="[A-Za-z0-9]+",
    task="[A-Za-z0-9]+",
    run="[A-Za-z0-9]+",
    model="[A-Za-z0-9]+",
    layer="[A-Za-z0-9]+",
    rdmset="[A-Za-z0-9]+",
    datatype="eeg|meg",


def roi_file(key, subject):
    """Path of a subject's ROI atlas (``dseg``) or labels file (fmri.rois)."""
    return subject_path(ROIS[key], INDEX.bids_dir, subject)


def mask_file(subject):
    """The subject's mask image with fmri.mask.method ``file``; none otherwise."""
    mask = CFG["fmri"]["mask"]
    return [subject_path(mask["path"], INDEX.bids_dir, subject)] if mask["path"] else []


def subject_runs(path_fn):
    """Input function: ``path_fn(subject, task, run)`` for every run of the job's subject."""
    return lambda wc: [
        path_fn(wc.subject, r.task, r.run) for r in INDEX.runs_of(wc.subject)
    ]


def fmriprep_root():
    """fMRIPrep derivatives read by the GLM: fmri.fmriprep.derivatives, else the workflow's own
    fMRIPrep output (rules/fmriprep.smk writes it)."""
    return CFG["fmri"]["fmriprep"]["derivatives"] or P.fmriprep_dir()


# Per run, the fMRIPrep files the GLM reads (fmri.preprocessing fmriprep): existing derivatives
# are found with pybids and checked here, before any job runs.
FMRIPREP_RUNS = {}
if MODE == "bids" and CFG["fmri"] and CFG["fmri"]["preprocessing"] == "fmriprep":
    from brainalign.fmri.derivatives import fmriprep_run_inputs

    FMRIPREP_RUNS = fmriprep_run_inputs(
        INDEX.runs,
        fmriprep_root(),
        CFG["fmri"]["fmriprep"]["space"],
        existing=bool(CFG["fmri"]["fmriprep"]["derivatives"]),
    )


def fmriprep_file(key):
    """Input function: one of the job's run's fMRIPrep files (none when it is optional and
    absent: the confounds JSON, needed only by CompCor)."""
    return (
        lambda wc: FMRIPREP_RUNS[(wc.subject, f"task-{wc.task}_run-{wc.run}")][key]
        or []
    )


def fmriprep_run_label(run):
    """fMRIPrep keeps the raw file's run entity as written; None when the raw name has none."""
    return run.run if f"_run-{run.run}_" in Path(run.bold).name else None


def fmriprep_outputs(runs):
    """Output patterns (``{subject}`` left as a wildcard) of one subject's fMRIPrep job."""
    space, res = split_space(CFG["fmri"]["fmriprep"]["space"])
    return [
        str(path)
        for session, task, run in runs
        for path in fmriprep_run_files(
            P.fmriprep_dir(), "{subject}", task, run, space, session=session, res=res
        ).values()
    ]


# --- M/EEG (rules/meeg.smk) -------------------------------------------------------------------
# (subject, datatype) pairs with at least one selected EEG/MEG recording
MEEG_KEYS = sorted({(r.subject, r.datatype) for r in MEEG_RUNS})
MEEG_SUBJECTS = sorted({s for s, _ in MEEG_KEYS})


def meeg_run(wc):
    """The M/EEG recording of a meeg_preprocess job."""
    for r in MEEG_RUNS:
        if (r.subject, r.datatype, r.task, r.run) == (
            wc.subject,
            wc.datatype,
            wc.task,
            wc.run,
        ):
            return r
    raise ValueError(
        f"no {wc.datatype} recording sub-{wc.subject} task-{wc.task} run-{wc.run}"
    )


def meeg_runs_of(subject, datatype):
    """A subject's selected recordings of one datatype (eeg or meg)."""
    return [r for r in MEEG_RUNS if (r.subject, r.datatype) == (subject, datatype)]


def fusion_fmri_rdms(subject):
    """fMRI ROI RDMs fused with a subject's M/EEG RDMs: the same subject's when the subject
    has fMRI runs, else every fMRI subject's (averaged by the fusion step)."""
    if subject in SUBJECTS:
        return [P.roi_rdms(subject)]
    return [P.roi_rdms(s) for s in SUBJECTS]


def meeg_score_tables():
    """Every subject's time-resolved score tables (meeg.analyses, and fusion)."""
    analyses = CFG["meeg"]["analyses"]
    tables = []
    for s, dt in MEEG_KEYS:
        for m in MODEL_LABELS:
            if "rsa" in analyses:
                tables.append(P.meeg_rsa_scores(s, dt, m))
            if "encoding" in analyses:
                tables.append(P.meeg_encoding_scores(s, dt, m))
        if CFG["meeg"]["fusion"] and SUBJECTS:
            tables.append(P.meeg_fusion_scores(s, dt))
    return tables


def meeg_targets():
    """Per-subject M/EEG outputs: evoked responses and score tables."""
    return [P.meeg_responses(s, dt) for s, dt in MEEG_KEYS] + meeg_score_tables()


def meeg_preproc_logs():
    """What preprocessing removed from every M/EEG recording (JSON; shown in the report)."""
    return [P.meeg_preproc_log(r.subject, r.datatype, r.task, r.run) for r in MEEG_RUNS]


def meeg_group_targets():
    """Group statistics over time, when the study has M/EEG recordings."""
    return [P.meeg_clusters(), P.meeg_peaks()] if MEEG_KEYS else []


def score_tables():
    """Every per-subject/per-set score table that goes into group/scores.tsv."""
    if MODE == "bids":
        return (
            expand(P.encoding_summary("{subject}"), subject=SUBJECTS)
            + expand(
                P.rsa_scores("{subject}", "{model}"),
                subject=SUBJECTS,
                model=MODEL_LABELS,
            )
            + meeg_score_tables()
        )
    return (
        expand(
            P.rsa_group_scores("{rdmset}", "{model}"),
            rdmset=RDMSETS,
            model=MODEL_LABELS,
        )
        # external.responses: per subject, as for fMRI subjects
        + expand(P.encoding_summary("{subject}"), subject=SUBJECTS)
        + expand(
            P.rsa_scores("{subject}", "{model}"), subject=SUBJECTS, model=MODEL_LABELS
        )
    )


def subsample_tables():
    """Subsampling curve summaries of the external response areas (external.subsample)."""
    if MODE == "bids" or not CFG["external"]["subsample"]["enabled"]:
        return []
    return expand(
        P.subsample_summary("{subject}", "{model}"),
        subject=SUBJECTS,
        model=MODEL_LABELS,
    )


def roi_voxel_tables():
    """Per-subject tables of ROI voxels before and after masking (BIDS mode)."""
    if MODE != "bids":
        return []
    return expand(P.roi_voxels("{subject}"), subject=SUBJECTS)


def brain_rdm_files():
    """Label -> npz of brain RDMs shown in the report (ROI RDMs, or imported RDM sets)."""
    if MODE == "bids":
        return {f"sub-{s}": P.roi_rdms(s) for s in SUBJECTS}
    return {f"{r} (mean)": P.brain_rdms(r) for r in RDMSETS} | {
        f"sub-{s}": P.roi_rdms(s) for s in SUBJECTS
    }


def participant_targets():
    """Per-subject outputs (BIDS-App participant level): responses, encoding and RSA scores."""
    if MODE != "bids":
        return []
    return (
        expand(P.responses("{subject}"), subject=SUBJECTS)
        + expand(P.encoding_summary("{subject}"), subject=SUBJECTS)
        + expand(
            P.rsa_scores("{subject}", "{model}"), subject=SUBJECTS, model=MODEL_LABELS
        )
        + meeg_targets()
    )
