"""Per-stimulus evoked responses of M/EEG epochs, split halves and per-time noise ceilings.

The maths of the fMRI responses (:mod:`brainalign.fmri.responses`) applied to every channel x
time point as if it were a voxel: the mean over a stimulus's repeats, the means over its odd
(1st, 3rd, ...) and even (2nd, 4th, ...) repeats in chronological order, and the split-half
noise ceiling ``noise_ceiling_from_reliability(split_half_reliability(half1, half2),
n_repeats=...)`` per channel and time point. Unlike fMRI, a stimulus seen once is kept (M/EEG
epochs are often rejected): its even half is NaN and the ceilings use the stimuli seen at
least twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainalign.errors import BIDSInputError, DataShapeError
from brainalign.fmri.responses import noise_ceiling_from_reliability, split_half_reliability

__all__ = ["EvokedResponses", "evoked_responses", "split_half_ceiling_per_time"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvokedResponses:
    """Per-stimulus evoked patterns of one subject.

    Attributes
    ----------
    responses, half1, half2 : ndarray, shape (n_stimuli, n_channels, n_times)
        Mean over all, odd and even repeats (``half2`` is NaN for a stimulus seen once).
    n_repeats : ndarray of int, shape (n_stimuli,)
        Epochs averaged per stimulus (at least 1).
    stimuli : ndarray of str, shape (n_stimuli,)
        The requested order, restricted to stimuli with at least one epoch.
    noise_ceiling : ndarray, shape (n_channels, n_times)
        Split-half noise ceiling per channel and time point (NaN when fewer than 3 stimuli
        were seen twice).
    """

    responses: np.ndarray
    half1: np.ndarray
    half2: np.ndarray
    n_repeats: np.ndarray
    stimuli: np.ndarray
    noise_ceiling: np.ndarray


def split_half_ceiling_per_time(half1: np.ndarray, half2: np.ndarray,
                                n_repeats: np.ndarray) -> np.ndarray:
    """Split-half noise ceiling of every channel at every time point (the fMRI definition).

    Parameters
    ----------
    half1, half2 : ndarray, shape (n_stimuli, n_channels, n_times)
        Means over the odd and even repeats of stimuli seen at least twice.
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats per stimulus (at least 2).

    Returns
    -------
    ceiling : ndarray, shape (n_channels, n_times)
        ``noise_ceiling_from_reliability(split_half_reliability(h1, h2), n_repeats=n)`` with
        each channel x time point as a voxel.
    """
    h1 = np.asarray(half1, dtype=float)
    h2 = np.asarray(half2, dtype=float)
    if h1.shape != h2.shape or h1.ndim != 3:
        raise DataShapeError(
            "Shapes differ for half1 and half2: expected two (n_stimuli, n_channels, n_times) "
            f"arrays of one shape, got {h1.shape} and {h2.shape}. Pass both halves."
        )
    n_stim, n_chan, n_times = h1.shape
    rel = split_half_reliability(h1.reshape(n_stim, -1), h2.reshape(n_stim, -1))
    ceiling = noise_ceiling_from_reliability(rel, n_repeats=np.asarray(n_repeats))
    return np.asarray(ceiling).reshape(n_chan, n_times)


def evoked_responses(data: np.ndarray, stim_files: Sequence[str],
                     stimuli: Sequence[str]) -> EvokedResponses:
    """Average epochs per stimulus, split their repeats in halves, per-time noise ceilings.

    Parameters
    ----------
    data : ndarray, shape (n_epochs, n_channels, n_times)
        Epochs of all runs, in chronological order.
    stim_files : sequence of str, length n_epochs
        Stimulus of each epoch.
    stimuli : sequence of str
        Output order (the study's stimuli); stimuli without an epoch are left out.

    Returns
    -------
    responses : EvokedResponses

    Raises
    ------
    BIDSInputError
        No epoch belongs to any of ``stimuli``.
    """
    data = np.asarray(data, dtype=float)
    stim_files = np.asarray(stim_files).astype(str)
    if data.ndim != 3 or data.shape[0] != stim_files.size:
        raise DataShapeError(
            f"Bad shape for data: expected (n_epochs = {stim_files.size}, n_channels, "
            f"n_times), got {data.shape}. Pass one stimulus per epoch."
        )
    order = {s: i for i, s in enumerate(dict.fromkeys(str(s) for s in stimuli))}
    unknown = sorted(set(stim_files) - set(order))
    if len(unknown) == len(set(stim_files)):
        raise BIDSInputError(
            f"No epoch belongs to the study's stimuli: expected stim_file values such as "
            f"'{next(iter(order), '')}', got {unknown[:3]}. Check the events' stim_file "
            "column (paths relative to stimuli/)."
        )
    if unknown:
        logger.warning("%d epochs of %d stimuli not in the study's stimuli are left out "
                       "(e.g. %s)", int(np.isin(stim_files, unknown).sum()), len(unknown),
                       unknown[:3])
    seen = [s for s in order if s in set(stim_files)]
    n_stim, (_, n_chan, n_times) = len(seen), data.shape
    mean = np.empty((n_stim, n_chan, n_times))
    half1, half2 = np.empty_like(mean), np.full_like(mean, np.nan)
    n_rep = np.zeros(n_stim, dtype=int)
    for i, s in enumerate(seen):  # loop over stimuli; each is vectorised over epochs
        rows = np.flatnonzero(stim_files == s)
        n_rep[i] = rows.size
        mean[i] = data[rows].mean(axis=0)
        half1[i] = data[rows[0::2]].mean(axis=0)
        if rows.size >= 2:
            half2[i] = data[rows[1::2]].mean(axis=0)
    once = [s for s, n in zip(seen, n_rep, strict=True) if n < 2]
    if once:
        logger.warning("%d of %d stimuli have a single epoch (e.g. %s): they are averaged "
                       "but left out of the split-half noise ceilings", len(once), n_stim,
                       once[:3])
    twice = n_rep >= 2
    if twice.sum() >= 3:
        ceiling = split_half_ceiling_per_time(half1[twice], half2[twice], n_rep[twice])
    else:
        logger.warning("Only %d stimuli have 2 or more epochs: no split-half noise ceiling "
                       "(NaN)", int(twice.sum()))
        ceiling = np.full((n_chan, n_times), np.nan)
    return EvokedResponses(responses=mean, half1=half1, half2=half2, n_repeats=n_rep,
                           stimuli=np.array(seen, dtype=str), noise_ceiling=ceiling)
