"""Single-subject noise ceiling of an RDM from two split halves of the repeats.

A subject's data RDM is computed from the mean over ``R`` repeats of each stimulus; its two
halves (odd and even repeats, ``n1 + n2 = R``) give two independent RDMs whose similarity
``r_half`` tells how noisy the RDM is. The ceiling is the expected similarity between the
full-data RDM and the noise-free RDM, the score of a perfect (noiseless) model.

Why not Spearman-Brown
----------------------
The classic ceiling ``sqrt(2 r / (1 + r))`` assumes that the RDM's error variance falls as
``1 / k`` with the number of repeats ``k`` (as for a mean of patterns). Dissimilarities are
quadratic in the patterns: with patterns ``x = t + e`` and ``e`` of covariance ``S / k``, a
squared distance is ``|t_i - t_j|^2 + 2 (t_i - t_j)'(e_i - e_j) + |e_i - e_j|^2``, whose error
variance (relative to the spread of the true dissimilarities) is::

    v(k) = a / k + b / k**2

``a`` (signal x noise) and ``b`` (noise x noise, ``8 tr(S^2)`` for squared Euclidean) are both
positive. At low SNR the ``b`` term dominates, the RDM's reliability grows faster than
Spearman-Brown's prophecy, and the Spearman-Brown ceiling falls *below* the noiseless model's
expected score: in ``benchmarks/sim_null_and_ceiling.py`` (table D) by 0.03-0.10 at ceilings
of 0.1-0.6, a ratio of mean score to mean ceiling of 1.2-1.7. Odd/even halves of 3 repeats
(2 and 1) make it worse, since the prophecy's factor 2 assumes equal halves.

The estimator
-------------
Under the model, with halves of ``n1`` and ``n2`` repeats::

    r_half  = 1 / sqrt((1 + v(n1)) (1 + v(n2)))
    ceiling = 1 / sqrt(1 + v(R))

One ``r_half`` cannot separate ``a`` from ``b``; for a given ``r_half`` the ceiling is smallest
when ``b = 0`` (the Spearman-Brown prophecy, generalised to unequal halves) and largest when
``a = 0``. :func:`split_half_ceiling` returns both: ``upper`` is an upper bound of the
noiseless model's expected score for any mix of the two terms (use it to normalise scores),
``lower`` the classic estimate. Unequal repeat counts across stimuli enter through the mean of
``1 / k`` (``a`` term) and of ``1 / k**2`` (``b`` term).

The model is derived for squared Euclidean distances compared with Pearson's r; for the
correlation distance with ``spearman`` or ``pearson`` comparisons the simulation (2 and 3
repeats, ceilings 0.1-0.97) finds ``E[upper] - E[score]`` between +0.10 (mid SNR) and 0 within
Monte Carlo error (low SNR, where the ``b`` term dominates and ``upper`` is nearly unbiased):
an upper bound in expectation, not for every dataset. At low SNR a single ceiling is very
uncertain (SD 0.1-0.15 at ceilings below 0.3 with 92 stimuli), so a normalised score above 1
there is as likely as not even for a perfect model. ``r_half <= 0`` gives ceilings of 0: the
data carry no reliable RDM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from brainalign.errors import DataShapeError
from brainalign.rsa.compare import rdm_reliability

__all__ = [
    "ERROR_TERMS",
    "SplitHalfCeiling",
    "half_repeats",
    "prophesy_from_repeats",
    "prophesy_rdm_reliability",
    "rdm_split_half_ceiling",
    "split_half_ceiling",
]

logger = logging.getLogger(__name__)

#: Exponent of ``k`` in each error term of the RDM: ``"linear"`` (``a / k``, signal x noise,
#: Spearman-Brown) and ``"quadratic"`` (``b / k**2``, noise x noise).
ERROR_TERMS: dict[str, int] = {"linear": 1, "quadratic": 2}


@dataclass(frozen=True)
class SplitHalfCeiling:
    """Noise ceiling of one RDM from its split halves.

    Attributes
    ----------
    lower : float
        Ceiling if the RDM's error variance fell as ``1 / k`` (Spearman-Brown for unequal
        halves); can lie below the noiseless model's expected score.
    upper : float
        Ceiling if it fell as ``1 / k**2``; an upper bound of the noiseless model's expected
        score under the error model of :mod:`brainalign.rsa.split_half`.
    r_half : float
        Similarity of the two halves' RDMs.
    n_half : tuple of float
        Effective repeats ``(n1, n2)`` of the halves, for the linear term.
    n_total : float
        Effective repeats of the full data, for the linear term.
    """

    lower: float
    upper: float
    r_half: float
    n_half: tuple[float, float]
    n_total: float


def half_repeats(n_repeats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repeats in the odd and even halves of each stimulus (``average_repeats``' split).

    Parameters
    ----------
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats of each stimulus (at least 2).

    Returns
    -------
    n1, n2 : ndarray of int, shape (n_stimuli,)
        ``ceil(n / 2)`` (1st, 3rd, ... repeat) and ``floor(n / 2)`` (2nd, 4th, ...).
    """
    n = _check_repeats(n_repeats, arg="n_repeats")
    return (n + 1) // 2, n // 2


