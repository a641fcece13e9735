"""Adapter of rule rsa_import_rdms."""

from brainalign.rsa.steps import step_import_rdms
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_import_rdms(smk.input.source, smk.input.stimuli, name=smk.wildcards.rdmset,
                     spec=smk.params.spec, out=smk.output.rdms)
