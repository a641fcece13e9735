"""DAG-time checks of the fMRI inputs named in the config: ROI atlases, labels, mask images.

They run in the Snakefile before any job, on headers and small 3D images only, so a wrong atlas
stops the workflow with the file, the subject and the fix instead of failing in a job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError, ConfigError

__all__ = ["check_roi_inputs", "read_roi_labels"]

logger = logging.getLogger(__name__)


def read_roi_labels(path: Path, *, key: str = "fmri.rois.labels") -> pd.DataFrame:
    """Read and check an ROI labels table (columns ``index``, ``name``).

    Parameters
    ----------
    path : Path
        The TSV.
    key : str
        Config key that names it, for messages.

    Returns
    -------
    labels : pandas.DataFrame
        ``index`` as int, ``name`` as str.

    Raises
    ------
    BIDSInputError
        Missing or unreadable file, missing columns, non-integer or repeated indices, repeated
        names.
    """
    from brainalign.io import read_tsv

    if not path.is_file():
        raise BIDSInputError(
            f"ROI labels file {path} (config key '{key}') does not exist: expected a TSV with "
            "columns index, name. Fix the path."
        )
    try:
        table = read_tsv(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise BIDSInputError(
            f"ROI labels file {path} (config key '{key}') cannot be read as a TSV ({exc}): "
            "expected tab-separated columns index, name. Fix the file."
        ) from exc
    if not {"index", "name"}.issubset(table.columns):
        raise BIDSInputError(
            f"ROI labels file {path}: expected columns index, name; got {list(table.columns)}. "
            "Rename the columns (tab-separated)."
        )
    index = pd.to_numeric(table["index"], errors="coerce")
    if index.isna().any() or (index != index.round()).any():
        bad = table["index"][index.isna() | (index != index.round())].iloc[0]
        raise BIDSInputError(
            f"ROI labels file {path}: column index holds '{bad}': expected integer label values "
            "of the atlas image. Fix the row."
        )
    names = table["name"].astype(str)
    for column, values in (("index", index), ("name", names)):
        dup = values[values.duplicated()]
        if len(dup):
            raise BIDSInputError(
                f"ROI labels file {path}: {column} '{dup.iloc[0]}' appears twice: expected one "
                "row per label. Remove the duplicate."
            )
    return pd.DataFrame({"index": index.astype(int), "name": names})


def _world_box(shape: Sequence[int], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in shape[:3]],
                                   indexing="ij")).reshape(3, -1).T
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    return world.min(0), world.max(0)


def _check_atlas(dseg: Path, labels: pd.DataFrame, names: Sequence[str], bold: str, *,
                 subject: str, labels_path: Path) -> None:
    import nibabel as nib

    try:
        img = nib.load(dseg)
        values = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - any reader error means an unusable file
        raise BIDSInputError(
            f"sub-{subject}: ROI atlas {dseg} (config key 'fmri.rois.dseg') cannot be read "
            f"({type(exc).__name__}: {exc}): expected a NIfTI label image. Replace the file."
        ) from exc
    if values.ndim != 3:
        raise BIDSInputError(
            f"sub-{subject}: ROI atlas {dseg}: expected a 3D label image, got shape "
            f"{values.shape}. Give one 3D image of integer labels per subject."
        )
    if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
        raise BIDSInputError(
            f"sub-{subject}: ROI atlas {dseg} holds non-integer values: expected integer labels "
            "(a dseg image, not a probability map). Threshold or relabel it."
        )
    present = set(np.unique(values).astype(int).tolist()) - {0}
    undefined = sorted(present - set(labels["index"]))
    if undefined:
        raise BIDSInputError(
            f"sub-{subject}: ROI atlas {dseg} holds label value(s) {undefined[:10]} that the "
            f"labels table {labels_path} does not define: expected every non-zero value in the "
            "table's index column. Add rows for them (or set them to 0 in the atlas)."
        )
    lut = dict(zip(labels["name"], labels["index"], strict=True))
    selected = list(names) or [n for n, i in lut.items() if i != 0]
    empty = [n for n in selected if lut[n] not in present]
    if empty:
        raise BIDSInputError(
            f"sub-{subject}: ROI(s) {empty} have no voxel in the atlas {dseg}: expected at least "
            f"one voxel with their label value(s) {[lut[n] for n in empty]}. Fix the atlas, or "
            "drop them from fmri.rois.names."
        )
    bold_img = nib.load(bold)
    if img.shape[:3] == bold_img.shape[:3] and np.allclose(img.affine, bold_img.affine,
                                                           atol=1e-3):
        return
    lo, hi = _world_box(bold_img.shape, bold_img.affine)
    outside = []
    for name in selected:
        ijk = np.argwhere(values == lut[name])
        world = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
        inside = np.all((world >= lo) & (world <= hi), axis=1)
        if not inside.any():
            outside.append(name)
    if outside:
        raise BIDSInputError(
            f"sub-{subject}: ROI(s) {outside} of the atlas {dseg} lie outside the BOLD's field "
            f"of view ({bold}): expected the atlas on the BOLD grid (shape "
            f"{bold_img.shape[:3]}), got shape {img.shape[:3]} with another affine, in "
            "another space. Resample the atlas to the BOLD grid in the BOLD's space (e.g. "
            "nilearn.image.resample_to_img(atlas, bold, interpolation='nearest'))."
        )
    logger.warning("sub-%s: ROI atlas %s is on another grid than the BOLD (%s vs %s); it is "
                   "resampled to the BOLD grid (nearest neighbour)", subject, dseg,
                   img.shape[:3], bold_img.shape[:3])


def check_roi_inputs(index, fmri: Mapping) -> None:
    """Check every subject's ROI atlas, labels table and mask image against the BOLD data.

    Parameters
    ----------
    index : brainalign.ingest.bids.DatasetIndex
        The selected runs.
    fmri : Mapping
        The validated ``fmri`` config section (``rois`` and ``mask``).

    Raises
    ------
    BIDSInputError
        A missing or unreadable atlas, labels table or mask; atlas values missing from the
        table; a selected ROI without voxels; an atlas outside the BOLD's field of view.
    ConfigError
        ``fmri.rois.names`` lists a name the labels table does not define.
    """
    import nibabel as nib

    from brainalign.workflow import subject_path

    rois, mask = fmri["rois"], fmri["mask"]
    for sub in index.subjects:
        labels_path = Path(subject_path(rois["labels"], index.bids_dir, sub))
        labels = read_roi_labels(labels_path)
        unknown = [n for n in rois["names"] if n not in set(labels["name"])]
        if unknown:
            raise ConfigError(
                f"Config key 'fmri.rois.names' lists {unknown}, which {labels_path} does not "
                f"define: expected names from {labels['name'].tolist()}."
            )
        dseg = Path(subject_path(rois["dseg"], index.bids_dir, sub))
        if not dseg.is_file():
            raise BIDSInputError(
                f"sub-{sub}: ROI atlas {dseg} (config key 'fmri.rois.dseg') does not exist. "
                "Add the atlas or fix the path template."
            )
        bold = index.runs_of(sub)[0].bold
        _check_atlas(dseg, labels, rois["names"], bold, subject=sub, labels_path=labels_path)
        if mask["method"] == "file":
            path = Path(subject_path(mask["path"], index.bids_dir, sub))
            if not path.is_file():
                raise BIDSInputError(
                    f"sub-{sub}: mask image {path} (config key 'fmri.mask.path') does not "
                    "exist. Add it, fix the path template, or choose fmri.mask.method data or "
                    "rois."
                )
            try:
                shape = nib.load(path).shape
            except Exception as exc:  # noqa: BLE001 - any reader error means an unusable file
                raise BIDSInputError(
                    f"sub-{sub}: mask image {path} (config key 'fmri.mask.path') cannot be read "
                    f"({type(exc).__name__}: {exc}): expected a 3D NIfTI. Replace the file."
                ) from exc
            if len(shape) != 3:
                raise BIDSInputError(
                    f"sub-{sub}: mask image {path}: expected a 3D image, got shape {shape}. "
                    "Give one 3D mask per subject."
                )
