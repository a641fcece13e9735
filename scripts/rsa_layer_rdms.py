"""Adapter of rule rsa_layer_rdms."""

from brainalign.rsa.steps import step_layer_rdms
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_layer_rdms(
        dict(zip(smk.params.layers, smk.input.features, strict=True)),
        metric=smk.params.metric,
        out=smk.output.rdms,
    )
