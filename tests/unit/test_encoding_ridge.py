"""RidgeCV (one penalty per target) against himalaya, scikit-learn and itself across solvers,
backends, precisions and batch sizes.

Tolerances: float64 predictions agree to rtol 1e-5 of the prediction scale (they agree to ~1e-10;
the slack covers BLAS differences); float32 to 1e-3. Chosen penalties must be identical.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import RidgeCV as SkRidgeCV

from brainalign.encoding import (
    RidgeCV,
    group_kfold_indices,
    kfold_indices,
    make_splits,
    solve_ridge_cv,
)
from brainalign.errors import ConfigError, DataShapeError

himalaya_ridge = pytest.importorskip("himalaya.ridge")
himalaya_kernel = pytest.importorskip("himalaya.kernel_ridge")

ALPHAS = np.logspace(-2, 4, 13)
RTOL = {"float64": 1e-5, "float32": 1e-3}
# float32 kernels carry rounding noise of ~1e-7 * ||K|| in their null space; penalties far below
# that amplify it in any implementation (himalaya's float32 predictions are then off by 3% at
# alpha=0.01 where ours stay at 1e-4), so the float32 comparisons start the grid at 1
GRID = {"float64": ALPHAS, "float32": ALPHAS[ALPHAS >= 1]}


def _data(rng, n, p, n_targets=120, *, offset=0.0):
    """Targets from no signal to strong signal, so many penalties of the grid get chosen."""
    x = rng.standard_normal((n, p)) * rng.uniform(0.5, 2.0, p) + offset
    strength = np.linspace(0.0, 0.4, n_targets)
    y = (x @ rng.standard_normal((p, n_targets))) * strength
    y += rng.standard_normal((n, n_targets)) + 3.0
    x_new = rng.standard_normal((25, p)) * rng.uniform(0.5, 2.0, p) + offset
    return x, y, x_new


def _splits(n, n_folds=5, seed=1):
    return [(np.setdiff1d(np.arange(n), t), t) for t in kfold_indices(n, n_folds, seed=seed)]


def _grid_index(alpha):
    """Index on ALPHAS of himalaya's alphas (it returns exp(-log(alpha)), not the grid value)."""
    return np.argmin(np.abs(np.log(np.asarray(alpha, float))[:, None] - np.log(ALPHAS)), axis=1)


def _assert_close(got, expected, rtol):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


