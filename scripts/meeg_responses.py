"""Adapter of rule meeg_responses."""

from brainalign.meeg.steps import step_meeg_responses
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_meeg_responses(
        list(smk.input.epochs),
        stimuli=smk.params.stimuli,
        datatype=smk.wildcards.datatype,
        config=smk.params.meeg,
        out=smk.output.responses,
    )
