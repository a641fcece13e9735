"""Time brainalign's single-trial GLM (LSA and LSS) against nilearn on the same designs.

20,000 voxels x 300 volumes x 60 trials (TR 2 s, one trial every 9.5 s on average, 6 confounds,
cosine drift), AR(1) noise with voxel-wise coefficients. For each noise model (ols, ar1):

- LSA: ours (``fit_single_trial_betas``) against nilearn's ``run_glm`` on the same design matrix
  (the fit alone) and, with ``--flm``, ``FirstLevelModel.fit(design_matrices=...)`` on a NIfTI
  of the data (masking included); time ratio and max |beta difference|.
- LSS: ours against ours LSA (the goal is at most 2x) and against a per-trial nilearn loop
  (``run_glm`` on each trial's design): ``--loop-trials`` trials of the loop are timed and the
  time is extrapolated to all trials (printed as such); betas of those trials are compared.

Times are the best of ``--repeat`` runs, as CPU time of the process (``time.process_time``,
robust to other jobs on a shared machine) and wall time; BLAS runs on ``--threads`` threads
(threadpoolctl; default 1, so that both sides get the same single core). The 1-minute load
average is printed with the figures.

Usage::

    python benchmarks/bench_glm.py [--n-voxels 20000] [--n-volumes 300] [--n-trials 60]
                                   [--repeat 3] [--loop-trials 3] [--threads 1] [--flm]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from brainalign.fmri.glm import fit_single_trial_betas, lss_design, single_trial_design

T_R = 2.0


def simulate(n_vox: int, n_vol: int, n_trials: int, seed: int):
    """Design (LSA), trial columns and AR(1)-noise data with planted trial amplitudes."""
    rng = np.random.default_rng(seed)
    span = n_vol * T_R - 30.0
    onsets = np.sort(rng.uniform(4.0, span, n_trials))
    events = pd.DataFrame({"onset": onsets, "duration": 1.0})
    confounds = pd.DataFrame(rng.standard_normal((n_vol, 6)),
                             columns=[f"conf{i}" for i in range(6)])
    design, cols = single_trial_design(events, n_vol, T_R, confounds=confounds)
    amp = rng.standard_normal((n_trials, n_vox))
    rho = rng.uniform(0.0, 0.6, n_vox)
    noise = np.empty((n_vol, n_vox))
    noise[0] = rng.standard_normal(n_vox)
    for t in range(1, n_vol):
        noise[t] = rho * noise[t - 1] + rng.standard_normal(n_vox)
    data = design[cols].to_numpy() @ amp + 0.5 * noise
    return design, cols, data


def best_time(fn, repeat: int):
    """Best CPU and wall time of ``repeat`` calls, and the last result."""
    cpu, wall, out = np.inf, np.inf, None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return (cpu, wall), out


def fmt(t) -> str:
    """CPU / wall seconds."""
    return f"{t[0]:.3f} s CPU ({t[1]:.3f} s wall)"


def ratio(a, b) -> str:
    """Ratio a / b of CPU and of wall times."""
    return f"{a[0] / b[0]:.1f}x CPU ({a[1] / b[1]:.1f}x wall)"


def nilearn_theta(data: np.ndarray, design: np.ndarray, noise_model: str) -> np.ndarray:
    """All coefficients from nilearn's run_glm."""
    from nilearn.glm.first_level import run_glm

    labels, results = run_glm(data, design, noise_model=noise_model)
    theta = np.empty((design.shape[1], data.shape[1]))
    for label, res in results.items():
        theta[:, labels == label] = res.theta
    return theta


def nilearn_flm_theta(img, mask, design: pd.DataFrame, noise_model: str) -> np.ndarray:
    """All coefficients from nilearn's FirstLevelModel fitted with design_matrices."""
    from nilearn.glm.first_level import FirstLevelModel

    flm = FirstLevelModel(mask_img=mask, noise_model=noise_model, signal_scaling=False)
    flm.fit(img, design_matrices=[design])
    theta = np.empty((design.shape[1], int(np.asanyarray(mask.dataobj).sum())))
    for label, res in flm.results_[0].items():
        theta[:, flm.labels_[0] == label] = res.theta
    return theta


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-voxels", type=int, default=20000)
    ap.add_argument("--n-volumes", type=int, default=300)
    ap.add_argument("--n-trials", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loop-trials", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (both sides)")
    ap.add_argument("--flm", action="store_true", help="also time nilearn FirstLevelModel")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    threadpool_limits(args.threads)
    design, cols, data = simulate(args.n_voxels, args.n_volumes, args.n_trials, args.seed)
    idx = [design.columns.get_loc(c) for c in cols]
    x = design.to_numpy()
    print(f"{args.n_voxels} voxels x {args.n_volumes} volumes x {args.n_trials} trials; "
          f"design {x.shape}; best of {args.repeat}; {args.threads} BLAS thread(s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    img = mask = None
    if args.flm:
        import nibabel as nib

        img = nib.Nifti1Image(data.T.reshape(args.n_voxels, 1, 1, -1).astype(np.float64),
                              np.eye(4))
        mask = nib.Nifti1Image(np.ones((args.n_voxels, 1, 1), np.uint8), np.eye(4))
    for noise_model in ("ols", "ar1"):
        t_lsa, lsa = best_time(lambda nm=noise_model: fit_single_trial_betas(
            data, design, cols, noise_model=nm, method="lsa"), args.repeat)
        t_ref, ref = best_time(lambda nm=noise_model: nilearn_theta(data, x, nm), args.repeat)
        diff = np.abs(lsa - ref[idx]).max()
        print(f"[{noise_model}] LSA ours {fmt(t_lsa)} | nilearn run_glm {fmt(t_ref)} | "
              f"nilearn/ours {ratio(t_ref, t_lsa)} | max |beta diff| {diff:.2e}")
        if args.flm:
            t_flm, flm = best_time(lambda nm=noise_model: nilearn_flm_theta(
                img, mask, design, nm), max(1, args.repeat - 1))
            print(f"[{noise_model}] LSA nilearn FirstLevelModel {fmt(t_flm)} | nilearn/ours "
                  f"{ratio(t_flm, t_lsa)} | max |beta diff| {np.abs(lsa - flm[idx]).max():.2e}")
        t_lss, lss = best_time(lambda nm=noise_model: fit_single_trial_betas(
            data, design, cols, noise_model=nm, method="lss"), args.repeat)
        k = min(args.loop_trials, len(cols))
        (t_loop, loop) = best_time(lambda nm=noise_model, k=k: [nilearn_theta(
            data, lss_design(design, cols, i).to_numpy(), nm)[0] for i in range(k)], 1)
        t_loop = (t_loop[0] / k * len(cols), t_loop[1] / k * len(cols))
        diff = np.abs(lss[:k] - np.array(loop)).max()
        print(f"[{noise_model}] LSS ours {fmt(t_lss)} = {ratio(t_lss, t_lsa)} our LSA")
        print(f"[{noise_model}] LSS nilearn per-trial run_glm loop {fmt(t_loop)} (timed on {k} "
              f"trials, extrapolated to {len(cols)}) = {ratio(t_loop, t_lsa)} our LSA, "
              f"{ratio(t_loop, t_lss)} our LSS | max |beta diff| on those {k} trials {diff:.2e}")

if __name__ == "__main__":
    main()