# ---------------------------------------------------------------------------------------------
# himalaya RidgeCV (primal) and KernelRidgeCV(kernel="linear"), same explicit folds


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize(
    ("n", "p", "reference"),
    [(90, 20, "RidgeCV"), (90, 20, "KernelRidgeCV"), (60, 150, "KernelRidgeCV")],
    ids=["n>p-primal", "n>p-kernel", "p>n-kernel"],
)
def test_matches_himalaya(rng, n, p, reference, fit_intercept, dtype):
    x, y, x_new = _data(rng, n, p)
    x, y, x_new = x.astype(dtype), y.astype(dtype), x_new.astype(dtype)
    splits = _splits(n)
    alphas = GRID[dtype]
    if reference == "RidgeCV":
        ref = himalaya_ridge.RidgeCV(alphas=alphas, cv=splits, fit_intercept=fit_intercept)
    else:
        ref = himalaya_kernel.KernelRidgeCV(
            alphas=alphas, kernel="linear", cv=splits, fit_intercept=fit_intercept, warn=False
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref.fit(x, y)
    ours = RidgeCV(
        alphas,
        cv=splits,
        scoring="neg_mse",
        standardize=False,
        fit_intercept=fit_intercept,
        dtype=dtype,
        solver="primal" if reference == "RidgeCV" else "dual",
    ).fit(x, y)

    np.testing.assert_array_equal(_grid_index(ours.alpha_), _grid_index(ref.best_alphas_))
    assert np.unique(ours.alpha_).size >= 4  # informative: many penalties chosen
    _assert_close(ours.predict(x_new), np.asarray(ref.predict(x_new)), RTOL[dtype])
    # himalaya's cv_scores_ is the mean CV score of the chosen penalty
    chosen = ours.cv_scores_[np.searchsorted(alphas, ours.alpha_), np.arange(y.shape[1])]
    _assert_close(chosen, np.asarray(ref.cv_scores_), RTOL[dtype])


def test_himalaya_r2_criterion(rng):
    from himalaya.scoring import r2_score

    x, y, x_new = _data(rng, 70, 15)
    splits = _splits(70, n_folds=4)
    ref = himalaya_ridge.RidgeCV(
        alphas=ALPHAS, cv=splits, fit_intercept=True, solver_params={"score_func": r2_score}
    ).fit(x, y)
    ours = RidgeCV(ALPHAS, cv=splits, scoring="r2", standardize=False).fit(x, y)
    np.testing.assert_array_equal(_grid_index(ours.alpha_), _grid_index(ref.best_alphas_))
    _assert_close(ours.predict(x_new), ref.predict(x_new), 1e-5)


def test_float32_is_accurate_where_himalaya_kernel_intercept_is_not(rng):
    # features with a large offset: himalaya centres the float32 kernel after forming it and
    # loses digits; brainalign centres the features first (documented gap in the report)
    x, y, x_new = _data(rng, 60, 150, offset=2.0)
    splits = _splits(60)
    kw = dict(cv=splits, scoring="neg_mse", standardize=False)
    ref64 = RidgeCV(ALPHAS, **kw).fit(x, y)
    ours32 = RidgeCV(ALPHAS, dtype="float32", **kw).fit(x.astype("f4"), y.astype("f4"))
    same = ours32.alpha_.astype(float).round(8) == ref64.alpha_.round(8)
    assert same.mean() > 0.95
    # where float32 picks another penalty, it is a tie at float32 precision: the float64 CV
    # score of that penalty equals the best one to 1e-5
    voxels = np.flatnonzero(~same)
    picked = ref64.cv_scores_[_grid_index(ours32.alpha_[voxels].astype(float)), voxels]
    best = ref64.cv_scores_[_grid_index(ref64.alpha_[voxels]), voxels]
    np.testing.assert_allclose(picked, best, rtol=1e-5, atol=1e-7)
    _assert_close(ours32.predict(x_new.astype("f4"))[:, same], ref64.predict(x_new)[:, same], 1e-5)


# ---------------------------------------------------------------------------------------------
# scikit-learn RidgeCV(alpha_per_target=True): efficient leave-one-out


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize(("n", "p"), [(70, 15), (50, 120)], ids=["n>p", "p>n"])
def test_loo_matches_sklearn(rng, n, p, fit_intercept):
    x, y, x_new = _data(rng, n, p)
    ref = SkRidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=fit_intercept).fit(x, y)
    ours = RidgeCV(
        ALPHAS, cv="loo", scoring="neg_mse", standardize=False, fit_intercept=fit_intercept
    ).fit(x, y)
    np.testing.assert_array_equal(ours.alpha_, ref.alpha_)
    assert np.unique(ours.alpha_).size >= 3
    _assert_close(ours.predict(x_new), ref.predict(x_new), 1e-8)
    _assert_close(ours.coef_, ref.coef_.T, 1e-8)


