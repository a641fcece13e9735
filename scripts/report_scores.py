"""Adapter of rule report_scores."""

from brainalign.report.steps import step_report_scores
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_report_scores(list(smk.input.tables), layer_order=smk.params.layer_order,
                       min_noise_ceiling=smk.params.min_noise_ceiling, out=smk.output.scores)
