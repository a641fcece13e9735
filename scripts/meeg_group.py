"""Adapter of rule meeg_group."""

from brainalign.meeg.steps import step_meeg_group
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_meeg_group(
        list(smk.input.tables),
        stats=smk.params.stats,
        clusters_out=smk.output.clusters,
        peaks_out=smk.output.peaks,
    )
