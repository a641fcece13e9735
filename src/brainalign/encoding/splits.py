"""Cross-validation splits: shuffled K-fold, grouped K-fold (by stimulus or run), explicit pairs.

Every function returns plain ``(train, test)`` pairs of sorted integer index arrays, so the same
splits can be handed to brainalign, himalaya and scikit-learn alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from brainalign.errors import DataShapeError

__all__ = ["LEAVE_ONE_OUT", "kfold_indices", "group_kfold_indices", "make_splits"]

#: Value of ``cv`` that selects exact, efficient leave-one-out (no explicit splits).
LEAVE_ONE_OUT = "loo"

Split = tuple[np.ndarray, np.ndarray]


def kfold_indices(n_samples: int, n_folds: int, *, seed: int = 0) -> list[np.ndarray]:
    """Split sample indices into shuffled, near-equal test folds.

    Parameters
    ----------
    n_samples : int
    n_folds : int
    seed : int

    Returns
    -------
    folds : list of ndarray
        Test indices of each fold; together they cover ``range(n_samples)`` once.
    """
    if not 2 <= n_folds <= n_samples:
        raise DataShapeError(
            f"Cannot split {n_samples} stimuli into {n_folds} folds: expected "
            f"2 <= n_folds <= n_stimuli. Lower encoding.ridge.n_folds."
        )
    order = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(f) for f in np.array_split(order, n_folds)]


def group_kfold_indices(groups: np.ndarray, n_folds: int, *, seed: int = 0) -> list[np.ndarray]:
    """Split samples into test folds that never separate two samples of one group.

    Groups (stimulus, run, session ...) are shuffled with ``seed``, then dealt largest first to
    the fold with the fewest samples so far (scikit-learn's ``GroupKFold`` balancing, made
    reproducibly random).

    Parameters
    ----------
    groups : ndarray, shape (n_samples,)
        Group label of each sample.
    n_folds : int
    seed : int

    Returns
    -------
    folds : list of ndarray
        Sorted test indices of each fold; together they cover ``range(n_samples)`` once.
    """
    groups = np.asarray(groups)
    labels, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if not 2 <= n_folds <= labels.size:
        raise DataShapeError(
            f"Cannot split {labels.size} groups into {n_folds} folds for groups: expected "
            f"2 <= n_folds <= n_groups. Lower the number of folds or pass finer groups."
        )
    order = np.random.default_rng(seed).permutation(labels.size)
    order = order[np.argsort(-counts[order], kind="stable")]  # largest first, ties shuffled
    fold_of_group = np.empty(labels.size, dtype=int)
    sizes = np.zeros(n_folds, dtype=int)
    for g in order:
        k = int(np.argmin(sizes))
        fold_of_group[g] = k
        sizes[k] += counts[g]
    fold = fold_of_group[inverse]
    return [np.flatnonzero(fold == k) for k in range(n_folds)]


def _check_pairs(pairs: Iterable[Any], n_samples: int) -> list[Split]:
    out = []
    for k, pair in enumerate(pairs):
        try:
            train, test = pair
        except (TypeError, ValueError):
            raise DataShapeError(
                f"Split {k} is not a (train, test) pair for cv: expected two index arrays, got "
                f"{type(pair).__name__}. Pass a list of (train_indices, test_indices)."
            ) from None
        train = np.sort(np.asarray(train, dtype=np.intp).ravel())
        test = np.sort(np.asarray(test, dtype=np.intp).ravel())
        for name, idx in (("train", train), ("test", test)):
            if idx.size == 0:
                raise DataShapeError(
                    f"Split {k} has an empty {name} set for cv: expected at least one index, "
                    f"got none. Drop or fix that split."
                )
            if idx.min() < 0 or idx.max() >= n_samples:
                raise DataShapeError(
                    f"Split {k} has {name} indices outside [0, {n_samples}) for cv: expected "
                    f"indices of the {n_samples} samples, got min {idx.min()}, max {idx.max()}. "
                    "Build the splits on the same samples."
                )
        if np.intersect1d(train, test).size:
            raise DataShapeError(
                f"Split {k} shares samples between train and test for cv: expected disjoint "
                f"sets, got {np.intersect1d(train, test).size} common indices. Fix the split."
            )
        out.append((train, test))
    if not out:
        raise DataShapeError(
            "No split for cv: expected at least one (train, test) pair, got an empty sequence. "
            "Pass splits or an int."
        )
    return out


def make_splits(
    cv: int | Sequence[Split] | Any,
    n_samples: int,
    *,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> list[Split]:
    """Normalise a cross-validation specification into explicit ``(train, test)`` pairs.

    Parameters
    ----------
    cv : int, sequence of (train, test), or splitter
        An int K gives K shuffled folds (:func:`kfold_indices`, or :func:`group_kfold_indices`
        when ``groups`` is given); a sequence gives explicit index pairs; an object with a
        ``split`` method (a scikit-learn splitter) is called with ``groups``.
    n_samples : int
    groups : ndarray, shape (n_samples,), optional
        Group label of each sample (stimulus, run ...). Test folds never split a group; explicit
        splits are checked against it.
    seed : int
        Seed of the shuffle when ``cv`` is an int.

    Returns
    -------
    splits : list of (ndarray, ndarray)
        Sorted train and test indices of each split.
    """
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n_samples,):
            raise DataShapeError(
                f"Wrong shape for groups: expected ({n_samples},), one label per sample, got "
                f"{groups.shape}. Pass one group label per row of X."
            )
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        n_folds = int(cv)
        if groups is None:
            folds = kfold_indices(n_samples, n_folds, seed=seed)
        else:
            folds = group_kfold_indices(groups, n_folds, seed=seed)
        everything = np.arange(n_samples)
        return [(np.setdiff1d(everything, test), test) for test in folds]
    if isinstance(cv, (str, bytes)) or not (hasattr(cv, "split") or isinstance(cv, Iterable)):
        raise DataShapeError(
            f"Unknown cv: expected an int, a sequence of (train, test) index pairs, a splitter "
            f"or {LEAVE_ONE_OUT!r}, got {cv!r}. Pass one of those."
        )
    if hasattr(cv, "split"):  # a scikit-learn splitter
        pairs = _check_pairs(cv.split(np.zeros((n_samples, 1)), groups=groups), n_samples)
    else:
        pairs = _check_pairs(cv, n_samples)
    if groups is not None:
        for k, (train, test) in enumerate(pairs):
            common = np.intersect1d(groups[train], groups[test])
            if common.size:
                raise DataShapeError(
                    f"Split {k} puts group {common[0].item()!r} in both train and test for cv: "
                    "expected every group on one side only. Build the splits from groups."
                )
    return pairs
