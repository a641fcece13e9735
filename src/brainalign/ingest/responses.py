"""Bring-your-own response matrices: neurons or voxels per stimulus, with repeats.

``external.responses.<area>`` names a file that holds one area's responses, in one of three
formats, read here into one shape: trial-wise responses ``(n_trials, n_units)`` with the row
of the external stimulus table that each trial showed ``(n_trials,)``.

- ``.npy``: one array, with the axis order given by ``layout`` (default
  ``repeats_stimuli_units``; also ``stimuli_units_repeats``, ``units_stimuli_repeats``, ...,
  or ``trials_units`` with a separate ``stimulus_index`` array file).
- ``.h5`` / ``.hdf5``: the same, ``dataset`` names the HDF5 dataset (``stimulus_index`` a
  dataset in the same file, for ``trials_units``).
- ``.nwb``: one layout, read with pynwb: a ``TimeSeries`` ``dataset`` (``<module>/<name>``,
  default ``responses/<area>``) in a processing module, whose data has one row per trial and
  one column per unit (``trials_units``), and the file's trials table with an integer column
  (``stimulus_index``, default ``"stimulus_index"``) giving, per trial in the same order, the
  row of the external stimulus table. ``examples/mouse_visual_cortex/make_nwb.py`` writes one.

Without ``stimulus_index``, the stimuli axis follows the stimulus table's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainalign.errors import BIDSInputError, DataShapeError

__all__ = [
    "TrialResponses",
    "read_responses",
    "response_format",
    "responses_from_trials",
    "step_import_responses",
    "AXES",
    "FORMATS",
]

logger = logging.getLogger(__name__)

#: Axis names of an array ``layout`` (joined by ``_``).
AXES = ("repeats", "stimuli", "units")
#: Formats of ``external.responses.<area>.format`` (``auto``: from the file extension).
FORMATS = ("auto", "npy", "h5", "nwb")
_EXTENSIONS = {".npy": "npy", ".h5": "h5", ".hdf5": "h5", ".nwb": "nwb"}


@dataclass(frozen=True)
class TrialResponses:
    """One area's trial-wise responses.

    Attributes
    ----------
    data : ndarray, shape (n_trials, n_units)
        Response of each unit (neuron, voxel) on each trial.
    stimulus_index : ndarray of int, shape (n_trials,)
        Row of the external stimulus table shown on each trial.
    """

    data: np.ndarray
    stimulus_index: np.ndarray


def response_format(path: str | Path, fmt: str = "auto", *, where: str = "") -> str:
    """The format of a response file: ``fmt``, or from the extension when ``auto``.

    Parameters
    ----------
    path : path-like
    fmt : {"auto", "npy", "h5", "nwb"}
    where : str
        Config key for messages.

    Returns
    -------
    fmt : {"npy", "h5", "nwb"}
    """
    if fmt != "auto":
        if fmt not in FORMATS:
            raise BIDSInputError(f"{where}: format '{fmt}': expected one of {list(FORMATS)}.")
        return fmt
    ext = Path(path).suffix.lower()
    if ext not in _EXTENSIONS:
        raise BIDSInputError(
            f"Response file {path} ({where}): cannot tell the format from the extension "
            f"'{ext}': expected one of {sorted(_EXTENSIONS)}. Set 'format' to npy, h5 or nwb.")
    return _EXTENSIONS[ext]


def _parse_layout(layout: str, ndim: int, *, what: str) -> list[str]:
    axes = layout.split("_")
    if axes == ["trials", "units"]:
        expected = 2
    elif sorted(axes) == sorted(AXES):
        expected = 3
    else:
        raise BIDSInputError(
            f"{what}: layout '{layout}': expected 'trials_units' or an order of "
            f"{'/'.join(AXES)} joined by '_' (e.g. 'repeats_stimuli_units').")
    if ndim != expected:
        raise DataShapeError(
            f"{what}: layout '{layout}' expects a {expected}-D array, got {ndim}-D. Fix "
            "'layout' to the array's axis order.")
    return axes


def _to_trials(array: np.ndarray, axes: list[str], index: np.ndarray | None, *,
               n_stimuli: int, what: str) -> TrialResponses:
    """Reshape a (repeats, stimuli, units) array in any order, or trials x units, to trials."""
    if axes == ["trials", "units"]:
        if index is None:
            raise BIDSInputError(
                f"{what}: layout 'trials_units' needs 'stimulus_index' (the stimulus table row "
                "of each trial). Set it, or give a repeats x stimuli x units array.")
        if index.shape != (array.shape[0],):
            raise DataShapeError(
                f"{what}: stimulus_index has shape {index.shape}: expected one entry per "
                f"trial, ({array.shape[0]},).")
        data, trial_index = array, index
    else:
        arr = np.transpose(array, [axes.index(a) for a in AXES])  # repeats, stimuli, units
        n_rep, n_rows, _ = arr.shape
        rows = np.arange(n_rows) if index is None else index
        if index is None and n_rows != n_stimuli:
            raise DataShapeError(
                f"{what}: the stimuli axis has {n_rows} rows but the stimulus table has "
                f"{n_stimuli}: expected one row per stimulus, in the table's order. Fix the "
                "table, the 'layout', or give 'stimulus_index'.")
        if index is not None and index.shape != (n_rows,):
            raise DataShapeError(
                f"{what}: stimulus_index has shape {index.shape}: expected one entry per row "
                f"of the stimuli axis, ({n_rows},).")
        # repeat-major: trial r * n_rows + i is the r-th repeat of row i
        data = arr.reshape(n_rep * n_rows, arr.shape[2])
        trial_index = np.tile(rows, n_rep)
    trial_index = np.asarray(trial_index)
    if not np.issubdtype(trial_index.dtype, np.integer):
        raise DataShapeError(
            f"{what}: stimulus_index has dtype {trial_index.dtype}: expected integers (rows of "
            "the stimulus table, from 0).")
    bad = (trial_index < 0) | (trial_index >= n_stimuli)
    if bad.any():
        raise DataShapeError(
            f"{what}: stimulus_index holds {int(trial_index[bad][0])}: expected rows of the "
            f"stimulus table, 0 to {n_stimuli - 1}.")
    data = np.asarray(data, dtype=float)
    if not np.isfinite(data).all():
        raise DataShapeError(
            f"{what}: {int((~np.isfinite(data)).sum())} responses are NaN or infinite: "
            "expected finite values. Drop or impute those units/trials first.")
    return TrialResponses(data=data, stimulus_index=trial_index.astype(int))


def _read_h5(path: Path, dataset: str, index_name: str | None, *, what: str):
    import h5py

    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in [dataset, index_name]:
            if name is not None and name not in f:
                raise BIDSInputError(
                    f"{what}: no dataset '{name}' in {path}: expected one of {names}. Fix "
                    "'dataset' / 'stimulus_index'.")
        array = np.asarray(f[dataset])
        index = np.asarray(f[index_name]) if index_name else None
    return array, index


def _read_nwb(path: Path, dataset: str, index_name: str, *, what: str):
    from pynwb import NWBHDF5IO

    module, _, name = dataset.rpartition("/")
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        mods = list(nwb.processing)
        if module not in nwb.processing:
            raise BIDSInputError(
                f"{what}: {path} has no processing module '{module}': expected one of {mods}. "
                "Set 'dataset' to '<module>/<TimeSeries name>'.")
        objs = list(nwb.processing[module].data_interfaces)
        if name not in objs:
            raise BIDSInputError(
                f"{what}: processing module '{module}' of {path} has no object '{name}': "
                f"expected one of {objs}. Set 'dataset' to '<module>/<TimeSeries name>'.")
        array = np.asarray(nwb.processing[module][name].data[:])
        if nwb.trials is None:
            raise BIDSInputError(
                f"{what}: {path} has no trials table: expected one with a '{index_name}' "
                "column (the stimulus table row of each trial).")
        cols = list(nwb.trials.colnames)
        if index_name not in cols:
            raise BIDSInputError(
                f"{what}: the trials table of {path} has no column '{index_name}': expected "
                f"one of {cols}. Set 'stimulus_index' to the column of stimulus rows.")
        index = np.asarray(nwb.trials[index_name].data[:])
    return array, index


def read_responses(spec: Mapping, *, area: str, n_stimuli: int) -> TrialResponses:
    """Read one area's responses (``external.responses.<area>``) into trial-wise form.

    Parameters
    ----------
    spec : Mapping
        The area's config entry: ``path``, ``format``, ``dataset``, ``layout``,
        ``stimulus_index``.
    area : str
        The area's name (the default NWB object, and messages).
    n_stimuli : int
        Rows of the external stimulus table.

    Returns
    -------
    responses : TrialResponses
        ``data`` (n_trials, n_units) and ``stimulus_index`` (n_trials,); for a
        repeats/stimuli/units array, trial ``r * n_rows + i`` is the ``r``-th repeat of row
        ``i`` (repeats in order).

    Raises
    ------
    BIDSInputError
        Missing file, dataset, module, object or column.
    DataShapeError
        Wrong number of dimensions or rows, or stimulus indices outside the table.
    """
    path = Path(spec["path"])
    where = f"external.responses.{area}"
    fmt = response_format(path, spec.get("format", "auto"), where=where)
    if not path.is_file():
        raise BIDSInputError(f"Response file {path} ({where}.path) does not exist. Fix the path.")
    what = f"Responses of area '{area}' ({path})"
    layout = spec.get("layout") or ("trials_units" if fmt == "nwb" else "repeats_stimuli_units")
    index_spec = spec.get("stimulus_index")
    if fmt == "npy":
        array = np.load(path, allow_pickle=False)
        index = None
        if index_spec:
            index_path = Path(index_spec)
            if not index_path.is_file():
                raise BIDSInputError(
                    f"{what}: stimulus_index file {index_path} ({where}.stimulus_index) does "
                    "not exist: expected a .npy of stimulus table rows. Fix the path.")
            index = np.load(index_path, allow_pickle=False)
    elif fmt == "h5":
        if not spec.get("dataset"):
            raise BIDSInputError(f"{what}: '{where}.dataset' is not set: expected the HDF5 "
                                 "dataset path of the responses.")
        array, index = _read_h5(path, spec["dataset"], index_spec, what=what)
    else:
        if layout != "trials_units":
            raise BIDSInputError(
                f"{what}: layout '{layout}' with format nwb: expected 'trials_units' (one row "
                "per trial, the trials table giving each trial's stimulus).")
        dataset = spec.get("dataset") or f"responses/{area}"
        array, index = _read_nwb(path, dataset, index_spec or "stimulus_index", what=what)
    axes = _parse_layout(layout, array.ndim, what=what)
    out = _to_trials(array, axes, index, n_stimuli=n_stimuli, what=what)
    logger.info("area %s: %d trials x %d units from %s (%s, %s)", area, *out.data.shape, path,
                fmt, layout)
    return out


def responses_from_trials(trials: Mapping[str, TrialResponses],
                          stimuli: np.ndarray) -> dict[str, np.ndarray]:
    """Per-stimulus responses of several areas, as the fMRI ROI responses are stored.

    The repeats of each stimulus are averaged and split into odd and even halves with
    :func:`brainalign.fmri.average_repeats`; the split-half noise ceiling is
    :func:`brainalign.fmri.noise_ceiling_from_reliability` (with the repeat counts), the NCSNR
    ceiling :func:`brainalign.fmri.ncsnr` on responses z-scored over all trials. Each area is an
    "ROI" whose columns are its units.

    Parameters
    ----------
    trials : Mapping of str to TrialResponses
        Area -> its trial-wise responses (:func:`read_responses`).
    stimuli : ndarray of str, shape (n_stimuli,)
        The stimulus table's ``stim_file`` column (what ``stimulus_index`` points into).

    Returns
    -------
    arrays : dict
        ``responses``, ``half1``, ``half2`` (n_shown, n_units_total), ``roi``,
        ``noise_ceiling``, ``reliability``, ``ncsnr``, ``noise_ceiling_ncsnr``
        (n_units_total,), ``stimuli`` (n_shown,) and ``n_repeats`` (n_shown,): the keys of
        the fMRI responses npz. ``n_shown`` counts the table's stimuli the areas showed, in the
        table's order.

    Raises
    ------
    DataShapeError
        The areas showed different stimuli or repeated them a different number of times.
    BIDSInputError
        A stimulus was shown once (no split halves).
    """
    from brainalign.fmri import responses as fmri

    stimuli = np.asarray(stimuli).astype(str)
    shown = {a: np.unique(t.stimulus_index) for a, t in trials.items()}
    first = next(iter(trials))
    for area, rows in shown.items():
        if not np.array_equal(rows, shown[first]):
            raise DataShapeError(
                f"Areas '{first}' and '{area}' of one subject show different stimuli "
                f"({len(shown[first])} and {len(rows)} of the table's rows): expected the same "
                "set. Give them different 'subject' labels.")
    seen = stimuli[shown[first]]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("responses", "half1", "half2", "roi", "reliability",
                                           "noise_ceiling", "ncsnr", "noise_ceiling_ncsnr")}
    n_rep = None
    for area, t in trials.items():
        stim_files = stimuli[t.stimulus_index]
        mean, h1, h2, rep = fmri.average_repeats(t.data, stim_files, seen)
        if n_rep is not None and not np.array_equal(rep, n_rep):
            raise DataShapeError(
                f"Area '{area}' repeats its stimuli {sorted(set(rep.tolist()))} times but "
                f"'{first}' {sorted(set(n_rep.tolist()))}: expected equal repeats within a "
                "subject. Give them different 'subject' labels.")
        n_rep = rep
        rel = fmri.split_half_reliability(h1, h2)
        z = fmri.zscore_within(t.data, np.zeros(len(t.data), dtype=int))
        snr, _ = fmri.ncsnr(z, stim_files)
        for key, value in (("responses", mean), ("half1", h1), ("half2", h2),
                           ("roi", np.full(mean.shape[1], area)), ("reliability", rel),
                           ("noise_ceiling", fmri.noise_ceiling_from_reliability(
                               rel, n_repeats=rep)),
                           ("ncsnr", snr),
                           ("noise_ceiling_ncsnr", fmri.noise_ceiling_from_ncsnr(snr, rep))):
            parts[key].append(value)
        logger.info("area %s: %d units, %d stimuli x %s repeats, mean split-half ceiling %.3f",
                    area, mean.shape[1], len(seen), sorted(set(rep.tolist())),
                    float(np.mean(parts["noise_ceiling"][-1])))
    axis = {"responses": 1, "half1": 1, "half2": 1}
    arrays = {k: np.concatenate(v, axis=axis.get(k, 0)) for k, v in parts.items()}
    arrays["roi"] = arrays["roi"].astype(str)
    arrays["stimuli"] = seen
    arrays["n_repeats"] = n_rep
    return arrays


def step_import_responses(specs: Mapping[str, Mapping], stimuli_table: str, *,
                          out: str) -> None:
    """Read one subject's external response files into the fMRI responses format (npz).

    Encoding (``encoding_fit``) and RSA (``rsa_roi_rdms``) then run on each area as on an fMRI
    ROI.

    Parameters
    ----------
    specs : Mapping of str to Mapping
        Area -> its ``external.responses.<area>`` entry.
    stimuli_table : str
        The stimulus manifest (``stim_file``, in the order ``stimulus_index`` refers to).
    out : str
        npz with the keys of :func:`responses_from_trials`.
    """
    from brainalign.io import read_tsv, save_npz

    stimuli = read_tsv(stimuli_table)["stim_file"].to_numpy(str)
    trials = {area: read_responses(spec, area=area, n_stimuli=len(stimuli))
              for area, spec in specs.items()}
    save_npz(out, **responses_from_trials(trials, stimuli))
