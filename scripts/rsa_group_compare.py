"""Adapter of rule rsa_group_compare."""

from brainalign.rsa.steps import step_rsa_group_compare
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_rsa_group_compare(smk.input.brain_rdms, smk.input.layer_rdms,
                           rdmset=smk.wildcards.rdmset, model=smk.params.model,
                           comparison=smk.params.comparison, inference=smk.params.inference,
                           out=smk.output.scores)
