"""Adapter of rule meeg_preprocess."""

from brainalign.meeg.steps import step_meeg_preprocess
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_meeg_preprocess(
        smk.input.raw,
        smk.input.events,
        datatype=smk.wildcards.datatype,
        stimuli=smk.params.stimuli,
        config=smk.params.meeg,
        epochs_out=smk.output.epochs,
        log_out=smk.output.log,
    )
