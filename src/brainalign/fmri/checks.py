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

__all__ = ["check_atlas", "check_roi_inputs", "read_roi_labels"]

logger = logging.getLogger(__name__)


def read_roi_labels(path: Path, *, key: str = "fmri.rois.labels") -> pd.DataFrame:
    """Read and check an ROI labels table (columns ``index``, ``name``).

    Accepted as they are: a TSV with columns ``index`` and ``name`` (more columns, such as
    fMRIPrep's ``color`` in ``desc-aseg_dseg.tsv`` / ``desc-aparcaseg_dseg.tsv``, are ignored;
    quoted names are unquoted), and FreeSurfer's ``FreeSurferColorLUT.txt`` format (``#``
    comments; ``index name R G B A`` separated by white space).

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
        lut = _read_freesurfer_lut(path)
        if lut is not None:
            return lut
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
    names = table["name"].astype(str).str.strip().str.strip('"')
    for column, values in (("index", index), ("name", names)):
        dup = values[values.duplicated()]
        if len(dup):
            raise BIDSInputError(
                f"ROI labels file {path}: {column} '{dup.iloc[0]}' appears twice: expected one "
                "row per label. Remove the duplicate."
            )
    return pd.DataFrame({"index": index.astype(int), "name": names})


def _read_freesurfer_lut(path: Path) -> pd.DataFrame | None:
    """A FreeSurferColorLUT.txt-style table (``index name [R G B A]``), or None if it is not one."""
    import re

    rows = []
    pattern = re.compile(r"^(\d+)\s+(\S+)(\s+-?\d+){0,4}$")
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = pattern.match(line)
        if match is None:
            return None
        rows.append((int(match.group(1)), match.group(2)))
    if not rows:
        return None
    table = pd.DataFrame(rows, columns=["index", "name"])
    for column in ("index", "name"):
        dup = table[column][table[column].duplicated()]
        if len(dup):
            raise BIDSInputError(
                f"ROI labels file {path} (FreeSurfer colour table): {column} '{dup.iloc[0]}' "
                "appears twice: expected one row per label. Remove the duplicate."
            )
    return table


def _space(path: str | Path) -> str | None:
    """The BIDS ``space-`` entity of a file name, or None."""
    import re

    match = re.search(r"(?:^|_)space-([A-Za-z0-9]+)", Path(path).name)
    return match.group(1) if match else None


def _world_box(shape: Sequence[int], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in shape[:3]],
                                   indexing="ij")).reshape(3, -1).T
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    return world.min(0), world.max(0)


def check_atlas(dseg: Path, labels: pd.DataFrame, names: Sequence, bold: str, *,
                subject: str, labels_path: Path, cache: dict | None = None) -> None:
    """Check one subject's ROI atlas against its labels table, the selected ROIs and its BOLD.

    Parameters
    ----------
    dseg : Path
        The atlas (a label image, on the BOLD grid or in the BOLD's space on another grid).
    labels : pandas.DataFrame
        From :func:`read_roi_labels`.
    names : sequence of str or one-key mapping
        ``fmri.rois.names``.
    bold : str
        A BOLD run of the subject (only its header is read).
    subject : str
        For messages.
    labels_path : Path
        For messages.
    cache : dict, optional
        Label voxel counts of atlases already resampled, by (atlas, BOLD grid).

    Raises
    ------
    BIDSInputError, ConfigError
        See :func:`check_roi_inputs`.
    """
    import nibabel as nib

    from brainalign.fmri.masks import atlas_on_grid, roi_definitions

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
    defs = roi_definitions(names, [n for n, i in lut.items() if i != 0] if not names
                           else list(lut), labels_path=str(labels_path), error=ConfigError)
    if not names:  # every label: only those with voxels
        defs = {n: p for n, p in defs.items() if lut[n] in present}
    empty = [n for n, parts in defs.items() if not any(lut[p] in present for p in parts)]
    if empty:
        raise BIDSInputError(
            f"sub-{subject}: ROI(s) {empty} have no voxel in the atlas {dseg}: expected at least "
            f"one voxel with their label value(s) "
            f"{[[lut[p] for p in defs[n]] for n in empty]}. Fix the atlas, or drop them from "
            "fmri.rois.names."
        )
    bold_img = nib.load(bold)
    atlas_space, bold_space = _space(dseg), _space(bold)
    if atlas_space and bold_space and atlas_space != bold_space:
        raise BIDSInputError(
            f"sub-{subject}: ROI atlas {dseg} is in space '{atlas_space}' but the BOLD {bold} is "
            f"in space '{bold_space}': expected both in the same space. Use an atlas in "
            f"'{bold_space}' (or set fmri.fmriprep.space to '{atlas_space}')."
        )
    if img.shape[:3] == bold_img.shape[:3] and np.allclose(img.affine, bold_img.affine,
                                                           atol=1e-3):
        return
    key = (str(dseg), bold_img.shape[:3], bold_img.affine.round(4).tobytes())
    cache = {} if cache is None else cache
    if key not in cache:
        on_grid = np.rint(np.asanyarray(atlas_on_grid(img, bold_img).dataobj)).astype(int)
        cache[key] = {int(v): int(c) for v, c in zip(*np.unique(on_grid, return_counts=True),
                                                      strict=True)}
    counts = cache[key]
    lo, hi = _world_box(bold_img.shape, bold_img.affine)
    outside, too_small, partly = [], [], []
    for name, parts in defs.items():
        idx = [lut[p] for p in parts]
        ijk = np.argwhere(np.isin(values, idx))
        world = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
        inside = np.all((world >= lo) & (world <= hi), axis=1)
        n_grid = sum(counts.get(i, 0) for i in idx)
        if not inside.any():
            outside.append(name)
        elif n_grid == 0:
            too_small.append(f"{name} ({len(ijk)} atlas voxels)")
        elif not inside.all():
            partly.append(f"{name} ({int((~inside).sum())} of {len(ijk)} atlas voxels)")
    if outside:
        raise BIDSInputError(
            f"sub-{subject}: ROI(s) {outside} of the atlas {dseg} lie outside the BOLD's field "
            f"of view ({bold}): expected the atlas to overlap the BOLD (shape "
            f"{bold_img.shape[:3]}), got shape {img.shape[:3]} with another affine, in "
            "another space or another subject's anatomy. Resample the atlas to the BOLD grid "
            "in the BOLD's space (e.g. nilearn.image.resample_to_img(atlas, bold, "
            "interpolation='nearest')), or give an atlas in the BOLD's space (a template-space "
            "atlas for BOLD in that template, e.g. fMRIPrep's --output-spaces)."
        )
    if too_small:
        raise BIDSInputError(
            f"sub-{subject}: ROI(s) {too_small} of the atlas {dseg} keep no voxel once the "
            f"atlas is resampled (nearest neighbour) to the BOLD grid of {bold} (voxel size "
            f"{np.round(nib.affines.voxel_sizes(bold_img.affine), 2).tolist()} mm): expected "
            "ROIs larger than a BOLD voxel. Merge them with neighbours (a mapping in "
            "fmri.rois.names) or drop them."
        )
    if partly:
        logger.warning("sub-%s: ROI(s) %s of the atlas %s lie partly outside the BOLD's field "
                       "of view; only the voxels inside are analysed", subject, partly, dseg)
    if _space(dseg) and not bold_space:
        logger.warning("sub-%s: ROI atlas %s is in template space '%s' but the BOLD %s names "
                       "no space (native BOLD?): check that the BOLD is in that space",
                       subject, dseg, atlas_space, bold)
    logger.info("sub-%s: ROI atlas %s is on another grid than the BOLD (%s vs %s); it is "
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
        table; a selected ROI without voxels; an ROI outside the BOLD's field of view, or left
        without voxels once the atlas is resampled to the BOLD grid; atlas and BOLD file names
        in different ``space-`` entities.
    ConfigError
        ``fmri.rois.names`` lists a label the labels table does not define (with close
        matches), an ROI twice, or a label in two ROIs.

    Notes
    -----
    An atlas on another grid than the BOLD (a template-space atlas, one path for every
    subject) is resampled here with nearest neighbours, once per distinct BOLD grid, exactly as
    the jobs do (:func:`brainalign.fmri.masks.atlas_on_grid`).
    """
    import nibabel as nib

    from brainalign.fmri.masks import close_label_names
    from brainalign.workflow import subject_path

    rois, mask = fmri["rois"], fmri["mask"]
    cache: dict = {}  # one resampling per (atlas, BOLD grid): a template atlas is shared
    for sub in index.subjects:
        labels_path = Path(subject_path(rois["labels"], index.bids_dir, sub))
        labels = read_roi_labels(labels_path)
        unknown = [n for n in rois["names"] if isinstance(n, str)
                   and n not in set(labels["name"])]
        if unknown:
            raise ConfigError(
                f"Config key 'fmri.rois.names' lists {unknown}, which {labels_path} does not "
                f"define: expected names from {labels['name'].tolist()[:60]}."
                f"{close_label_names(unknown, labels['name'].tolist())}"
            )
        dseg = Path(subject_path(rois["dseg"], index.bids_dir, sub))
        if not dseg.is_file():
            raise BIDSInputError(
                f"sub-{sub}: ROI atlas {dseg} (config key 'fmri.rois.dseg') does not exist. "
                "Add the atlas or fix the path template."
            )
        bold = index.runs_of(sub)[0].bold
        check_atlas(dseg, labels, rois["names"], bold, subject=sub, labels_path=labels_path,
                    cache=cache)
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
