"""Adapter of rule fmri_preprocess."""

from brainalign.steps import step_preprocess
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_preprocess(
        smk.input.bold,
        method=smk.params.method,
        params=smk.params.options,
        bold_out=smk.output.bold,
        mask_out=smk.output.mask,
        confounds_out=smk.output.confounds,
    )
