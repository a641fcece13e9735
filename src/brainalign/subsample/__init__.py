"""Subsampling curves of the best layer per area over the number of units and of stimuli.

:mod:`brainalign.subsample.core` holds the maths (no I/O); :mod:`brainalign.subsample.steps`
the workflow step (rule ``responses_subsample``).
"""

from brainalign.subsample.core import (
    AXES,
    CURVE_COLUMNS,
    SUMMARY_COLUMNS,
    condensed_subset,
    draw_scores,
    encoding_units_curve,
    subsample_curve,
    subsample_indices,
    summarize_curve,
)

__all__ = [
    "AXES",
    "CURVE_COLUMNS",
    "SUMMARY_COLUMNS",
    "condensed_subset",
    "draw_scores",
    "encoding_units_curve",
    "subsample_curve",
    "subsample_indices",
    "summarize_curve",
]
