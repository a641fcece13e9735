"""Adapter of rule meeg_rsa."""

from brainalign.meeg.steps import step_meeg_rsa
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_meeg_rsa(
        smk.input.rdms,
        smk.input.layer_rdms,
        subject=smk.wildcards.subject,
        datatype=smk.wildcards.datatype,
        model=smk.params.model,
        comparison=smk.params.comparison,
        out=smk.output.scores,
    )
