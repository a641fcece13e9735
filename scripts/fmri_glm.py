"""Adapter of rule fmri_glm."""

from brainalign.fmri.steps import step_glm
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_glm(
        smk.input.bold,
        smk.input.mask,
        smk.input.confounds,
        smk.input.events,
        sample_mask=smk.input.sample_mask,
        t_r_s=smk.params.t_r_s,
        glm=smk.params.glm,
        betas_out=smk.output.betas,
        trials_out=smk.output.trials,
    )
