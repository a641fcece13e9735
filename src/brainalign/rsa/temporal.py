"""Time-resolved RSA: an RDM per time point (or sliding window), compared with model RDMs.

Everything is vectorised over time: the RDMs of all time points come from batched Gram
matrices (one ``(n_stimuli, n_stimuli)`` product per time sample, summed over each window),
and the comparisons of all time RDMs with all model RDMs are single matrix products of ranked
(or centred) dissimilarities (:func:`brainalign.rsa.compare_rdms`). Python loops run over
chunks of time points (bounded memory), over the samples of a window and, for Kendall's tau-a
in paired comparisons only, over time points. Spearman ranks each RDM once with an exact fast
path (:func:`_centred_ranks`: one SIMD sort of integer keys per row, ``rankdata`` for rows with
ties), then one matrix product compares every time point with every model.
:func:`brainalign.rsa.calc_rdm_timeseries` is the one-sample case without the windows.

Windows
-------
With ``window = w`` samples, the pattern of a stimulus at time point ``t`` is its
``n_channels x w`` values over the samples ``t - w // 2, ..., t - w // 2 + w - 1`` (channels x
samples, concatenated), and only time points whose whole window lies inside the epoch get an
RDM: ``n_times - w + 1`` of them. For an odd ``w = 2 r + 1`` this is exactly mne-rsa's temporal
searchlight (``rsa_evokeds(..., temporal_radius=r / sfreq)``: patches
``slice(t - r, t + r + 1)`` for ``t = r, ..., n_times - r - 1``, time of the result
``times[r:n_times - r]``). mne-rsa only has odd windows; an even ``w`` has one more sample
before ``t`` than after, and its time is the midpoint of its two middle samples
(:func:`window_times`). ``w = 1`` is one RDM per time sample (mne-rsa ``temporal_radius=0``;
rsatoolbox ``calc_rdm_movie``).

Distances equal ``scipy.spatial.distance.pdist`` of the concatenated patterns (the values of
:func:`brainalign.rsa.calc_rdm`; rsatoolbox's ``'euclidean'`` is ``sqeuclidean /
n_features``), to about 1e-13 relative: they come from Gram matrices of data centred first
(per time over channels for ``correlation``, across stimuli for the Euclidean metrics), which
keeps cancellation small. Correlation and cosine distances of patterns that share channel
offsets 1000 times larger than their differences (no baseline correction) are close to 0 and
lose digits in ``1 - r`` in both implementations: about 1e-10 relative to the largest.
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import DataShapeError
from brainalign.rsa._util import as_rdm_stack, lookup
from brainalign.rsa.compare import (
    COMPARISONS,
    _centre,
    _cosine,
    _cov_weighting,
    _ranks,
    compare_rdms,
)
from brainalign.rsa.split_half import ERROR_TERMS, prophesy_from_repeats

__all__ = [
    "TEMPORAL_METRICS",
    "n_windows",
    "window_times",
    "calc_rdm_temporal",
    "compare_rdms_temporal",
    "compare_rdms_paired",
    "rsa_time_course",
    "temporal_split_half_ceiling",
]

#: Pattern dissimilarities of :func:`calc_rdm_temporal`.
TEMPORAL_METRICS = ("correlation", "cosine", "euclidean", "sqeuclidean")

#: Bits of +inf as int64: smaller non-negative keys are the bits of finite floats.
_INF_BITS = np.int64(0x7FF0000000000000)

#: Upper bound on the Gram-matrix elements held at once (float64 each: 64 MB).
_GRAM_CHUNK_ELEMENTS = 8_000_000

#: Gram-matrix elements per chunk of :func:`rsa_time_course` (3.2 MB: RDMs and their ranks
#: stay in the CPU cache between the steps).
_FUSED_CHUNK_ELEMENTS = 400_000


def _check_window(n_times: int, window: int) -> int:
    window = int(window)
    if window < 1 or window > n_times:
        raise DataShapeError(
            f"Bad value for window: expected 1 <= window <= n_times ({n_times}) samples, got "
            f"{window}. Lower meeg.rsa.window or lengthen the epochs."
        )
    return window


def n_windows(n_times: int, window: int = 1) -> int:
    """Number of time points whose whole window lies in the epoch.

    Parameters
    ----------
    n_times : int
        Samples per epoch.
    window : int
        Samples per RDM.

    Returns
    -------
    n : int
        ``n_times - window + 1``.
    """
    return int(n_times) - _check_window(n_times, window) + 1


def window_times(times: np.ndarray, window: int = 1) -> np.ndarray:
    """Time of each window: its centre sample (odd ``window``) or the midpoint of its two.

    Parameters
    ----------
    times : ndarray, shape (n_times,)
        Sample times (s).
    window : int
        Samples per RDM.

    Returns
    -------
    centres : ndarray, shape (n_times - window + 1,)
        ``times[window // 2 : n_times - (window - 1) // 2]`` for odd ``window`` (mne-rsa's
        ``times[r:n_times - r]``); for even ``window`` the mean of the two middle samples.
    """
    times = np.asarray(times, dtype=float)
    w = _check_window(times.size, window)
    n = times.size - w + 1
    if w % 2:
        return times[w // 2: w // 2 + n].copy()
    return (times[w // 2 - 1: w // 2 - 1 + n] + times[w // 2: w // 2 + n]) / 2


def _check_patterns(patterns: np.ndarray) -> np.ndarray:
    x = np.asarray(patterns, dtype=float)
    if x.ndim != 3 or x.shape[0] < 3 or x.shape[1] < 1:
        raise DataShapeError(
            "Bad shape for patterns: expected (n_stimuli >= 3, n_channels, n_times), got "
            f"{x.shape}. Put stimuli first, channels second and time last."
        )
    return x


def _time_major(x: np.ndarray) -> np.ndarray:
    """``x`` (n_stimuli, n_channels, n_times) copied to (n_times, n_stimuli, n_channels).

    Transposed in blocks of rows, which is several times faster than one strided copy.
    """
    flat = x.reshape(-1, x.shape[2])
    out = np.empty((x.shape[2], flat.shape[0]))
    for i in range(0, flat.shape[0], 512):
        out[:, i: i + 512] = flat[i: i + 512].T
    return out.reshape(x.shape[2], x.shape[0], x.shape[1])


def _gram_per_time(x: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """Gram matrix of every time sample of ``x - centre``: (n_times, n_stimuli, n_stimuli).

    ``centre`` broadcasts against ``x`` (n_stimuli, n_channels, n_times) with one of its first
    two axes of length 1.
    """
    xt = _time_major(x)
    if centre is not None:
        xt -= np.moveaxis(centre, 2, 0)
    return xt @ np.swapaxes(xt, 1, 2)


def _window_sum(g: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``window`` consecutive entries along axis 0 (a loop over the window only)."""
    if window == 1:
        return g
    n = g.shape[0] - window + 1
    out = g[:n].copy()
    for k in range(1, window):
        out += g[k: k + n]
    return out


