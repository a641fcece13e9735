"""Adapter of rule meeg_rdms."""

from brainalign.meeg.steps import step_meeg_rdms
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_meeg_rdms(
        smk.input.responses,
        distance=smk.params.distance,
        window=smk.params.window,
        comparison=smk.params.comparison,
        out=smk.output.rdms,
    )
