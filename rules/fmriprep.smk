# fMRIPrep run by the workflow (fmri.preprocessing fmriprep, fmri.fmriprep.derivatives null):
# one job per subject runs fMRIPrep's container (fmri.fmriprep.engine) into P.fmriprep_dir();
# the GLM reads its files from there (fmriprep_root() in common.smk).
from brainalign.fmri.fmriprep import check_fmriprep_config, group_subjects_by_runs

# Licence, Apptainer image and TemplateFlow home are checked here: a missing one stops the
# workflow before any job runs.
FMRIPREP = check_fmriprep_config(CFG)


# A rule's outputs are one list for all its jobs, so subjects with the same runs share a rule:
# `fmriprep` (usually every subject), then `fmriprep_2`, ... for subjects with other runs.
FMRIPREP_GROUPS = group_subjects_by_runs(
    {
        s: [(r.session, r.task, fmriprep_run_label(r)) for r in INDEX.runs_of(s)]
        for s in SUBJECTS
    }
)

for _i, (_runs, _subjects) in enumerate(FMRIPREP_GROUPS):

    rule:
        name:
            "fmriprep" if _i == 0 else f"fmriprep_{_i + 1}"
        input:
            bold=lambda wc: [r.bold for r in INDEX.runs_of(wc.subject)],
        output:
            fmriprep_outputs(_runs),
        log:
            job=P.log("fmriprep", "sub-{subject}"),
            fmriprep=P.log("fmriprep", "sub-{subject}_fmriprep-output"),
        wildcard_constraints:
            subject="|".join(_subjects),
        conda:
            "../envs/fmri.yaml"
        # no step image: the job starts fMRIPrep's own container (containers do not nest)
        container:
            None
        # fMRIPrep's FAQ: ~8 GB per subject, no gain past 16 CPUs; a retry (profiles/slurm
        # retries) after a memory kill asks for 8 GB more each time
        threads: 8
        resources:
            mem_mb=lambda wc, attempt: 8000 * attempt,
            runtime=lambda wc, attempt: 720 * attempt,
        params:
            settings=FMRIPREP,
            version=BRAINALIGN_VERSION,
        script:
            "../scripts/fmriprep_run.py"
