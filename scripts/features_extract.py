"""Adapter of the features_extract_<model> rules."""

from brainalign.features.steps import step_features
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    step_features(
        smk.input.stimuli,
        name=smk.params.name,
        spec=smk.params.spec,
        settings=smk.params.settings,
        outputs={layer: smk.output[layer] for layer in smk.params.spec["layers"]},
    )
