"""Haxby et al. (2001), subject 1 as shipped by PyMVPA, converted to a BIDS dataset.

Haxby, Gobbini, Furey, Ishai, Schouten & Pietrini (2001), *Distributed and overlapping
representations of faces and objects in ventral temporal cortex*, Science 293:2425-2430: passive
viewing of grey-scale pictures of 8 categories in 22.5 s blocks, one block per category in each
of 12 runs (TR 2.5 s, 121 volumes). PyMVPA's copy (``mvpa2/data/haxby2001`` and
``mvpa2/data/{bold,mask}.nii.gz``, CC BY-SA 3.0) holds, per run, one axial slice at the original
resolution (``bold_1slice.nii.gz``, 40 x 20 x 1 voxels, the posterior half of the slice) and the
block onsets (``bold_events.tsv``). :func:`make_haxby_bids` writes:

- ``sub-1/func/sub-1_task-objectviewing_run-<N>_{bold.nii.gz,events.tsv}``: the BOLD file
  byte for byte; one event per block (``onset``, ``duration``, ``trial_type`` = category,
  ``stim_file``), so the single-trial GLM estimates one beta per block;
- ``stimuli/``: one image per category. Faces and houses are real pictures of the study (the
  first identity's ``_3`` face and ``house1.3``, the pictures shown in NeuroTechX's replication,
  copied from the face/house folder of the study). The other six categories' pictures are not
  available: they get a generated placeholder (grey square with the category name), so the DNN
  features and model scores of this dataset mean nothing for those six (the README says so);
- ``derivatives/rois``: the ROI image and labels TSV. No ventral-temporal mask exists on the
  one-slice grid (PyMVPA's 25 mm ``vt`` mask has one voxel), so the ROI is PyMVPA's example mask
  ``mask.nii.gz``: the 530 brain voxels of the slice (label ``slice``), which the README
  describes as such.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from brainalign.errors import BIDSInputError

__all__ = ["HAXBY_CATEGORIES", "HAXBY_TASK", "HAXBY_SUBJECT", "make_haxby_bids"]

#: The 8 categories, in the order of PyMVPA's ``condition_key.txt`` (cond001 ... cond008).
HAXBY_CATEGORIES = ("house", "scrambledpix", "cat", "shoe", "bottle", "scissors", "chair", "face")
HAXBY_TASK = "objectviewing"
HAXBY_SUBJECT = "1"
N_RUNS = 12
T_R_S = 2.5
ROI_NAME = "slice"
PLACEHOLDER_SIZE = 400  # pixels, like the real pictures (400 x 400 grey-scale JPEG)

_REFERENCE = (
    "Haxby, J. V., Gobbini, M. I., Furey, M. L., Ishai, A., Schouten, J. L., & Pietrini, P. "
    "(2001). Distributed and overlapping representations of faces and objects in ventral "
    "temporal cortex. Science, 293(5539), 2425-2430. doi:10.1126/science.1063736"
)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise BIDSInputError(
            f"Haxby 2001 source is incomplete: expected {what} at {path}, found nothing. Point "
            "the converter at PyMVPA's haxby2001 folder set (haxby2001/ and example_slice/) and "
            "at the face/house stimulus folder (faces/, houses/)."
        )
    return path


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _read_blocks(path: Path, run: int) -> list[tuple[float, float, str]]:
    """(onset, duration, category) of each block of one run's ``bold_events.tsv``."""
    lines = path.read_text().strip().splitlines()
    header = lines[0].split("\t")
    if header[:3] != ["onset", "duration", "trial_type"]:
        raise BIDSInputError(
            f"{path}: expected the columns onset, duration, trial_type, got {header}. Use "
            "PyMVPA's haxby2001 bold_events.tsv files unchanged."
        )
    blocks = []
    for line in lines[1:]:
        onset, duration, category = line.split("\t")[:3]
        if category not in HAXBY_CATEGORIES:
            raise BIDSInputError(
                f"{path} (run {run}): unknown category {category!r}: expected one of "
                f"{', '.join(HAXBY_CATEGORIES)}. Use PyMVPA's files unchanged."
            )
        blocks.append((float(onset), float(duration), category))
    if sorted(b[2] for b in blocks) != sorted(HAXBY_CATEGORIES):
        raise BIDSInputError(
            f"{path} (run {run}): expected one block of each of the 8 categories, got "
            f"{[b[2] for b in blocks]}. Use PyMVPA's files unchanged."
        )
    return blocks


