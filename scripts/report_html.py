"""Adapter of rule report_html."""

from brainalign.report.steps import step_report_html
from brainalign.workflow import job_context

smk = snakemake  # noqa: F821
# M/EEG inputs (absent from runs without M/EEG): group statistics and preprocessing logs
meeg_group = [str(p) for p in getattr(smk.input, "meeg_group", [])]
with job_context(smk):
    step_report_html(
        smk.input.scores,
        brain_rdms=dict(zip(smk.params.brain_labels, smk.input.brain_rdms, strict=True)),
        layer_rdms=dict(zip(smk.params.models, smk.input.layer_rdms, strict=True)),
        stimuli_table=smk.input.stimuli,
        roi_voxels=list(smk.input.roi_voxels),
        responses=dict(zip(smk.params.subjects, smk.input.responses, strict=True)),
        meeg_clusters=[p for p in meeg_group if p.endswith("desc-clusters_stats.tsv")],
        meeg_peaks=[p for p in meeg_group if p.endswith("desc-peaks_stats.tsv")],
        meeg_preproc_logs=[str(p) for p in getattr(smk.input, "meeg_logs", [])],
        subsample=[str(p) for p in getattr(smk.input, "subsample", [])],
        families=getattr(smk.params, "families", None),
        provenance={"config": smk.params.config, "dataset": {"path": smk.params.dataset}},
        out=smk.output.report, provenance_out=smk.output.provenance, logs_dir=smk.params.logs,
        rule=smk.rule)
