"""Comparison of RDMs: rank and linear correlations, tau-a, rho-a, whitened correlations.

Every method gives the same numbers as ``rsatoolbox.rdm.compare(rdm1, rdm2, method=...)``
(rsatoolbox 0.3), but compares whole stacks at once (rank once, then matrix products).

================  =================  ==========================================================
``method``        rsatoolbox name    definition
================  =================  ==========================================================
``spearman``      ``'spearman'``     Pearson r of average ranks
``pearson``       ``'corr'``         Pearson r
``kendall_tau_a`` ``'tau-a'``        (concordant - discordant) / (n (n - 1) / 2), exact
``rho_a``         ``'rho-a'``        12 sum(rc_a rc_b) / (n^3 - n), rc = centred average ranks
``cosine``        ``'cosine'``       cosine similarity of the dissimilarity vectors
``corr_cov``      ``'corr_cov'``     ``cosine_cov`` after subtracting each RDM's mean
``cosine_cov``    ``'cosine_cov'``   cosine of the double-centred second-moment matrices
                                     (Diedrichsen et al. 2021 whitened cosine, ``sigma_k=None``)
================  =================  ==========================================================

NaN dissimilarities (e.g. pairs of a stimulus with its own bootstrap copy) are excluded, as in
rsatoolbox: they must sit at the same positions in every RDM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy.stats import rankdata

from brainalign.errors import DataShapeError
from brainalign.rsa._util import as_rdm_stack, lookup, n_stimuli_from_pairs
from brainalign.rsa.rdm import calc_rdm

__all__ = ["compare_rdms", "rdm_reliability", "COMPARISONS", "Comparison"]

#: Upper bound on the sign-matrix elements held at once by the exact tau-a (float32 each).
_TAU_CHUNK_ELEMENTS = 16_000_000


# --- similarity kernels: (n_a, n) x (n_b, n) -> (n_a, n_b), inputs without NaN ---------------


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities; 0 where a vector has zero length (as rsatoolbox)."""
    norm_a = np.sqrt(np.einsum("ij,ij->i", a, a))
    norm_b = np.sqrt(np.einsum("ij,ij->i", b, b))
    num = a @ b.T
    den = np.outer(norm_a, norm_b)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _centre(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=1, keepdims=True)


def _ranks(x: np.ndarray) -> np.ndarray:
    return rankdata(x, axis=1)


