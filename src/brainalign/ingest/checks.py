"""Cheap DAG-time checks of input files: JSON sidecars, NIfTI images and stimulus images.

Each check reads as little as it can (a header, a gzip trailer, an image's chunk list) so that
it can run on every input file while the DAG is built, and raises
:class:`~brainalign.errors.BIDSInputError` naming the file, what was expected, what was found
and the fix. Where the cheap test cannot be sure, a slower one confirms before an error is
raised: a valid file is never rejected.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from brainalign.errors import BIDSInputError

__all__ = [
    "read_json_file",
    "load_nifti_checked",
    "load_nifti_data",
    "check_nifti_complete",
    "nifti_expected_bytes",
    "gzip_isize",
    "check_image_readable",
    "read_text_stimulus",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 22  # 4 MiB: stream size of the confirming gzip read


def read_json_file(path: str | Path, *, what: str = "JSON file", where: str = "") -> dict:
    """Read a JSON object from a file, naming the file when it is not valid JSON.

    Parameters
    ----------
    path : str or Path
        The JSON file.
    what : str
        What the file is, for the message (e.g. "JSON sidecar").
    where : str
        The subject/run the file belongs to, for the message (may be empty).

    Returns
    -------
    obj : dict
        The decoded JSON object.

    Raises
    ------
    BIDSInputError
        The file cannot be read, is not valid JSON, or holds something other than an object.
    """
    path = Path(path)
    label = f"{what} {path}" + (f" (for {where})" if where else "")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BIDSInputError(
            f"Unreadable {label}: expected a UTF-8 text file, got {type(exc).__name__}: {exc}. "
            "Fix the file's permissions or encoding."
        ) from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BIDSInputError(
            f"Invalid JSON in {label}: expected valid JSON, got '{exc.msg}' at line {exc.lineno} "
            f"column {exc.colno}. Fix the file (`python -m json.tool {path}` shows the error)."
        ) from exc
    if not isinstance(obj, dict):
        raise BIDSInputError(
            f"Invalid JSON in {label}: expected a JSON object ({{...}}), got a "
            f"{type(obj).__name__}. Write the fields as one object."
        )
    return obj


def load_nifti_checked(path: str | Path, *, where: str, what: str = "image"):
    """Load a NIfTI header with nibabel and check that the file holds all its voxels.

    Parameters
    ----------
    path : str or Path
        ``.nii`` or ``.nii.gz`` file.
    where : str
        The subject/run the file belongs to, for the message.
    what : str
        What the image is (e.g. "BOLD image"), for the message.

    Returns
    -------
    img : nibabel.spatialimages.SpatialImage
        The image, with its data not yet read (nibabel loads lazily).

    Raises
    ------
    BIDSInputError
        The header cannot be read, or the file is truncated (see :func:`check_nifti_complete`).
    """
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types (ImageFileError, EOFError, OSError...)
        raise BIDSInputError(
            f"Unreadable {what} for {where} ({path}): expected a NIfTI file nibabel can load, got "
            f"{type(exc).__name__}: {exc}. Replace the file (re-copy or re-export it)."
        ) from exc
    check_nifti_complete(path, img, where=where, what=what)
    return img


def load_nifti_data(path: str | Path, *, where: str, what: str = "image"):
    """Load a NIfTI image with its data in memory, naming the file when it cannot be decoded.

    For the jobs that read the voxels: a file whose header and size pass the DAG-time checks
    (:func:`load_nifti_checked`) can still be corrupt inside its compressed stream, which only
    the gzip checksum at its end reveals (nibabel does not check it).

    Parameters
    ----------
    path : str or Path
        ``.nii`` or ``.nii.gz`` file.
    where : str
        The subject/run the file belongs to, for the message.
    what : str
        What the image is (e.g. "BOLD image"), for the message.

    Returns
    -------
    img : nibabel.Nifti1Image
        With its data read.

    Raises
    ------
    BIDSInputError
        The header or the data cannot be read (``EOFError``, ``OSError``, a zlib or nibabel
        error).
    """
    import gzip

    import nibabel as nib

    try:
        if str(path).endswith(".gz"):
            # read through gzip to its end: that checks the stream's CRC-32, which nibabel
            # (reading only the bytes it needs) skips, so a flipped byte would pass silently
            with gzip.open(path, "rb") as fh:
                img = nib.Nifti1Image.from_bytes(fh.read())
        else:
            img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types (ImageFileError, EOFError, OSError...)
        raise BIDSInputError(
            f"Corrupt {what} for {where}: {path} could not be read ({type(exc).__name__}: "
            f"{exc}): expected a complete NIfTI image; the file is truncated or corrupt. Copy "
            "it again from its source, then rerun."
        ) from exc
    return nib.Nifti1Image(data, img.affine, img.header)


def nifti_expected_bytes(img) -> int:
    """Size a NIfTI file must have (uncompressed): data offset plus every voxel.

    Parameters
    ----------
    img : nibabel.Nifti1Image or nibabel.Nifti2Image

    Returns
    -------
    n_bytes : int
        ``vox_offset + prod(shape) * bytes_per_voxel``.
    """
    header = img.header
    n_voxels = int(np.prod(img.shape, dtype=np.int64))
    return _data_offset(img) + n_voxels * header.get_data_dtype().itemsize


def _data_offset(img) -> int:
    """Byte offset of the first voxel.

    The array proxy's offset where there is one (the in-memory header of a loaded image may say
    vox_offset 0), else the header's.
    """
    offset = getattr(img.dataobj, "offset", None)
    return int(offset if offset is not None else img.header.get_data_offset())


def gzip_isize(path: str | Path) -> int | None:
    """The gzip trailer's ISIZE field: the uncompressed size modulo 2**32 (of the last member).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    isize : int or None
        None when the file is too short to hold a gzip header and trailer.
    """
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() < 18:  # 10-byte header + 8-byte trailer
            return None
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


def _gunzipped_size(path: str | Path) -> tuple[int, str | None]:
    """Decompress a gzip file to its end (every member, as nibabel's gzip reader does).

    Returns the number of bytes, and the error that stopped the stream (None when complete).
    """
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as exc:  # truncated stream, bad CRC, bad data
        return total, f"{type(exc).__name__}: {exc}"
    return total, None


def check_nifti_complete(path: str | Path, img, *, where: str, what: str = "image") -> None:
    """Check that a NIfTI file holds every voxel its header promises, without reading them.

    ``.nii``: the file size. ``.nii.gz``: the gzip trailer's ISIZE (the uncompressed size
    modulo 2**32, 4 bytes read from the end of the file). When ISIZE disagrees (a truncated
    file, but also a valid multi-member gzip or trailing bytes), the file is decompressed to the
    end to confirm before an error is raised.

    Parameters
    ----------
    path : str or Path
        The image file.
    img : nibabel.Nifti1Image or nibabel.Nifti2Image
        Its header, as loaded by nibabel.
    where : str
        The subject/run the file belongs to, for the message.
    what : str
        What the image is (e.g. "BOLD image"), for the message.

    Raises
    ------
    BIDSInputError
        The file ends before the last voxel, or its compressed stream is broken.
    """
    if not hasattr(img.header, "get_data_offset"):  # not a single-file NIfTI: nothing to check
        return
    expected = nifti_expected_bytes(img)
    shape = "x".join(map(str, img.shape))
    dtype = img.header.get_data_dtype()
    promised = f"{expected} bytes (a {_data_offset(img)}-byte header and {shape} {dtype} voxels)"
    fix = "Re-copy or re-download the file (it was cut short, e.g. by an interrupted transfer)."
    if str(path).endswith(".gz"):
        isize = gzip_isize(path)
        if isize == expected % 2**32:
            return
        total, error = _gunzipped_size(path)
        if error is None and total >= expected:
            logger.info("%s: gzip ISIZE %s differs from the header's %d bytes, but the full "
                        "stream holds %d bytes: complete", path, isize, expected, total)
            return
        got = f"a compressed stream that ends early ({error})" if error else f"{total} bytes"
        raise BIDSInputError(
            f"Truncated or corrupt {what} for {where} ({path}): expected {promised} once "
            f"decompressed, got {got}. {fix}"
        )
    size = Path(path).stat().st_size
    if size < expected:
        raise BIDSInputError(
            f"Truncated {what} for {where} ({path}): expected {promised}, got a {size}-byte "
            f"file. {fix}"
        )


def _image_error(path: Path) -> str | None:
    """Why PIL cannot read an image file, or None when it can (cheapest sufficient test)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            fmt = img.format
            if fmt == "PNG":
                img.verify()  # walks every chunk and checks its CRC: finds truncation
                return None
            if fmt == "JPEG":
                with open(path, "rb") as fh:  # a complete JPEG ends with the EOI marker
                    fh.seek(-2, os.SEEK_END)
                    if fh.read(2) == b"\xff\xd9":
                        return None
            img.load()  # anything else (or a JPEG without EOI, which may still be fine): decode
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        return f"{type(exc).__name__}: {exc}"
    return None