def test_loo_closed_form_equals_explicit_leave_one_out(rng):
    x, y, _ = _data(rng, 40, 60, n_targets=30)
    loo = [(np.delete(np.arange(40), i), np.array([i])) for i in range(40)]
    kw = dict(scoring="neg_mse", standardize=False)
    fast = RidgeCV(ALPHAS, cv="loo", **kw).fit(x, y)
    slow = RidgeCV(ALPHAS, cv=loo, **kw).fit(x, y)
    np.testing.assert_allclose(fast.cv_sse_, slow.cv_sse_, rtol=1e-8)
    np.testing.assert_array_equal(fast.alpha_, slow.alpha_)


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_loo_float32_survives_near_interpolation(rng, solver):
    # n <= p with a tiny penalty: 1 - H_ii is small; float32 must still give the float64 errors
    x, y, _ = _data(rng, 50, 50, n_targets=20)
    kw = dict(cv="loo", scoring="neg_mse", standardize=False, solver=solver)
    ref = RidgeCV(ALPHAS, **kw).fit(x, y)
    got = RidgeCV(ALPHAS, dtype="float32", **kw).fit(x.astype("f4"), y.astype("f4"))
    np.testing.assert_allclose(got.cv_sse_[:4], ref.cv_sse_[:4], rtol=2e-2)
    np.testing.assert_allclose(got.cv_sse_[4:], ref.cv_sse_[4:], rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# internal consistency: solvers, backends, precisions, batches, groups


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize(("n", "p"), [(60, 25), (40, 90)], ids=["n>p", "p>n"])
def test_dual_and_primal_agree(rng, n, p, standardize):
    x, y, x_new = _data(rng, n, p, n_targets=40)
    kw = dict(n_folds=4, seed=2, standardize=standardize)
    primal = RidgeCV(ALPHAS, solver="primal", **kw).fit(x, y)
    dual = RidgeCV(ALPHAS, solver="dual", **kw).fit(x, y)
    np.testing.assert_array_equal(primal.alpha_, dual.alpha_)
    np.testing.assert_allclose(primal.cv_sse_, dual.cv_sse_, rtol=1e-7)
    _assert_close(dual.predict(x_new), primal.predict(x_new), 1e-8)
    _assert_close(dual.coef_, primal.coef_, 1e-7)


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_n_targets_batch_does_not_change_results(rng, batch):
    x, y, x_new = _data(rng, 50, 80, n_targets=23)
    ref = RidgeCV(ALPHAS, n_folds=5).fit(x, y)
    got = RidgeCV(ALPHAS, n_folds=5, n_targets_batch=batch).fit(x, y)
    np.testing.assert_array_equal(got.alpha_, ref.alpha_)
    np.testing.assert_allclose(got.cv_sse_, ref.cv_sse_, rtol=1e-12)
    np.testing.assert_allclose(got.predict(x_new), ref.predict(x_new), rtol=1e-12, atol=1e-12)


def test_groups_keep_each_group_in_one_fold(rng):
    n_stimuli, n_reps = 30, 3
    groups = np.repeat(np.arange(n_stimuli), n_reps)  # three presentations of each stimulus
    x = np.repeat(rng.standard_normal((n_stimuli, 8)), n_reps, axis=0)
    y = x @ rng.standard_normal((8, 5)) + rng.standard_normal((n_stimuli * n_reps, 5))
    splits = make_splits(5, x.shape[0], groups=groups, seed=3)
    for train, test in splits:
        assert not np.intersect1d(groups[train], groups[test]).size
    grouped = RidgeCV(ALPHAS, n_folds=5, seed=3).fit(x, y, groups=groups)
    explicit = RidgeCV(ALPHAS, cv=splits).fit(x, y)
    np.testing.assert_array_equal(grouped.cv_sse_, explicit.cv_sse_)
    folds = group_kfold_indices(groups, 5, seed=3)
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(x.shape[0]))


def test_sklearn_estimator_contract(rng):
    model = RidgeCV(alphas=(-1.0,), cv="not validated here")  # __init__ stores, fit validates
    assert model.get_params()["cv"] == "not validated here"
    twin = clone(RidgeCV(ALPHAS, n_folds=3, dtype="float32"))
    assert twin.get_params()["dtype"] == "float32"
    assert not hasattr(twin, "alpha_") and not hasattr(twin, "coef_")
    x, y, _ = _data(rng, 30, 5, n_targets=3)
    twin.fit(x, y)
    assert twin.coef_.dtype == np.float32 and twin.alpha_.shape == (3,)


def test_one_dimensional_target(rng):
    x, y, x_new = _data(rng, 40, 6, n_targets=1)
    a = RidgeCV(ALPHAS, n_folds=4).fit(x, y[:, 0])
    b = RidgeCV(ALPHAS, n_folds=4).fit(x, y)
    np.testing.assert_allclose(a.predict(x_new), b.predict(x_new), rtol=1e-12)


