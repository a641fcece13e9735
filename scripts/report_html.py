"""Adapter of rule report_html."""

import json
from pathlib import Path

from brainalign.steps import step_report_html
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
with job_context(smk):
    desc = json.loads((Path(smk.params.dataset_path) / "dataset_description.json").read_text())
    step_report_html(
        smk.input.scores,
        roi_rdms=dict(zip(smk.params.subjects, smk.input.roi_rdms, strict=True)),
        layer_rdms=dict(zip(smk.params.models, smk.input.layer_rdms, strict=True)),
        runs_table=smk.input.runs,
        provenance={
            "config": smk.params.config,
            "dataset": {"name": desc.get("Name", ""), "path": smk.params.dataset_path},
        },
        out=smk.output.report,
    )