def _placeholder(category: str, path: Path) -> None:
    """A mid-grey square with the category name: NOT a picture of the study."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (PLACEHOLDER_SIZE, PLACEHOLDER_SIZE), 128)
    draw = ImageDraw.Draw(img)
    draw.rectangle([8, 8, PLACEHOLDER_SIZE - 9, PLACEHOLDER_SIZE - 9], outline=0, width=4)
    draw.text((PLACEHOLDER_SIZE // 2, PLACEHOLDER_SIZE // 2 - 12), category, fill=0,
              anchor="mm")
    draw.text((PLACEHOLDER_SIZE // 2, PLACEHOLDER_SIZE // 2 + 12), "(placeholder)", fill=0,
              anchor="mm")
    img.save(path)


def _stimuli(stimuli_src: Path, out: Path) -> tuple[dict[str, str], str]:
    """Write stimuli/; return {category: stim_file relative to stimuli/} and the sources."""
    faces = sorted(_require(stimuli_src / "faces", "the face pictures").glob("*_3.jpg"))
    houses = _require(stimuli_src / "houses" / "house1.3.jpg", "the house picture")
    if not faces:
        raise BIDSInputError(
            f"No face picture '*_3.jpg' in {stimuli_src / 'faces'}: expected the 12 identities "
            "of Haxby et al. (2001). Point stimuli_dir at the study's face/house folder."
        )
    (out / "stimuli").mkdir(parents=True, exist_ok=True)
    files = {}
    for category, src in (("face", faces[0]), ("house", houses)):
        files[category] = f"{category}.jpg"
        shutil.copyfile(src, out / "stimuli" / files[category])
    for category in HAXBY_CATEGORIES:
        if category not in files:
            files[category] = f"{category}_placeholder.png"
            _placeholder(category, out / "stimuli" / files[category])
    licence = stimuli_src / "LICENSE_stimuli_original.txt"
    if licence.is_file():
        shutil.copyfile(licence, out / "stimuli" / "LICENSE_face_house.txt")
    return files, f"face.jpg is faces/{faces[0].name}, house.jpg is houses/{houses.name}"


def _readme(sources: str) -> str:
    return f"""Haxby et al. (2001), subject 1, one slice: BIDS conversion by brainalign
=====================================================================

{_REFERENCE}

Passive viewing of grey-scale pictures of 8 categories (face, house, cat, bottle, scissors,
shoe, chair, scrambled pictures) in 22.5 s blocks, one block per category in each of 12 runs
(TR 2.5 s, 121 volumes per run). Source: PyMVPA's test data (mvpa2/data/haxby2001, CC BY-SA 3.0),
converted by `examples/haxby2001/make_bids.py` (brainalign.ingest.haxby).

BOLD: one axial slice at the original resolution (posterior half of the slice, 40 x 20 x 1
voxels of 3.1 x 3.75 x 3.75 mm), copied byte for byte from `bold_1slice.nii.gz`.

Events: one row per block (onset, duration 22.5 s, trial_type = category, stim_file). The
order of the pictures within a block was not shipped, so only category-level analyses are
possible: every block of a category names the same stim_file.

Stimuli (stimuli/): face.jpg and house.jpg are real pictures of the study ({sources}; CC BY-SA
3.0, see stimuli/LICENSE_face_house.txt), each standing for its whole category. The pictures of
the other six categories are not available: `<category>_placeholder.png` is a GENERATED grey
square with the category name, not a stimulus of the study. DNN features, model RDMs and
model scores computed from these images are therefore meaningless for those six categories
(and for any comparison involving them); use this dataset for the brain side (block betas,
category RDMs, decoding), not to rank models.