def test_functional_solver_returns_numpy(rng):
    x, y, _ = _data(rng, 40, 60, n_targets=4)
    res = solve_ridge_cv(x, y, alphas=ALPHAS, cv=4, backend="numpy", dtype="float32")
    assert res.solver == "dual"
    assert res.weights.shape == (40, 4) and res.weights.dtype == np.float32
    assert res.cv_scores.shape == res.cv_sse.shape == (1, ALPHAS.size, 4)


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"solver": "cholesky"}, ConfigError, r"Unknown solver for ridge: expected 'auto' or"),
        ({"backend": "jax"}, ConfigError, r"Unknown backend for ridge"),
        ({"dtype": "float16"}, ConfigError, r"Unknown dtype for ridge"),
        ({"scoring": "mse"}, ConfigError, r"Unknown scoring for ridge"),
        ({"alphas": (0.0, 1.0)}, DataShapeError, r"Invalid penalty grid for alphas"),
        ({"cv": 3, "n_folds": 4}, ConfigError, r"Conflicting folds for RidgeCV"),
        ({"cv": "loo", "scoring": "r2"}, ConfigError, r"Unsupported scoring for cv='loo'"),
        ({"cv": "kfold"}, DataShapeError, r"Unknown cv: expected an int"),
        ({"cv": [(np.arange(5), np.arange(5, 40))]}, DataShapeError, r"outside \[0, 30\)"),
        ({"cv": [(np.arange(20), np.arange(15, 30))]}, DataShapeError, r"shares samples"),
        ({"backend": "numpy", "device": "cuda"}, ConfigError, r"Unknown device for backend"),
    ],
)
def test_invalid_parameters(rng, params, error, match):
    x, y, _ = _data(rng, 30, 4, n_targets=2)
    params = {"alphas": ALPHAS, **params}
    with pytest.raises(error, match=match):
        RidgeCV(**params).fit(x, y)


def test_invalid_data(rng):
    x, y, _ = _data(rng, 30, 4, n_targets=2)
    y[3, 1] = np.nan
    with pytest.raises(DataShapeError, match=r"Non-finite values in Y: expected finite"):
        RidgeCV(ALPHAS).fit(x, y)
    with pytest.raises(DataShapeError, match=r"puts group 0 in both train and test"):
        RidgeCV(ALPHAS, cv=[(np.arange(1, 30), np.array([0]))]).fit(
            x, np.nan_to_num(y), groups=np.repeat(np.arange(15), 2)
        )
    model = RidgeCV(ALPHAS, n_folds=3).fit(x, np.nan_to_num(y))
    with pytest.raises(DataShapeError, match=r"Wrong shape for X: expected \(n_samples, 4\)"):
        RidgeCV(ALPHAS, n_folds=3, solver="dual").fit(x, np.nan_to_num(y)).predict(x[:, :3])
    assert model.predict(x).shape == (30, 2)


def test_refit_with_other_solver_drops_dual_attributes(rng):
    x, y, _ = _data(rng, 30, 50, n_targets=3)
    model = RidgeCV(ALPHAS, n_folds=3).fit(x, y)
    assert model.solver_ == "dual" and hasattr(model, "dual_coef_")
    model.set_params(solver="primal").fit(x, y)
    assert model.solver_ == "primal" and not hasattr(model, "dual_coef_")


def test_cross_validated_ridge_groups_and_ridge_params(rng):
    from brainalign.encoding import cross_validated_ridge

    n_stimuli, n_reps = 24, 2
    groups = np.repeat(np.arange(n_stimuli), n_reps)
    x = np.repeat(rng.standard_normal((n_stimuli, 6)), n_reps, axis=0)
    y = x @ rng.standard_normal((6, 4)) + 0.5 * rng.standard_normal((n_stimuli * n_reps, 4))
    res = cross_validated_ridge(
        x, y, alphas=ALPHAS, n_folds=4, n_inner_folds=3, seed=1, groups=groups
    )
    for k, test in enumerate(group_kfold_indices(groups, 4, seed=1)):
        train = np.setdiff1d(np.arange(x.shape[0]), test)
        model = RidgeCV(ALPHAS, n_folds=3, seed=2).fit(x[train], y[train], groups=groups[train])
        np.testing.assert_allclose(res["predictions"][test], model.predict(x[test]), rtol=1e-12)
        np.testing.assert_array_equal(res["alpha"][k], model.alpha_)
    res32 = cross_validated_ridge(
        x,
        y,
        alphas=ALPHAS,
        n_folds=4,
        n_inner_folds=3,
        seed=1,
        groups=groups,
        ridge_params={"dtype": "float32"},
    )
    np.testing.assert_allclose(res32["r"], res["r"], atol=1e-4)
