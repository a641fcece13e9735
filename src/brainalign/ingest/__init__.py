"""Ingestion: index a BIDS dataset (or an external stimulus table and RDM sets) and check it.

Modules
-------
``bids``
    :func:`index_dataset`: pybids index, run selection, DAG-time checks of runs, events and
    stimuli.
``external``
    Bring-your-own RDMs: :func:`read_stimulus_table`, :func:`load_rdm_set`.
``steps``
    The workflow steps (the run and stimulus manifests).
"""

from brainalign.ingest.bids import DatasetIndex, Run, index_dataset
from brainalign.ingest.events import REQUIRED_EVENT_COLUMNS
from brainalign.ingest.external import load_rdm_set, read_stimulus_table, square_to_condensed

__all__ = [
    "REQUIRED_EVENT_COLUMNS",
    "DatasetIndex",
    "Run",
    "index_dataset",
    "load_rdm_set",
    "read_stimulus_table",
    "square_to_condensed",
]
