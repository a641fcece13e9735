"""Banded ridge against himalaya's MultipleKernelRidgeCV (random search over the same explicit
kernel weights), and variance partitioning on planted data."""

import warnings

import numpy as np
import pytest

from brainalign.encoding import (
    BandedRidgeCV,
    RidgeCV,
    kfold_indices,
    partition_variance,
    r2_columns,
    sample_gammas,
    simplex_grid,
)
from brainalign.errors import ConfigError, DataShapeError

himalaya_kernel = pytest.importorskip("himalaya.kernel_ridge")

ALPHAS = np.logspace(-2, 4, 7)
# float32: see test_encoding_ridge.GRID (penalties far below the kernels' rounding noise)
GRID = {"float64": ALPHAS, "float32": ALPHAS[ALPHAS >= 1]}
RTOL = {"float64": 1e-5, "float32": 1e-3}


def _two_spaces(rng, n=60, p_a=40, p_b=80, n_targets=90):
    """Targets leaning on A, on B, or on both, so many kernel weights get chosen."""
    xa = rng.standard_normal((n + 20, p_a))
    xb = rng.standard_normal((n + 20, p_b))
    lean = np.linspace(0, 1, n_targets)
    y = (xa @ rng.standard_normal((p_a, n_targets))) * 0.3 * lean
    y += (xb @ rng.standard_normal((p_b, n_targets))) * 0.3 * (1 - lean)
    y += rng.standard_normal((n + 20, n_targets)) + 1.0
    return xa[:n], xb[:n], y[:n], xa[n:], xb[n:]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_matches_himalaya_multiple_kernel_random_search(rng, fit_intercept, dtype):
    xa, xb, y, xa_new, xb_new = _two_spaces(rng)
    gammas = simplex_grid(2, 6)  # 7 candidates, both single-space models included
    splits = [(np.setdiff1d(np.arange(60), t), t) for t in kfold_indices(60, 5, seed=2)]
    alphas = GRID[dtype]
    ks = np.stack([xa @ xa.T, xb @ xb.T]).astype(dtype)
    ks_new = np.stack([xa_new @ xa.T, xb_new @ xb.T]).astype(dtype)
    ref = himalaya_kernel.MultipleKernelRidgeCV(
        kernels="precomputed",
        solver="random_search",
        cv=splits,
        fit_intercept=fit_intercept,
        solver_params=dict(n_iter=gammas, alphas=alphas, progress_bar=False, return_alphas=True),
    )
    with warnings.catch_warnings(), np.errstate(divide="ignore"):  # log(0) of a zero weight
        warnings.simplefilter("ignore", UserWarning)
        ref.fit(ks, y.astype(dtype))
    ours = BandedRidgeCV(
        alphas,
        feature_spaces=(40, 80),
        gammas=gammas,
        cv=splits,
        scoring="neg_mse",
        standardize=False,
        fit_intercept=fit_intercept,
        dtype=dtype,
    ).fit(np.hstack([xa, xb]).astype(dtype), y.astype(dtype))

    assert ours.solver_ == "dual"
    ref_gamma = (np.exp(ref.deltas_) * ref.best_alphas_).T  # deltas = log(gamma / alpha)
    np.testing.assert_allclose(ours.gamma_, ref_gamma, atol=1e-4)
    np.testing.assert_allclose(ours.alpha_, ref.best_alphas_, rtol=1e-4)
    assert np.unique(ours.gamma_[:, 0]).size >= 4  # informative: many weights chosen
    expected = np.asarray(ref.predict(ks_new))
    got = ours.predict(np.hstack([xa_new, xb_new]).astype(dtype))
    np.testing.assert_allclose(
        got, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(expected).max()
    )
    # himalaya's cv_scores_: best (tie-broken) score over alphas for each candidate
    best_over_alphas = ours.cv_scores_.max(axis=1)
    np.testing.assert_allclose(best_over_alphas, ref.cv_scores_, rtol=RTOL[dtype], atol=1e-6)


