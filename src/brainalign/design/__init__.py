"""Stimulus design from two models, and scoring of behavioural choices.

Modules
-------
``triplets``
    :func:`design_triplets`: triplets (root, image1, image2) whose low-level and high-level
    similarity differences are decorrelated, the four agree/disagree cells filled equally.
``behaviour``
    Scoring of most-similar / odd-one-out choices by each layer's similarities, with
    bootstrap confidence intervals over trials and subjects.
``steps``
    Reading image pools and ``beh`` TSVs, feature similarities, tables and figures.
``commands``
    The ``brainalign design-triplets`` and ``brainalign score-triplets`` subcommands.
"""

from brainalign.design.triplets import (
    CELLS,
    METRICS,
    TripletDesign,
    cell_labels,
    design_triplets,
    sample_triplets,
    similarity_matrix,
    triplet_differences,
)

__all__ = [
    "CELLS",
    "METRICS",
    "TripletDesign",
    "cell_labels",
    "design_triplets",
    "sample_triplets",
    "similarity_matrix",
    "triplet_differences",
]
