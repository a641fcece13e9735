"""Null encoding scores and single-subject RSA ceilings, by simulation (issue 9, section 7).

    python benchmarks/sim_null_and_ceiling.py [--quick] [--no-real-features] [--seed 0]

Prints five tables (all seeded; about 4 minutes on 2 idle cores, ``--quick`` about 1):

A. Encoding scores of pure-noise responses that are independent across stimuli
   (``encoding.cross_validated_ridge`` with the workflow's penalty grid and 5 x 5 folds):
   mean ROI score (32 voxels) over many null datasets with its standard error, its SD, mean
   |ROI score|, the voxel SD, and the share of voxels at the largest penalty. Variants check the
   candidate mechanisms: correlating the concatenated predictions instead of averaging
   within-fold r, unstandardised features, float32 with penalties up to 1e8.
B. The ROI mean's spread when voxels share noise (correlation rho between any two voxels):
   SD and mean |.| over 200 ROIs, the correlation c of two voxels' scores, and
   ``encoding.null.roi_null_sd``'s prediction.
C. The fMRI chain without signal: BOLD with AR(1) noise (0.4), a global component and drift,
   through ``fmri.preprocess_light``, ``single_trial_design``, ``fit_single_trial_betas``
   (AR(1) GLM), ``average_repeats``; 92 stimuli, 6 runs, 3 repeats, TR 1.5 s, 3-5 s between
   onsets. Per design: the mean score of 256 independent voxels (the design's offset, shared by
   all its voxels) next to ``encoding.null.null_scores`` on the covariance implied by the
   design (E0), and 32-voxel ROIs (independent, or sharing half their noise) before and after
   subtracting E0.
D. Single-subject RSA ceilings: true patterns, R repeats with noise sigma, data RDM from the
   mean, noiseless model RDM(truth); the score, the previous ceiling sqrt(Spearman-Brown),
   and ``rsa.split_half_ceiling``'s lower and upper bounds: means, SDs, mean(ceiling - score)
   with its standard error.

Features: the 92 real images of ``../shared/data/kriegeskorte2008_92images`` through
EfficientNet-Lite0 (shipped weights; extracted once in a subprocess and cached under
``$TMPDIR/brainalign_sim_cache``), or correlated Gaussian features with a decaying spectrum
when the images are missing or ``--no-real-features`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "data" / "kriegeskorte2008_92images"
CACHE = Path(tempfile.gettempdir()) / "brainalign_sim_cache"
ALPHAS = [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]  # config/config.yaml encoding.ridge.alphas
TR = 1.5

_EXTRACT = """
import sys, glob, numpy as np
from brainalign.features import build_model, extract_features
paths = sorted(glob.glob(sys.argv[1] + '/stimuli/stim*.png'))
model = build_model({'architecture': 'efficientnet_lite0', 'weights': 'shipped', 'seed': 0})
f = extract_features(model, 'efficientnet_lite0', paths, ['stage2', 'stage6', 'head'],
                     spatial_pool=4, device='cpu')
