#!/usr/bin/env python3
"""A stand-in for fMRIPrep's container entrypoint, for the workflow's tests (stdlib only).

The real image (nipreps/fmriprep, ~15 GB) cannot be pulled here. This script takes fMRIPrep's
command line (the options brainalign passes, parsed as fMRIPrep's argparse parser declares
them; anything else is an error, as in fMRIPrep) and writes, for every BOLD run of the
participant, the files fMRIPrep's derivatives layout holds:

- ``..._space-<space>[_res-<res>]_desc-preproc_bold.nii.gz``: the raw BOLD, copied (raw units)
- its ``.json`` sidecar (RepetitionTime, SkullStripped, TaskName)
- ``..._space-<space>[_res-<res>]_desc-brain_mask.nii.gz``: voxels non-zero in the first volume
- ``..._desc-confounds_timeseries.tsv`` with fMRIPrep's column names (motion, their
  derivatives and squares, tissue signals, FD, DVARS, CompCor, cosines; ``n/a`` in first rows
  as fMRIPrep writes them) and its ``.json`` (CompCor metadata as fMRIPrep writes it)

It also writes ``<output_dir>/standin/sub-<label>_call.json``: its argv, its environment's
TEMPLATEFLOW_HOME, and what it could see through the container's mounts (licence readable,
BIDS folder and TemplateFlow home read-only, work folder writable), for the tests to assert.
It is not fMRIPrep and does no preprocessing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import shutil
import struct
import sys
from array import array
from pathlib import Path

DTYPES = {2: "B", 4: "h", 8: "i", 16: "f", 64: "d", 256: "b", 512: "H", 768: "I"}


def parser() -> argparse.ArgumentParser:
    """The subset of fMRIPrep's parser (fmriprep/cli/parser.py) that brainalign uses."""
    p = argparse.ArgumentParser(prog="fmriprep")
    p.add_argument("bids_dir", type=Path)
    p.add_argument("output_dir", type=Path)
    p.add_argument("analysis_level", choices=["participant"])
    p.add_argument("--skip_bids_validation", "--skip-bids-validation", action="store_true")
    p.add_argument("--participant-label", "--participant_label", nargs="+", required=True)
    p.add_argument("--output-spaces", nargs="*", default=["MNI152NLin2009cAsym"])
    p.add_argument("--fs-license-file", type=Path)
    p.add_argument("--fs-no-reconall", action="store_false", dest="run_reconall")
    p.add_argument("-w", "--work-dir", type=Path)
    p.add_argument("--nprocs", "--nthreads", "--n_cpus", "--n-cpus", dest="nprocs", type=int)
    p.add_argument("--omp-nthreads", type=int)
    p.add_argument("--mem", "--mem_mb", "--mem-mb", dest="mem_mb", type=int)
    p.add_argument("--notrack", action="store_true")
    p.add_argument("--random-seed", type=int)
    p.add_argument("--skull-strip-fixed-seed", action="store_true")
    return p


def read_nifti(path: Path) -> tuple[bytes, tuple[int, ...], array, float]:
    """Header bytes, dims, first volume and TR (s) of a little-endian NIfTI-1 .nii.gz."""
    raw = gzip.decompress(path.read_bytes())
    if struct.unpack("<i", raw[:4])[0] != 348:
        raise SystemExit(f"{path}: not a little-endian NIfTI-1 file")
    dim = struct.unpack("<8h", raw[40:56])
    dtype = struct.unpack("<h", raw[70:72])[0]
    offset = max(int(struct.unpack("<f", raw[108:112])[0]), 352)
    n = dim[1] * dim[2] * dim[3]
    first = array(DTYPES[dtype])
    first.frombytes(raw[offset:offset + n * first.itemsize])
    tr = struct.unpack("<f", raw[92:96])[0]
    if raw[123] & 0x18 == 16:  # msec
        tr /= 1000.0
    return raw[:348], dim, first, tr


def write_mask(header: bytes, first: array, out: Path) -> int:
    """A uint8 3D NIfTI with the BOLD's grid: 1 where the first volume is finite and non-zero."""
    hdr = bytearray(header)
    dim = list(struct.unpack("<8h", hdr[40:56]))
    dim[0], dim[4] = 3, 1
    hdr[40:56] = struct.pack("<8h", *dim)
    hdr[70:74] = struct.pack("<hh", 2, 8)
    hdr[108:120] = struct.pack("<fff", 352.0, 1.0, 0.0)
    hdr[124:132] = struct.pack("<ff", 0.0, 0.0)
    data = bytes(1 if (v == v and v != 0 and not math.isinf(v)) else 0 for v in first)
    out.write_bytes(gzip.compress(bytes(hdr) + b"\0\0\0\0" + data))
    return sum(data)


