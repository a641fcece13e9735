"""Private helpers shared by the RSA modules: RDM stacks, pair indexing, argument checks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np

from brainalign.errors import DataShapeError

__all__: list[str] = []


def n_stimuli_from_pairs(n_pairs: int, *, arg: str) -> int:
    """Number of stimuli ``n`` with ``n * (n - 1) / 2 == n_pairs``.

    Parameters
    ----------
    n_pairs : int
        Length of a condensed RDM.
    arg : str
        Argument name used in the error message.

    Returns
    -------
    n_stimuli : int
    """
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs or n < 2:
        raise DataShapeError(
            f"Condensed RDM length is not n*(n-1)/2 for {arg}: expected 1, 3, 6, 10, ... pairs, "
            f"got {n_pairs}. Pass the upper triangle in scipy pdist order (squareform)."
        )
    return n


def as_rdm_stack(x: np.ndarray, *, arg: str) -> np.ndarray:
    """Return ``x`` as a float stack of condensed RDMs.

    Parameters
    ----------
    x : array_like, shape (n_pairs,) or (n_rdms, n_pairs)
    arg : str
        Argument name used in the error message.

    Returns
    -------
    stack : ndarray, shape (n_rdms, n_pairs)
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] < 1:
        raise DataShapeError(
            f"Bad shape for {arg}: expected (n_pairs,) or (n_rdms, n_pairs), got {x.shape}. "
            "Pass condensed RDMs (scipy.spatial.distance.squareform of the square matrix)."
        )
    return x


def condensed_index(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of pair ``(i, j)``, ``i < j``, in a condensed RDM of ``n`` stimuli.

    Parameters
    ----------
    i, j : ndarray of int, same shape
        Row and column stimulus indices with ``i < j``.
    n : int
        Number of stimuli.

    Returns
    -------
    k : ndarray of int, same shape as ``i``
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    return n * i - i * (i + 1) // 2 + j - i - 1


def lookup(registry: dict, key: str, *, arg: str):
    """Fetch ``registry[key]`` or raise a ValueError that lists the options.

    Parameters
    ----------
    registry : dict
    key : str
    arg : str
        Argument name used in the error message.

    Returns
    -------
    value
        ``registry[key]``.
    """
    try:
        return registry[key]
    except (KeyError, TypeError):
        options = sorted(registry)
        close = difflib.get_close_matches(str(key), options, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(
            f"Unknown value for {arg}: expected one of {options}, got {key!r}.{hint}"
        ) from None


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Return a numpy Generator from a Generator, a seed or None.

    Parameters
    ----------
    rng : numpy.random.Generator or int or None

    Returns
    -------
    generator : numpy.random.Generator
    """
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def check_finite(x: np.ndarray, *, arg: str) -> None:
    """Raise a ValueError if ``x`` holds NaN or infinite values.

    Parameters
    ----------
    x : ndarray
    arg : str
        Argument name used in the error message.
    """
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"Non-finite dissimilarities in {arg}: expected finite values, got "
            f"{int(np.sum(~np.isfinite(x)))} NaN/inf. Drop or impute those pairs first."
        )


def names_or_default(names: Iterable[str] | None, n: int, *, prefix: str, arg: str) -> list[str]:
    """Validate optional labels, or make ``prefix0, prefix1, ...``.

    Parameters
    ----------
    names : iterable of str or None
    n : int
        Expected number of labels.
    prefix : str
    arg : str
        Argument name used in the error message.

    Returns
    -------
    names : list of str
    """
    if names is None:
        return [f"{prefix}{i}" for i in range(n)]
    names = [str(x) for x in names]
    if len(names) != n:
        raise DataShapeError(
            f"Wrong number of labels for {arg}: expected {n}, got {len(names)}. "
            "Give one name per RDM."
        )
    return names
