"""Adapter of rule ingest_external."""

from brainalign.ingest.steps import step_ingest_external
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    ext = smk.params.external
    step_ingest_external(stimuli=ext["stimuli"], stimuli_dir=ext["stimuli_dir"],
                         stim_column=ext["stim_column"], stimuli_out=smk.output.stimuli)
