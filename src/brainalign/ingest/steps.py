"""Steps of the ingest domain: the run and stimulus manifests (BIDS or an external table)."""

from __future__ import annotations

import logging

import pandas as pd

from brainalign.io import save_tsv

__all__ = ["step_ingest", "step_ingest_external"]

logger = logging.getLogger(__name__)


def step_ingest(index, *, runs_out: str, stimuli_out: str) -> None:
    """Write the run and stimulus manifests.

    The runs manifest has one row per BOLD run (``datatype`` func) and per EEG/MEG recording
    (``datatype`` eeg or meg): the BOLD columns first (subject, session, task, run, bold,
    events, t_r_s, n_volumes, shape; n/a for a recording), then ``datatype``, ``raw``, ``sfreq``
    and ``n_times`` (n/a for a BOLD run).

    The stimulus manifest has one row per stimulus: ``stim_id``, ``stim_file`` and ``path``
    (the file; n/a for texts held in events.tsv), and, with ``bids.text_column``, ``text``
    (a ``.txt`` stimulus's text is read from its file by the features step).

    Parameters
    ----------
    index : brainalign.bids.DatasetIndex
        The checked dataset index.
    runs_out, stimuli_out : str
        Output paths.
    """
    runs = index.runs_table()
    runs["datatype"] = "func"
    meeg_runs = getattr(index, "meeg_runs", None)
    if meeg_runs:
        meeg = index.meeg_runs_table()
        columns = list(runs.columns) + [c for c in meeg.columns if c not in runs.columns]
        frames = [f for f in (runs, meeg) if len(f)]
        runs = pd.concat(frames, ignore_index=True).reindex(columns=columns)
        for col in ("n_volumes", "n_times"):  # whole numbers, n/a in the other modality's rows
            runs[col] = runs[col].astype("Int64")
    save_tsv(runs, runs_out)
    texts = getattr(index, "texts", None) or {}
    stim = pd.DataFrame(
        {
            "stim_id": range(len(index.stimuli)),
            "stim_file": index.stimuli,
            # texts held in events.tsv (bids.text_column): no file, the text is in the manifest
            "path": (["n/a"] * len(index.stimuli) if texts
                     else [str(index.stimuli_dir / s) for s in index.stimuli]),
        }
    )
    if texts:
        stim["text"] = [texts[s] for s in index.stimuli]
    save_tsv(stim, stimuli_out)


def step_ingest_external(*, stimuli: str, stimuli_dir: str, stim_column: str,
                         stimuli_out: str) -> None:
    """Check an external stimulus table and write the stimulus manifest.

    Parameters
    ----------
    stimuli, stimuli_dir, stim_column : str
        The ``external`` config section's table, folder and file-name column.
    stimuli_out : str
        Output path.
    """
    from brainalign.ingest.external import read_stimulus_table

    table = read_stimulus_table(stimuli, stimuli_dir=stimuli_dir, column=stim_column)
    save_tsv(table, stimuli_out)