def test_primal_and_dual_banded_agree(rng):
    xa, xb, y, xa_new, xb_new = _two_spaces(rng, n=80, p_a=10, p_b=15, n_targets=20)
    x, x_new = np.hstack([xa, xb]), np.hstack([xa_new, xb_new])
    kw = dict(feature_spaces=(10, 15), gammas=simplex_grid(2, 5), n_folds=4)
    primal = BandedRidgeCV(ALPHAS, solver="primal", **kw).fit(x, y)
    dual = BandedRidgeCV(ALPHAS, solver="dual", **kw).fit(x, y)
    np.testing.assert_array_equal(primal.gamma_, dual.gamma_)
    np.testing.assert_array_equal(primal.alpha_, dual.alpha_)
    np.testing.assert_allclose(dual.predict(x_new), primal.predict(x_new), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(dual.coef_, primal.coef_, rtol=1e-7, atol=1e-10)


def test_single_candidate_equals_ridge(rng):
    xa, xb, y, xa_new, xb_new = _two_spaces(rng, n_targets=10)
    x, x_new = np.hstack([xa, xb]), np.hstack([xa_new, xb_new])
    banded = BandedRidgeCV(ALPHAS, feature_spaces=(40, 80), gammas=[[1.0, 1.0]], n_folds=4)
    ridge = RidgeCV(ALPHAS, n_folds=4).fit(x, y)
    banded.fit(x, y)
    np.testing.assert_array_equal(banded.alpha_, ridge.alpha_)
    np.testing.assert_allclose(banded.predict(x_new), ridge.predict(x_new), rtol=1e-10)


def test_banded_planted_truth_switches_off_the_noise_space(rng):
    # targets driven by 8 features of A; B is 150 pure-noise features
    n = 150
    xa, xb = rng.standard_normal((n + 100, 8)), rng.standard_normal((n + 100, 150))
    y = xa @ rng.standard_normal((8, 20)) + 1.0 * rng.standard_normal((n + 100, 20))
    x = np.hstack([xa, xb])
    banded = BandedRidgeCV(
        ALPHAS, feature_spaces=(8, 150), gammas=simplex_grid(2, 10), n_folds=5
    ).fit(x[:n], y[:n])
    ridge = RidgeCV(ALPHAS, n_folds=5).fit(x[:n], y[:n])
    assert np.median(banded.gamma_[:, 0]) >= 0.9
    assert np.all(banded.space_alphas_[:, 1] > banded.space_alphas_[:, 0])
    r2_banded = r2_columns(y[n:], banded.predict(x[n:]))
    r2_ridge = r2_columns(y[n:], ridge.predict(x[n:]))
    assert r2_banded.mean() > r2_ridge.mean() + 0.05


def test_sample_gammas_and_grid():
    g = sample_gammas(12, 3, seed=4)
    assert g.shape == (12, 3)
    np.testing.assert_allclose(g.sum(1), 1.0)
    np.testing.assert_allclose(g[0], 1 / 3)
    np.testing.assert_array_equal(g, sample_gammas(12, 3, seed=4))
    grid = simplex_grid(3, 4)
    assert grid.shape == (15, 3)  # comb(4 + 2, 2)
    np.testing.assert_allclose(grid.sum(1), 1.0)
    assert {tuple(r) for r in np.eye(3)} <= {tuple(r) for r in grid}


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"feature_spaces": None}, ConfigError, r"Missing feature_spaces for BandedRidgeCV"),
        ({"feature_spaces": (3, 4)}, DataShapeError, r"Feature spaces do not tile X"),
        ({"gammas": [[1.0, 0.5, 0.2]]}, DataShapeError, r"Wrong shape for gammas: expected"),
        ({"gammas": [[0.0, 0.0]]}, DataShapeError, r"Invalid kernel weights for gammas"),
        ({"gammas": 0}, ConfigError, r"Invalid gammas for BandedRidgeCV"),
    ],
)
def test_banded_invalid_parameters(rng, params, error, match):
    x, y = rng.standard_normal((30, 10)), rng.standard_normal((30, 2))
    params = {"feature_spaces": (4, 6), **params}
    with pytest.raises(error, match=match):
        BandedRidgeCV(ALPHAS, **params).fit(x, y)


# ---------------------------------------------------------------------------------------------
# variance partitioning


def test_partition_variance_planted(rng):
    # A = [shared S, private A], B = [shared S (mixed), private B]; 3 target families
    n, k = 300, 4
    s, pa, pb = (rng.standard_normal((n, k)) for _ in range(3))
    x_a = np.hstack([s, pa])
    x_b = np.hstack([s @ rng.standard_normal((k, k)), pb])
    noise = 0.7
    families = {
        "a_only": pa @ rng.standard_normal((k, 6)),
        "b_only": pb @ rng.standard_normal((k, 6)),
        "shared": s @ rng.standard_normal((k, 6)),
    }
    y = np.hstack([f / f.std(0) for f in families.values()])
    y = y + noise * rng.standard_normal(y.shape)
    expected_r2 = 1 / (1 + noise**2)  # ~0.67

    res = partition_variance((x_a, x_b), y, alphas=ALPHAS, n_folds=5, n_inner_folds=4, seed=0)

    assert res["gamma_ab"].shape == (5, 18, 2)
    np.testing.assert_allclose(res["unique_a"], res["r2_ab"] - res["r2_b"], rtol=1e-12)
    np.testing.assert_allclose(res["shared"], res["r2_a"] + res["r2_b"] - res["r2_ab"], rtol=1e-12)
    a, b, sh = slice(0, 6), slice(6, 12), slice(12, 18)
    tol = 0.06
    # A-only targets: all explained variance is unique to A
    assert np.all(np.abs(res["r2_ab"][a] - expected_r2) < 0.1)
    assert np.all(res["unique_a"][a] > expected_r2 - 0.1)
    assert np.all(np.abs(res["unique_b"][a]) < tol) and np.all(np.abs(res["shared"][a]) < tol)
    # B-only targets, mirrored
    assert np.all(res["unique_b"][b] > expected_r2 - 0.1)
    assert np.all(np.abs(res["unique_a"][b]) < tol) and np.all(np.abs(res["shared"][b]) < tol)
    # shared targets: both spaces explain them, neither uniquely
    assert np.all(res["shared"][sh] > expected_r2 - 0.1)
    assert np.all(np.abs(res["unique_a"][sh]) < tol) and np.all(np.abs(res["unique_b"][sh]) < tol)


def test_partition_variance_rejects_misaligned_rows(rng):
    with pytest.raises(DataShapeError, match=r"Row counts differ for spaces A, B and Y"):
        partition_variance(
            (rng.standard_normal((20, 2)), rng.standard_normal((19, 2))),
            rng.standard_normal((20, 1)),
            alphas=ALPHAS,
        )
    with pytest.raises(DataShapeError, match=r"Wrong number of feature spaces for spaces"):
        partition_variance([rng.standard_normal((20, 2))] * 3, np.ones((20, 1)), alphas=ALPHAS)