def _check_repeats(n_repeats, *, arg: str) -> np.ndarray:
    n = np.atleast_1d(np.asarray(n_repeats))
    if n.ndim != 1 or n.size == 0 or not np.all(np.isfinite(n)) or np.any(n < 2):
        raise DataShapeError(
            f"Bad repeat counts for {arg}: expected a non-empty 1-D array of counts >= 2, got "
            f"{np.asarray(n_repeats)!r}. Pass the n_repeats of average_repeats."
        )
    if np.any(n != np.round(n)):
        raise DataShapeError(
            f"Non-integer repeat counts for {arg}: expected whole numbers, got "
            f"{np.asarray(n_repeats)!r}. Pass the n_repeats of average_repeats."
        )
    return n.astype(np.int64)


def _effective(k: np.ndarray, power: int) -> float:
    """Count ``k_eff`` with ``1 / k_eff**power`` = mean of ``1 / k**power``."""
    return float(np.mean(1.0 / np.asarray(k, float) ** power) ** (-1.0 / power))


def prophesy_rdm_reliability(
    r_half: float | np.ndarray,
    n_half: tuple[float, float],
    *,
    n_total: float,
    term: str,
) -> float | np.ndarray:
    """Squared ceiling (reliability of the full data) from a split-half similarity.

    Solves ``(1 + c / n1**p) (1 + c / n2**p) = 1 / r_half**2`` for the error scale ``c >= 0``
    and returns ``1 / (1 + c / n_total**p)``, with ``p`` the exponent of ``term``.

    Parameters
    ----------
    r_half : float or ndarray, shape (n,)
        Similarity of the two halves (RDMs; or, with ``term="linear"``, any linear measure
        such as a voxel's responses).
    n_half : pair of float
        Repeats (or effective repeats) of the two halves.
    n_total : float
        Repeats of the full data (``n1 + n2`` for a split of all repeats).
    term : {"linear", "quadratic"}
        Error term assumed to dominate (:data:`ERROR_TERMS`). ``"linear"`` with equal halves
        is the Spearman-Brown prophecy ``2 r / (1 + r)``.

    Returns
    -------
    reliability : float or ndarray, shape of ``r_half``
        In [0, 1]; 0 where ``r_half <= 0`` or is not finite (no reliable structure), 1 where
        ``r_half >= 1``.
    """
    if term not in ERROR_TERMS:
        raise DataShapeError(
            f"Unknown error term for term: expected one of {sorted(ERROR_TERMS)}, got "
            f"{term!r}. Pick one of those."
        )
    n1, n2 = (float(x) for x in n_half)
    if not (n1 > 0 and n2 > 0 and n_total > 0):
        raise DataShapeError(
            f"Non-positive repeat counts for n_half/n_total: expected > 0, got {n_half} and "
            f"{n_total}. Pass the halves' and the full data's repeats."
        )
    scalar = np.ndim(r_half) == 0
    r = np.asarray(r_half, dtype=float)
    ok = np.isfinite(r) & (r > 0)
    rr = np.clip(np.where(ok, r, 1.0), None, 1.0)
    p = ERROR_TERMS[term]
    a, b = n1**-p, n2**-p
    # a b c^2 + (a + b) c + (1 - 1 / r^2) = 0, positive root (stable form)
    const = 1.0 / rr**2 - 1.0
    c = 2.0 * const / ((a + b) + np.sqrt((a + b) ** 2 + 4.0 * a * b * const))
    rel = np.where(ok, 1.0 / (1.0 + c / float(n_total) ** p), 0.0)
    return float(rel) if scalar else rel


