"""Time brainalign's stimulus bootstrap against rsatoolbox's eval_bootstrap_pattern.

92 stimuli, 8 subject RDMs (human IT, Kriegeskorte et al. 2008, when ../shared/data is present;
otherwise simulated), 10 model RDMs, Spearman, bootstrap over stimuli. Both packages get the
same resampling indices: rsatoolbox draws them from numpy's legacy global generator, which is
seeded and replayed here, so bootstrap samples can be compared one by one.

Usage::

    python benchmarks/bench_rsa.py [--n-boot 1000] [--seed 0] [--skip-rsatoolbox]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.distance import squareform

from brainalign import rsa

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kriegeskorte2008_92images"
logger = logging.getLogger("bench_rsa")


def load_rdms(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Subject RDMs (8, 4186) and model RDMs (10, 4186), real if available."""
    n_pairs = 92 * 91 // 2
    if (DATA / "original" / "92_brainRDMs.mat").is_file():
        from scipy.io import loadmat

        def vec(m):
            return squareform(np.asarray(m, float), checks=False)

        brain = loadmat(DATA / "original" / "92_brainRDMs.mat", squeeze_me=True,
                        struct_as_record=False)["RDMs"]
        subjects = np.stack([vec(e.RDM) for e in brain.flat])
        models = [vec(e.RDM) for e in loadmat(DATA / "original" / "92_modelRDMs.mat",
                                               squeeze_me=True,
                                               struct_as_record=False)["Models"].flat]
        behav = loadmat(DATA / "original" / "92_behavRDMs.mat", squeeze_me=True,
                        struct_as_record=False)["rdms_behav_92"]
        models.append(np.mean([vec(e.RDM) for e in behav.flat], axis=0))  # mean behaviour
        models.append(rng.random(n_pairs))  # a null model
        return subjects, np.stack(models), "Kriegeskorte 2008 human IT (real)"
    truth = rng.random(n_pairs)
    subjects = truth + 0.8 * rng.standard_normal((8, n_pairs))
    models = truth + rng.uniform(0.2, 3, (10, 1)) * rng.standard_normal((10, n_pairs))
    return subjects, models, "simulated"


def legacy_indices(seed: int, n_boot: int, n_stimuli: int) -> np.ndarray:
    """The stimulus indices rsatoolbox's bootstrap_sample_pattern draws after np.random.seed."""
    legacy = np.random.RandomState(seed)  # noqa: NPY002 - the generator np.random.seed seeds
    return np.stack([legacy.randint(0, n_stimuli, size=n_stimuli) for _ in range(n_boot)])


def run_rsatoolbox(models: np.ndarray, subjects: np.ndarray, n_boot: int, seed: int):
    from rsatoolbox.inference import eval_bootstrap_pattern, eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    mods = [ModelFixed(f"model{i}", m) for i, m in enumerate(models)]
    data = RDMs(subjects)
    fixed = eval_fixed(mods, data, method="spearman")
    np.random.seed(seed)  # noqa: NPY002 - rsatoolbox draws from the legacy global generator
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stderr(io.StringIO()):  # tqdm progress bar
        res = eval_bootstrap_pattern(mods, data, method="spearman", N=n_boot)
    return (time.perf_counter() - t0, time.process_time() - c0), res, fixed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-rsatoolbox", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")

    subjects, models, source = load_rdms(np.random.default_rng(args.seed))
    n_stimuli = 92
    indices = legacy_indices(args.seed, args.n_boot, n_stimuli)
    logger.info("data: %s; %d subject RDMs, %d model RDMs, %d stimuli, %d bootstrap samples",
                source, len(subjects), len(models), n_stimuli, args.n_boot)

    t0, c0 = time.perf_counter(), time.process_time()
    ours = rsa.bootstrap_compare(models, subjects, method="spearman",
                                 indices={"stimuli": indices})
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    logger.info("brainalign.rsa.bootstrap_compare: %.2f s wall, %.2f s CPU (%.2f ms per sample)",
                t_ours, c_ours, 1e3 * t_ours / args.n_boot)
    if args.skip_rsatoolbox:
        return
    (t_ref, c_ref), res, fixed = run_rsatoolbox(models, subjects, args.n_boot, args.seed)
    logger.info("rsatoolbox eval_bootstrap_pattern: %.2f s wall, %.2f s CPU (%.1f ms per "
                "sample)", t_ref, c_ref, 1e3 * t_ref / args.n_boot)
    logger.info("speed-up (rsatoolbox / brainalign): %.1fx wall, %.1fx CPU", t_ref / t_ours,
                c_ref / c_ours)
    logger.info("max |diff| point estimates (vs eval_fixed):      %.3g",
                np.max(np.abs(ours.point - fixed.get_means())))
    logger.info("max |diff| noise ceiling (vs eval_fixed):        %.3g",
                np.max(np.abs(ours.noise_ceiling - np.asarray(fixed.noise_ceiling))))
    logger.info("max |diff| bootstrap samples (same indices):     %.3g",
                np.nanmax(np.abs(ours.samples - res.evaluations)))
    logger.info("max |diff| bootstrap noise ceilings:             %.3g",
                np.nanmax(np.abs(ours.noise_ceiling_samples - res.noise_ceiling.T)))
    logger.info("max |diff| bootstrap means (Result.get_means):   %.3g",
                np.max(np.abs(ours.mean - res.get_means())))


if __name__ == "__main__":
    main()