def confounds(n: int, rng: random.Random) -> tuple[list[str], list[list[str]], dict]:
    """fMRIPrep-named confound columns for ``n`` volumes (small made-up values), and metadata."""
    cols: dict[str, list[float | None]] = {}
    base = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z",
            "global_signal", "csf", "white_matter"]
    for name in base:  # random walks: mm for translations, radians for rotations
        step = 0.0002 if name.startswith("rot") else 0.01
        walk, series = 0.0, []
        for _ in range(n):
            walk += rng.gauss(0, step)
            series.append(walk)
        deriv = [None] + [b - a for a, b in zip(series[:-1], series[1:], strict=True)]
        cols[name] = series
        cols[f"{name}_derivative1"] = deriv
        cols[f"{name}_power2"] = [v * v for v in series]
        cols[f"{name}_derivative1_power2"] = [None if v is None else v * v for v in deriv]
    fd = [None] + [sum(abs(cols[f"{m}_derivative1"][i]) for m in base[:3])
                   + 50 * sum(abs(cols[f"{m}_derivative1"][i]) for m in base[3:6])
                   for i in range(1, n)]
    cols["framewise_displacement"] = fd
    cols["dvars"] = [None] + [abs(rng.gauss(20, 2)) for _ in range(n - 1)]
    cols["std_dvars"] = [None] + [abs(rng.gauss(1, 0.1)) for _ in range(n - 1)]
    cols["rmsd"] = [None] + [abs(rng.gauss(0.05, 0.01)) for _ in range(n - 1)]
    meta = {}
    for prefix, method, k in (("a_comp_cor", "aCompCor", 5), ("t_comp_cor", "tCompCor", 3)):
        cum = 0.0
        for i in range(k):
            name = f"{prefix}_{i:02d}"
            cols[name] = [rng.gauss(0, 0.1) for _ in range(n)]
            var = 0.3 / (i + 1)
            cum += var
            meta[name] = {"CumulativeVarianceExplained": cum, "Method": method,
                          "Retained": True, "SingularValue": 100.0 / (i + 1),
                          "VarianceExplained": var,
                          **({"Mask": "combined"} if method == "aCompCor" else {})}
    for i in range(3):
        cols[f"cosine{i:02d}"] = [math.sqrt(2 / n) * math.cos(math.pi * (2 * t + 1) * (i + 1)
                                                            / (2 * n)) for t in range(n)]
    header = list(cols)
    rows = [["n/a" if cols[c][t] is None else repr(float(cols[c][t])) for c in header]
            for t in range(n)]
    return header, rows, meta


def writable(path: Path) -> bool:
    """Whether a file can be created in ``path``."""
    try:
        probe = path / ".standin-probe"
        probe.write_text("x")
        probe.unlink()
        return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    tf_home = os.environ.get("TEMPLATEFLOW_HOME")
    label = args.participant_label[0].removeprefix("sub-")
    checks = {
        "license_readable": bool(args.fs_license_file) and os.access(args.fs_license_file,
                                                                     os.R_OK),
        "bids_read_only": not writable(args.bids_dir),
        "work_writable": bool(args.work_dir) and writable(args.work_dir),
        "templateflow_home_exists": bool(tf_home) and Path(tf_home).is_dir(),
        "templateflow_read_only": bool(tf_home) and not writable(Path(tf_home)),
    }
    if not checks["license_readable"]:
        print(f"fMRIPrep stand-in: licence {args.fs_license_file} is not readable",
              file=sys.stderr)
        return 1
    space, *mods = args.output_spaces[0].split(":")
    res = "".join(f"_{m}" for m in mods if m.startswith("res-"))
    out = args.output_dir
    (out / "standin").mkdir(parents=True, exist_ok=True)
    (out / "standin" / f"sub-{label}_call.json").write_text(json.dumps(
        {"argv": argv, "TEMPLATEFLOW_HOME": tf_home, "checks": checks}, indent=1))
    (args.work_dir / "standin_was_here").write_text("work in progress\n")
    rng = random.Random(args.random_seed or 0)
    n_runs = 0
    for bold in sorted((args.bids_dir / f"sub-{label}").rglob("func/*_bold.nii.gz")):
        rel = bold.relative_to(args.bids_dir).parent
        stem = bold.name[: -len("_bold.nii.gz")]
        dest = out / rel
        dest.mkdir(parents=True, exist_ok=True)
        header, dim, first, tr = read_nifti(bold)
        shutil.copyfile(bold, dest / f"{stem}_space-{space}{res}_desc-preproc_bold.nii.gz")
        task = next(e[5:] for e in stem.split("_") if e.startswith("task-"))
        (dest / f"{stem}_space-{space}{res}_desc-preproc_bold.json").write_text(json.dumps(
            {"RepetitionTime": tr, "SkullStripped": False, "TaskName": task}, indent=2))
        write_mask(header, first, dest / f"{stem}_space-{space}{res}_desc-brain_mask.nii.gz")
        cols, rows, meta = confounds(dim[4], rng)
        (dest / f"{stem}_desc-confounds_timeseries.tsv").write_text(
            "\n".join("\t".join(r) for r in [cols, *rows]) + "\n")
        (dest / f"{stem}_desc-confounds_timeseries.json").write_text(json.dumps(meta, indent=2))
        n_runs += 1
    (out / "dataset_description.json").write_text(json.dumps({
        "Name": "fMRIPrep - fMRI PREProcessing workflow (test stand-in)",
        "BIDSVersion": "1.8.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep stand-in", "Version": "0+standin"}]}, indent=2))
    print(f"fMRIPrep stand-in: sub-{label}: {n_runs} runs written to {out}")
    return 0 if n_runs else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
