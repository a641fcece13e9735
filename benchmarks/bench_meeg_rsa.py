"""Time brainalign's time-resolved RSA against mne-rsa's ``rsa_evokeds`` on the same evokeds.

92 stimuli x 64 EEG channels x 300 time samples (simulated evokeds, a few layer RDMs planted at
known latencies), 10 layer RDMs, correlation distance, Spearman comparison, one RDM per sample
(``--window 1``, mne-rsa ``temporal_radius=0``) or a centred window of ``--window`` samples
(odd; mne-rsa ``temporal_radius=(window // 2) / sfreq``). mne-rsa runs with ``n_jobs=1``.
brainalign's time includes computing the RDMs and comparing them, as mne-rsa's does: in one
call (``rsa_time_course``, chunks of time points kept in cache) and as the workflow's two steps
(``calc_rdm_temporal`` in meeg_rdms, ``compare_rdms_temporal`` in meeg_rsa).

Usage::

    python benchmarks/bench_meeg_rsa.py [--window 1] [--repeats 3] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings

import numpy as np
from scipy.spatial.distance import pdist

from brainalign.rsa import temporal

logger = logging.getLogger("bench_meeg_rsa")

N_STIM, N_CHAN, N_TIMES, N_LAYERS, SFREQ = 92, 64, 300, 10, 250.0


def simulate(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evoked patterns (92, 64, 300) in volts, 10 layer RDMs, sample times."""
    times = np.arange(N_TIMES) / SFREQ - 0.2
    feats = [rng.standard_normal((N_STIM, 20)) for _ in range(N_LAYERS)]
    layers = np.stack([pdist(f, "correlation") for f in feats])
    x = rng.standard_normal((N_STIM, N_CHAN, N_TIMES))
    for k, latency in enumerate(np.linspace(0.08, 0.6, N_LAYERS)):  # layer k drives a bump
        bump = np.exp(-0.5 * ((times - latency) / 0.02) ** 2)
        mixing = rng.standard_normal((20, N_CHAN))
        x += 2.0 * (feats[k] @ mixing)[:, :, None] * bump
    return 1e-6 * x, layers, times


def run_mne_rsa(x: np.ndarray, layers: np.ndarray, window: int):
    import mne
    from mne_rsa import rsa_evokeds

    info = mne.create_info([f"EEG{i:03d}" for i in range(N_CHAN)], SFREQ, "eeg")
    evokeds = [mne.EvokedArray(p, info, tmin=-0.2, verbose=False) for p in x]
    t0, c0 = time.perf_counter(), time.process_time()
    out = rsa_evokeds(evokeds, list(layers), temporal_radius=(window // 2) / SFREQ,
                      evoked_rdm_metric="correlation", rsa_metric="spearman", n_jobs=1,
                      verbose=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, np.stack([e.data[0] for e in out], axis=1), out[0].times


def run_ours(x: np.ndarray, layers: np.ndarray, window: int):
    """Both of brainalign's paths: in one call, and as the workflow's two steps."""
    t0, c0 = time.perf_counter(), time.process_time()
    scores = temporal.rsa_time_course(x, layers, metric="correlation", window=window,
                                      method="spearman")
    t1, c1 = time.perf_counter(), time.process_time()
    rdms = temporal.calc_rdm_temporal(x, metric="correlation", window=window)
    two_step = temporal.compare_rdms_temporal(rdms, layers, method="spearman")
    t2, c2 = time.perf_counter(), time.process_time()
    return (t1 - t0, c1 - c0, scores), (t2 - t1, c2 - c1, two_step)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=1, help="samples per RDM (odd)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (both tools)")
    args = parser.parse_args(argv)
    if args.window % 2 == 0:
        parser.error("--window must be odd (mne-rsa windows are 2 * radius + 1 samples)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")

    x, layers, times = simulate(np.random.default_rng(args.seed))
    logger.info("%d stimuli x %d channels x %d samples, %d layer RDMs, correlation distance, "
                "spearman, window %d, %d BLAS thread(s); load average %s", N_STIM, N_CHAN,
                N_TIMES, N_LAYERS, args.window, args.threads,
                " ".join(f"{v:.2f}" for v in os.getloadavg()))
    from threadpoolctl import threadpool_limits

    ours, ref = [], []
    with threadpool_limits(args.threads):
        for _ in range(args.repeats):  # interleaved: both see the same load
            ours.append(run_ours(x, layers, args.window))
            ref.append(run_mne_rsa(x, layers, args.window))
    ref_scores, ref_times = ref[0][2], ref[0][3]
    w_ref, c_ref = min(r[0] for r in ref), min(r[1] for r in ref)
    logger.info("mne-rsa rsa_evokeds (n_jobs=1): %.3f s wall, %.3f s CPU (best of %d)", w_ref,
                c_ref, args.repeats)
    for k, name in enumerate(["rsa_time_course (one call)",
                              "calc_rdm_temporal + compare_rdms_temporal (the workflow's steps)"]):
        w_ours, c_ours = min(o[k][0] for o in ours), min(o[k][1] for o in ours)
        scores = ours[0][k][2]
        logger.info("brainalign %s: %.3f s wall, %.3f s CPU (best of %d)", name, w_ours,
                    c_ours, args.repeats)
        logger.info("    speed-up (mne-rsa / brainalign): %.1fx wall, %.1fx CPU; max |diff| of "
                    "the %d x %d scores: %.3g", w_ref / w_ours, c_ref / c_ours, *scores.shape,
                    np.max(np.abs(scores - ref_scores)))
    logger.info("times equal mne-rsa's: %s",
                np.allclose(temporal.window_times(times, args.window), ref_times, atol=1e-12))
    peaks = times[np.argmax(scores, axis=0) + args.window // 2]
    logger.info("peak time per layer (planted 0.08 ... 0.60 s): %s",
                " ".join(f"{p:.3f}" for p in peaks))


if __name__ == "__main__":
    main()