def _sim_spearman(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _cosine(_centre(_ranks(a)), _centre(_ranks(b)))


def _sim_pearson(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _cosine(_centre(a), _centre(b))


def _sim_cosine(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _cosine(a, b)


def _sim_rho_a(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = a.shape[1]
    return _centre(_ranks(a)) @ _centre(_ranks(b)).T * 12.0 / (n**3 - n)


def _signs(ranks: np.ndarray, start: int, stop: int, out: np.ndarray) -> np.ndarray:
    """sign(x_p - x_q) for p in [start, stop) and q >= start: (n_rdms, chunk * (n - start)).

    ``ranks`` are dense ranks in float32 (exact integers), so the differences are exact.
    """
    k, n = ranks.shape
    s = out[: k * (stop - start) * (n - start)].reshape(k, stop - start, n - start)
    np.subtract(ranks[:, start:stop, None], ranks[:, None, start:], out=s)
    np.sign(s, out=s)
    return s


def _sim_tau_a(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Exact Kendall tau-a from sign agreements, in blocks of rows of the upper triangle.

    Block ``[s, e)`` multiplies the signs of rows ``p`` in the block against columns
    ``q >= s``; pairs inside the block then appear in both orders and are halved. Each product
    sums at most ``chunk * n < 2**24`` terms of -1, 0, 1, so float32 BLAS is exact; blocks are
    accumulated in float64.
    """
    n = a.shape[1]
    ra = rankdata(a, method="dense", axis=1).astype(np.float32)
    rb = rankdata(b, method="dense", axis=1).astype(np.float32)
    chunk = max(1, min(n, _TAU_CHUNK_ELEMENTS // max(1, n * (a.shape[0] + b.shape[0]))))
    chunk = min(chunk, (2**24 - 1) // n)
    buf_a = np.empty(a.shape[0] * chunk * n, dtype=np.float32)
    buf_b = np.empty(b.shape[0] * chunk * n, dtype=np.float32)
    total = np.zeros((a.shape[0], b.shape[0]))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        sa = _signs(ra, start, stop, buf_a)
        sb = _signs(rb, start, stop, buf_b)
        width = stop - start
        block = sa.reshape(len(sa), -1) @ sb.reshape(len(sb), -1).T
        inner = sa[:, :, :width].reshape(len(sa), -1) @ sb[:, :, :width].reshape(len(sb), -1).T
        total += block.astype(np.float64) - inner.astype(np.float64) / 2
    return total / (n * (n - 1) / 2)


def _indicators(n_cond: int) -> scipy.sparse.csr_matrix:
    """Sparse row + column indicators of a vectorised second moment (pairs, then diagonal).

    Row ``k < n_pairs`` has ones at the two stimuli of pair ``k``; row ``n_pairs + i`` has a
    2 at stimulus ``i`` (``rsatoolbox.util.matrix.row_col_indicator_g``, summed).
    """
    rows, cols = np.triu_indices(n_cond, 1)
    n_pairs = rows.size
    r = np.concatenate([np.arange(n_pairs), np.arange(n_pairs), n_pairs + np.arange(n_cond)])
    c = np.concatenate([rows, cols, np.arange(n_cond)])
    v = np.concatenate([np.ones(2 * n_pairs), np.full(n_cond, 2.0)])
    return scipy.sparse.csr_matrix((v, (r, c)), shape=(n_pairs + n_cond, n_cond))


def _cov_weighting(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Whitened vectors whose cosine is the whitened RDM cosine (``sigma_k=None``).

    Port of ``rsatoolbox.rdm.compare._cov_weighting``: the RDM is turned into ``-D/2`` with a
    zero diagonal appended, double-centred (or, with missing pairs, projected off the row and
    column effects), and the off-diagonal entries are weighted by sqrt(2).

    Parameters
    ----------
    x : ndarray, shape (n_rdms, n_valid)
        RDM vectors without their missing pairs.
    mask : ndarray of bool, shape (n_pairs,)
        Which pairs of the full RDM are present.

    Returns
    -------
    xw : ndarray, shape (n_rdms, n_valid + n_stimuli)
    """
    n_rdms, n_dist = x.shape
    n_cond = n_stimuli_from_pairs(mask.size, arg="rdm")
    xw = -0.5 * np.concatenate([x, np.zeros((n_rdms, n_cond))], axis=1)
    sum_i = _indicators(n_cond)
    if np.all(mask):
        m = (sum_i.T @ xw.T).T / n_cond  # row (= column) means of G
        mm = np.sum(xw * 2, axis=1, keepdims=True) / (n_cond * n_cond)
        xw = xw - (sum_i @ m.T).T + mm
    else:
        ext = np.concatenate([mask, np.ones(n_cond, dtype=bool)])
        s = sum_i[ext].toarray()
        s[n_dist:, :] /= 2
        diag = np.concatenate([np.full(n_dist, 0.5), np.ones(n_cond)])[:, None]
        ds = diag * s
        xw = xw - xw @ s @ np.linalg.inv(s.T @ ds) @ ds.T
    xw[:, :n_dist] *= np.sqrt(2)
    return xw


def _sim_cosine_cov(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _cosine(_cov_weighting(a, mask), _cov_weighting(b, mask))


def _sim_corr_cov(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _cosine(_cov_weighting(_centre(a), mask), _cov_weighting(_centre(b), mask))


# --- pooling: the RDM that best predicts a set of RDMs (rsatoolbox pool_rdm) -----------------


def _pool_ranks(x: np.ndarray) -> np.ndarray:
    return _ranks(x).mean(axis=0)


def _pool_zscore(x: np.ndarray) -> np.ndarray:
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    pooled = z.mean(axis=0)
    return pooled - pooled.min()


def _pool_rms(x: np.ndarray) -> np.ndarray:
    return (x / np.sqrt(np.mean(x**2, axis=1, keepdims=True))).mean(axis=0)


@dataclass(frozen=True)
class Comparison:
    """One RDM comparison method.

    Attributes
    ----------
    similarity : callable
        ``(a, b, mask) -> sim`` with ``a`` (n_a, n_valid), ``b`` (n_b, n_valid) free of NaN,
        ``mask`` (n_pairs,) marking the present pairs; returns (n_a, n_b).
    pool : callable
        ``(rdms) -> pooled`` with ``rdms`` (n_rdms, n_valid); the pooled RDM used as the
        noise-ceiling prediction (``rsatoolbox.util.inference_util.pool_rdm``).
    rsatoolbox_name : str
        The ``method`` string of ``rsatoolbox.rdm.compare``.
    """

    similarity: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    pool: Callable[[np.ndarray], np.ndarray]
    rsatoolbox_name: str


#: RDM comparison methods by name.
COMPARISONS: dict[str, Comparison] = {
    "spearman": Comparison(_sim_spearman, _pool_ranks, "spearman"),
    "pearson": Comparison(_sim_pearson, _pool_zscore, "corr"),
    "kendall_tau_a": Comparison(_sim_tau_a, _pool_ranks, "tau-a"),
    "rho_a": Comparison(_sim_rho_a, _pool_ranks, "rho-a"),
    "cosine": Comparison(_sim_cosine, _pool_rms, "cosine"),
    "corr_cov": Comparison(_sim_corr_cov, _pool_zscore, "corr_cov"),
    "cosine_cov": Comparison(_sim_cosine_cov, _pool_rms, "cosine_cov"),
}


def _valid_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mask of pairs present in all RDMs; NaN must sit at the same pairs in a and b."""
    missing_a = np.isnan(a).any(axis=0)
    missing_b = np.isnan(b).any(axis=0)
    if not np.array_equal(missing_a, missing_b):
        raise ValueError(
            "NaN pairs differ between a and b: expected NaN at the same pairs in both, got "
            f"{int(missing_a.sum())} and {int(missing_b.sum())} missing pairs. "
            "Mask the same pairs in both RDM sets."
        )
    return ~missing_a


def compare_rdms(
    a: np.ndarray, b: np.ndarray, *, method: str = "spearman"
) -> float | np.ndarray:
    """Compare condensed RDMs.

    Parameters
    ----------
    a : ndarray, shape (n_pairs,) or (n_a, n_pairs)
    b : ndarray, shape (n_pairs,) or (n_b, n_pairs)
    method : str
        Key of ``COMPARISONS``: ``"spearman"``, ``"pearson"``, ``"kendall_tau_a"``,
        ``"rho_a"``, ``"cosine"``, ``"corr_cov"``, ``"cosine_cov"``.

    Returns
    -------
    similarity : float or ndarray, shape (n_a, n_b)
        A float when both ``a`` and ``b`` are 1-D, else the matrix of all comparisons
        (a 1-D input counts as one row). A zero-variance RDM gives 0, as in rsatoolbox.
    """
    comparison = lookup(COMPARISONS, method, arg="method")
    both_1d = np.ndim(a) == 1 and np.ndim(b) == 1
    sa, sb = as_rdm_stack(a, arg="a"), as_rdm_stack(b, arg="b")
    if sa.shape[1] != sb.shape[1]:
        raise DataShapeError(
            f"RDMs differ in size: {np.shape(a)} vs {np.shape(b)} for a and b: expected the "
            f"same number of pairs, got {sa.shape[1]} and {sb.shape[1]}. "
            "Compute both RDMs on the same stimuli."
        )
    mask = _valid_pairs(sa, sb)
    sim = comparison.similarity(sa[:, mask], sb[:, mask], mask)
    return float(sim[0, 0]) if both_1d else sim


def rdm_reliability(
    half1: np.ndarray, half2: np.ndarray, *, metric: str = "correlation", method: str = "spearman"
) -> float:
    """Split-half reliability of an RDM.

    Parameters
    ----------
    half1, half2 : ndarray, shape (n_stimuli, n_channels)
        Patterns estimated from two independent halves of the data.
    metric : str
        Pattern dissimilarity (key of ``RDM_METRICS``).
    method : str
        RDM comparison (key of ``COMPARISONS``).

    Returns
    -------
    r : float
        Similarity of the two halves' RDMs.
    """
    return compare_rdms(
        calc_rdm(half1, metric=metric), calc_rdm(half2, metric=metric), method=method
    )
