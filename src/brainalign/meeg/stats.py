"""Group statistics over time: cluster permutation tests and bootstrap peak latencies.

The input of both is one score time course per subject (``scores``, (n_subjects, n_times)),
e.g. a layer's RSA or encoding score, or a fusion time course, of each subject.

* :func:`cluster_test`: one-sample cluster-based permutation test against 0 over time
  (Maris & Oostenveld 2007) with :func:`mne.stats.permutation_cluster_1samp_test`: time points
  whose one-sided t exceeds the t quantile of ``cluster_p`` (``n_subjects - 1`` degrees of
  freedom) form clusters of adjacent time points; each cluster's mass (sum of t) is compared with
  the largest cluster mass under random sign flips of the subjects' curves. ``tail=1``: only
  scores above 0 are looked for.
* :func:`peak_latency`: the time of the maximum of the group-mean curve, with a percentile
  bootstrap interval over subjects (subjects resampled with replacement, the peak of each
  resample's mean curve).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import stats as sp_stats

from brainalign.errors import DataShapeError

__all__ = ["cluster_threshold", "cluster_test", "peak_latency"]

logger = logging.getLogger(__name__)


def _check_scores(scores: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    scores = np.asarray(scores, float)
    if scores.ndim != 2 or scores.shape[0] < 2 or scores.shape[1] < 1:
        raise DataShapeError(
            f"Wrong shape for scores: expected (n_subjects >= 2, n_times), got {scores.shape}. "
            "Group statistics need the time courses of at least two subjects."
        )
    if not np.all(np.isfinite(scores)):
        raise DataShapeError(
            f"Non-finite scores: expected finite numbers, got "
            f"{int(np.size(scores) - np.isfinite(scores).sum())} NaN or inf. Drop the subjects "
            "or time points without a score."
        )
    if times is not None and np.shape(times) != (scores.shape[1],):
        raise DataShapeError(
            f"Wrong shape for times: expected ({scores.shape[1]},), one per column of scores, "
            f"got {np.shape(times)}."
        )
    return scores


def cluster_threshold(n_subjects: int, cluster_p: float) -> float:
    """One-sided t threshold of the cluster-forming step.

    Parameters
    ----------
    n_subjects : int
    cluster_p : float
        Cluster-forming p-value (``meeg.stats.cluster_p``).

    Returns
    -------
    t : float
        The ``1 - cluster_p`` quantile of Student's t with ``n_subjects - 1`` degrees of freedom.
    """
    return float(sp_stats.t.ppf(1.0 - cluster_p, n_subjects - 1))


def cluster_test(
    scores: np.ndarray,
    times: np.ndarray,
    *,
    cluster_p: float = 0.05,
    n_permutations: int = 1000,
    seed: int = 0,
) -> tuple[list[dict], np.ndarray]:
    """One-sample cluster permutation test of score time courses against 0 (one-sided).

    Parameters
    ----------
    scores : ndarray, shape (n_subjects, n_times)
        One time course per subject.
    times : ndarray, shape (n_times,)
        Time of each column (s).
    cluster_p : float
        Cluster-forming p-value: the threshold is :func:`cluster_threshold`.
    n_permutations : int
        Random sign flips (MNE runs every sign flip instead when they are fewer: an exact
        test, whose p-values are multiples of about ``2 ** -n_subjects``; with 5 subjects or
        fewer no cluster can reach p < 0.05, which is logged).
    seed : int
        Seed of the sign flips (same seed, same p-values).

    Returns
    -------
    clusters : list of dict
        One per cluster, in time order: ``start``, ``stop`` (first and last column, inclusive),
        ``t_start``, ``t_stop`` (their times), ``cluster_stat`` (sum of t over the cluster)
        and ``p_value``.
    t_obs : ndarray, shape (n_times,)
        The one-sample t statistic at every time point.
    """
    import mne

    scores = _check_scores(scores, times)
    times = np.asarray(times, float)
    n_subjects = scores.shape[0]
    threshold = cluster_threshold(n_subjects, cluster_p)
    min_p = 1.0 / min(2.0 ** (n_subjects - 1), float(n_permutations))
    if min_p > 0.05:
        logger.warning(
            "cluster test with %d subjects: its smallest possible p-value is %.3g (sign flips "
            "of %d curves), so no cluster can reach p < 0.05", n_subjects, min_p, n_subjects)
    t_obs, clusters, p_values, _ = mne.stats.permutation_cluster_1samp_test(
        scores,
        threshold=threshold,
        n_permutations=int(n_permutations),
        tail=1,
        out_type="indices",
        rng=int(seed),
        verbose=False,
    )
    out = []
    for (idx,), p in zip(clusters, p_values, strict=True):
        start, stop = int(idx.min()), int(idx.max())
        out.append(
            {
                "start": start,
                "stop": stop,
                "t_start": float(times[start]),
                "t_stop": float(times[stop]),
                "cluster_stat": float(t_obs[idx].sum()),
                "p_value": float(p),
            }
        )
    out.sort(key=lambda c: c["start"])
    return out, np.asarray(t_obs)


def peak_latency(
    scores: np.ndarray,
    times: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    ci_percent: float = 95.0,
    seed: int = 0,
) -> dict[str, float]:
    """Peak of the group-mean time course, with a bootstrap interval over subjects.

    Parameters
    ----------
    scores : ndarray, shape (n_subjects, n_times)
        One time course per subject.
    times : ndarray, shape (n_times,)
        Time of each column (s).
    n_bootstrap : int
        Resamples of the subjects (with replacement).
    ci_percent : float
        Width of the percentile interval (e.g. 95).
    seed : int
        Seed of the resampling.

    Returns
    -------
    peak : dict
        ``peak_time`` (s) and ``peak_score`` of the group mean; ``ci_low``, ``ci_high``: the
        percentile interval of the resamples' peak times (s).
    """
    scores = _check_scores(scores, times)
    times = np.asarray(times, float)
    mean = scores.mean(0)
    best = int(np.argmax(mean))
    rng = np.random.default_rng(seed)
    n_subjects = scores.shape[0]
    boot_peaks = np.empty(int(n_bootstrap))
    chunk = max(1, 2**22 // scores.size)  # resamples per batch (about 32 MiB of curves)
    for start in range(0, int(n_bootstrap), chunk):
        stop = min(int(n_bootstrap), start + chunk)
        idx = rng.integers(0, n_subjects, size=(stop - start, n_subjects))
        boot_peaks[start:stop] = times[np.argmax(scores[idx].mean(1), axis=1)]
    tail = (100.0 - ci_percent) / 2
    low, high = np.percentile(boot_peaks, [tail, 100.0 - tail])
    return {
        "peak_time": float(times[best]),
        "peak_score": float(mean[best]),
        "ci_low": float(low),
        "ci_high": float(high),
    }
