# brainalign: BIDS dataset -> fMRI and M/EEG responses -> DNN features -> encoding and RSA -> report.
# Thin on purpose: the logic lives in the `brainalign` package, the rules in rules/*.smk.
import sys

from snakemake.utils import min_version

from brainalign.report import remove_failure_report, write_failure_report

min_version("9.0")


# The demo study's configuration, unless the user gives their own with --configfile: a user's
# file replaces it (Snakemake would otherwise merge the two, and the demo's models and ROIs would
# leak into the user's study). --config key=value still updates whichever file is used.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/features.smk"
include: "rules/rsa.smk"
include: "rules/report.smk"


if MODE == "bids":

    include: "rules/ingest.smk"

    # the fMRI branch, for the subjects with BOLD runs
    if SUBJECTS:

        include: "rules/fmri.smk"

        # fMRIPrep run by the workflow (not when existing derivatives are given)
        if (
            CFG["fmri"]["preprocessing"] == "fmriprep"
            and not CFG["fmri"]["fmriprep"]["derivatives"]
        ):

            include: "rules/fmriprep.smk"
        include: "rules/encoding.smk"

    # the M/EEG branch, for the subjects with EEG/MEG recordings
    if MEEG_RUNS:

        include: "rules/meeg.smk"

else:

    include: "rules/external.smk"

    # external.responses: response matrices per area, analysed like fMRI ROIs
    if SUBJECTS:

        include: "rules/responses.smk"
        include: "rules/encoding.smk"


# Every output of the study: the group scores table, the HTML report, dataset_description.json.
rule all:
    default_target: True
    input:
        P.scores(),
        P.report(),
        P.description(),
        # M/EEG: evoked responses and time-resolved scores per subject (also with
        # meeg.analyses [] and a single subject), group statistics over time
        meeg_targets(),
        meeg_group_targets(),
    localrule: True


# BIDS-App participant level: every per-subject output of the selected participants.
rule participant:
    input:
        participant_targets(),
        P.description(),
    localrule: True


# A run that ends with failed jobs (with --keep-going, the other subjects go on) writes
# group/failed_jobs.tsv and group/failures.html: each failed job, its log and its error, and
# which score tables are complete. A later successful run deletes them.
onerror:
    try:
        summary = write_failure_report(log, P.root, outputs=score_tables())
        print(f"brainalign: failure summary: {summary.absolute()}", file=sys.stderr)
    except Exception as exc:  # never hide the run's own error behind this one
        print(f"brainalign: no failure summary: {exc!r}", file=sys.stderr)


onsuccess:
    remove_failure_report(P.root)
