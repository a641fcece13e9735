"""Adapter of rule responses_subsample."""

from brainalign.subsample.steps import step_subsample
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_subsample(smk.input.responses, smk.input.layer_rdms, subject=smk.wildcards.subject,
                   model=smk.params.model, spec=smk.params.spec, metric=smk.params.metric,
                   comparison=smk.params.comparison, out=smk.output.curve,
                   summary_out=smk.output.summary,
                   voxel_scores=dict(zip(smk.params.layers, smk.input.voxel_scores, strict=True)))
