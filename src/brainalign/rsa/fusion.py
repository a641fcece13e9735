"""M/EEG-fMRI fusion (Cichy, Pantazis & Oliva 2014): when does each region's geometry appear.

Each time point's M/EEG RDM is compared with the RDM of each fMRI region of interest over the
stimuli both saw. The fusion time course of a region peaks when the M/EEG patterns are
organised as that region's patterns are. RDMs are condensed (``scipy.spatial.distance``
order); stimuli are matched by name, and RDMs of several fMRI subjects are averaged before the
comparison (the subject-averaged fMRI RDM of the original method).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainalign.errors import DataShapeError
from brainalign.rsa._util import n_stimuli_from_pairs
from brainalign.rsa.compare import compare_rdms

__all__ = ["shared_stimuli", "subset_rdms", "fusion_scores"]


def shared_stimuli(reference: Sequence[str], *others: Sequence[str]) -> np.ndarray:
    """Stimuli of ``reference`` that every other list holds too, in ``reference`` order.

    Parameters
    ----------
    reference : sequence of str
        E.g. the M/EEG RDMs' stimuli.
    *others : sequence of str
        E.g. each fMRI RDM file's stimuli.

    Returns
    -------
    stimuli : ndarray of str
    """
    keep = [str(s) for s in reference]
    for other in others:
        names = {str(s) for s in other}
        keep = [s for s in keep if s in names]
    return np.array(keep, dtype=str)


def subset_rdms(rdms: np.ndarray, stimuli: Sequence[str], keep: Sequence[str]) -> np.ndarray:
    """Condensed RDMs restricted to (and reordered as) ``keep``.

    Parameters
    ----------
    rdms : ndarray, shape (..., n_pairs)
        Condensed RDMs over ``stimuli``.
    stimuli : sequence of str
        Stimulus of each row of the square RDMs.
    keep : sequence of str
        Stimuli wanted, in the wanted order (each one of ``stimuli``).

    Returns
    -------
    subset : ndarray, shape (..., n_keep * (n_keep - 1) / 2)
    """
    rdms = np.asarray(rdms, float)
    stimuli = [str(s) for s in stimuli]
    n = n_stimuli_from_pairs(rdms.shape[-1], arg="rdms")
    if n != len(stimuli):
        raise DataShapeError(
            f"RDMs with {rdms.shape[-1]} pairs ({n} stimuli) but {len(stimuli)} stimulus names: "
            "expected one name per row of the square RDM. Re-run the step that wrote the RDMs."
        )
    pos = {s: i for i, s in enumerate(stimuli)}
    missing = [s for s in keep if s not in pos]
    if missing:
        raise DataShapeError(
            f"{len(missing)} stimuli missing from the RDMs (e.g. '{missing[0]}'): expected every "
            "stimulus to keep among the RDMs' stimuli. Restrict to the shared stimuli first."
        )
    idx = np.array([pos[str(s)] for s in keep], dtype=np.intp)
    i, j = np.triu_indices(idx.size, 1)
    a = np.minimum(idx[i], idx[j])
    b = np.maximum(idx[i], idx[j])
    k = n * a - a * (a + 1) // 2 + b - a - 1
    return rdms[..., k]


def fusion_scores(meeg_rdms: np.ndarray, fmri_rdms: np.ndarray, *,
                  method: str = "spearman") -> np.ndarray:
    """Similarity of every time point's M/EEG RDM with every fMRI region's RDM.

    Parameters
    ----------
    meeg_rdms : ndarray, shape (n_times, n_pairs)
        Condensed M/EEG RDMs, one per time point, over the same stimuli as ``fmri_rdms``.
    fmri_rdms : ndarray, shape (n_rois, n_pairs) or (n_pairs,)
        Condensed fMRI RDMs (already averaged over subjects), one per region.
    method : str
        RDM comparison (:data:`~brainalign.rsa.COMPARISONS`), e.g. ``"spearman"``.

    Returns
    -------
    scores : ndarray, shape (n_rois, n_times)
        Pairs missing (NaN) in an fMRI RDM are left out of every comparison; a time point whose
        M/EEG RDM misses other pairs gets NaN.
    """
    meeg = np.atleast_2d(np.asarray(meeg_rdms, float))
    fmri = np.atleast_2d(np.asarray(fmri_rdms, float))
    if meeg.shape[1] != fmri.shape[1]:
        raise DataShapeError(
            f"M/EEG RDMs have {meeg.shape[1]} pairs, fMRI RDMs {fmri.shape[1]}: expected the "
            "same stimuli in both. Restrict both to the shared stimuli (subset_rdms)."
        )
    keep = ~np.isnan(fmri).any(0)
    rows = ~np.isnan(meeg[:, keep]).any(1)
    if not keep.any() or not rows.any():
        raise DataShapeError(
            "No stimulus pair present in both the M/EEG and the fMRI RDMs: expected finite "
            "dissimilarities. Check the RDM files."
        )
    out = np.full((fmri.shape[0], meeg.shape[0]), np.nan)
    out[:, rows] = compare_rdms(fmri[:, keep], meeg[np.ix_(rows, keep)], method=method)
    return out