def _unit_gram(x: np.ndarray, *, centre: bool) -> np.ndarray:
    """Per-sample Gram matrices of patterns (centred and) scaled to unit length."""
    xt = _time_major(x)
    if centre:
        xt -= xt.mean(axis=2, keepdims=True)
    norm = np.sqrt(np.einsum("tic,tic->ti", xt, xt))
    with np.errstate(invalid="ignore", divide="ignore"):
        xt /= norm[:, :, None]
    return xt @ np.swapaxes(xt, 1, 2)


def _windowed_gram(x: np.ndarray, metric: str, window: int) -> np.ndarray:
    """Gram matrices of the windowed, concatenated patterns, after the metric's centring."""
    if window == 1 and metric in ("correlation", "cosine"):
        return _unit_gram(x, centre=metric == "correlation")
    if metric == "correlation":
        mu = x.mean(axis=1)  # (n_stimuli, n_times): mean over channels per sample
        g = _window_sum(_gram_per_time(x, mu[:, None, :]), window)
        if window > 1:  # the concatenated pattern's mean differs from each sample's mean
            b = np.lib.stride_tricks.sliding_window_view(mu.T, window, axis=0)
            b = b - b.mean(axis=2, keepdims=True)  # (n_windows, n_stimuli, window)
            g += x.shape[1] * (b @ np.swapaxes(b, 1, 2))
        return g
    if metric in ("euclidean", "sqeuclidean"):  # translation invariant: centre over stimuli
        return _window_sum(_gram_per_time(x, x.mean(axis=0, keepdims=True)), window)
    return _window_sum(_gram_per_time(x), window)


