"""Inference on model-RDM comparisons: bootstrap, permutation test, FDR.

Bootstrap semantics follow rsatoolbox 0.3 exactly (``rsatoolbox.inference.evaluate``):

- ``over="stimuli"`` is ``eval_bootstrap_pattern``: stimuli are resampled with replacement; the
  resampled RDMs keep every pair of *different* stimuli with its multiplicity and drop the pairs
  of a stimulus with its own copy (rsatoolbox sets them to NaN); samples with fewer than 3
  distinct stimuli are NaN.
- ``over="subjects"`` is ``eval_bootstrap_rdm``: subject RDMs are resampled with replacement.
- ``over="both"`` is ``eval_bootstrap``: subjects, then stimuli, per sample.

Each sample's evaluation is the mean over the resampled subject RDMs (copies count) of the
comparison with each model; its noise ceiling is ``boot_noise_ceiling`` on the resampled RDMs,
leaving one *distinct* subject (with all its copies) out at a time.

Given the same resampling indices, the bootstrap samples equal rsatoolbox's ``Result``
``evaluations`` and ``noise_ceiling``; the p-values equal ``Result.test_zero``,
``test_pairwise`` and ``test_noise`` (``test_type`` "t-test" or "bootstrap"), the intervals
``Result.get_ci(level, test_type="bootstrap")``.

Two deliberate differences: percentile bounds that rsatoolbox returns as NaN (too few samples
for the level) are -inf/+inf here, and NaN samples are left out of the percentiles; and
``test_type="bootstrap"`` p-values against the noise ceiling use the formula of rsatoolbox's
``nc_tests``, which itself raises for bootstrap results in 0.3 (it reshapes the lower bounds
to ``(2, 1)``).

For ``spearman``, ``pearson``, ``cosine`` and ``rho_a`` a sample is never materialised: a pair of
stimuli drawn ``c_i`` and ``c_j`` times enters with weight ``c_i * c_j``, ranks of the resampled
vector are weighted average ranks read off a sort done once per RDM, and correlations are
weighted matrix products. Other methods build each resampled RDM explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from brainalign.errors import DataShapeError
from brainalign.rsa._util import (
    as_generator,
    as_rdm_stack,
    check_finite,
    condensed_index,
    lookup,
    n_stimuli_from_pairs,
    names_or_default,
)
from brainalign.rsa.compare import COMPARISONS, Comparison, compare_rdms
from brainalign.rsa.noise_ceiling import _noise_ceiling_groups

__all__ = [
    "bootstrap_compare",
    "BootstrapResult",
    "draw_bootstrap_indices",
    "permutation_test",
    "PermutationResult",
    "correct_fdr",
    "BOOTSTRAP_SCHEMES",
    "BootstrapScheme",
    "FDR_METHODS",
]

logger = logging.getLogger(__name__)


# --- resampling schemes ----------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapScheme:
    """What a bootstrap resamples and how rsatoolbox turns its samples into variances.

    Attributes
    ----------
    keys : tuple of str
        Index arrays it needs: ``"subjects"`` and/or ``"stimuli"``.
    n_correct : callable
        ``(n_subjects, n_stimuli) -> n`` of the ``n / (n - 1)`` variance correction.
    dof : callable
        ``(n_subjects, n_stimuli) -> dof`` of the t-tests.
    ceiling_in_cov : bool
        Whether the noise ceiling enters the covariance (``eval_bootstrap_rdm``: no).
    """

    keys: tuple[str, ...]
    n_correct: Callable[[int, int], int]
    dof: Callable[[int, int], int]
    ceiling_in_cov: bool


#: Bootstrap schemes by name: (n_subjects, n_stimuli) -> correction n and t-test dof.
BOOTSTRAP_SCHEMES: dict[str, BootstrapScheme] = {
    "stimuli": BootstrapScheme(("stimuli",), lambda ns, nc: nc, lambda ns, nc: nc - 1, True),
    "subjects": BootstrapScheme(("subjects",), lambda ns, nc: ns, lambda ns, nc: ns - 1, False),
    "both": BootstrapScheme(
        ("subjects", "stimuli"), lambda ns, nc: min(ns, nc), lambda ns, nc: min(ns, nc) - 1, True
    ),
}


def draw_bootstrap_indices(
    n_stimuli: int,
    n_subjects: int,
    *,
    n_boot: int,
    over: str = "stimuli",
    rng: np.random.Generator | int | None = None,
) -> dict[str, np.ndarray]:
    """Draw resampling indices (with replacement) for :func:`bootstrap_compare`.

    Parameters
    ----------
    n_stimuli, n_subjects : int
    n_boot : int
        Number of bootstrap samples.
    over : str
        ``"stimuli"``, ``"subjects"`` or ``"both"``.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    indices : dict of str to ndarray
        ``"stimuli"``: shape (n_boot, n_stimuli) and/or ``"subjects"``: shape
        (n_boot, n_subjects), integer indices.
    """
    scheme = lookup(BOOTSTRAP_SCHEMES, over, arg="over")
    gen = as_generator(rng)
    sizes = {"stimuli": n_stimuli, "subjects": n_subjects}
    return {k: gen.integers(0, sizes[k], size=(n_boot, sizes[k])) for k in scheme.keys}


def _check_indices(
    indices: Mapping[str, np.ndarray], scheme: BootstrapScheme, sizes: dict[str, int]
) -> dict[str, np.ndarray]:
    out = {}
    n_boot = None
    for key in scheme.keys:
        if key not in indices:
            raise ValueError(
                f"Missing key for indices: expected keys {list(scheme.keys)}, got "
                f"{sorted(indices)}. Use draw_bootstrap_indices(..., over=...) to build them."
            )
        idx = np.asarray(indices[key])
        n = sizes[key]
        if (
            idx.ndim != 2
            or idx.shape[1] != n
            or not np.issubdtype(idx.dtype, np.integer)
            or idx.min(initial=0) < 0
            or idx.max(initial=0) >= n
        ):
            raise DataShapeError(
                f"Bad resampling indices for indices['{key}']: expected integers in [0, {n}) "
                f"shaped (n_boot, {n}), got dtype {idx.dtype} shape {idx.shape}. "
                "Draw one row of indices per bootstrap sample."
            )
        if n_boot is not None and idx.shape[0] != n_boot:
            raise DataShapeError(
                f"Bad resampling indices for indices: expected the same n_boot for "
                f"{list(scheme.keys)}, got {n_boot} and {idx.shape[0]}. Draw them together."
            )
        n_boot = idx.shape[0]
        out[key] = idx
    return out


# --- weighted engine (no materialised samples) ----------------------------------------------


class _RankPlan:
    """Sort each row once; then weighted average ranks for any weights in O(n) per row.

    In the multiset where element ``p`` occurs ``w[p]`` times, the average rank of ``p`` is
    (total weight strictly below it) + (weight of its tie group + 1) / 2, which is
    ``scipy.stats.rankdata(..., method="average")`` of the expanded vector. Both terms are
    read from the cumulative sum of the weights in sorted order.

    Parameters
    ----------
    x : ndarray, shape (n_rows, n)
    """

    def __init__(self, x: np.ndarray) -> None:
        k, n = x.shape
        self.order = np.argsort(x, axis=1)  # order within ties is irrelevant
        xs = np.take_along_axis(x, self.order, axis=1)
        new = np.ones((k, n), dtype=bool)
        new[:, 1:] = xs[:, 1:] != xs[:, :-1]
        pos = np.broadcast_to(np.arange(n), (k, n))
        start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
        last = np.ones((k, n), dtype=bool)
        last[:, :-1] = new[:, 1:]
        end = np.minimum.accumulate(np.where(last, pos, n - 1)[:, ::-1], axis=1)[:, ::-1]
        # per original element: flat positions, in the cumulative sum of all rows' sorted
        # weights (with a leading 0), of its tie group's start and end + 1, and its row's start
        base = (np.arange(k) * n)[:, None]
        scatter = (self.order + base).ravel()
        self.below = np.empty(k * n, dtype=np.intp)
        self.upto = np.empty(k * n, dtype=np.intp)
        self.below[scatter] = (start + base).ravel()
        self.upto[scatter] = (end + 1 + base).ravel()
        self.below = self.below.reshape(k, n)
        self.upto = self.upto.reshape(k, n)
        self.base = base
        # rows without ties need only the inclusive sum: rank = upto-sum - (w - 1) / 2
        untied = new.all(axis=1)
        self.untied, self.tied = np.flatnonzero(untied), np.flatnonzero(~untied)
        self._untied = (self.upto[untied], self.base[untied])
        self._tied = (self.below[~untied], self.upto[~untied], self.base[~untied])

    def ranks(self, w: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """Weighted average ranks, shape (n_rows, n) or (n_rows, cols.size).

        Parameters
        ----------
        w : ndarray of int, shape (n,)
            Non-negative integer multiplicities.
        cols : ndarray of int, optional
            Only return these columns.

        Returns
        -------
        ranks : ndarray
        """
        k, n = self.order.shape
        csum = np.zeros(k * n + 1, dtype=w.dtype)
        np.cumsum(w[self.order].ravel(), out=csum[1:])  # one pass over all rows
        if cols is None:
            cols = np.arange(n)
        out = np.empty((k, cols.size))
        if self.untied.size:
            upto, base = self._untied
            out[self.untied] = csum[upto[:, cols]] - csum[base] - (w[cols] - 1.0) / 2.0
        if self.tied.size:
            below, upto, base = self._tied
            lo = csum[below[:, cols]]
            out[self.tied] = (lo - csum[base]) + (csum[upto[:, cols]] - lo + 1.0) / 2.0
        return out


def _rank_weighted(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted average ranks of each row of ``x`` (one-off version of ``_RankPlan``).

    Parameters
    ----------
    x : ndarray, shape (n_rows, n)
    w : ndarray of int, shape (n,)
        Non-negative integer multiplicities.

    Returns
    -------
    ranks : ndarray, shape (n_rows, n)
    """
    k, n = x.shape
    order = np.argsort(x, axis=1)
    flat_order = (order + (np.arange(k) * n)[:, None]).ravel()
    xs = x.ravel()[flat_order]
    ws = w[order]
    csum = np.cumsum(ws, axis=1).ravel()  # restarts in every row
    ws = ws.ravel()
    new = np.empty(k * n, dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    new[::n] = True  # tie groups never span rows
    starts = np.flatnonzero(new)
    if starts.size == k * n:  # no ties: weight below + (w + 1) / 2
        ranks_sorted = csum - (ws - 1.0) / 2.0
    else:
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:] - 1
        ends[-1] = k * n - 1
        lo = csum[starts] - ws[starts]
        group_rank = lo + (csum[ends] - lo + 1.0) / 2.0
        ranks_sorted = np.repeat(group_rank, ends - starts + 1)
    ranks = np.empty(k * n)
    ranks[flat_order] = ranks_sorted
    return ranks.reshape(k, n)


