"""Bring-your-own brain data: published RDMs (or response matrices) plus a stimulus table.

Not every study starts from raw BIDS. This module reads brain RDMs from the formats they are
usually shared in (NumPy arrays, MATLAB v5 struct arrays, MATLAB v7.3/HDF5 arrays) into one
shape, ``(n_subjects, n_stimuli, n_stimuli)``, checked against the stimulus table.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError, DataShapeError
from brainalign.ingest.checks import check_image_readable, read_text_stimulus
from brainalign.io import read_tsv

__all__ = ["read_stimulus_table", "load_rdm_set", "square_to_condensed"]

logger = logging.getLogger(__name__)


def read_stimulus_table(path: str | Path, *, stimuli_dir: str | Path,
                        column: str = "stim_file") -> pd.DataFrame:
    """Read a stimulus table and check that every stimulus file exists and is a readable image.

    Parameters
    ----------
    path : path-like
        TSV with one row per stimulus, in the row order of the brain RDMs.
    stimuli_dir : path-like
        Folder the file names are relative to.
    column : str
        Column holding the file names.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``stim_id`` (row number), ``stim_file``, ``path`` and the table's others.

    Raises
    ------
    BIDSInputError
        Missing table, column or stimulus file, a stimulus file PIL cannot read, or duplicated
        file names.
    """
    path, stimuli_dir = Path(path), Path(stimuli_dir)
    if not path.is_file():
        raise BIDSInputError(
            f"Stimulus table {path} (config key 'external.stimuli') does not exist. Fix the path.")
    table = read_tsv(path)
    if column not in table.columns:
        raise BIDSInputError(
            f"Stimulus table {path}: no column '{column}' (config key 'external.stim_column'): "
            f"expected one of {list(table.columns)}.")
    files = table[column].astype(str)
    if files.duplicated().any():
        raise BIDSInputError(
            f"Stimulus table {path}: '{files[files.duplicated()].iloc[0]}' appears twice: "
            "expected one row per stimulus.")
    for row, name in enumerate(files):
        if not (stimuli_dir / name).is_file():
            raise BIDSInputError(
                f"Stimulus table {path} names '{name}', which is not in {stimuli_dir}/. Add the "
                "file or fix 'external.stimuli_dir'.")
        where = f"row {row + 1} of stimulus table {path} ('external.stimuli')"
        if Path(name).suffix.lower() == ".txt":  # a text stimulus (sentence or word)
            read_text_stimulus(stimuli_dir / name, where=where)
        else:
            check_image_readable(stimuli_dir / name, where=where)
    kinds = {Path(f).suffix.lower() == ".txt" for f in files}
    if len(kinds) > 1:
        raise BIDSInputError(
            f"Stimulus table {path} mixes .txt text stimuli with images: expected one kind "
            "per study (a model reads either images or texts). Split it into two studies.")
    out = table.drop(columns=[column]).copy()
    out.insert(0, "path", [str((stimuli_dir / f).resolve()) for f in files])
    out.insert(0, "stim_file", files.to_numpy())
    out.insert(0, "stim_id", range(len(out)))
    return out


def _load_mat(path: Path, variable: str):
    import scipy.io as sio

    try:
        data = sio.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError:  # MATLAB v7.3 = HDF5; h5py shows axes in reverse order
        import h5py

        with h5py.File(path, "r") as f:
            if variable not in f:
                raise BIDSInputError(
                    f"{path}: no variable '{variable}': expected one of {list(f.keys())}."
                ) from None
            return np.transpose(np.asarray(f[variable]))
    if variable not in data:
        names = [k for k in data if not k.startswith("__")]
        raise BIDSInputError(f"{path}: no variable '{variable}': expected one of {names}.")
    return data[variable]


def load_rdm_set(
    path: str | Path,
    *,
    variable: str | None = None,
    field: str = "RDM",
    label_field: str = "name",
    select: str | None = None,
    subject_pattern: str | None = None,
    n_stimuli: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read a set of brain RDMs (one per subject).

    Parameters
    ----------
    path : path-like
        ``.npy`` (``(n, n)`` or ``(n_subjects, n, n)``), or ``.mat`` (v5 or v7.3).
    variable : str, optional
        MATLAB variable: a numeric array (subjects first, as MATLAB shows it) or a struct array
        whose ``field`` holds each RDM.
    field, label_field : str
        Struct fields with the matrix and with the element's label.
    select : str, optional
        Regular expression: keep only struct elements whose label matches.
    subject_pattern : str, optional
        Regular expression whose first group extracts the subject from the label; elements of
        the same subject (e.g. sessions) are averaged. Default: each element is a subject.
    n_stimuli : int, optional
        Expected number of stimuli (rows of the stimulus table).

    Returns
    -------
    rdms : ndarray, shape (n_subjects, n_stimuli, n_stimuli)
    subjects : list of str
    """
    path = Path(path)
    if not path.is_file():
        raise BIDSInputError(f"RDM file {path} does not exist. Fix the path in 'external.rdms'.")
    if path.suffix == ".npy":
        data = np.load(path)
    elif path.suffix == ".mat":
        if variable is None:
            raise BIDSInputError(f"{path}: a .mat file needs 'variable' in external.rdms.")
        data = _load_mat(path, variable)
    else:
        raise BIDSInputError(f"RDM file {path}: expected .npy or .mat, got '{path.suffix}'.")

    if isinstance(data, np.ndarray) and data.dtype == object or not isinstance(data, np.ndarray):
        elements = list(np.atleast_1d(data).ravel(order="F"))  # MATLAB (column-major) order
        labels = [str(getattr(e, label_field, i)) for i, e in enumerate(elements)]
        mats = [np.asarray(getattr(e, field), dtype=float) for e in elements]
    else:
        arr = np.asarray(data, dtype=float)
        if arr.ndim == 2:
            arr = arr[None]
        mats = list(arr)
        labels = [f"{i + 1:02d}" for i in range(len(mats))]
    if select:
        keep = [i for i, lab in enumerate(labels) if re.search(select, lab)]
        if not keep:
            raise BIDSInputError(f"{path}: no RDM label matches select '{select}'; labels are "
                                 f"{labels[:8]}.")
        mats, labels = [mats[i] for i in keep], [labels[i] for i in keep]
    subjects = labels
    if subject_pattern:
        subjects = []
        for lab in labels:
            m = re.search(subject_pattern, lab)
            if not m:
                raise BIDSInputError(f"{path}: label '{lab}' does not match subject_pattern "
                                     f"'{subject_pattern}'.")
            subjects.append(m.group(1))
    order = list(dict.fromkeys(subjects))
    rdms = np.stack([np.mean([m for m, s in zip(mats, subjects, strict=True) if s == sub], axis=0)
                     for sub in order])
    if rdms.ndim != 3 or rdms.shape[1] != rdms.shape[2]:
        raise DataShapeError(f"{path}: expected square RDMs, got shape {rdms.shape[1:]}.")
    if n_stimuli is not None and rdms.shape[1] != n_stimuli:
        raise DataShapeError(
            f"{path}: RDMs are {rdms.shape[1]} x {rdms.shape[2]} but the stimulus table has "
            f"{n_stimuli} rows: expected one row per RDM row, in the same order.")
    asym = np.abs(rdms - rdms.transpose(0, 2, 1)).max()
    if asym > 1e-6 * max(np.abs(rdms).max(), 1e-12):
        raise DataShapeError(f"{path}: RDMs are not symmetric (max |d_ij - d_ji| = {asym:.3g}).")
    logger.info("read %d RDMs (%s) of %d stimuli from %s", len(order), ", ".join(order),
                rdms.shape[1], path)
    return rdms, order


def square_to_condensed(rdms: np.ndarray) -> np.ndarray:
    """Upper triangles (``pdist`` order) of square RDMs.

    Parameters
    ----------
    rdms : ndarray, shape (n_rdms, n, n) or (n, n)

    Returns
    -------
    condensed : ndarray, shape (n_rdms, n * (n - 1) / 2) or (n * (n - 1) / 2,)
    """
    rdms = np.asarray(rdms)
    iu = np.triu_indices(rdms.shape[-1], 1)
    return rdms[..., iu[0], iu[1]]


