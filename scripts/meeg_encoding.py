"""Adapter of rule meeg_encoding."""

from brainalign.meeg.steps import step_meeg_encoding
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_meeg_encoding(
        smk.input.responses,
        dict(zip(smk.params.layers, smk.input.features, strict=True)),
        subject=smk.wildcards.subject,
        datatype=smk.wildcards.datatype,
        model=smk.params.model,
        ridge=smk.params.ridge,
        min_noise_ceiling=smk.params.min_noise_ceiling,
        out=smk.output.scores,
    )
