"""Group-level RSA: subject RDM sets against model RDMs, noise ceilings, bootstrap inference."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["group_rdm_inference"]

COMPARISONS = ("spearman", "pearson")


def group_rdm_inference(model_rdms: np.ndarray, subject_rdms: np.ndarray, *,
                        method: str = "spearman", n_bootstrap: int = 1000,
                        over: str = "stimuli", ci_percent: float = 95.0,
                        seed: int = 0) -> dict:
    """Model-vs-subjects RDM comparison with noise ceilings and bootstrap intervals.

    Parameters
    ----------
    model_rdms : ndarray, shape (n_models, n_pairs)
        Condensed model RDMs (e.g. one per layer).
    subject_rdms : ndarray, shape (n_subjects, n_pairs)
        Condensed brain RDMs.
    method : str
        Comparison (spearman or pearson).
    n_bootstrap : int
        Bootstrap resamples (0: no intervals).
    over : {"stimuli", "subjects", "both"}
        What is resampled. Pairs of a stimulus with its own copy are dropped, as in rsatoolbox.
    ci_percent : float
        Width of the percentile interval.
    seed : int

    Returns
    -------
    result : dict
        ``per_subject`` (n_subjects, n_models), ``mean`` (n_models,), ``ci_low``/``ci_high``
        (n_models,), ``p_value`` (one-sided bootstrap p of mean > 0), ``p_fdr``
        (Benjamini-Hochberg), ``ceiling_lower``/``ceiling_upper`` (floats; leave-one-subject-out
        and all-subject means; NaN with one subject), ``bootstrap`` (n_bootstrap, n_models).
    """
    from scipy.spatial.distance import squareform
    from scipy.stats import false_discovery_control

    model_rdms = np.atleast_2d(np.asarray(model_rdms, float))
    subject_rdms = np.atleast_2d(np.asarray(subject_rdms, float))
    n_sub = subject_rdms.shape[0]
    per_subject = _compare_matrix(subject_rdms, model_rdms, method)
    lower, upper = _noise_ceiling(subject_rdms, method)
    rng = np.random.default_rng(seed)
    n = squareform(subject_rdms[0], checks=False).shape[0]
    boot = np.empty((n_bootstrap, model_rdms.shape[0]))
    sq_m = np.stack([squareform(r, checks=False) for r in model_rdms])
    sq_s = np.stack([squareform(r, checks=False) for r in subject_rdms])
    for b in range(n_bootstrap):
        subs = rng.integers(0, n_sub, n_sub) if over in ("subjects", "both") else np.arange(n_sub)
        if over in ("stimuli", "both"):
            stim = np.sort(rng.integers(0, n, n))
            i, j = np.triu_indices(n, 1)
            keep = stim[i] != stim[j]
            i, j = stim[i][keep], stim[j][keep]
            scores = _compare_matrix(sq_s[subs][:, i, j], sq_m[:, i, j], method)
        else:
            scores = per_subject[subs]
        boot[b] = scores.mean(0)
    mean = per_subject.mean(0)
    alpha = (100 - ci_percent) / 2
    if n_bootstrap:
        ci_low, ci_high = np.percentile(boot, [alpha, 100 - alpha], axis=0)
        p = (1 + (boot <= 0).sum(0)) / (n_bootstrap + 1)
        p_fdr = false_discovery_control(p)
    else:
        ci_low = ci_high = p = p_fdr = np.full(mean.shape, np.nan)
    return {"per_subject": per_subject, "mean": mean, "ci_low": ci_low, "ci_high": ci_high,
            "p_value": p, "p_fdr": p_fdr, "ceiling_lower": lower, "ceiling_upper": upper,
            "bootstrap": boot}


def _compare_matrix(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Comparison of every row of ``a`` with every row of ``b``: shape (len(a), len(b))."""
    if method == "spearman":
        a, b = rankdata(a, axis=1), rankdata(b, axis=1)
    elif method != "pearson":
        raise ValueError(f"Unknown comparison '{method}': expected one of {list(COMPARISONS)}.")
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def _noise_ceiling(subject_rdms: np.ndarray, method: str) -> tuple[float, float]:
    """Leave-one-subject-out (lower) and all-subject (upper) noise ceiling.

    For rank-based comparisons the subject RDMs are rank-transformed before averaging.
    """
    n_sub = subject_rdms.shape[0]
    if n_sub < 2:
        return float("nan"), float("nan")
    data = rankdata(subject_rdms, axis=1) if method == "spearman" else subject_rdms
    total = data.sum(0)
    upper = np.mean([_compare_matrix(subject_rdms[[s]], (total / n_sub)[None], method)[0, 0]
                     for s in range(n_sub)])
    lower = np.mean([_compare_matrix(subject_rdms[[s]],
                                     ((total - data[s]) / (n_sub - 1))[None], method)[0, 0]
                     for s in range(n_sub)])
    return float(lower), float(upper)
