"""Adapter of rule meeg_fusion."""

from brainalign.meeg.steps import step_meeg_fusion
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_meeg_fusion(
        smk.input.rdms,
        list(smk.input.fmri_rdms),
        subject=smk.wildcards.subject,
        datatype=smk.wildcards.datatype,
        comparison=smk.params.comparison,
        out=smk.output.scores,
    )