np.savez(sys.argv[2], **f)
"""


def synthetic_features(rng: np.random.Generator, n: int, p: int = 3000, rank: int = 64):
    """Correlated Gaussian features with a 1/k spectrum (as a DNN layer's)."""
    z = rng.standard_normal((n, rank)) * np.arange(1, rank + 1) ** -1.0
    return z @ rng.standard_normal((rank, p)) + 0.1 * rng.standard_normal((n, p))


def real_features() -> dict[str, np.ndarray] | None:
    """EfficientNet-Lite0 features of the 92 images, cached; None if unavailable."""
    path = CACHE / "efficientnet_lite0_92images.npz"
    if not path.exists():
        if not (IMAGES / "stimuli").is_dir():
            return None
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial.npz")
        run = subprocess.run([sys.executable, "-c", _EXTRACT, str(IMAGES), str(tmp)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"(feature extraction failed, using synthetic features: "
                  f"{run.stderr.strip().splitlines()[-1:]})")
            return None
        tmp.rename(path)
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def fmt(x: float) -> str:
    return f"{x:+.4f}"


# ---------------------------------------------------------------------------------------------
# A. exchangeable null


def table_a(rng, feats, n_sets: int) -> None:
    from brainalign.encoding import cross_validated_ridge, pearson_columns

    print("\nA. Encoding scores, pure noise independent across stimuli (32-voxel ROIs)")
    print(f"{'features':<22}{'n':>4}{'variant':>14}{'ROIs':>6}{'mean ROI':>10}{'SE':>8}"
          f"{'SD ROI':>8}{'mean|ROI|':>10}{'voxel SD':>9}{'top a':>7}")
    cases = []
    for n in (92, 48):
        cases.append(("gaussian p=3000", n, None))
        if feats is not None:
            for layer in ("stage2", "stage6", "head"):
                cases.append((f"effnet {layer}", n, layer))
    for name, n, layer in cases:
        variants = ["per-fold r", "concatenated"]
        if layer is None and n == 48:
            variants += ["unstandardised", "float32 a<=1e8"]
        rows = {v: [] for v in variants}
        vox = {v: [] for v in variants}
        top = {v: [] for v in variants}
        per_call = 8  # ROIs per cross-validation call (same features and folds)
        for k in range(max(n_sets // per_call, 2)):
            if layer is None:
                X = synthetic_features(rng, n)
            else:
                X = feats[layer][np.sort(rng.choice(92, n, replace=False))] if n < 92 \
                    else feats[layer]
            Y = rng.standard_normal((n, 32 * per_call))
            base = cross_validated_ridge(X, Y, alphas=ALPHAS, seed=k)
            for v in variants:
                alphas, res = ALPHAS, base
                if v == "unstandardised":
                    res = cross_validated_ridge(X, Y, alphas=alphas, seed=k,
                                                ridge_params={"standardize": False})
                elif v == "float32 a<=1e8":
                    alphas = ALPHAS + [1e6, 1e7, 1e8]
                    res = cross_validated_ridge(X, Y, alphas=alphas, seed=k,
                                                ridge_params={"dtype": "float32"})
                # "concatenated": one r over all held-out predictions instead of the mean of
                # within-fold r (each fold's training mean anti-correlates with its test data)
                r = pearson_columns(res["predictions"], Y) if v == "concatenated" else res["r"]
                rows[v] += list(r.reshape(per_call, 32).mean(1))
                vox[v].append(r.std())
                top[v].append(np.mean(res["alpha"] == max(alphas)))
        for v in variants:
            roi = np.array(rows[v])
            print(f"{name:<22}{n:>4}{v:>14}{roi.size:>6}{fmt(roi.mean()):>10}"
                  f"{roi.std(ddof=1) / np.sqrt(roi.size):>8.4f}{roi.std(ddof=1):>8.4f}"
                  f"{np.abs(roi).mean():>10.4f}{np.mean(vox[v]):>9.4f}{np.mean(top[v]):>7.2f}")


# ---------------------------------------------------------------------------------------------
# B. shared noise across voxels


def table_b(rng, n_rois: int) -> None:
    from brainalign.encoding import cross_validated_ridge
    from brainalign.encoding.null import roi_null_sd

    print("\nB. Spread of a pure-noise ROI's mean score when its 32 voxels share noise")
    print(f"{'n':>4}{'rho':>6}{'ROIs':>6}{'mean ROI':>10}{'SD ROI':>8}{'mean|ROI|':>10}"
          f"{'voxel SD':>9}{'c':>7}{'roi_null_sd':>12}{'P(|ROI|>=.1)':>13}")
    for n in (92, 48):
        X = synthetic_features(rng, n)
        for rho in (0.0, 0.25, 0.5, 0.75):
            shared = rng.standard_normal((n, n_rois, 1))
            Y = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal((n, n_rois, 32))
            r = cross_validated_ridge(X, Y.reshape(n, -1), alphas=ALPHAS, seed=1)["r"]
            r = r.reshape(n_rois, 32)
            roi = r.mean(1)
            cc = np.corrcoef(r[:, :8].T)
            c = cc[np.triu_indices(8, 1)].mean()
            pred = roi_null_sd(r.std(), 32, score_correlation=max(c, 0.0))
            print(f"{n:>4}{rho:>6.2f}{n_rois:>6}{fmt(roi.mean()):>10}{roi.std(ddof=1):>8.4f}"
                  f"{np.abs(roi).mean():>10.4f}{r.std():>9.4f}{c:>7.3f}{pred:>12.4f}"
                  f"{np.mean(np.abs(roi) >= 0.1):>13.3f}")


# ---------------------------------------------------------------------------------------------
# C. the fMRI chain


def _ar1(rng, n_t: int, n_v: int, rho: float) -> np.ndarray:
    e = rng.standard_normal((n_t, n_v)) * np.sqrt(1 - rho**2)
    out = np.empty_like(e)
    out[0] = rng.standard_normal(n_v)
    for t in range(1, n_t):
        out[t] = rho * out[t - 1] + e[t]
    return out


def _schedule(rng, n_stim: int, n_runs: int) -> list[np.ndarray]:
    """Each pair of runs shows every stimulus once, split at random (as the demo)."""
    runs = []
    for _ in range(n_runs // 2):
        order = rng.permutation(n_stim)
        runs += [order[: n_stim // 2], order[n_stim // 2:]]
    return runs


def simulate_chain(rng, n_stim: int, *, n_runs: int = 6, ar_rho: float = 0.4):
    """One subject's null responses through brainalign's fMRI functions.

    Returns responses (n_stim, 256 + 32) -- 256 voxels with independent noise (besides a
    global component the confounds partly remove), then 32 voxels sharing half their noise --
    and the noise covariance of the averaged betas implied by the designs.
    """
    import nibabel as nib

    from brainalign import fmri
    from brainalign.encoding.null import averaged_noise_covariance, beta_noise_covariance

    grid = (14, 14, 10)
    roi = np.zeros(grid, bool)
    roi[3:11, 3:11, 1:5] = True  # 256 voxels
    roi2 = np.zeros(grid, bool)
    roi2[5:9, 5:9, 6:8] = True  # 32 voxels
    both = roi | roi2
    nv = int(np.prod(grid))
    betas, stim_files, covs = [], [], []
    for stims in _schedule(rng, n_stim, n_runs):
        onsets = 8.0 + np.concatenate([[0], np.cumsum(rng.uniform(3, 5, len(stims) - 1))])
        ev = pd.DataFrame({"onset": onsets, "duration": 1.0,
                           "stim_file": [f"s{s:03d}" for s in stims]})
        n_t = int(np.ceil((onsets[-1] + 16) / TR))
        noise = np.sqrt(0.7) * _ar1(rng, n_t, nv, ar_rho) + np.sqrt(0.3) * _ar1(rng, n_t, 1, ar_rho)
        sel = roi2.ravel()
        noise[:, sel] = np.sqrt(0.5) * noise[:, sel] + np.sqrt(0.5) * _ar1(rng, n_t, 1, ar_rho)
        t = np.arange(n_t) * TR
        drift = sum(rng.standard_normal(nv)[None] * np.cos(np.pi * k * t / t[-1])[:, None]
                    for k in (1, 2)) / np.sqrt(2)
        data = (1000 * (1 + (noise + drift) / 100)).reshape(n_t, *grid).transpose(1, 2, 3, 0)
        img = nib.Nifti1Image(data.astype(np.float32), np.diag([3.0, 3, 3, 1]))
        try:
            out = fmri.preprocess_light(img, n_confounds=5, confound_exclude=both)
        except TypeError:  # an older signature without confound_exclude
            out = fmri.preprocess_light(img, n_confounds=5)
        preproc, _, conf = out[:3]
        vol = np.asanyarray(preproc.dataobj)
        ts = np.concatenate([vol[roi].T, vol[roi2].T], axis=1).astype(np.float64)
        design, cols = fmri.single_trial_design(ev, n_t, TR, confounds=conf)
        betas.append(fmri.fit_single_trial_betas(ts, design, cols, noise_model="ar1"))
        stim_files += list(ev["stim_file"])
        idx = [design.columns.get_loc(c) for c in cols]
        covs.append(beta_noise_covariance(design.to_numpy(), idx, ar1_rho=ar_rho))
    stimuli = [f"s{s:03d}" for s in range(n_stim)]
    mean = fmri.average_repeats(np.concatenate(betas), stim_files, stimuli)[0]
    return mean, averaged_noise_covariance(covs, stim_files, stimuli)


def table_c(rng, X, n_designs: int) -> None:
    from brainalign.encoding import cross_validated_ridge
    from brainalign.encoding.null import null_scores

    print(f"\nC. fMRI chain without signal: {n_designs} designs x (256 independent voxels "
          "+ 32 voxels sharing half their noise), 92 stimuli")
    print(f"{'design':>6}{'mean 256 vox':>14}{'SE':>8}{'E0':>9}{'E0 SE':>8}"
          f"{'ROI32 raw':>11}{'ROI32-E0':>10}{'shared32':>10}{'shared-E0':>10}{'top a':>7}")
    rows = []
    for d in range(n_designs):
        Y, cov = simulate_chain(rng, 92)
        res = cross_validated_ridge(X, Y, alphas=ALPHAS, seed=0)
        r = res["r"]
        e0 = null_scores(X, cov, alphas=ALPHAS, seed=0, n_samples=1024, random_state=d)
        ind, shared = r[:256], r[256:]
        rows.append([ind.mean(), ind.std() / 16, e0["mean"], e0["se"], ind[:32].mean(),
                     shared.mean(), np.mean(res["alpha"] == max(ALPHAS))])
        x = rows[-1]
        print(f"{d:>6}{fmt(x[0]):>14}{x[1]:>8.4f}{fmt(x[2]):>9}{x[3]:>8.4f}{fmt(x[4]):>11}"
              f"{fmt(x[4] - x[2]):>10}{fmt(x[5]):>10}{fmt(x[5] - x[2]):>10}{x[6]:>7.2f}")
    a = np.array(rows)
    k = len(a)
    resid = a[:, 0] - a[:, 2]
    print(f"  design offset (mean of 256 voxels): mean {fmt(a[:, 0].mean())} "
          f"(SE {a[:, 0].std(ddof=1) / np.sqrt(k):.4f}), SD over designs "
          f"{a[:, 0].std(ddof=1):.4f}; corr with E0 {np.corrcoef(a[:, 0], a[:, 2])[0, 1]:.3f}; "
          f"SD after subtracting E0 {resid.std(ddof=1):.4f} (Monte Carlo SE of the two means "
          f"{np.sqrt(np.mean(a[:, 1] ** 2 + a[:, 3] ** 2)):.4f})")
    for name, col in (("independent 32-voxel ROI", 4), ("32-voxel ROI sharing noise", 5)):
        raw, cor = a[:, col], a[:, col] - a[:, 2]
        print(f"  {name}: raw mean {fmt(raw.mean())} SD {raw.std(ddof=1):.4f} mean|.| "
              f"{np.abs(raw).mean():.4f}; minus E0: mean {fmt(cor.mean())} SD "
              f"{cor.std(ddof=1):.4f} mean|.| {np.abs(cor).mean():.4f}")


# ---------------------------------------------------------------------------------------------
# D. RSA ceiling


def table_d(rng, n_sim: int, sigmas) -> None:
    from brainalign import rsa
    from brainalign.fmri import noise_ceiling_from_reliability
    from brainalign.rsa.split_half import split_half_ceiling

    print(f"\nD. Single-subject RSA ceiling vs the noiseless model's score ({n_sim} datasets "
          "per row; correlation distance; 92 stimuli)")
    print(f"{'truth':<14}{'method':<9}{'R':>2}{'sigma':>6}{'score':>7}{'SD':>6}"
          f"{'old':>7}{'SD':>6}{'old-score':>10}{'lower':>7}{'upper':>7}{'SD':>6}"
          f"{'upper-score':>12}{'SE':>7}{'P(s>up)':>8}")
    cats = np.arange(92) % 6
    truths = {"6 cats, 32 vx": (32, 0.0), "iid, 200 vx*": (200, 0.3)}
    for tname, (n_vox, vcorr) in truths.items():
        t_rng = np.random.default_rng(rng.integers(1 << 31))
        if tname.startswith("6 cats"):
            truth = t_rng.standard_normal((6, n_vox))[cats] + t_rng.standard_normal((92, n_vox))
        else:
            truth = t_rng.standard_normal((92, n_vox))
        methods = ("spearman", "pearson") if tname.startswith("6 cats") else ("spearman",)
        for method in methods:
            model = rsa.calc_rdm(truth)
            for n_rep in (2, 3):
                for sigma in sigmas:
                    out = np.empty((n_sim, 4))
                    for k in range(n_sim):
                        noise = rng.standard_normal((n_rep,) + truth.shape)
                        if vcorr:
                            noise = (np.sqrt(1 - vcorr) * noise + np.sqrt(vcorr)
                                     * rng.standard_normal((n_rep, 92, 1)))
                        reps = truth[None] + sigma * noise
                        score = rsa.compare_rdms(rsa.calc_rdm(reps.mean(0)), model,
                                                 method=method)
                        r_half = rsa.rdm_reliability(reps[0::2].mean(0), reps[1::2].mean(0),
                                                     method=method)
                        c = split_half_ceiling(r_half, n_repeats=np.full(92, n_rep))
                        old = float(noise_ceiling_from_reliability(r_half))
                        out[k] = score, old, c.lower, c.upper
                    s, old, lo, up = out.T
                    gap = up - s
                    print(f"{tname:<14}{method:<9}{n_rep:>2}{sigma:>6.1f}{s.mean():>7.3f}"
                          f"{s.std():>6.3f}{old.mean():>7.3f}{old.std():>6.3f}"
                          f"{fmt((old - s).mean()):>10}{lo.mean():>7.3f}{up.mean():>7.3f}"
                          f"{up.std():>6.3f}{fmt(gap.mean()):>12}"
                          f"{gap.std(ddof=1) / np.sqrt(n_sim):>7.4f}{np.mean(s > up):>8.2f}")
    print("  * noise shared by all voxels of a pattern with correlation 0.3")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer datasets (about 1 min)")
    parser.add_argument("--no-real-features", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    feats = None if args.no_real_features else real_features()
    print(f"features: {'EfficientNet-Lite0 on the 92 images' if feats else 'synthetic'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    table_a(rng, feats, 40 if args.quick else 160)
    table_b(rng, 60 if args.quick else 200)
    X = feats["stage6"] if feats else synthetic_features(rng, 92)
    table_c(rng, X, 3 if args.quick else 12)
    table_d(rng, 30 if args.quick else 80, (1.0, 2.0, 3.0, 4.0, 6.0))
    print(f"\ntotal {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
