"""Adapter of rule report_description."""

from brainalign.report.steps import step_describe
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_describe(smk.params.description, description_out=smk.output.description)
