"""Adapter of rule fmriprep: fMRIPrep for one subject, in its container."""

from brainalign.fmri.fmriprep import step_fmriprep
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_fmriprep(
        smk.params.settings,
        subject=smk.wildcards.subject,
        nthreads=smk.threads,
        mem_mb=smk.resources.mem_mb,
        outputs=list(smk.output),
        log=smk.log.fmriprep,
    )
