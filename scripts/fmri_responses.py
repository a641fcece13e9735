"""Adapter of rule fmri_responses."""

from brainalign.fmri.steps import step_responses
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_responses(
        list(smk.input.betas),
        list(smk.input.trials),
        list(smk.input.masks),
        list(smk.input.mask_sidecars),
        subject=smk.wildcards.subject,
        runs=smk.params.runs,
        stimuli_table=smk.input.stimuli,
        dseg=smk.input.dseg,
        labels=smk.input.labels,
        roi_names=smk.params.roi_names,
        out=smk.output.responses,
        voxels_out=smk.output.voxels,
        zscore_within=smk.params.zscore_within,
        sessions=smk.params.sessions,
    )
