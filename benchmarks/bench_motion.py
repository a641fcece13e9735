"""Realignment candidates for the light path: speed and accuracy on planted motion.

A smooth synthetic head (Gaussian blobs on an ellipsoid, smoothed by a 1-voxel Gaussian like an
EPI's point spread; 3 mm voxels) moves along a random walk of rigid transforms (up to ~2 mm and
~2 degrees); each candidate realigns the run and its motion, re-expressed relative to the first
volume, is compared with the planted one (max error over volumes, translation mm / rotation
degrees), with CPU and wall time. Candidates:

- nipy ``Realign4d`` (what brainalign runs; nipype's ``SpaceTimeRealigner`` wraps it), reference
  mean and first, nipy's default estimation (speedup 5, 5 loops) and Roche 2011's (speedup
  (5, 2), loops (5, 1));
- ANTsPy ``ants.motion_correction`` (BOLDRigid, mean reference). antspyx 0.6.3 requires
  numpy < 2.4 and cannot join brainalign's environment (numpy 2.4.6): give ``--ants-python`` a
  separate venv's python with ``antspyx==0.6.3 nibabel`` and this script runs the ANTs part
  there on the same image and prints the ratio.

Measured (2 shared cores, load average 9-14, so compare CPU seconds):

=====================================  ===========  ======  ======  ==========  ===========
candidate                              phantom      wall s  cpu s   max dt mm   max dr deg
=====================================  ===========  ======  ======  ==========  ===========
nipy, ref mean, speedup 5, loops 5     40x40x28x30   138.8    14.7       0.029        0.025
nipy, ref first, speedup 5, loops 5    40x40x28x30    46.3    13.5       0.002        0.012
nipy, ref mean, (5, 2) / (5, 1)        40x40x28x30    90.8    29.2       0.029        0.029
ANTsPy motion_correction, BOLDRigid    40x40x28x30    52.1    18.1       0.107        0.850
nipy, ref mean, speedup 5, loops 5     64x64x36x20   133.0    19.7       0.007        0.009
nipy, ref first, speedup 5, loops 5    64x64x36x20    48.9    18.6       0.003        0.006
nipy, ref mean, (5, 2) / (5, 1)        64x64x36x20   106.5    44.4       0.006        0.010
=====================================  ===========  ======  ======  ==========  ===========

Usage::

    .venv/bin/python benchmarks/bench_motion.py [--shape 48 48 32] [--volumes 60]
        [--ants-python /tmp/antsvenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import affine_transform, gaussian_filter
from scipy.spatial.transform import Rotation


def rigid(p):
    """4x4 world transform from (translation mm, rotation vector rad)."""
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(p[3:]).as_matrix()
    m[:3, 3] = p[:3]
    return m


def as_params(m):
    return np.r_[m[:3, 3], Rotation.from_matrix(m[:3, :3]).as_rotvec()]


def phantom(shape, n_volumes, seed=0):
    """Planted-motion run (I_t(y) = I_0(T_t^-1 y)) and the motion (n_volumes, 6)."""
    rng = np.random.default_rng(seed)
    shape = np.asarray(shape)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -3.0 * (shape - 1) / 2
    g = np.indices(tuple(shape)).reshape(3, -1).T.astype(float)
    centre = (shape - 1) / 2
    vol = ((((g - centre) / (0.38 * shape)) ** 2).sum(1) < 1.0).astype(float)
    for _ in range(int(np.prod(shape) / 1500)):
        c, s = rng.uniform(0.2, 0.8, 3) * shape, rng.uniform(1.5, 2.5)
        vol += rng.uniform(0.3, 0.6) * np.exp(-((g - c) ** 2).sum(1) / (2 * s * s))
    head = gaussian_filter(1000.0 * vol.reshape(tuple(shape)), 1.0)
    steps = np.hstack([rng.normal(0, 0.25, (n_volumes, 3)),
                       np.deg2rad(rng.normal(0, 0.25, (n_volumes, 3)))])
    steps[0] = 0
    true = np.cumsum(steps, axis=0)
    true[:, :3] = np.clip(true[:, :3], -2, 2)
    true[:, 3:] = np.clip(true[:, 3:], -np.deg2rad(2), np.deg2rad(2))
    vols = []
    for p in true:
        v = np.linalg.inv(affine) @ np.linalg.inv(rigid(p)) @ affine
        vols.append(affine_transform(head, v[:3, :3], offset=v[:3, 3], order=3, mode="constant"))
    return nib.Nifti1Image(np.stack(vols, -1).astype(np.float32), affine), true


def errors(est_mats, true):
    """Max errors (mm, degrees) of the motion relative to volume 0."""
    ref = np.linalg.inv(est_mats[0])
    rel = np.array([as_params(ref @ m) for m in est_mats])
    return (float(np.abs(rel[:, :3] - true[:, :3]).max()),
            float(np.rad2deg(np.abs(rel[:, 3:] - true[:, 3:]).max())))


def run_nipy(img, reference, speedup, loops):
    from nipy.algorithms.registration.groupwise_registration import Realign4d

    reg = Realign4d(nib.Nifti1Image(np.asarray(img.dataobj, float), img.affine), tr=1.0,
                    slice_times=None, slice_info=(2, 1))
    reg.estimate(refscan=0 if reference == "first" else None, speedup=speedup, loops=loops)
    reg.resample(0)
    return [rigid(np.r_[t.translation, t.rotation]) for t in reg._transforms[0]]


def run_ants(path):
    import ants

    img = ants.image_read(str(path))
    res = ants.motion_correction(img, type_of_transform="BOLDRigid")
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])  # ITK's LPS to nibabel's RAS
    mats = []
    for files in res["motion_parameters"]:
        tx = ants.read_transform(files[0])
        a = np.asarray(tx.parameters[:9]).reshape(3, 3)
        t, c = np.asarray(tx.parameters[9:12]), np.asarray(tx.fixed_parameters[:3])
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = a, t + c - a @ c  # maps fixed (reference) points to the volume
        mats.append(flip @ m @ flip)
    return mats


def timed(fn, *args):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[48, 48, 32])
    ap.add_argument("--volumes", type=int, default=60)
    ap.add_argument("--ants-python", default=None)
    ap.add_argument("--only-ants", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.only_ants:  # child process in the ANTs venv
        mats, wall, cpu = timed(run_ants, args.only_ants)
        print(json.dumps({"mats": [m.tolist() for m in mats], "wall": wall, "cpu": cpu}))
        return 0
    img, true = phantom(args.shape, args.volumes)
    print(f"phantom {tuple(args.shape)} x {args.volumes} volumes, 3 mm voxels; planted max "
          f"|translation| {np.abs(true[:, :3]).max():.2f} mm, max |rotation| "
          f"{np.rad2deg(np.abs(true[:, 3:]).max()):.2f} deg")
    rows = []
    for reference, speedup, loops in [("mean", 5, 5), ("first", 5, 5),
                                      ("mean", (5, 2), (5, 1))]:
        mats, wall, cpu = timed(run_nipy, img, reference, speedup, loops)
        rows.append((f"nipy Realign4d ref={reference} speedup={speedup} loops={loops}",
                     wall, cpu, *errors(mats, true)))
    if args.ants_python:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bold.nii.gz"
            nib.save(img, path)
            out = subprocess.run([args.ants_python, __file__, "--only-ants", str(path)],
                                 capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(("ANTsPy motion_correction BOLDRigid (mean ref)", res["wall"], res["cpu"],
                     *errors([np.asarray(m) for m in res["mats"]], true)))
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"load average: {load} (wall times inflate on a busy machine; compare cpu)")
    print(f"{'candidate':<58} {'wall s':>7} {'cpu s':>7} {'max dt mm':>9} {'max dr deg':>10}")
    for name, wall, cpu, et, er in rows:
        print(f"{name:<58} {wall:7.1f} {cpu:7.1f} {et:9.3f} {er:10.3f}")
    if args.ants_python:
        print(f"ratio ANTsPy / nipy (default, mean ref): wall {rows[-1][1] / rows[0][1]:.2f}, "
              f"cpu {rows[-1][2] / rows[0][2]:.2f} (ANTs runs several threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
