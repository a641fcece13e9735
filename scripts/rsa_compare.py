"""Adapter of rule rsa_compare."""

from brainalign.rsa.steps import step_rsa_compare
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_rsa_compare(
        smk.input.roi_rdms,
        smk.input.layer_rdms,
        subject=smk.wildcards.subject,
        model=smk.params.model,
        comparison=smk.params.comparison,
        out=smk.output.scores,
    )
