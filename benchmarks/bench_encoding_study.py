"""Encoding for a whole study: one shared fit per layer against today's per-subject fits.

The study: 20 subjects x 5 ROIs (500, 400, 300, 250 and 200 voxels: 1,650 voxels per subject,
33,000 in all) x 10 layers x 1,000 stimuli. Layer widths after pooling: 512, 768, 1,024,
1,536, 2,048, 2,048, 3,072, 3,072, 4,096 and 4,096 features (the first two use the primal
solver, the others the kernel form, as ``solver="auto"`` chooses on 800 training stimuli).
Encoding as the workflow runs it: the config's 7 penalties, 5 outer x 5 inner folds, float64,
``cross_validated_ridge``.

* per-subject (today: one job per subject x layer): ``cross_validated_ridge(X, Y_subject)``
  for each subject;
* shared (``encoding.subjects_per_job``): ``cross_validated_ridge_shared(X, [Y_1, ..., Y_k])``
  for each part of ``k`` subjects; reported for parts of 20 (one job per layer) and of 10 (the
  default: two jobs per layer).

Both run on the same data in the same process, layer by layer (per-subject, then shared), so
that load on the machine hits both alike. Printed per layer: wall times, the ratio
per-subject / shared, the largest absolute difference of r and r2 over every voxel, and the
fraction of voxels with the same penalties in every outer fold.

On the 2-core development machine the full study takes about an hour; ``--layers`` and
``--subjects`` run a fraction (e.g. ``--layers 0 4 9``: the narrowest, a middle and the widest
layer), and the totals are then extrapolated to the 10 layers from the per-layer times
(saying so).

Usage::

    python benchmarks/bench_encoding_study.py [--subjects 20] [--layers 0 4 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import os

WIDTHS = (512, 768, 1024, 1536, 2048, 2048, 3072, 3072, 4096, 4096)
ROI_VOXELS = (500, 400, 300, 250, 200)
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subjects", type=int, default=20)
    p.add_argument("--stimuli", type=int, default=1000)
    p.add_argument("--layers", type=int, nargs="*", default=list(range(len(WIDTHS))),
                   help="indices into the 10 layer widths to run (default: all)")
    p.add_argument("--part", type=int, default=10, help="subjects per job of the default")
    p.add_argument("--study-subjects", type=int, default=20,
                   help="with --subjects below it, also extrapolate to this many subjects")
    p.add_argument("--study-part", type=int, default=10,
                   help="subjects per job in that extrapolation (encoding.subjects_per_job)")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = _parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import time  # noqa: E402

import numpy as np  # noqa: E402

from brainalign.encoding import cross_validated_ridge, cross_validated_ridge_shared  # noqa: E402

RIDGE = {"alphas": ALPHAS, "n_folds": 5, "n_inner_folds": 5, "seed": 0}


def _layer(rng: np.random.Generator, n_features: int) -> np.ndarray:
    """Non-negative, correlated unit activations (a low-rank part plus noise, ReLU-like)."""
    n = ARGS.stimuli
    latent = rng.standard_normal((n, 64)) @ rng.standard_normal((64, n_features))
    return np.maximum(latent + 2.0 * rng.standard_normal((n, n_features)), 0.0)


def _responses(rng: np.random.Generator, X: np.ndarray) -> list[np.ndarray]:
    """Per subject: ROI voxels mixing the layer's units, SNR varying by voxel and subject."""
    z = (X - X.mean(0)) / (X.std(0) + 1e-12)
    out = []
    n_vox = sum(ROI_VOXELS)
    for _ in range(ARGS.subjects):
        w = rng.standard_normal((X.shape[1], n_vox)) / np.sqrt(X.shape[1])
        signal = z @ w
        snr = rng.uniform(0.05, 1.0, n_vox)
        out.append(signal * snr + rng.standard_normal(signal.shape))
    return out


def _timed(fn):
    t0 = time.perf_counter()
    res = fn()
    return res, time.perf_counter() - t0


