# Configuration validation and BIDS indexing at DAG construction: bad config or bad input stops
# here, before any job runs. Path builders and target lists come from the package.
import os

from brainalign import __version__ as BRAINALIGN_VERSION
from brainalign.bids import index_dataset
from brainalign.config import validate_config
from brainalign.external import read_stimulus_table
from brainalign.workflow import (
    DerivPaths,
    check_dataset_against_config,
    check_stimuli_against_config,
    container_images,
    derivative_description,
)

CFG = validate_config(config, base_dir=os.getcwd())
P = DerivPaths(CFG["output_dir"])
MODELS = CFG["features"]["models"]
# Input mode: a raw BIDS dataset, or external brain RDMs plus a stimulus table.
MODE = "bids" if CFG["bids"] else "external"
if MODE == "bids":
    INDEX = index_dataset(
        CFG["bids"]["bids_dir"],
        tasks=CFG["bids"]["tasks"],
        participant_label=CFG["bids"]["participant_label"],
        stimuli_dir=CFG["bids"]["stimuli_dir"],
    )
    check_dataset_against_config(INDEX, CFG)
    SUBJECTS = INDEX.subjects
    ROIS = CFG["fmri"]["rois"]
    STIMULUS_FILES = [str(INDEX.stimuli_dir / s) for s in INDEX.stimuli]
    RDMSETS = []
else:
    EXT = CFG["external"]
    STIMULI = read_stimulus_table(
        EXT["stimuli"], stimuli_dir=EXT["stimuli_dir"], column=EXT["stim_column"]
    )
    check_stimuli_against_config(len(STIMULI), CFG)
    SUBJECTS = []
    STIMULUS_FILES = STIMULI["path"].tolist()
    RDMSETS = list(EXT["rdms"])

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
    model="[A-Za-z0-9_]+",
    layer="[A-Za-z0-9]+",
    rdmset="[A-Za-z0-9]+",


def roi_file(key, subject=None):
    """Absolute path of the ROI atlas (``dseg``) or labels file for a subject."""
    path = ROIS[key].format(subject=subject)
    return path if os.path.isabs(path) else os.path.join(str(INDEX.bids_dir), path)


def subject_runs(path_fn):
    """Input function: ``path_fn(subject, task, run)`` for every run of the job's subject."""
    return lambda wc: [
        path_fn(wc.subject, r.task, r.run) for r in INDEX.runs_of(wc.subject)
    ]


def score_tables():
    """Every per-subject/per-set score table that goes into group/scores.tsv."""
    if MODE == "bids":
        return expand(P.encoding_summary("{subject}"), subject=SUBJECTS) + expand(
            P.rsa_scores("{subject}", "{model}"), subject=SUBJECTS, model=list(MODELS)
        )
    return expand(
        P.rsa_group_scores("{rdmset}", "{model}"), rdmset=RDMSETS, model=list(MODELS)
    )


def brain_rdm_files():
    """Label -> npz of brain RDMs shown in the report (ROI RDMs, or imported RDM sets)."""
    if MODE == "bids":
        return {f"sub-{s}": P.roi_rdms(s) for s in SUBJECTS}
    return {f"{r} (mean)": P.brain_rdms(r) for r in RDMSETS}


def participant_targets():
    """Per-subject outputs (BIDS-App participant level): responses, encoding and RSA scores."""
    if MODE != "bids":
        return []
    return (
        expand(P.responses("{subject}"), subject=SUBJECTS)
        + expand(P.encoding_summary("{subject}"), subject=SUBJECTS)
        + expand(
            P.rsa_scores("{subject}", "{model}"), subject=SUBJECTS, model=list(MODELS)
        )
    )
