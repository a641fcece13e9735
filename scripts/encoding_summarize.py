"""Adapter of rule encoding_summarize."""

from brainalign.encoding.steps import step_encoding_summary
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    keys = [tuple(k) for k in smk.params.model_layers]
    step_encoding_summary(
        dict(zip(keys, smk.input.scores, strict=True)),
        subject=smk.wildcards.subject,
        out=smk.output.summary,
        voxel_scores_out=dict(zip(keys, smk.output.voxel_scores, strict=True)),
    )