def _wcentre(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x - (x @ w / w.sum())[:, None]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero (similarity 0, as rsatoolbox)."""
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.where(norm > 0, norm, 1.0)[:, None]


def _std_corr(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _unit_rows(_wcentre(x, w) * np.sqrt(w))


def _std_cosine(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _unit_rows(x * np.sqrt(w))


def _std_rho_a(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    total = w.sum()
    return _wcentre(x, w) * np.sqrt(w * 12.0 / (total**3 - total))


def _wzscore(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    xc = _wcentre(x, w)
    return xc / np.sqrt((xc * xc) @ w / w.sum())[:, None]


def _wrms(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x) @ w / w.sum())[:, None]


def _keep(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x


@dataclass(frozen=True)
class _WeightedKernel:
    """A comparison on weighted vectors: similarity = standardise(a) @ standardise(b).T."""

    ranked: bool  # compare weighted ranks (and re-rank pooled predictions)
    pool_transform: Callable[[np.ndarray, np.ndarray], np.ndarray]  # per RDM, before pooling
    standardise: Callable[[np.ndarray, np.ndarray], np.ndarray]


_WEIGHTED_KERNELS: dict[str, _WeightedKernel] = {
    "spearman": _WeightedKernel(True, _keep, _std_corr),
    "rho_a": _WeightedKernel(True, _keep, _std_rho_a),
    "pearson": _WeightedKernel(False, _wzscore, _std_corr),
    "cosine": _WeightedKernel(False, _wrms, _std_cosine),
}


@dataclass
class _WeightedEngine:
    kernel: _WeightedKernel
    models: np.ndarray
    subjects: np.ndarray
    n_stimuli: int

    def __post_init__(self) -> None:
        self.rows, self.cols = np.triu_indices(self.n_stimuli, 1)
        self._both = np.vstack([self.models, self.subjects])
        if self.kernel.ranked:
            self._plan = _RankPlan(self._both)
        self._all_stimuli: tuple | None = None  # cache for samples that keep every stimulus

    def _pairs(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Integer and float weights, values (ranks or raw), standardised vectors; kept pairs.

        ``w`` holds integer pair multiplicities (int64: exact and faster cumulative sums).
        """
        keep = np.flatnonzero(w)
        wk_int = w[keep]
        wk = wk_int.astype(float)
        values = self._plan.ranks(w, keep) if self.kernel.ranked else self._both[:, keep]
        return wk_int, wk, values, self.kernel.standardise(values, wk)

    def sample(
        self, stim_idx: np.ndarray | None, subj_idx: np.ndarray | None
    ) -> tuple[np.ndarray, float, float]:
        n_models, n_subjects = self.models.shape[0], self.subjects.shape[0]
        if stim_idx is None:
            if self._all_stimuli is None:
                self._all_stimuli = self._pairs(np.ones(self.rows.size, dtype=np.int64))
            wk_int, wk, values, std = self._all_stimuli
        else:
            counts = np.bincount(stim_idx, minlength=self.n_stimuli)
            if np.count_nonzero(counts) < 3:
                return np.full(n_models, np.nan), np.nan, np.nan
            wk_int, wk, values, std = self._pairs(counts[self.rows] * counts[self.cols])
        v = (
            np.ones(n_subjects)
            if subj_idx is None
            else np.bincount(subj_idx, minlength=n_subjects).astype(float)
        )
        kern = self.kernel
        std_m, std_s = std[:n_models], std[n_models:]
        evals = std_m @ (v @ std_s) / v.sum()
        # noise ceiling: pooled prediction of all (upper) and of all but one subject (lower)
        present = np.flatnonzero(v)
        vp = v[present]
        parts = kern.pool_transform(values[n_models:][present], wk)
        total = vp @ parts
        preds = [total / vp.sum()]
        if present.size > 1:
            preds.extend((total - vp[:, None] * parts) / (vp.sum() - vp)[:, None])
        preds = np.vstack(preds)
        if kern.ranked:
            preds = _rank_weighted(preds, wk_int)
        sims = kern.standardise(preds, wk) @ std_s[present].T
        upper = float(sims[0].mean())
        lower = float(np.diagonal(sims[1:]).mean()) if present.size > 1 else upper
        return evals, lower, upper


# --- generic engine (materialised samples, any comparison method) ---------------------------


@dataclass
class _GenericEngine:
    comparison: Comparison
    models: np.ndarray
    subjects: np.ndarray
    n_stimuli: int

    def sample(
        self, stim_idx: np.ndarray | None, subj_idx: np.ndarray | None
    ) -> tuple[np.ndarray, float, float]:
        if stim_idx is None:
            models, subjects = self.models, self.subjects
            mask = np.ones(self.models.shape[1], dtype=bool)
        else:
            idx = np.sort(stim_idx)  # rsatoolbox subsample_pattern sorts the selection
            if np.unique(idx).size < 3:
                return np.full(self.models.shape[0], np.nan), np.nan, np.nan
            rows, cols = np.triu_indices(idx.size, 1)
            a, b = idx[rows], idx[cols]
            mask = a != b
            pairs = condensed_index(a[mask], b[mask], self.n_stimuli)
            models, subjects = self.models[:, pairs], self.subjects[:, pairs]
        groups = np.arange(self.subjects.shape[0]) if subj_idx is None else np.asarray(subj_idx)
        subjects = subjects[groups]
        evals = self.comparison.similarity(models, subjects, mask).mean(axis=1)
        lower, upper = _noise_ceiling_groups(subjects, groups, self.comparison, mask)
        return evals, lower, upper


# --- results and tests -----------------------------------------------------------------------


def _variances(
    samples: np.ndarray,
    ceiling: np.ndarray,
    scheme: BootstrapScheme,
    n_subjects: int,
    n_stimuli: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model, pairwise-difference and model-minus-ceiling variances (rsatoolbox Result)."""
    ok = np.isfinite(samples[:, 0])
    if scheme.ceiling_in_cov:
        cov = np.atleast_2d(np.cov(np.concatenate([samples[ok].T, ceiling[ok].T])))
        cov_m = cov[:-2, :-2]
        model_var = np.diag(cov_m)
        ceil_var = model_var[:, None] - 2 * cov[:-2, -2:] + np.diag(cov[-2:, -2:])[None, :]
    else:
        cov_m = np.atleast_2d(np.cov(samples[ok].T))
        model_var = np.diag(cov_m)
        ceil_var = np.stack([model_var, model_var], axis=1)
    diff_var = model_var[:, None] + model_var[None, :] - 2 * cov_m
    n = scheme.n_correct(n_subjects, n_stimuli)
    factor = n / (n - 1)
    return model_var * factor, diff_var * factor, ceil_var * factor


def _tests_t(
    samples: np.ndarray,
    ceiling: np.ndarray,
    scheme: BootstrapScheme,
    n_subjects: int,
    n_stimuli: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T-tests as rsatoolbox: bootstrap means and variances, t distribution with scheme dof."""
    model_var, diff_var, ceil_var = _variances(samples, ceiling, scheme, n_subjects, n_stimuli)
    dof = scheme.dof(n_subjects, n_stimuli)
    eps = np.finfo(float).eps
    mean = np.nanmean(samples, axis=0)
    p_zero = 1 - stats.t.cdf(mean / np.sqrt(np.maximum(model_var, eps)), dof)
    t_pair = (mean[:, None] - mean[None, :]) / np.sqrt(np.maximum(diff_var, eps))
    p_pairwise = 2 * (1 - stats.t.cdf(np.abs(t_pair), dof))
    np.fill_diagonal(p_pairwise, 1.0)
    lower_mean = np.nanmean(ceiling[:, 0])
    t_nc = (mean - lower_mean) / np.sqrt(np.maximum(ceil_var[:, 0], eps))
    p_noise = 2 * (1 - stats.t.cdf(np.abs(t_nc), dof))
    return p_zero, p_pairwise, p_noise


def _tests_bootstrap(
    samples: np.ndarray,
    ceiling: np.ndarray,
    scheme: BootstrapScheme,
    n_subjects: int,
    n_stimuli: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bootstrap tests as rsatoolbox: proportions of samples, with a +1 / n_boot floor."""
    s = samples
    n = s.shape[0]
    p_zero = ((s <= 0).sum(axis=0) + 1) / n
    less = (s[:, :, None] < s[:, None, :]).sum(axis=0)
    equal = (s[:, :, None] == s[:, None, :]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prop = less / (n - equal)
    prop = np.triu(prop, 1) + np.triu(prop, 1).T  # rsatoolbox uses the i < j proportion
    p_pairwise = np.minimum(prop, 1 - prop) * 2
    p_pairwise = (n - 1) / n * p_pairwise + 1 / n
    np.fill_diagonal(p_pairwise, 1.0)
    diffs = ceiling[:, :1] - s
    p_noise = ((diffs <= 0).sum(axis=0) + 1) / n
    return p_zero, p_pairwise, p_noise


#: Significance tests by ``test_type`` (rsatoolbox's names).
_TESTS = {"t-test": _tests_t, "bootstrap": _tests_bootstrap}


def _percentile_ci(samples: np.ndarray, level: float) -> np.ndarray:
    """Percentile CI framed by -inf and +inf, as rsatoolbox ``Result.get_ci(..., 'bootstrap')``.

    With too few samples for ``level`` a bound is infinite (rsatoolbox: NaN).
    """
    cut = (1 - level) / 2
    ok = samples[np.isfinite(samples).all(axis=1)]
    framed = np.concatenate([np.tile([[-np.inf], [np.inf]], (1, samples.shape[1])), ok])
    with np.errstate(invalid="ignore"):
        ci = np.stack([np.quantile(framed, cut, axis=0), np.quantile(framed, 1 - cut, axis=0)])
    if np.isnan(ci).any() or np.isinf(ci).any():
        logger.warning("too few bootstrap samples (%d) for a %g%% interval: infinite bounds",
                       len(ok), 100 * level)
        ci[0, np.isnan(ci[0])] = -np.inf
        ci[1, np.isnan(ci[1])] = np.inf
    return ci


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap evaluation of model RDMs against subject RDMs.

    Attributes
    ----------
    method, over, test_type : str
    model_names : list of str
    point : ndarray, shape (n_models,)
        Evaluation on the data as given (mean over subjects), as ``rsatoolbox eval_fixed``.
    noise_ceiling : ndarray, shape (2,)
        Lower and upper noise ceiling on the data as given.
    samples : ndarray, shape (n_boot, n_models)
        Evaluation per bootstrap sample; NaN where a sample has < 3 distinct stimuli.
    noise_ceiling_samples : ndarray, shape (n_boot, 2)
        Lower and upper noise ceiling per bootstrap sample.
    indices : dict of str to ndarray
        The resampling indices used (see :func:`draw_bootstrap_indices`).
    mean : ndarray, shape (n_models,)
        Mean of the valid bootstrap samples (rsatoolbox ``Result.get_means``).
    sem : ndarray, shape (n_models,)
        Bootstrap standard error with rsatoolbox's n / (n - 1) correction (``get_sem``).
    ci_level : float
    ci : ndarray, shape (2, n_models)
        Percentile interval (rsatoolbox ``get_ci(ci_level, test_type="bootstrap")``).
    p_zero : ndarray, shape (n_models,)
        One-sided p-value of each model against 0.
    p_pairwise : ndarray, shape (n_models, n_models)
        Two-sided p-values of pairwise model differences (diagonal 1).
    p_noise : ndarray, shape (n_models,)
        Two-sided p-value against the lower noise ceiling.
    """

    method: str
    over: str
    test_type: str
    model_names: list[str]
    point: np.ndarray
    noise_ceiling: np.ndarray
    samples: np.ndarray
    noise_ceiling_samples: np.ndarray
    indices: dict[str, np.ndarray]
    mean: np.ndarray
    sem: np.ndarray
    ci_level: float
    ci: np.ndarray
    p_zero: np.ndarray
    p_pairwise: np.ndarray
    p_noise: np.ndarray

    def summary(self) -> pd.DataFrame:
        """One row per model: point, bootstrap mean, sem, CI, p-values, noise ceiling.

        Returns
        -------
        table : pandas.DataFrame
        """
        return pd.DataFrame(
            {
                "model": self.model_names,
                "point": self.point,
                "mean": self.mean,
                "sem": self.sem,
                "ci_low": self.ci[0],
                "ci_high": self.ci[1],
                "p_zero": self.p_zero,
                "p_noise": self.p_noise,
                "noise_ceiling_lower": self.noise_ceiling[0],
                "noise_ceiling_upper": self.noise_ceiling[1],
            }
        )


def bootstrap_compare(
    model_rdms: np.ndarray,
    subject_rdms: np.ndarray,
    *,
    method: str = "spearman",
    n_boot: int | None = None,
    over: str = "stimuli",
    indices: Mapping[str, np.ndarray] | None = None,
    rng: np.random.Generator | int | None = None,
    ci_level: float = 0.95,
    test_type: str = "t-test",
    model_names: list[str] | None = None,
) -> BootstrapResult:
    """Evaluate model RDMs against subject RDMs with a bootstrap over stimuli and/or subjects.

    Parameters
    ----------
    model_rdms : ndarray, shape (n_models, n_pairs) or (n_pairs,)
    subject_rdms : ndarray, shape (n_subjects, n_pairs)
        Finite condensed RDMs on the same stimuli.
    method : str
        Key of ``COMPARISONS``.
    n_boot : int, optional
        Number of bootstrap samples (default 1000); taken from ``indices`` when given.
    over : str
        ``"stimuli"`` (rsatoolbox ``eval_bootstrap_pattern``), ``"subjects"``
        (``eval_bootstrap_rdm``) or ``"both"`` (``eval_bootstrap``).
    indices : dict of str to ndarray, optional
        Explicit resampling indices, ``"stimuli"`` (n_boot, n_stimuli) and/or ``"subjects"``
        (n_boot, n_subjects); drawn from ``rng`` when omitted.
    rng : numpy.random.Generator or int, optional
    ci_level : float
        Coverage of the percentile interval.
    test_type : str
        ``"t-test"`` (rsatoolbox's default: t-tests with bootstrap variances) or
        ``"bootstrap"`` (proportions of bootstrap samples).
    model_names : list of str, optional

    Returns
    -------
    result : BootstrapResult
    """
    comparison = lookup(COMPARISONS, method, arg="method")
    scheme = lookup(BOOTSTRAP_SCHEMES, over, arg="over")
    tests = lookup(_TESTS, test_type, arg="test_type")
    if not 0 < ci_level < 1:
        raise ValueError(f"Bad ci_level: expected a value in (0, 1), got {ci_level}. Use 0.95.")
    models = as_rdm_stack(model_rdms, arg="model_rdms")
    subjects = as_rdm_stack(subject_rdms, arg="subject_rdms")
    if models.shape[1] != subjects.shape[1]:
        raise DataShapeError(
            f"RDMs differ in size for model_rdms and subject_rdms: expected the same number of "
            f"pairs, got {models.shape[1]} and {subjects.shape[1]}. Use the same stimuli."
        )
    check_finite(models, arg="model_rdms")
    check_finite(subjects, arg="subject_rdms")
    n_stimuli = n_stimuli_from_pairs(models.shape[1], arg="model_rdms")
    n_subjects = subjects.shape[0]
    if n_stimuli < 3 or ("subjects" in scheme.keys and n_subjects < 2):
        raise DataShapeError(
            f"Too little data for over={over!r}: expected >= 3 stimuli and >= 2 subjects to "
            f"resample, got {n_stimuli} stimuli and {n_subjects} subjects. Add data."
        )
    names = names_or_default(model_names, models.shape[0], prefix="model", arg="model_names")
    sizes = {"stimuli": n_stimuli, "subjects": n_subjects}
    if indices is None:
        indices = draw_bootstrap_indices(
            n_stimuli, n_subjects, n_boot=1000 if n_boot is None else n_boot, over=over, rng=rng
        )
    indices = _check_indices(indices, scheme, sizes)
    n_drawn = next(iter(indices.values())).shape[0]
    if n_boot is not None and n_boot != n_drawn:
        raise ValueError(
            f"Conflicting n_boot: expected n_boot to match the {n_drawn} rows of indices, got "
            f"{n_boot}. Leave n_boot out when passing indices."
        )

    kernel = _WEIGHTED_KERNELS.get(method)
    if kernel is not None:
        engine = _WeightedEngine(kernel, models, subjects, n_stimuli)
    else:
        engine = _GenericEngine(comparison, models, subjects, n_stimuli)
    logger.debug("bootstrap over %s, %s, %d samples, %s", over, method, n_drawn,
                 type(engine).__name__)
    samples = np.empty((n_drawn, models.shape[0]))
    ceiling = np.empty((n_drawn, 2))
    stim = indices.get("stimuli")
    subj = indices.get("subjects")
    for i in range(n_drawn):
        samples[i], ceiling[i, 0], ceiling[i, 1] = engine.sample(
            None if stim is None else stim[i], None if subj is None else subj[i]
        )
    n_bad = int(np.sum(~np.isfinite(samples[:, 0])))
    if n_bad:
        logger.warning("%d of %d bootstrap samples had < 3 distinct stimuli (NaN)", n_bad,
                       n_drawn)
    ok = np.isfinite(samples[:, 0])
    if not ok.any():
        raise ValueError(
            "No valid bootstrap sample for indices: expected samples with >= 3 distinct "
            "stimuli, got none. Use more stimuli or other indices."
        )
    model_var = _variances(samples, ceiling, scheme, n_subjects, n_stimuli)[0]
    p_zero, p_pairwise, p_noise = tests(samples, ceiling, scheme, n_subjects, n_stimuli)
    # the data as given: every stimulus and subject once (= compare_rdms and noise_ceiling)
    point, lower, upper = engine.sample(None, None)
    return BootstrapResult(
        method=method,
        over=over,
        test_type=test_type,
        model_names=names,
        point=point,
        noise_ceiling=np.array([lower, upper]),
        samples=samples,
        noise_ceiling_samples=ceiling,
        indices=indices,
        mean=samples[ok].mean(axis=0),
        sem=np.sqrt(np.maximum(model_var, 0)),
        ci_level=ci_level,
        ci=_percentile_ci(samples, ci_level),
        p_zero=p_zero,
        p_pairwise=p_pairwise,
        p_noise=p_noise,
    )


# --- permutation test ------------------------------------------------------------------------


@dataclass(frozen=True)
class PermutationResult:
    """Stimulus-label permutation test of one model RDM.

    Attributes
    ----------
    observed : float
        Mean comparison of the model with the data RDM(s).
    null : ndarray, shape (n_perm,)
        The same statistic with the model's stimulus labels permuted.
    p_value : float
        One-sided ``(1 + #(null >= observed)) / (1 + n_perm)``.
    """

    observed: float
    null: np.ndarray
    p_value: float


def permutation_test(
    model_rdm: np.ndarray,
    data_rdm: np.ndarray,
    *,
    method: str = "spearman",
    n_perm: int = 1000,
    rng: np.random.Generator | int | None = None,
) -> PermutationResult:
    """Test a model RDM against data by permuting stimulus labels.

    Each permutation relabels the stimuli of the model RDM (rows and columns together), which
    is the same null distribution as relabelling the data; the statistic is the mean
    comparison over the data RDMs.

    Parameters
    ----------
    model_rdm : ndarray, shape (n_pairs,)
    data_rdm : ndarray, shape (n_pairs,) or (n_subjects, n_pairs)
    method : str
        Key of ``COMPARISONS``.
    n_perm : int
        Number of permutations.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    result : PermutationResult
    """
    lookup(COMPARISONS, method, arg="method")
    model = np.asarray(model_rdm, dtype=float)
    data = as_rdm_stack(data_rdm, arg="data_rdm")
    if model.ndim != 1 or model.size != data.shape[1]:
        raise DataShapeError(
            f"Bad shape for model_rdm: expected ({data.shape[1]},) like data_rdm, got "
            f"{model.shape}. Pass one condensed model RDM on the same stimuli."
        )
    if n_perm < 1:
        raise ValueError(f"Bad n_perm: expected >= 1, got {n_perm}. Use e.g. 1000.")
    check_finite(model, arg="model_rdm")
    check_finite(data, arg="data_rdm")
    n = n_stimuli_from_pairs(model.size, arg="model_rdm")
    gen = as_generator(rng)
    rows, cols = np.triu_indices(n, 1)
    square_index = np.zeros((n, n), dtype=np.int64)
    square_index[rows, cols] = np.arange(rows.size)
    square_index[cols, rows] = np.arange(rows.size)
    observed = float(np.mean(compare_rdms(model[None], data, method=method)))
    perms = np.argsort(gen.random((n_perm, n)), axis=1)
    null = np.empty(n_perm)
    chunk = max(1, 2_000_000 // model.size)
    for start in range(0, n_perm, chunk):
        p = perms[start : start + chunk]
        permuted = model[square_index[p[:, rows], p[:, cols]]]
        null[start : start + chunk] = compare_rdms(permuted, data, method=method).mean(axis=1)
    p_value = (1 + np.sum(null >= observed)) / (1 + n_perm)
    return PermutationResult(observed=observed, null=null, p_value=float(p_value))


# --- multiple comparisons --------------------------------------------------------------------


def _fdr_factor_bh(m: int) -> float:
    return 1.0


def _fdr_factor_by(m: int) -> float:
    return float(np.sum(1.0 / np.arange(1, m + 1)))


#: FDR procedures: Benjamini-Hochberg ("bh") and Benjamini-Yekutieli ("by").
FDR_METHODS: dict[str, Callable[[int], float]] = {"bh": _fdr_factor_bh, "by": _fdr_factor_by}


def correct_fdr(
    p_values: np.ndarray, *, alpha: float = 0.05, method: str = "bh"
) -> tuple[np.ndarray, np.ndarray]:
    """False discovery rate control across a family of tests (e.g. layers).

    Adjusted p-values equal ``scipy.stats.false_discovery_control(p, method=method)``;
    the family is every entry of ``p_values``.

    Parameters
    ----------
    p_values : ndarray, any shape
    alpha : float
        FDR level.
    method : str
        ``"bh"`` (Benjamini-Hochberg, independent or positively dependent tests) or ``"by"``
        (Benjamini-Yekutieli, any dependence).

    Returns
    -------
    rejected : ndarray of bool, same shape as ``p_values``
    p_adjusted : ndarray, same shape as ``p_values``
    """
    factor = lookup(FDR_METHODS, method, arg="method")
    p = np.asarray(p_values, dtype=float)
    if p.size == 0 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(
            "Bad p_values: expected a non-empty array of values in [0, 1], got "
            f"shape {p.shape} with range [{np.nanmin(p) if p.size else 'n/a'}, "
            f"{np.nanmax(p) if p.size else 'n/a'}]. Drop NaN p-values first."
        )
    flat = p.ravel()
    m = flat.size
    order = np.argsort(flat)
    scaled = flat[order] * m * factor(m) / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    adjusted = adjusted.reshape(p.shape)
    return adjusted <= alpha, adjusted
