"""Noise ceiling of RDM comparisons across subjects.

Same definition as ``rsatoolbox.inference.noise_ceiling.boot_noise_ceiling`` (the ceiling that
``eval_fixed``, ``eval_bootstrap``, ``eval_bootstrap_pattern`` and ``eval_bootstrap_rdm`` report):

- upper bound: mean over subjects of the comparison between the subject's RDM and the pooled
  RDM of *all* subjects (which includes the subject itself);
- lower bound: the same with the pooled RDM of all *other* subjects (leave one subject out).

The pooled RDM is the one that maximises the mean comparison (``pool_rdm``): mean ranks for
rank methods, mean z-scored RDM for ``pearson``/``corr_cov``, mean RMS-normalised RDM for
``cosine``/``cosine_cov``.
"""

from __future__ import annotations

import numpy as np

from brainalign.rsa._util import as_rdm_stack, lookup
from brainalign.rsa.compare import COMPARISONS, Comparison

__all__ = ["noise_ceiling", "pool_rdms"]


def pool_rdms(rdms: np.ndarray, *, method: str = "spearman") -> np.ndarray:
    """The RDM that best predicts a set of RDMs under a comparison method.

    Parameters
    ----------
    rdms : ndarray, shape (n_rdms, n_pairs)
        Without NaN.
    method : str
        Key of ``COMPARISONS``.

    Returns
    -------
    pooled : ndarray, shape (n_pairs,)
        As ``rsatoolbox.util.inference_util.pool_rdm`` (rank methods: mean of ranks).
    """
    comparison = lookup(COMPARISONS, method, arg="method")
    return comparison.pool(as_rdm_stack(rdms, arg="rdms"))


def _noise_ceiling_groups(
    rdms: np.ndarray, groups: np.ndarray, comparison: Comparison, mask: np.ndarray
) -> tuple[float, float]:
    """Leave-one-group-out noise ceiling; rows of a group are copies of one subject.

    Parameters
    ----------
    rdms : ndarray, shape (n_rdms, n_valid)
        Without NaN (missing pairs already removed).
    groups : ndarray, shape (n_rdms,)
        Subject label of each row; a bootstrap sample repeats labels.
    comparison : Comparison
    mask : ndarray of bool, shape (n_pairs,)
        Present pairs of the full RDM (for the whitened methods).

    Returns
    -------
    lower, upper : float
    """
    labels = np.unique(groups)
    preds = [comparison.pool(rdms)]
    if labels.size > 1:
        preds.extend(comparison.pool(rdms[groups != g]) for g in labels)
    sims = comparison.similarity(np.stack(preds), rdms, mask)  # (1 + n_groups, n_rdms)
    upper = [sims[0, groups == g].mean() for g in labels]
    if labels.size == 1:  # rsatoolbox: train = test = all RDMs
        return float(np.mean(upper)), float(np.mean(upper))
    lower = [sims[1 + k, groups == g].mean() for k, g in enumerate(labels)]
    return float(np.mean(lower)), float(np.mean(upper))


def noise_ceiling(subject_rdms: np.ndarray, *, method: str = "spearman") -> tuple[float, float]:
    """Lower and upper bound of the noise ceiling.

    Parameters
    ----------
    subject_rdms : ndarray, shape (n_subjects, n_pairs)
        One condensed RDM per subject (at least 2 for a leave-one-out lower bound; with one
        subject both bounds are its self-similarity, as in rsatoolbox).
    method : str
        Key of ``COMPARISONS``.

    Returns
    -------
    lower, upper : float
        Leave-one-subject-out lower bound and all-subjects upper bound
        (``rsatoolbox.inference.boot_noise_ceiling``).
    """
    comparison = lookup(COMPARISONS, method, arg="method")
    rdms = as_rdm_stack(subject_rdms, arg="subject_rdms")
    missing = np.isnan(rdms)
    mask = ~missing.any(axis=0)
    if not np.array_equal(missing, np.broadcast_to(~mask, rdms.shape)):
        raise ValueError(
            "NaN pairs differ between subjects for subject_rdms: expected NaN at the same "
            "pairs in every RDM, got different positions. Mask the same pairs everywhere."
        )
    return _noise_ceiling_groups(rdms[:, mask], np.arange(rdms.shape[0]), comparison, mask)
