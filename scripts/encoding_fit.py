"""Adapter of rule encoding_fit."""

from brainalign.encoding.steps import step_encoding_fit_study
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_encoding_fit_study(
        smk.input.features,
        dict(zip(smk.params.subjects, smk.input.responses, strict=True)),
        ridge=smk.params.ridge,
        noise_ceiling=smk.params.noise_ceiling,
        out=smk.output.scores,
    )
