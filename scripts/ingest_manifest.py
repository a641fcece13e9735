"""Adapter of rule ingest_manifest."""

from brainalign.ingest.bids import index_dataset
from brainalign.ingest.steps import step_ingest
from brainalign.workflow import job_context

with job_context(snakemake):  # noqa: F821
    bids = snakemake.params.bids  # noqa: F821
    index = index_dataset(
        bids["bids_dir"],
        tasks=bids["tasks"],
        participant_label=bids["participant_label"],
        stimuli_dir=bids["stimuli_dir"],
        sessions=bids["sessions"],
        modalities=bids.get("modalities", "auto"),
        stim_column=snakemake.params.stim_column,  # noqa: F821
        text_column=bids.get("text_column"),
    )
    step_ingest(
        index,
        runs_out=snakemake.output.runs,  # noqa: F821
        stimuli_out=snakemake.output.stimuli,  # noqa: F821
    )
