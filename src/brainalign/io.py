"""I/O helpers shared by every step: BIDS-style TSV and JSON, and outputs written atomically.

Every step writes through :func:`atomic_output` (a temporary name renamed at the end), so an
interrupted step never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import DataShapeError

__all__ = [
    "ENTITY_COLUMNS",
    "read_tsv",
    "write_tsv",
    "write_json",
    "atomic_output",
    "save_npz",
    "save_tsv",
    "save_json",
    "save_nifti",
    "read_features",
    "align_rows",
]

#: Columns that hold BIDS entity labels: always read as strings ("01" must not become 1).
ENTITY_COLUMNS = ("subject", "session", "task", "run", "participant_id")


def read_tsv(path: str | Path) -> pd.DataFrame:
    """Read a BIDS TSV: only ``n/a`` means missing, entity columns stay strings.

    An ROI called "null" stays a string, and subject "01" does not become 1.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    table : pandas.DataFrame
    """
    return pd.read_csv(
        path,
        sep="\t",
        keep_default_na=False,
        na_values=["n/a"],
        dtype={c: str for c in ENTITY_COLUMNS},
    )


def write_tsv(table: pd.DataFrame, path: str | Path) -> None:
    """Write a BIDS TSV (tab-separated, ``n/a`` for missing values, no index).

    Parameters
    ----------
    table : pandas.DataFrame
    path : str or Path
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")


def write_json(path: str | Path, obj: dict) -> None:
    """Write indented JSON with a trailing newline.

    Parameters
    ----------
    path : str or Path
    obj : dict
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    Parameters
    ----------
    path : str or Path
        Final output path (its suffixes are kept on the temporary name).

    Yields
    ------
    tmp : Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write arrays to a compressed ``.npz``, atomically.

    Parameters
    ----------
    path : str or Path
    **arrays : ndarray
        Named arrays (no object arrays: files are read with ``allow_pickle=False``).
    """
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def save_tsv(table: pd.DataFrame, path: str | Path) -> None:
    """Write a BIDS TSV (:func:`write_tsv`), atomically.

    Parameters
    ----------
    table : pandas.DataFrame
    path : str or Path
    """
    with atomic_output(path) as tmp:
        write_tsv(table, tmp)


def save_json(obj: dict, path: str | Path) -> None:
    """Write indented JSON (:func:`write_json`), atomically.

    Parameters
    ----------
    obj : dict
    path : str or Path
    """
    with atomic_output(path) as tmp:
        write_json(tmp, obj)


def save_nifti(img, path: str | Path) -> None:
    """Save a nibabel image, atomically (compressed when ``path`` ends in ``.gz``).

    The file stores the data's own dtype: an image built on another image's header (nilearn's
    ``unmask`` copies the mask's) would otherwise be written in that header's dtype, e.g. float
    betas rescaled into uint8's 256 levels.

    Parameters
    ----------
    img : nibabel image
    path : str or Path
    """
    import nibabel as nib

    dtype = np.asanyarray(img.dataobj).dtype
    if img.get_data_dtype() != dtype:
        img.set_data_dtype(dtype)
    with atomic_output(path) as tmp:
        # nibabel picks compression from the suffix, which the temporary name keeps
        nib.save(img, tmp)


def read_features(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one layer's stored features.

    Parameters
    ----------
    path : str or Path
        ``features/model-*/model-*_layer-*_features.npz``.

    Returns
    -------
    features : ndarray, shape (n_stimuli, n_features)
    stimuli : ndarray of str, shape (n_stimuli,)
        Stimulus file of each row.
    """
    with np.load(path, allow_pickle=False) as z:
        return z["features"], z["stimuli"]


def align_rows(rows: np.ndarray, row_stimuli: np.ndarray, stimuli: np.ndarray, *,
               what: str) -> np.ndarray:
    """Reorder per-stimulus rows to the order of ``stimuli``.

    Parameters
    ----------
    rows : ndarray, shape (n_rows, ...)
        One row per stimulus of ``row_stimuli``.
    row_stimuli : ndarray of str, shape (n_rows,)
    stimuli : ndarray of str, shape (n_stimuli,)
        The order wanted (a subset of ``row_stimuli``).
    what : str
        The file the rows come from, for the error message.

    Returns
    -------
    aligned : ndarray, shape (n_stimuli, ...)

    Raises
    ------
    DataShapeError
        A stimulus of ``stimuli`` has no row.
    """
    pos = {s: i for i, s in enumerate(row_stimuli)}
    missing = [s for s in stimuli if s not in pos]
    if missing:
        raise DataShapeError(
            f"{what}: features lack {len(missing)} stimuli of the responses (e.g. "
            f"'{missing[0]}'). Re-run feature extraction."
        )
    return rows[[pos[s] for s in stimuli]]
