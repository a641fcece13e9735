"""Adapter of rule encoding_fit."""

from brainalign.encoding.steps import step_encoding_fit
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_encoding_fit(
        smk.input.features, smk.input.responses, ridge=smk.params.ridge, out=smk.output.scores
    )