def _rdms_from_gram(g: np.ndarray, metric: str, *, unit: bool = False) -> np.ndarray:
    """Condensed RDMs from Gram matrices (``unit``: of unit-length patterns)."""
    n = g.shape[-1]
    rows, cols = np.triu_indices(n, 1)
    upper = np.take(g.reshape(g.shape[0], n * n), rows * n + cols, axis=1)
    if unit:
        return np.subtract(1.0, upper, out=upper)
    diag = np.diagonal(g, axis1=1, axis2=2)
    if metric in ("correlation", "cosine"):
        norm = np.sqrt(diag)
        with np.errstate(invalid="ignore", divide="ignore"):
            upper /= np.take(norm, rows, axis=1)
            upper /= np.take(norm, cols, axis=1)
        return np.subtract(1.0, upper, out=upper)
    upper *= -2.0
    upper += np.take(diag, rows, axis=1)
    upper += np.take(diag, cols, axis=1)
    d = np.maximum(upper, 0.0, out=upper)
    return np.sqrt(d, out=d) if metric == "euclidean" else d


def calc_rdm_temporal(patterns: np.ndarray, *, metric: str = "correlation",
                      window: int = 1) -> np.ndarray:
    """RDMs at every time point (or centred sliding window) across channels, vectorised.

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_channels, n_times)
        Evoked patterns per stimulus.
    metric : str
        ``"correlation"`` (1 - Pearson r), ``"cosine"``, ``"euclidean"`` or
        ``"sqeuclidean"``: the values of ``scipy.spatial.distance.pdist`` on the patterns.
    window : int
        Samples per RDM (module docstring): the pattern is the ``n_channels x window``
        values, concatenated; 1 = one RDM per sample.

    Returns
    -------
    rdms : ndarray, shape (n_times - window + 1, n_pairs)
        Condensed RDMs (``pdist`` order) of the time points :func:`window_times` returns.
    """
    x = _check_patterns(patterns)
    metric = str(metric)
    lookup({m: m for m in TEMPORAL_METRICS}, metric, arg="metric")
    w = _check_window(x.shape[2], window)
    n_stim, n_out = x.shape[0], x.shape[2] - w + 1
    n_pairs = n_stim * (n_stim - 1) // 2
    chunk = max(1, _GRAM_CHUNK_ELEMENTS // (n_stim * n_stim) - w + 1)
    out = np.empty((n_out, n_pairs))
    for o0 in range(0, n_out, chunk):  # bounded memory: chunks of windows, not time points
        o1 = min(n_out, o0 + chunk)
        g = _windowed_gram(x[:, :, o0: o1 + w - 1], metric, w)
        out[o0:o1] = _rdms_from_gram(g, metric,
                                     unit=w == 1 and metric in ("correlation", "cosine"))
    return out


def _sortable_int(x: np.ndarray) -> np.ndarray:
    """int64 keys with the order of the float64 values (IEEE bits, negatives flipped)."""
    bits = (np.asarray(x, dtype=np.float64) + 0.0).view(np.int64)  # + 0.0: -0.0 becomes 0.0
    if (bits >= 0).all():
        return bits
    return np.where(bits < 0, bits ^ np.int64(0x7FFFFFFFFFFFFFFF), bits)


def _centred_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks along axis 1 minus their mean ``(n + 1) / 2``, fast without ties.

    The values of ``scipy.stats.rankdata(x, axis=1) - (n + 1) / 2`` (the mean of average
    ranks is always ``(n + 1) / 2``). Each value's order-preserving integer key has its
    lowest bits replaced by its column index, so one plain (SIMD) sort per row yields the
    order; where the truncated keys of a row increase strictly, that order is the exact order
    of the values without ties. Other rows (ties, or values equal up to the replaced bits) are
    ranked by ``rankdata``.
    """
    n = x.shape[1]
    bits = max(1, int(n - 1).bit_length())
    low = np.int64((1 << bits) - 1)
    keys = _sortable_int(x)
    keys &= ~low
    keys |= np.arange(n, dtype=np.int64)
    if keys.min(initial=0) >= 0 and keys.max(initial=0) < _INF_BITS:
        # finite non-negative keys sort alike as float64 bits, and numpy's float sort is faster
        keys.view(np.float64).sort(axis=1)
    else:
        keys.sort(axis=1)
    order = keys & low
    keys >>= bits  # the truncated values, sorted
    bad = ~(keys[:, 1:] > keys[:, :-1]).all(axis=1)
    order += (np.arange(x.shape[0], dtype=np.int64) * n)[:, None]
    ranks = np.empty(x.size)
    ranks[order.ravel()] = np.tile(np.arange(n) - (n - 1) / 2, x.shape[0])
    ranks = ranks.reshape(x.shape)
    if bad.any():
        ranks[bad] = _ranks(x[bad]) - (n + 1) / 2
    return ranks


def compare_rdms_temporal(time_rdms: np.ndarray, model_rdms: np.ndarray, *,
                          method: str = "spearman") -> np.ndarray:
    """Compare every time point's RDM with every model RDM at once.

    Each RDM is ranked (or centred) once and all comparisons are one matrix product
    (:func:`brainalign.rsa.compare_rdms`; the values of ``rsatoolbox.rdm.compare`` and, for
    ``spearman``/``pearson``/``kendall_tau_a``, of mne-rsa's ``rsa_metric``).

    Parameters
    ----------
    time_rdms : ndarray, shape (n_times, n_pairs)
        From :func:`calc_rdm_temporal`.
    model_rdms : ndarray, shape (n_models, n_pairs) or (n_pairs,)
        E.g. one RDM per layer, on the same stimuli in the same order.
    method : str
        Key of :data:`brainalign.rsa.COMPARISONS`.

    Returns
    -------
    scores : ndarray, shape (n_times, n_models)
    """
    a = as_rdm_stack(time_rdms, arg="time_rdms")
    b = as_rdm_stack(model_rdms, arg="model_rdms")
    lookup(COMPARISONS, method, arg="method")
    if (method in ("spearman", "pearson") and a.shape[1] == b.shape[1]
            and not (np.isnan(a).any() or np.isnan(b).any())):
        prep = _centred_ranks if method == "spearman" else _centre
        return _cosine(prep(a), prep(b))
    return np.asarray(compare_rdms(a, b, method=method)).reshape(a.shape[0], b.shape[0])


def _rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = np.einsum("ij,ij->i", a, b)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def rsa_time_course(patterns: np.ndarray, model_rdms: np.ndarray, *,
                    metric: str = "correlation", window: int = 1,
                    method: str = "spearman") -> np.ndarray:
    """RSA at every time point: :func:`calc_rdm_temporal`, then :func:`compare_rdms_temporal`.

    The same values, computed in chunks of time points so that each chunk's RDMs are ranked
    and compared while they are in the CPU cache (mne-rsa's ``rsa_evokeds`` with
    ``temporal_radius`` in one call). The workflow stores the RDMs instead (``meeg_rdms``) and
    compares them with every model (``meeg_rsa``).

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_channels, n_times)
    model_rdms : ndarray, shape (n_models, n_pairs) or (n_pairs,)
    metric, window :
        As for :func:`calc_rdm_temporal`.
    method : str
        Key of :data:`brainalign.rsa.COMPARISONS`.

    Returns
    -------
    scores : ndarray, shape (n_times - window + 1, n_models)
    """
    x = _check_patterns(patterns)
    b = as_rdm_stack(model_rdms, arg="model_rdms")
    lookup(COMPARISONS, method, arg="method")
    w = _check_window(x.shape[2], window)
    n_out = x.shape[2] - w + 1
    if method not in ("spearman", "pearson") or np.isnan(b).any():
        return compare_rdms_temporal(calc_rdm_temporal(x, metric=metric, window=w), b,
                                     method=method)
    prep = _centred_ranks if method == "spearman" else _centre
    bp = prep(b)
    chunk = max(1, _FUSED_CHUNK_ELEMENTS // (x.shape[0] ** 2))
    out = np.empty((n_out, b.shape[0]))
    for o0 in range(0, n_out, chunk):
        o1 = min(n_out, o0 + chunk)
        rdms = calc_rdm_temporal(x[:, :, o0: o1 + w - 1], metric=metric, window=w)
        if rdms.shape[1] != b.shape[1] or np.isnan(rdms).any():
            out[o0:o1] = compare_rdms_temporal(rdms, b, method=method)  # its errors
        else:
            out[o0:o1] = _cosine(prep(rdms), bp)
    return out


def compare_rdms_paired(a: np.ndarray, b: np.ndarray, *, method: str = "spearman") -> np.ndarray:
    """Compare ``a[k]`` with ``b[k]`` for every row ``k`` (e.g. two halves' RDMs per time).

    Parameters
    ----------
    a, b : ndarray, shape (n, n_pairs)
        RDM stacks of one shape, without NaN.
    method : str
        Key of :data:`brainalign.rsa.COMPARISONS`.

    Returns
    -------
    similarity : ndarray, shape (n,)
        ``compare_rdms(a[k], b[k], method=method)`` for each ``k`` (vectorised, except
        ``kendall_tau_a``, which loops over rows).
    """
    lookup(COMPARISONS, method, arg="method")
    a = as_rdm_stack(a, arg="a")
    b = as_rdm_stack(b, arg="b")
    if a.shape != b.shape:
        raise DataShapeError(
            f"Shapes differ for a and b: expected two stacks of one shape, got {a.shape} and "
            f"{b.shape}. Pass RDMs of the same time points and stimuli."
        )
    if method == "kendall_tau_a" or np.isnan(a).any() or np.isnan(b).any():
        return np.array([compare_rdms(x, y, method=method) for x, y in zip(a, b, strict=True)])
    if method == "spearman":
        return _rowwise_cosine(_centred_ranks(a), _centred_ranks(b))
    if method == "pearson":
        return _rowwise_cosine(_centre(a), _centre(b))
    if method == "cosine":
        return _rowwise_cosine(a, b)
    if method == "rho_a":
        n = a.shape[1]
        return np.einsum("ij,ij->i", _centred_ranks(a), _centred_ranks(b)) * 12.0 / (n**3 - n)
    mask = np.ones(a.shape[1], dtype=bool)
    if method == "corr_cov":
        a, b = _centre(a), _centre(b)
    return _rowwise_cosine(_cov_weighting(a, mask), _cov_weighting(b, mask))


def temporal_split_half_ceiling(
    half1: np.ndarray,
    half2: np.ndarray,
    *,
    n_repeats: np.ndarray,
    metric: str = "correlation",
    window: int = 1,
    method: str = "spearman",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split-half RDM noise ceiling at every time point (or window).

    The same definition as the fMRI ROI ceiling (:func:`brainalign.rsa.split_half_ceiling`
    of :func:`brainalign.rsa.rdm_reliability`), applied to the RDMs of the odd and even
    repeats at each time point.

    Parameters
    ----------
    half1, half2 : ndarray, shape (n_stimuli, n_channels, n_times)
        Mean patterns over the odd and even repeats.
    n_repeats : ndarray of int, shape (n_stimuli,)
        Repeats of each stimulus (at least 2).
    metric : str
        Pattern dissimilarity, as for the data RDMs.
    window : int
        Samples per RDM, as for the data RDMs.
    method : str
        RDM comparison, as for the model scores.

    Returns
    -------
    lower, upper : ndarray, shape (n_times - window + 1,)
        ``SplitHalfCeiling.lower`` (Spearman-Brown for the actual halves) and ``.upper``
        (noise x noise error) per time point; normalise scores by ``upper``.
    r_half : ndarray, shape (n_times - window + 1,)
        Similarity of the two halves' RDMs per time point.
    """
    h1, h2 = _check_patterns(half1), _check_patterns(half2)
    if h1.shape != h2.shape:
        raise DataShapeError(
            f"Shapes differ for half1 and half2: expected one shape, got {h1.shape} and "
            f"{h2.shape}. Pass both halves of the same responses."
        )
    n = np.asarray(n_repeats)
    if n.shape != (h1.shape[0],):
        raise DataShapeError(
            f"Wrong length of n_repeats: expected one count per stimulus ({h1.shape[0]}), "
            f"got shape {n.shape}. Pass the n_repeats of the same responses."
        )
    r_half = compare_rdms_paired(calc_rdm_temporal(h1, metric=metric, window=window),
                                 calc_rdm_temporal(h2, metric=metric, window=window),
                                 method=method)
    rel = {term: prophesy_from_repeats(r_half, n_repeats=n, term=term) for term in ERROR_TERMS}
    return np.sqrt(rel["linear"]), np.sqrt(rel["quadratic"]), r_half