def prophesy_from_repeats(r_half: float | np.ndarray, *, n_repeats: np.ndarray,
                          term: str) -> float | np.ndarray:
    """Reliability of the all-repeat average from the odd/even split-half similarity.

    Parameters
    ----------
    r_half : float or ndarray, shape (n,)
        Similarity of the odd and even halves (RDMs, or voxel responses with ``"linear"``).
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats of each stimulus in the full data; the halves hold ``ceil(n / 2)`` and
        ``floor(n / 2)`` of them (``fmri.average_repeats``). Unequal counts enter through the
        mean of ``1 / k**p`` (:data:`ERROR_TERMS`).
    term : {"linear", "quadratic"}
        Error term assumed to dominate (:func:`prophesy_rdm_reliability`).

    Returns
    -------
    reliability : float or ndarray, shape of ``r_half``
    """
    n = _check_repeats(n_repeats, arg="n_repeats")
    n1, n2 = half_repeats(n)
    p = ERROR_TERMS.get(term, 1)
    return prophesy_rdm_reliability(r_half, (_effective(n1, p), _effective(n2, p)),
                                    n_total=_effective(n, p), term=term)


def split_half_ceiling(r_half: float, *, n_repeats: np.ndarray) -> SplitHalfCeiling:
    """Lower and upper single-subject RDM ceiling from a split-half similarity.

    Parameters
    ----------
    r_half : float
        Similarity of the RDMs of the odd and even repeats (``rsa.rdm_reliability``).
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats of each stimulus in the full data; the halves hold ``ceil(n / 2)`` and
        ``floor(n / 2)`` of them (``fmri.average_repeats``).

    Returns
    -------
    ceiling : SplitHalfCeiling
        ``lower`` (Spearman-Brown for the actual halves) and ``upper`` (noise x noise error),
        both square roots of the prophesied reliability of the full-data RDM.
    """
    n = _check_repeats(n_repeats, arg="n_repeats")
    rel = {term: prophesy_from_repeats(r_half, n_repeats=n, term=term) for term in ERROR_TERMS}
    n1, n2 = half_repeats(n)
    out = SplitHalfCeiling(
        lower=float(np.sqrt(rel["linear"])),
        upper=float(np.sqrt(rel["quadratic"])),
        r_half=float(r_half),
        n_half=(_effective(n1, 1), _effective(n2, 1)),
        n_total=_effective(n, 1),
    )
    logger.debug("split-half RDM r %.3f -> ceiling [%.3f, %.3f]", r_half, out.lower, out.upper)
    return out


def rdm_split_half_ceiling(
    half1: np.ndarray,
    half2: np.ndarray,
    *,
    n_repeats: np.ndarray,
    metric: str = "correlation",
    method: str = "spearman",
) -> SplitHalfCeiling:
    """Single-subject RDM noise ceiling from the patterns of the two halves of the repeats.

    Parameters
    ----------
    half1, half2 : ndarray, shape (n_stimuli, n_channels)
        Mean patterns over the odd and even repeats (``fmri.average_repeats``).
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats of each stimulus in the full data.
    metric : str
        Pattern dissimilarity (key of ``RDM_METRICS``), as for the data RDM.
    method : str
        RDM comparison (key of ``COMPARISONS``), as for the model scores.

    Returns
    -------
    ceiling : SplitHalfCeiling
        See :func:`split_half_ceiling`; normalise scores by ``upper``.
    """
    half1 = np.asarray(half1, float)
    half2 = np.asarray(half2, float)
    if half1.shape != half2.shape or half1.ndim != 2:
        raise DataShapeError(
            f"Shapes differ for half1 and half2: expected two (n_stimuli, n_channels) arrays "
            f"of one shape, got {half1.shape} and {half2.shape}. Pass both halves of one ROI."
        )
    n = _check_repeats(n_repeats, arg="n_repeats")
    if n.size != half1.shape[0]:
        raise DataShapeError(
            f"Wrong length of n_repeats: expected one count per stimulus ({half1.shape[0]}), "
            f"got {n.size}. Pass the n_repeats of the same responses."
        )
    r_half = rdm_reliability(half1, half2, metric=metric, method=method)
    return split_half_ceiling(r_half, n_repeats=n)
