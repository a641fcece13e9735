"""M/EEG domain: ingestion, preprocessing, evoked responses, statistics over time.

mne-bids reads the recordings, MNE preprocesses them, and the rest turns them into per-stimulus
evoked patterns and group statistics over time.

Modules
-------
bids
    The selected EEG/MEG recordings of a BIDS dataset (:class:`MEEGRun`) and their DAG-time checks.
preprocess
    Filters, re-referencing, bad channels, ICA, epochs and rejection (MNE), each logging what it
    removed.
responses
    Per-stimulus evoked patterns, split halves and per-time noise ceilings (no I/O).
stats
    Cluster permutation tests over time and bootstrap peak latencies over subjects (no I/O).
steps
    One function per rule of ``rules/meeg.smk``: they read and write the files.

The time-resolved RSA and encoding maths live with the other analyses
(:mod:`brainalign.rsa.temporal`, :mod:`brainalign.rsa.fusion`,
:mod:`brainalign.encoding.temporal`).
"""
