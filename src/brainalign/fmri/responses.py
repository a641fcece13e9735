"""Per-stimulus responses: average repeats, split halves, reliability, noise ceilings, ROIs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from brainalign.errors import BIDSInputError

__all__ = [
    "average_repeats",
    "spearman_brown",
    "split_half_reliability",
    "noise_ceiling_from_reliability",
]

logger = logging.getLogger(__name__)


def average_repeats(
    betas: np.ndarray, stim_files: Sequence[str], stimuli: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Average trial betas per stimulus and split the repeats into two interleaved halves.

    Parameters
    ----------
    betas : ndarray, shape (n_trials, n_voxels)
        Single-trial betas (all runs, chronological order).
    stim_files : sequence of str, length n_trials
        Stimulus of each trial.
    stimuli : sequence of str, length n_stimuli
        Output row order.

    Returns
    -------
    mean : ndarray, shape (n_stimuli, n_voxels)
        Mean over all repeats.
    half1, half2 : ndarray, shape (n_stimuli, n_voxels)
        Means over odd (1st, 3rd, ...) and even (2nd, 4th, ...) repeats.
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats per stimulus.
    """
    stim_files = np.asarray(stim_files)
    n_vox = betas.shape[1]
    mean = np.empty((len(stimuli), n_vox))
    half1, half2 = np.empty_like(mean), np.empty_like(mean)
    n_rep = np.zeros(len(stimuli), dtype=int)
    for i, s in enumerate(stimuli):
        rows = np.flatnonzero(stim_files == s)
        if rows.size < 2:
            raise BIDSInputError(
                f"Stimulus '{s}' was shown {rows.size} time(s): expected at least 2 repeats "
                "for split-half noise ceilings. Drop it from the stimulus set or add runs."
            )
        n_rep[i] = rows.size
        mean[i] = betas[rows].mean(0)
        half1[i] = betas[rows[0::2]].mean(0)
        half2[i] = betas[rows[1::2]].mean(0)
    return mean, half1, half2, n_rep


def spearman_brown(r: np.ndarray | float, factor: float = 2.0) -> np.ndarray:
    """Spearman-Brown prophecy: reliability of data ``factor`` times longer.

    Parameters
    ----------
    r : array-like
        Reliability of the shorter data (e.g. split-half correlation).
    factor : float
        Length ratio (2 for split-half to full data).

    Returns
    -------
    r_full : ndarray
        ``factor * r / (1 + (factor - 1) * r)``.
    """
    r = np.asarray(r, dtype=float)
    return factor * r / (1 + (factor - 1) * r)


def split_half_reliability(half1: np.ndarray, half2: np.ndarray) -> np.ndarray:
    """Per-voxel Pearson correlation across stimuli between the two halves.

    Parameters
    ----------
    half1, half2 : ndarray, shape (n_stimuli, n_voxels)

    Returns
    -------
    r : ndarray, shape (n_voxels,)
    """
    from brainalign.encoding.scoring import pearson_columns

    return pearson_columns(half1, half2)


def noise_ceiling_from_reliability(r_half: np.ndarray, *,
                                   n_repeats: np.ndarray | None = None) -> np.ndarray:
    """Upper bound on the correlation a perfect model can reach with the averaged data.

    Parameters
    ----------
    r_half : ndarray, shape (n_voxels,)
        Split-half correlation(s) of the odd and even repeats (:func:`average_repeats`).
    n_repeats : ndarray of int, shape (n_stimuli,), optional
        Repeats per stimulus. With an odd count the halves are unequal (3 repeats: 2 and 1), and
        the prophecy is generalised to the actual halves
        (:func:`brainalign.rsa.prophesy_rdm_reliability`, linear error term); without it, or
        with 2, 4, ... repeats, it is the Spearman-Brown prophecy ``2 r / (1 + r)``.

    Returns
    -------
    ceiling : ndarray, shape (n_voxels,)
        Square root of the prophesied reliability of the full-data average (0 where the halves
        do not correlate positively): the correlation between the noise-free signal and it.
    """
    if n_repeats is None:
        rel = spearman_brown(np.clip(r_half, -0.999, 1.0))
        return np.sqrt(np.clip(rel, 0.0, None))
    from brainalign.rsa.split_half import prophesy_from_repeats

    rel = prophesy_from_repeats(np.asarray(r_half, float), n_repeats=n_repeats, term="linear")
    return np.sqrt(rel)
