"""Time-resolved encoding: one ridge fit for every channel x time point against per-time loops.

The data: 92 stimuli x 1,000 features -> 64 channels x 300 time points (19,200 targets); a
simulated layer drives 16 channels around 150 ms. Encoding as the workflow runs it: the
config's 7 penalties, 5 outer x 5 inner folds, float64.

* brainalign (``time_resolved_ridge``): all channels and time points are targets of one
  ``cross_validated_ridge`` call, one decomposition per fold shared by all of them;
* loop of brainalign (``cross_validated_ridge`` on ``Y[:, :, t]`` for each time point): the same
  folds and penalties, so the same values (largest |difference| printed);
* loop of scikit-learn (what one writes without brainalign): per time point and outer fold,
  ``sklearn.linear_model.RidgeCV(alphas, alpha_per_target=True)`` on z-scored features
  (``StandardScaler`` in a pipeline) -- the same outer folds, but scikit-learn chooses penalties
  by efficient leave-one-out, not by 5 inner folds, so its values differ a little (the
  correlation of the two r maps and the largest |difference| are printed).

``--times`` runs the loops on that many time points only and extrapolates their times to 300
(printed as ESTIMATE). ``--threads`` sets the BLAS threads (1: as the workflow's jobs run).

Usage::

    python benchmarks/bench_meeg_encoding.py [--times 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import os


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stimuli", type=int, default=92)
    p.add_argument("--features", type=int, default=1000)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--n-times", type=int, default=300)
    p.add_argument("--times", type=int, default=None,
                   help="time points the per-time loops run (default: all; fewer: extrapolated)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = _parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.linear_model import RidgeCV as SkRidgeCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from brainalign.encoding import cross_validated_ridge  # noqa: E402
from brainalign.encoding.scoring import pearson_columns  # noqa: E402
from brainalign.encoding.splits import kfold_indices  # noqa: E402
from brainalign.encoding.temporal import time_resolved_ridge  # noqa: E402

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)
RIDGE = {"alphas": ALPHAS, "n_folds": 5, "n_inner_folds": 5, "seed": 0}


def _data():
    rng = np.random.default_rng(ARGS.seed)
    times = np.linspace(-0.1, 0.5, ARGS.n_times)
    X = rng.standard_normal((ARGS.stimuli, ARGS.features))
    drive = X @ rng.standard_normal(ARGS.features) / np.sqrt(ARGS.features)
    profile = np.exp(-0.5 * ((times - 0.15) / 0.03) ** 2)
    gains = np.zeros(ARGS.channels)
    gains[:16] = rng.uniform(0.5, 1.5, 16)
    Y = drive[:, None, None] * gains[None, :, None] * profile[None, None, :]
    Y += 0.5 * rng.standard_normal(Y.shape)
    return X, Y, times


def _sklearn_loop(X, Y, ts):
    """Per time point and outer fold: scikit-learn RidgeCV, one penalty per channel."""
    n = X.shape[0]
    r = np.zeros((Y.shape[1], len(ts)))
    folds = kfold_indices(n, RIDGE["n_folds"], seed=RIDGE["seed"])
    for j, t in enumerate(ts):
        acc = []
        for test in folds:
            train = np.setdiff1d(np.arange(n), test)
            model = make_pipeline(StandardScaler(),
                                  SkRidgeCV(alphas=ALPHAS, alpha_per_target=True))
            model.fit(X[train], Y[train, :, t])
            acc.append(pearson_columns(model.predict(X[test]), Y[test, :, t]))
        r[:, j] = np.mean(acc, axis=0)
    return r


def main() -> None:
    """Run the three fits and print times, ratios and differences."""
    X, Y, times = _data()
    n_loop = ARGS.times or ARGS.n_times
    ts = np.linspace(0, ARGS.n_times - 1, n_loop).round().astype(int)
    print(f"{ARGS.stimuli} stimuli x {ARGS.features} features -> {ARGS.channels} channels x "
          f"{ARGS.n_times} times; {len(ALPHAS)} alphas, 5 x 5 folds; {ARGS.threads} BLAS "
          f"thread(s); load {os.getloadavg()[0]:.1f}")

    t0 = time.perf_counter()
    res = time_resolved_ridge(X, Y, **RIDGE)
    t_shared = time.perf_counter() - t0
    print(f"brainalign time_resolved_ridge (one fit): {t_shared:.2f} s")

    t0 = time.perf_counter()
    loop = np.stack([cross_validated_ridge(X, Y[:, :, t], **RIDGE)["r"] for t in ts], axis=1)
    t_loop = (time.perf_counter() - t0) * ARGS.n_times / n_loop
    diff = np.abs(loop - res["r"][:, ts]).max()
    tag = "" if n_loop == ARGS.n_times else f" (ESTIMATE from {n_loop} time points)"
    print(f"brainalign cross_validated_ridge per time point: {t_loop:.2f} s{tag}; "
          f"ratio {t_loop / t_shared:.1f}x; largest |r difference| {diff:.1e}")

    t0 = time.perf_counter()
    sk = _sklearn_loop(X, Y, ts)
    t_sk = (time.perf_counter() - t0) * ARGS.n_times / n_loop
    ours = res["r"][:, ts]
    corr = np.corrcoef(sk.ravel(), ours.ravel())[0, 1]
    print(f"scikit-learn RidgeCV(alpha_per_target) per time point and fold: {t_sk:.2f} s{tag}; "
          f"ratio {t_sk / t_shared:.1f}x; r maps correlate {corr:.4f}, largest |difference| "
          f"{np.abs(sk - ours).max():.3f} (leave-one-out vs 5 inner folds)")
    t0 = time.perf_counter()
    again = time_resolved_ridge(X, Y, **RIDGE)
    t_again = time.perf_counter() - t0
    assert np.array_equal(again["r"], res["r"])
    print(f"brainalign time_resolved_ridge again, after the loops: {t_again:.2f} s (the load "
          f"changes: ratios against it {t_loop / t_again:.1f}x and {t_sk / t_again:.1f}x)")
    driven = res["r"][:16].mean(0)
    print(f"planted peak 0.150 s: found {times[np.argmax(driven)]:.3f} s "
          f"(mean r of driven channels {driven.max():.3f})")


if __name__ == "__main__":
    main()
