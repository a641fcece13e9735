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
    "zscore_within",
    "ncsnr",
    "noise_ceiling_from_ncsnr",
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


def zscore_within(betas: np.ndarray, groups: Sequence) -> np.ndarray:
    """Z-score each voxel's betas within each group of trials (a run or a session).

    Parameters
    ----------
    betas : ndarray, shape (n_trials, n_voxels)
        Single-trial betas.
    groups : sequence, length n_trials
        Group (run or session) of each trial.

    Returns
    -------
    z : ndarray, shape (n_trials, n_voxels)
        Mean 0 and standard deviation 1 (``ddof=0``) per voxel within each group; 0 where a
        voxel is constant within a group.
    """
    betas = np.asarray(betas, dtype=float)
    groups = np.asarray(groups)
    if groups.shape != (betas.shape[0],):
        raise ValueError(f"groups has shape {groups.shape}; expected ({betas.shape[0]},)")
    z = np.empty_like(betas)
    for g in np.unique(groups):
        rows = groups == g
        block = betas[rows]
        sd = block.std(axis=0)
        z[rows] = np.divide(block - block.mean(axis=0), sd, out=np.zeros_like(block),
                            where=sd > 0)
    return z


def ncsnr(betas_z: np.ndarray, stim_files: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Noise-ceiling signal-to-noise ratio of each voxel (Allen et al. 2022, NSD).

    The noise variance is the variance of a voxel's betas over the repeats of a stimulus
    (``ddof=1``), pooled over the stimuli shown at least twice (weighted by their degrees of
    freedom, ``n_i - 1``; with equal repeats this is NSD's mean over images). The signal
    variance is ``max(0, total_var - noise_var)`` with ``total_var`` the mean squared z-score:
    1 for betas z-scored on exactly these trials (NSD's ``1 - noise_var``), 0 for a voxel that
    never changes.

    Parameters
    ----------
    betas_z : ndarray, shape (n_trials, n_voxels)
        Single-trial betas z-scored within each run or session (:func:`zscore_within`).
    stim_files : sequence of str, length n_trials
        Stimulus of each trial.

    Returns
    -------
    ncsnr : ndarray, shape (n_voxels,)
        ``signal_sd / noise_sd`` (0 where the noise variance reaches the total variance;
        ``inf`` where repeats are identical and the signal varies).
    noise_sd : ndarray, shape (n_voxels,)
        Pooled standard deviation over repeats, in units of the z-scored betas.

    Raises
    ------
    BIDSInputError
        No stimulus was shown twice.
    """
    betas_z = np.asarray(betas_z, dtype=float)
    stim_files = np.asarray(stim_files)
    _, inverse, counts = np.unique(stim_files, return_inverse=True, return_counts=True)
    if not (counts >= 2).any():
        raise BIDSInputError(
            "No stimulus was shown more than once: expected at least 2 repeats of some stimuli "
            "to estimate the noise variance (NCSNR). Add runs with repeated stimuli."
        )
    n_groups = counts.size
    sums = np.zeros((n_groups, betas_z.shape[1]))
    np.add.at(sums, inverse, betas_z)
    means = sums / counts[:, None]
    resid = betas_z - means[inverse]
    ss = np.square(resid).sum(axis=0)  # stimuli shown once contribute 0 with 0 dof
    dof = int((counts - 1).sum())
    noise_var = ss / dof
    signal_var = np.clip(np.square(betas_z).mean(axis=0) - noise_var, 0.0, None)
    noise_sd = np.sqrt(noise_var)
    snr = np.divide(np.sqrt(signal_var), noise_sd, out=np.zeros_like(noise_sd),
                    where=noise_sd > 0)
    snr[(noise_sd == 0) & (signal_var > 0)] = np.inf
    return snr, noise_sd


def noise_ceiling_from_ncsnr(snr: np.ndarray, n_repeats: np.ndarray | float, *,
                             units: str = "r") -> np.ndarray:
    """Noise ceiling of the average of ``n`` trials from the NCSNR (Allen et al. 2022).

    NSD's ceiling is the fraction of the averaged response's variance that is signal,
    ``ncsnr**2 / (ncsnr**2 + 1 / n)`` (NSD reports it in percent). When stimuli are averaged
    over different numbers of trials, ``1 / n`` is the mean of ``1 / n_i`` over stimuli (NSD's
    rule for images with 1, 2 or 3 trials).

    Parameters
    ----------
    snr : ndarray, shape (n_voxels,)
        From :func:`ncsnr`.
    n_repeats : float or ndarray of int, shape (n_stimuli,)
        Trials averaged per stimulus.
    units : {"r", "variance"}
        ``"variance"``: NSD's variance fraction (0 to 1; times 100 for NSD's percent).
        ``"r"``: its square root, the correlation between the noise-free signal and the
        averaged response, the units of :func:`noise_ceiling_from_reliability` and of the
        encoding scores (Pearson r) that are divided by it.

    Returns
    -------
    ceiling : ndarray, shape (n_voxels,)
    """
    if units not in ("r", "variance"):
        raise ValueError(f"units must be 'r' or 'variance', got {units!r}")
    inv_n = float(np.mean(1.0 / np.asarray(n_repeats, dtype=float)))
    snr2 = np.square(np.asarray(snr, dtype=float))
    with np.errstate(invalid="ignore"):
        frac = np.where(np.isinf(snr2), 1.0, snr2 / (snr2 + inv_n))
    return np.sqrt(frac) if units == "r" else frac
