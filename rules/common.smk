# Configuration validation and BIDS indexing at DAG construction: bad config or bad input stops
# here, before any job runs. Path builders and target lists come from the package.
import os

from brainalign import __version__ as BRAINALIGN_VERSION
from brainalign.bids import index_dataset
from brainalign.config import validate_config
from brainalign.workflow import DerivPaths, check_dataset_against_config

CFG = validate_config(config, base_dir=os.getcwd())
INDEX = index_dataset(
    CFG["bids"]["bids_dir"],
    tasks=CFG["bids"]["tasks"],
    participant_label=CFG["bids"]["participant_label"],
    stimuli_dir=CFG["bids"]["stimuli_dir"],
)
check_dataset_against_config(INDEX, CFG)
P = DerivPaths(CFG["output_dir"])
SUBJECTS = INDEX.subjects
MODELS = CFG["features"]["models"]
ROIS = CFG["fmri"]["rois"]

# one container image per step family, tagged with the package version
CONTAINERS = {
    family: f"docker://localhost/brainalign-{family}:{BRAINALIGN_VERSION}"
    for family in ("fmri", "features", "analysis", "report")
}


wildcard_constraints:
    subject="[A-Za-z0-9]+",
    task="[A-Za-z0-9]+",
    run="[A-Za-z0-9]+",
    model="[A-Za-z0-9_]+",
    layer="[A-Za-z0-9]+",


def roi_file(key, subject=None):
    """Absolute path of the ROI atlas (``dseg``) or labels file for a subject."""
    path = ROIS[key].format(subject=subject)
    return path if os.path.isabs(path) else os.path.join(str(INDEX.bids_dir), path)


def subject_runs(path_fn):
    """Input function: ``path_fn(subject, task, run)`` for every run of the job's subject."""
    return lambda wc: [
        path_fn(wc.subject, r.task, r.run) for r in INDEX.runs_of(wc.subject)
    ]
