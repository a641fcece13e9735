"""Adapter of rule rsa_roi_rdms."""

from brainalign.rsa.steps import step_roi_rdms
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_roi_rdms(
        smk.input.responses,
        metric=smk.params.metric,
        comparison=smk.params.comparison,
        out=smk.output.rdms,
    )
