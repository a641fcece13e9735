"""Adapter of rule fmri_preprocess."""

from brainalign.fmri.steps import step_preprocess
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_preprocess(
        smk.input.bold,
        method=smk.params.method,
        params=smk.params.options,
        mask=smk.params.mask,
        dseg=smk.input.dseg,
        labels=smk.input.labels,
        roi_names=smk.params.roi_names,
        mask_file=smk.input.mask_file[0] if smk.input.mask_file else None,
        run=f"sub-{smk.wildcards.subject} task-{smk.wildcards.task}_run-{smk.wildcards.run}",
        bold_out=smk.output.bold,
        mask_out=smk.output.mask,
        mask_json_out=smk.output.mask_json,
        confounds_out=smk.output.confounds,
        sample_mask_out=smk.output.sample_mask,
    )