def check_image_readable(path: str | Path, *, where: str) -> None:
    """Check that PIL can read a stimulus image, without decoding it where a cheaper test tells.

    PNG: every chunk's CRC (``Image.verify``). JPEG: the end-of-image marker, else a full decode.
    Other formats: a full decode.

    Parameters
    ----------
    path : str or Path
        The image file (it must exist).
    where : str
        Where the image is named (the events.tsv or stimulus table and its row), for the
        message.

    Raises
    ------
    BIDSInputError
        PIL cannot open or decode the file.
    """
    path = Path(path)
    error = _image_error(path)
    if error:
        raise BIDSInputError(
            f"Unreadable stimulus image {path} (named in {where}): expected an image file PIL "
            f"can read (PNG, JPEG, ...), got {error}. Replace the file with a valid image."
        )


def read_text_stimulus(path: str | Path, *, where: str) -> str:
    """The text of a ``.txt`` stimulus file (UTF-8; surrounding whitespace stripped).

    Parameters
    ----------
    path : str or Path
        The file.
    where : str
        Where it is named (events.tsv and line, or the stimulus table), for the message.

    Returns
    -------
    text : str

    Raises
    ------
    BIDSInputError
        The file cannot be read, is not UTF-8, or holds only whitespace.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BIDSInputError(
            f"Unreadable text stimulus {path} (named in {where}): expected a readable UTF-8 "
            f"text file, got {type(exc).__name__}: {exc}. Fix the file's permissions."
        ) from exc
    except UnicodeDecodeError as exc:
        raise BIDSInputError(
            f"Undecodable text stimulus {path} (named in {where}): expected UTF-8 text, got a "
            f"byte that is not UTF-8 at position {exc.start}. Re-save the file as UTF-8."
        ) from exc
    text = text.strip()
    if not text:
        raise BIDSInputError(
            f"Empty text stimulus {path} (named in {where}): expected the stimulus text (a "
            "word or sentence), got an empty file. Write the text into the file or drop the "
            "stimulus."
        )
    return text