def main() -> None:
    rng = np.random.default_rng(ARGS.seed)
    print(f"study: {ARGS.subjects} subjects x {len(ROI_VOXELS)} ROIs {ROI_VOXELS} "
          f"({sum(ROI_VOXELS)} voxels/subject) x {ARGS.stimuli} stimuli; layers run: "
          f"{[WIDTHS[i] for i in ARGS.layers]} of {list(WIDTHS)}; {len(ALPHAS)} alphas, "
          f"5 x 5 folds, float64, {ARGS.threads} BLAS thread(s); load {os.getloadavg()}")
    k, part = ARGS.subjects, ARGS.part
    header = (f"{'layer':>5} {'width':>6} {'per-subject s':>14} {f'shared/{k} s':>12} "
              f"{f'shared/{part} s':>12} {f'ratio/{k}':>9} {f'ratio/{part}':>9} "
              f"{'max|dr|':>9} {'max|dr2|':>9} {'same alpha':>10}")
    print(header)
    times = {}
    worst = 0.0
    for i in ARGS.layers:
        X = _layer(rng, WIDTHS[i])
        Ys = _responses(rng, X)
        per, t_per = _timed(lambda X=X, Ys=Ys: [cross_validated_ridge(X, Y, **RIDGE) for Y in Ys])
        shared, t_all = _timed(lambda X=X, Ys=Ys: cross_validated_ridge_shared(X, Ys, **RIDGE))
        _, t_part = _timed(lambda X=X, Ys=Ys: [
            cross_validated_ridge_shared(X, Ys[k:k + ARGS.part], **RIDGE)
            for k in range(0, len(Ys), ARGS.part)
        ])
        pairs = list(zip(per, shared, strict=True))
        dr = max(float(np.abs(a["r"] - b["r"]).max()) for a, b in pairs)
        dr2 = max(float(np.abs(a["r2"] - b["r2"]).max()) for a, b in pairs)
        same = np.mean([np.all(a["alpha"] == b["alpha"], axis=0).mean() for a, b in pairs])
        worst = max(worst, dr, dr2)
        times[i] = (t_per, t_all, t_part)
        print(f"{i:>5} {WIDTHS[i]:>6} {t_per:>14.1f} {t_all:>12.1f} {t_part:>12.1f} "
              f"{t_per / t_all:>9.2f} {t_per / t_part:>9.2f} {dr:>9.1e} {dr2:>9.1e} {same:>10.4f}",
              flush=True)
    t = np.array(list(times.values()))
    per_s, all_s, part_s = t.sum(0)
    print(f"total over the {len(times)} layer(s) run: per-subject {per_s:.1f} s, shared (1 job "
          f"of {ARGS.subjects}) {all_s:.1f} s (ratio {per_s / all_s:.2f}), shared (parts of "
          f"{ARGS.part}) {part_s:.1f} s (ratio {per_s / part_s:.2f}); largest |difference| of "
          f"r and r2 over every voxel: {worst:.1e}")
    if len(times) < len(WIDTHS):
        order = sorted(times, key=lambda k: WIDTHS[k])
        w_run = np.array([WIDTHS[k] for k in order], float)
        est = np.array([[np.interp(w, w_run, [times[k][j] for k in order]) for j in range(3)]
                        for w in WIDTHS]).sum(0)
        print(f"ESTIMATE for all 10 layers (not measured: per-layer times interpolated linearly "
              f"in width between the widths run, {w_run.astype(int).tolist()}): per-subject "
              f"{est[0]:.0f} s, shared/{ARGS.subjects} {est[1]:.0f} s (ratio "
              f"{est[0] / est[1]:.2f}), shared/{ARGS.part} {est[2]:.0f} s (ratio "
              f"{est[0] / est[2]:.2f})")
    if ARGS.subjects < ARGS.study_subjects:
        _extrapolate_subjects(times)
    print(f"load after: {os.getloadavg()}")


def _extrapolate_subjects(times: dict[int, tuple[float, float, float]]) -> None:
    """Study-size estimate from a run with fewer subjects (printed as such, not measured).

    Per layer, one subject alone costs ``F + T`` (F: the decompositions, shared; T: the
    per-voxel products, not shared) and the shared fit of k subjects ``F + k T``, so
    ``T = (t_shared - t_one) / (k - 1)`` and ``F = t_one - T``.
    """
    k, n, part = ARGS.subjects, ARGS.study_subjects, ARGS.study_part
    est = np.zeros(3)
    print(f"ESTIMATE for {n} subjects (not measured: F and T of each layer from the {k}-subject "
          f"run, per-subject = {n} (F + T), shared = F + {n} T, parts of {part} = "
          f"ceil({n}/{part}) F + {n} T):")
    for i, (t_per, t_all, _) in times.items():
        one = t_per / k
        T = (t_all - one) / (k - 1)
        F = one - T
        e = np.array([n * one, F + n * T, -(-n // part) * F + n * T])
        est += e
        print(f"  layer {i} (width {WIDTHS[i]}): F {F:.1f} s, T {T:.1f} s per subject; "
              f"per-subject {e[0]:.0f} s, shared/{n} {e[1]:.0f} s (ratio {e[0] / e[1]:.2f}), "
              f"shared/{part} {e[2]:.0f} s (ratio {e[0] / e[2]:.2f})")
    print(f"  over these layers: per-subject {est[0]:.0f} s, shared/{n} {est[1]:.0f} s (ratio "
          f"{est[0] / est[1]:.2f}), shared/{part} {est[2]:.0f} s (ratio {est[0] / est[2]:.2f})")


if __name__ == "__main__":
    main()
