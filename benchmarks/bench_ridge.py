"""Cross-validated ridge with one penalty per voxel: brainalign against himalaya and sklearn.

Everyone gets the same data, penalty grid and (explicit) folds, the same precision and the same
BLAS thread count:

* brainalign ``RidgeCV(cv=splits, scoring="neg_mse", standardize=False, fit_intercept=True)``
  (the settings that reproduce himalaya's choices), numpy backend, and torch-CPU backend;
* himalaya ``KernelRidgeCV(kernel="linear")`` and ``RidgeCV`` (numpy backend), same folds;
  ``KernelRidgeCV`` once more with its eigendecompositions on one BLAS thread, as brainalign
  runs them (OpenBLAS's two-thread eigh is several times slower on a busy machine), so that the
  ratio to it isolates the algorithmic difference;
* scikit-learn ``RidgeCV(alpha_per_target=True)``: only efficient leave-one-out supports a
  penalty per target there, so it runs on ``--sklearn-voxels`` voxels against brainalign's
  ``cv="loo"`` on the same voxels (time per voxel compared).

Each method fits on the training stimuli and predicts held-out stimuli. Printed: wall time,
ratio brainalign / method, fraction of voxels with the same penalty as brainalign, largest
absolute prediction difference, and peak memory traced during the method (tracemalloc: NumPy
allocations, not torch's).

Usage::

    python benchmarks/bench_ridge.py [--n-voxels 20000] [--sklearn-voxels 2000]
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-voxels", type=int, default=20000)
    p.add_argument("--sklearn-voxels", type=int, default=2000)
    p.add_argument("--n-stimuli", type=int, default=1000, help="training stimuli")
    p.add_argument("--n-test", type=int, default=200, help="held-out stimuli to predict")
    p.add_argument("--n-features", type=int, default=4096)
    p.add_argument("--n-alphas", type=int, default=10)
    p.add_argument("--n-folds", type=int, default=5)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for everyone")
    p.add_argument("--n-targets-batch", type=int, default=5000, help="for every solver")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per method (min kept)")
    p.add_argument("--skip", nargs="*", default=[], help="method names to skip")
    return p.parse_args()


ARGS = _parse()
# thread counts must be fixed before NumPy / torch load their BLAS
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import gc  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from brainalign.encoding import RidgeCV, kfold_indices  # noqa: E402


def make_data(args, rng):
    """Features with a decaying spectrum; voxels from pure noise to well predicted."""
    n = args.n_stimuli + args.n_test
    latent = rng.standard_normal((n, 256)).astype(args.dtype)
    mixing = rng.standard_normal((256, args.n_features)).astype(args.dtype)
    x = latent @ (mixing * np.linspace(1.0, 0.05, 256, dtype=args.dtype)[:, None])
    x += rng.standard_normal(x.shape).astype(args.dtype)
    x /= x.std(0)
    w = rng.standard_normal((args.n_features, args.n_voxels)).astype(args.dtype)
    snr = rng.uniform(0.0, 1.0, args.n_voxels).astype(args.dtype) ** 2
    signal = x @ w
    signal /= signal.std(0)
    y = signal * snr + rng.standard_normal((n, args.n_voxels)).astype(args.dtype) + 10.0
    return x[: args.n_stimuli], y[: args.n_stimuli], x[args.n_stimuli :]


def one_thread(func):
    """``func`` run with one BLAS thread (what brainalign's numpy backend does for eigh)."""

    def wrapped(*a, **kw):
        with threadpool_limits(limits=1, user_api="blas"):
            return func(*a, **kw)

    return wrapped


def timed(fn):
    """Wall time of one run, its result, and the peak MiB traced during it."""
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, out, peak


def run_interleaved(methods, repeats):
    """Run every method once per round, ``repeats`` rounds; keep each method's fastest run.

    Interleaving spreads slow spells of a shared machine over all methods alike.
    """
    results = {}
    for round_ in range(repeats):
        for name, fn in methods.items():
            seconds, out, peak = timed(fn)
            print(f"  round {round_ + 1}: {name}: {seconds:.2f} s", flush=True)
            old = results.get(name)
            times = ([] if old is None else old[4]) + [seconds]
            if old is None or seconds < old[0]:
                results[name] = (seconds, *out, peak, times)
            else:
                results[name] = (*old[:4], times)
    return results


def main(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)  # himalaya's solver advice
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    from sklearn.linear_model import RidgeCV as SklearnRidgeCV

    rng = np.random.default_rng(0)
    x, y, x_test = make_data(args, rng)
    alphas = np.logspace(-1, 5, args.n_alphas)
    splits = [
        (np.setdiff1d(np.arange(args.n_stimuli), t), t)
        for t in kfold_indices(args.n_stimuli, args.n_folds, seed=0)
    ]
    batch = args.n_targets_batch
    himalaya_batches = dict(n_targets_batch=batch, n_targets_batch_refit=batch)
    print(
        f"data: {args.n_stimuli} train + {args.n_test} test stimuli x {args.n_features} "
        f"features -> {args.n_voxels} voxels, {args.n_alphas} alphas, {args.n_folds} folds, "
        f"{args.dtype}, {args.threads} BLAS threads, targets in batches of {batch}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    def ours(backend):
        def run():
            model = RidgeCV(
                alphas,
                cv=splits,
                scoring="neg_mse",
                standardize=False,
                fit_intercept=True,
                backend=backend,
                dtype=args.dtype,
                n_targets_batch=batch,
            ).fit(x, y)
            return model.alpha_, model.predict(x_test)

        return run

    def himalaya(cls, *, one_thread_eigh=False, **kw):
        import himalaya.backend.numpy as himalaya_numpy

        def run():
            if one_thread_eigh:  # brainalign's own eigh policy, to isolate the algorithm
                himalaya_numpy.eigh = one_thread(np.linalg.eigh)
            try:
                return fit()
            finally:
                himalaya_numpy.eigh = original_eigh

        original_eigh = himalaya_numpy.eigh

        def fit():
            model = cls(
                alphas=alphas, cv=splits, fit_intercept=True, solver_params=himalaya_batches, **kw
            ).fit(x, y)
            return np.asarray(model.best_alphas_), np.asarray(model.predict(x_test))

        return run

    n_sk = min(args.sklearn_voxels, args.n_voxels)

    def ours_loo():
        model = RidgeCV(
            alphas,
            cv="loo",
            scoring="neg_mse",
            standardize=False,
            dtype=args.dtype,
            n_targets_batch=batch,
        ).fit(x, y[:, :n_sk])
        return model.alpha_, model.predict(x_test)

    def sklearn():
        model = SklearnRidgeCV(alphas=alphas, alpha_per_target=True).fit(x, y[:, :n_sk])
        return model.alpha_, model.predict(x_test)

    kfold = {
        "brainalign numpy": ours("numpy"),
        "brainalign torch-cpu": ours("torch"),
        "himalaya KernelRidgeCV": himalaya(KernelRidgeCV, kernel="linear"),
        "himalaya KRCV 1-thr eigh": himalaya(KernelRidgeCV, kernel="linear", one_thread_eigh=True),
        "himalaya RidgeCV": himalaya(HimalayaRidgeCV),
    }
    loo = {"brainalign numpy loo": ours_loo, "sklearn RidgeCV": sklearn}
    kfold = {k: v for k, v in kfold.items() if k not in args.skip}
    loo = {k: v for k, v in loo.items() if k not in args.skip}
    with threadpool_limits(limits=args.threads):
        kfold_res = run_interleaved(kfold, args.repeats)
        loo_res = run_interleaved(loo, args.repeats)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (others' jobs slow every method)")

    report(
        f"{args.n_folds}-fold CV (explicit splits), {args.n_voxels} voxels, {args.dtype}",
        kfold_res,
        "brainalign numpy",
        args.n_voxels,
    )
    report(
        f"leave-one-out, {n_sk} voxels (sklearn computes in float64 internally)",
        loo_res,
        "brainalign numpy loo",
        n_sk,
    )


def report(title, results, base_name, n_voxels):
    """Print one comparison table against ``base_name``."""
    if base_name not in results:
        return
    base = results[base_name]
    print(f"\n{title}")
    print(
        f"{'method':<24}{'best s':>8}{'all runs s':>20}{'ms/voxel':>10}{'brainalign/it':>15}"
        f"{'same alpha':>12}{'max |dpred|':>13}{'peak MiB':>10}"
    )
    for name, (seconds, chosen, pred, peak, times) in results.items():
        same = np.mean(np.isclose(np.asarray(base[1], float), np.asarray(chosen, float), rtol=1e-4))
        diff = np.abs(base[2].astype(float) - np.asarray(pred, float)).max()
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(
            f"{name:<24}{seconds:>8.2f}{runs:>20}{1e3 * seconds / n_voxels:>10.3f}"
            f"{base[0] / seconds:>15.2f}{same:>12.4f}{diff:>13.2e}{peak:>10.0f}"
        )
    print(f"(prediction scale: max |y_hat| = {np.abs(base[2]).max():.2f})")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"(process peak RSS so far: {peak_rss:.0f} MiB)")


if __name__ == "__main__":
    sys.exit(main(ARGS))
