"""Report: the group table of scores, the HTML report, provenance, the failure summary.

Modules
-------
``scores``
    :func:`collect_scores` (``group/scores.tsv``, columns :data:`SCORE_COLUMNS`).
``html``
    :func:`write_html_report` (jinja2 templates in ``templates/``).
``meeg``
    The report's M/EEG parts: layer x time curves with clusters, fusion, peak latencies,
    preprocessing logs (:func:`~brainalign.report.meeg.read_meeg_preproc_logs`).
``provenance``
    :func:`software_versions`, :func:`imported_package_versions`,
    :func:`collect_job_environments`.
``failures``
    The summary of a run that ended with failed jobs (:func:`write_failure_report`).
``steps``
    The workflow steps.
"""

from brainalign.report.failures import (
    FAILED_JOB_COLUMNS,
    FAILURE_FILES,
    FailedJob,
    last_error,
    parse_snakemake_log,
    remove_failure_report,
    write_failure_report,
)
from brainalign.report.html import ROI_VOXEL_COLUMNS, write_html_report
from brainalign.report.provenance import (
    collect_job_environments,
    imported_package_versions,
    software_versions,
)
from brainalign.report.scores import (
    ABOVE_NOISE_CEILING,
    SCORE_COLUMN_DESCRIPTIONS,
    SCORE_COLUMNS,
    collect_scores,
)

__all__ = [
    "SCORE_COLUMNS",
    "SCORE_COLUMN_DESCRIPTIONS",
    "ABOVE_NOISE_CEILING",
    "ROI_VOXEL_COLUMNS",
    "FAILED_JOB_COLUMNS",
    "FAILURE_FILES",
    "FailedJob",
    "collect_scores",
    "collect_job_environments",
    "imported_package_versions",
    "software_versions",
    "write_html_report",
    "parse_snakemake_log",
    "last_error",
    "write_failure_report",
    "remove_failure_report",
]
