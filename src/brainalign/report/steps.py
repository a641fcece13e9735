"""Steps of the report domain: group table, HTML report, provenance, dataset_description.json."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from brainalign.io import atomic_output, read_tsv, save_json, save_tsv

__all__ = ["step_report_scores", "step_report_html", "step_describe"]

logger = logging.getLogger(__name__)


def step_report_scores(
    tables: Sequence[str],
    *,
    layer_order: Mapping[str, Sequence[str]],
    min_noise_ceiling: float,
    out: str,
) -> None:
    """Write ``group/scores.tsv`` from the per-subject tables.

    Parameters
    ----------
    tables : sequence of str
        Encoding summaries and RSA score tables.
    layer_order : Mapping of str to sequence of str
        Model -> layers, shallow to deep.
    min_noise_ceiling : float
        See :func:`brainalign.report.collect_scores`.
    out : str
    """
    from brainalign.report.scores import collect_scores

    save_tsv(
        collect_scores(tables, layer_order=layer_order, min_noise_ceiling=min_noise_ceiling), out
    )


def step_report_html(
    scores: str,
    *,
    brain_rdms: Mapping[str, str],
    layer_rdms: Mapping[str, str],
    stimuli_table: str,
    provenance: Mapping,
    out: str,
    provenance_out: str | None = None,
    logs_dir: str | None = None,
    rule: str | None = None,
    roi_voxels: Sequence[str] = (),
    responses: Mapping[str, str] | None = None,
    meeg_clusters: Sequence[str] = (),
    meeg_peaks: Sequence[str] = (),
    meeg_preproc_logs: Sequence[str] = (),
    subsample: Sequence[str] = (),
    families: Mapping[str, Sequence[Mapping]] | None = None,
) -> None:
    """Write the HTML report (and the run's provenance as JSON).

    Parameters
    ----------
    scores : str
        ``group/scores.tsv``.
    brain_rdms, layer_rdms : Mapping of str to str
        Label -> brain RDM npz (``rois``, ``rdm_<roi>``); model -> layer RDMs npz.
    stimuli_table : str
        The stimulus manifest.
    provenance : Mapping
        Resolved config and ``dataset`` (``path``: BIDS folder or stimulus table).
    out : str
    provenance_out : str, optional
        ``provenance.json``: the resolved config, dataset and software versions of the run.
    logs_dir : str, optional
        The run's log folder: the environment each rule's jobs ran in (read from their logs)
        goes to ``provenance.json`` as ``job_environments``.
    rule : str, optional
        This job's own rule; its environment is taken from the running process, since its
        log gets that line only as the job ends.
    roi_voxels : sequence of str, optional
        TSVs of ROI voxels before and after masking (columns
        :data:`brainalign.report.html.ROI_VOXEL_COLUMNS`, e.g. one per subject): concatenated
        into the report's section "ROI voxels before and after masking".
    responses : Mapping of str to str, optional
        Subject -> responses npz: their split-half and NCSNR voxel ceilings, averaged per ROI,
        make the report's section "Noise ceilings".
    meeg_clusters, meeg_peaks : sequence of str, optional
        ``group/meeg/desc-clusters_stats.tsv`` and ``desc-peaks_stats.tsv`` (none without
        M/EEG): drawn and listed in the section "M/EEG over time", which the report has when
        ``scores`` has time-resolved rows.
    meeg_preproc_logs : sequence of str, optional
        Every M/EEG run's preprocessing log JSON: the section "M/EEG preprocessing".
    subsample : sequence of str, optional
        Subsampling summaries of external response areas
        (``group/subsample/*_desc-summary_curve.tsv``): the section "Subsampling curves".
    families : Mapping, optional
        Model families (:func:`brainalign.features.checkpoints.checkpoint_families` of the
        expanded ``features.models``): the section "Model families" (score vs checkpoint).
    """
    from brainalign.report.html import read_noise_ceilings, read_roi_voxels, write_html_report
    from brainalign.report.meeg import (
        CLUSTER_COLUMNS,
        PEAK_COLUMNS,
        read_meeg_group_table,
        read_meeg_preproc_logs,
    )

    table = read_tsv(scores)
    prov = dict(provenance)
    dataset = dict(prov.get("dataset", {}))
    desc = Path(dataset.get("path", "")) / "dataset_description.json"
    if desc.is_file():
        dataset["name"] = json.loads(desc.read_text()).get("Name", "")
    dataset["subjects"] = sorted(s for s in table["subject"].unique() if s != "group")
    dataset["n_stimuli"] = len(read_tsv(stimuli_table))
    prov["dataset"] = dataset
    voxels = read_roi_voxels(roi_voxels) if roi_voxels else None
    clusters = read_meeg_group_table(meeg_clusters, CLUSTER_COLUMNS) if meeg_clusters else None
    peaks = read_meeg_group_table(meeg_peaks, PEAK_COLUMNS) if meeg_peaks else None
    preproc = read_meeg_preproc_logs(meeg_preproc_logs) if meeg_preproc_logs else None
    if subsample:
        from brainalign.report.subsample import read_subsample_summaries

        subsample_summary = read_subsample_summaries(subsample)
    else:
        subsample_summary = None
    with atomic_output(out) as tmp:
        write_html_report(table, tmp, brain_rdms=brain_rdms, layer_rdms=layer_rdms,
                          provenance=prov, roi_voxels=voxels,
                          noise_ceilings=read_noise_ceilings(responses) if responses else None,
                          subsample=subsample_summary,
                          meeg_clusters=clusters, meeg_peaks=peaks, meeg_preprocessing=preproc,
                          families=families)
    # after the report, so that this job's environment lists what drew it
    if provenance_out:
        from brainalign.report.provenance import collect_job_environments, software_versions

        record = {**prov, "software": software_versions()}
        if logs_dir:
            envs = collect_job_environments(logs_dir)
            if rule:
                from brainalign.workflow import job_environment

                envs[rule] = [job_environment()]
            record["job_environments"] = dict(sorted(envs.items()))
        save_json(record, provenance_out)


def step_describe(description: Mapping, *, description_out: str) -> None:
    """Write the derivative dataset's ``dataset_description.json``.

    Parameters
    ----------
    description : Mapping
        Its content (:func:`brainalign.workflow.derivative_description`).
    description_out : str
        Output path.
    """
    save_json(dict(description), description_out)