ROI (derivatives/rois): no ventral-temporal mask exists on the one-slice grid (PyMVPA's 25 mm
`vt` mask has a single voxel). The only ROI is `{ROI_NAME}`: PyMVPA's example mask
(mvpa2/data/mask.nii.gz), the 530 brain voxels of this posterior half-slice (occipital and,
depending on the slice level, ventral temporal cortex; not an anatomical VT definition).
"""


def make_haxby_bids(source_dir: str | Path, out_dir: str | Path, *,
                    stimuli_dir: str | Path) -> Path:
    """Convert PyMVPA's Haxby (2001) subject 1 to a BIDS dataset (one slice, 12 runs).

    Parameters
    ----------
    source_dir : str or Path
        Folder holding PyMVPA's ``haxby2001/`` (``sub001/BOLD/task001_runNNN/{bold_1slice.nii.gz,
        bold_events.tsv}``) and ``example_slice/mask.nii.gz``.
    out_dir : str or Path
        The BIDS dataset to write (must not exist, or be empty).
    stimuli_dir : str or Path
        The study's face/house pictures (``faces/<Name>_<k>.jpg``, ``houses/house<i>.<k>.jpg``).

    Returns
    -------
    bids_dir : Path
        ``out_dir``.

    Raises
    ------
    BIDSInputError
        A source file is missing or not as PyMVPA ships it, or ``out_dir`` is not empty.
    """
    import nibabel as nib

    src, out, stim_src = Path(source_dir), Path(out_dir), Path(stimuli_dir)
    if out.exists() and any(out.iterdir()):
        raise BIDSInputError(
            f"Output folder {out} is not empty: expected a new or empty folder for the Haxby "
            "BIDS dataset. Remove it or choose another."
        )
    mask_path = _require(src / "example_slice" / "mask.nii.gz", "PyMVPA's example mask")
    runs = []
    for run in range(1, N_RUNS + 1):
        folder = src / "haxby2001" / "sub001" / "BOLD" / f"task001_run{run:03d}"
        bold = _require(folder / "bold_1slice.nii.gz", f"run {run}'s one-slice BOLD")
        events = _require(folder / "bold_events.tsv", f"run {run}'s events")
        runs.append((run, bold, _read_blocks(events, run)))
    out.mkdir(parents=True, exist_ok=True)
    stim, sources = _stimuli(stim_src, out)

    _write_json(out / "dataset_description.json", {
        "Name": "Haxby et al. (2001) object viewing, subject 1, one slice (PyMVPA test data)",
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
        "License": "CC-BY-SA-3.0",
        "Authors": ["James V. Haxby", "M. Ida Gobbini", "Maura L. Furey", "Alumit Ishai",
                    "Jennifer L. Schouten", "Pietro Pietrini"],
        "HowToAcknowledge": f"Cite {_REFERENCE}",
        "ReferencesAndLinks": ["https://doi.org/10.1126/science.1063736",
                               "http://www.pymvpa.org/datadb/haxby2001.html"],
        "GeneratedBy": [{"Name": "brainalign examples/haxby2001/make_bids.py",
                         "Description": "Conversion of PyMVPA's mvpa2/data/haxby2001"}],
    })
    (out / "README").write_text(_readme(sources))
    (out / "CHANGES").write_text("1.0.0 2026-12-02\n  - Converted from PyMVPA's test data.\n")
    (out / "participants.tsv").write_text("participant_id\nsub-1\n")
    _write_json(out / f"task-{HAXBY_TASK}_bold.json", {
        "TaskName": HAXBY_TASK,
        "RepetitionTime": T_R_S,
        "TaskDescription": "Passive viewing of grey-scale pictures of faces, houses, cats, "
                           "bottles, scissors, shoes, chairs and scrambled pictures, in 22.5 s "
                           "blocks (one per category per run).",
    })
    _write_json(out / f"task-{HAXBY_TASK}_events.json", {
        "onset": {"Description": "Block onset from the first volume", "Units": "s"},
        "duration": {"Description": "Block duration", "Units": "s"},
        "trial_type": {"Description": "Picture category of the block",
                       "Levels": {c: c for c in HAXBY_CATEGORIES}},
        "stim_file": {"Description": "The image standing for the block's category, relative "
                                     "to stimuli/ (face.jpg and house.jpg are real pictures of "
                                     "the study; *_placeholder.png are generated placeholders)"},
    })
    func = out / f"sub-{HAXBY_SUBJECT}" / "func"
    func.mkdir(parents=True)
    for run, bold, blocks in runs:
        stem = f"sub-{HAXBY_SUBJECT}_task-{HAXBY_TASK}_run-{run}"
        shutil.copyfile(bold, func / f"{stem}_bold.nii.gz")
        rows = ["onset\tduration\ttrial_type\tstim_file"]
        rows += [f"{o:g}\t{d:g}\t{c}\t{stim[c]}" for o, d, c in blocks]
        (func / f"{stem}_events.tsv").write_text("\n".join(rows) + "\n")

    rois = out / "derivatives" / "rois"
    anat = rois / f"sub-{HAXBY_SUBJECT}" / "anat"
    anat.mkdir(parents=True)
    _write_json(rois / "dataset_description.json", {
        "Name": "Haxby 2001 one-slice ROI (PyMVPA example mask)",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainalign examples/haxby2001/make_bids.py"}],
    })
    (rois / "desc-haxby_dseg.tsv").write_text(f"index\tname\n1\t{ROI_NAME}\n")
    mask = nib.load(mask_path)
    ref = nib.load(runs[0][1])
    if mask.shape != ref.shape[:3] or not np.allclose(mask.affine, ref.affine, atol=1e-3):
        raise BIDSInputError(
            f"{mask_path}: expected the grid of the one-slice BOLD {ref.shape[:3]}, got "
            f"{mask.shape}. Use PyMVPA's example_slice/mask.nii.gz unchanged."
        )
    labels = (np.asanyarray(mask.dataobj) > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(labels, ref.affine),
             anat / f"sub-{HAXBY_SUBJECT}_desc-haxby_dseg.nii.gz")
    return out
