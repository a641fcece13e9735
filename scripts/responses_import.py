"""Adapter of rule responses_import."""

from brainalign.ingest.responses import step_import_responses
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_import_responses(smk.params.specs, smk.input.stimuli, out=smk.output.responses)
