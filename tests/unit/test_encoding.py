"""Unit tests of brainalign.encoding against scikit-learn / scipy references and planted truth."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from brainalign.encoding import RidgeCV, cross_validated_ridge, kfold_indices, pearson_columns
from brainalign.errors import DataShapeError

# ---------------------------------------------------------------------------------------------
# RidgeCV with one penalty == scikit-learn Ridge on standardised features


@pytest.mark.parametrize(("n_samples", "n_features"), [(40, 8), (25, 60)], ids=["n>p", "p>n"])
@pytest.mark.parametrize("alpha", [0.5, 30.0])
def test_ridgecv_single_alpha_matches_sklearn(rng, n_samples, n_features, alpha):
    x = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.5, 5, n_features) + 3.0
    y = x @ rng.standard_normal((n_features, 4)) + rng.standard_normal((n_samples, 4)) + 10.0
    x_new = rng.standard_normal((7, n_features)) * 2 + 3.0

    model = RidgeCV(alphas=(alpha,), n_folds=3, seed=0).fit(x, y)

    scaler = StandardScaler().fit(x)  # ddof=0, like brainalign
    ref = Ridge(alpha=alpha, fit_intercept=True).fit(scaler.transform(x), y)
    expected = ref.predict(scaler.transform(x_new))
    got = model.predict(x_new)
    # tolerance: 1e-8 relative to the prediction scale
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
    np.testing.assert_allclose(
        model.coef_, ref.coef_.T, rtol=1e-8, atol=1e-8 * np.abs(ref.coef_).max()
    )
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-10)
    np.testing.assert_array_equal(model.alpha_, np.full(4, alpha))


def test_ridgecv_constant_feature_is_harmless(rng):
    # a constant column has std 0: it must neither produce NaN nor change the fit
    x = rng.standard_normal((30, 5))
    y = x @ rng.standard_normal((5, 2)) + 0.1 * rng.standard_normal((30, 2))
    x_const = np.column_stack([x, np.full(30, 7.0)])
    a = RidgeCV(alphas=(1.0,), n_folds=3).fit(x, y).predict(x)
    b = RidgeCV(alphas=(1.0,), n_folds=3).fit(x_const, y).predict(x_const)
    assert np.all(np.isfinite(b))
    np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_ridgecv_rejects_mismatched_rows(rng):
    with pytest.raises(DataShapeError, match=r"Features have 10 rows but responses have 9"):
        RidgeCV().fit(rng.standard_normal((10, 3)), rng.standard_normal((9, 2)))


def test_ridgecv_score_is_pearson_of_predictions(rng):
    x = rng.standard_normal((30, 4))
    y = x @ rng.standard_normal((4, 3)) + rng.standard_normal((30, 3))
    model = RidgeCV(alphas=(1.0, 10.0), n_folds=3).fit(x, y)
    x_test = rng.standard_normal((12, 4))
    y_test = x_test @ rng.standard_normal((4, 3))
    pred = model.predict(x_test)
    expected = [pearsonr(pred[:, j], y_test[:, j])[0] for j in range(3)]
    np.testing.assert_allclose(model.score(x_test, y_test), expected, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Per-target penalty == brute-force inner cross-validation with scikit-learn


def _brute_force_sse(x, y, alphas, n_folds, seed):
    sse = np.zeros((len(alphas), y.shape[1]))
    for test in kfold_indices(x.shape[0], n_folds, seed=seed):
        train = np.setdiff1d(np.arange(x.shape[0]), test)
        mean, sd = x[train].mean(0), x[train].std(0)  # ddof=0
        xtr, xte = (x[train] - mean) / sd, (x[test] - mean) / sd
        ymean = y[train].mean(0)
        for i, alpha in enumerate(alphas):
            ridge = Ridge(alpha=alpha, fit_intercept=False).fit(xtr, y[train] - ymean)
            pred = ridge.predict(xte) + ymean
            sse[i] += ((pred - y[test]) ** 2).sum(0)
    return sse


def test_ridgecv_alpha_choice_matches_brute_force(rng):
    n, p, n_targets = 60, 12, 16
    alphas = (0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)
    x = rng.standard_normal((n, p)) * rng.uniform(0.5, 3, p)
    # signal strength from none to strong: different targets need different penalties
    strength = np.linspace(0.0, 3.0, n_targets)
    y = (x @ rng.standard_normal((p, n_targets))) * strength + rng.standard_normal((n, n_targets))

    model = RidgeCV(alphas=alphas, n_folds=5, seed=3).fit(x, y)
    sse = _brute_force_sse(x, y, alphas, n_folds=5, seed=3)

    np.testing.assert_allclose(model.cv_sse_, sse, rtol=1e-8)
    np.testing.assert_array_equal(model.alpha_, np.asarray(alphas)[np.argmin(sse, axis=0)])
    # the test is only informative if several penalties are actually chosen
    assert np.unique(model.alpha_).size >= 3

    # final fit: each target uses sklearn Ridge with its own penalty on all samples
    scaler = StandardScaler().fit(x)
    for j in range(n_targets):
        ref = Ridge(alpha=model.alpha_[j]).fit(scaler.transform(x), y[:, j])
        np.testing.assert_allclose(
            model.predict(x)[:, j],
            ref.predict(scaler.transform(x)),
            rtol=1e-8,
            atol=1e-8 * np.abs(y[:, j]).max(),
        )


# ---------------------------------------------------------------------------------------------
# cross_validated_ridge on planted truth


def test_cross_validated_ridge_planted_truth(rng):
    n, p, n_signal, n_noise = 200, 10, 8, 200
    x = rng.standard_normal((n, p))
    signal = x @ rng.standard_normal((p, n_signal))
    y_signal = signal + 0.2 * signal.std(0) * rng.standard_normal((n, n_signal))
    y_noise = rng.standard_normal((n, n_noise))
    y = np.column_stack([y_signal, y_noise])
    alphas = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4)

    res = cross_validated_ridge(x, y, alphas=alphas, n_folds=5, n_inner_folds=5, seed=0)

    assert res["r"].shape == res["r2"].shape == (n_signal + n_noise,)
    assert res["alpha"].shape == (5, n_signal + n_noise)
    assert set(np.unique(res["alpha"])) <= set(alphas)
    assert res["predictions"].shape == y.shape
    # expected r ~ 1/sqrt(1 + 0.2^2) = 0.98 for the signal targets
    assert np.all(res["r"][:n_signal] > 0.8)
    assert np.all(res["r2"][:n_signal] > 0.8)
    # noise targets: mean over 200 targets of fold-averaged r is unbiased (SE ~ 0.005)
    r_noise = res["r"][n_signal:]
    assert abs(r_noise.mean()) < 0.15
    assert abs(r_noise.mean()) < 0.03
    assert np.median(res["r2"][n_signal:]) < 0.0  # no out-of-sample variance explained
    # why r is averaged per fold: correlating the concatenated predictions is biased low
    r_concat = pearson_columns(res["predictions"], y)[n_signal:]
    assert r_concat.mean() < r_noise.mean() - 0.03

    # r is the average over the outer test folds of the within-fold Pearson r
    folds = kfold_indices(n, 5, seed=0)
    for j in (0, n_signal, n_signal + 17):
        per_fold = [pearsonr(res["predictions"][t, j], y[t, j])[0] for t in folds]
        np.testing.assert_allclose(res["r"][j], np.mean(per_fold), rtol=1e-10)


def test_cross_validated_ridge_predictions_are_held_out(rng):
    # one target equal to a feature plus noise: predictions of fold k come from a model that
    # never saw fold k, which we reproduce with RidgeCV and the documented inner seed (seed + 1)
    x = rng.standard_normal((30, 3))
    y = x[:, :1] + 0.5 * rng.standard_normal((30, 1))
    res = cross_validated_ridge(x, y, alphas=(1.0, 10.0), n_folds=3, n_inner_folds=3, seed=4)
    for k, test in enumerate(kfold_indices(30, 3, seed=4)):
        train = np.setdiff1d(np.arange(30), test)
        model = RidgeCV((1.0, 10.0), n_folds=3, seed=5).fit(x[train], y[train])
        np.testing.assert_allclose(res["predictions"][test], model.predict(x[test]), rtol=1e-12)
        np.testing.assert_array_equal(res["alpha"][k], model.alpha_)


# ---------------------------------------------------------------------------------------------
# kfold_indices and pearson_columns


@pytest.mark.parametrize(("n_samples", "n_folds"), [(10, 2), (23, 5), (7, 7)])
def test_kfold_indices_partition(n_samples, n_folds):
    folds = kfold_indices(n_samples, n_folds, seed=1)
    assert len(folds) == n_folds
    all_idx = np.concatenate(folds)
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(n_samples))  # each index once
    sizes = [f.size for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert all(np.all(np.diff(f) > 0) for f in folds)  # sorted within a fold


def test_kfold_indices_seeded():
    a = kfold_indices(40, 4, seed=0)
    b = kfold_indices(40, 4, seed=0)
    c = kfold_indices(40, 4, seed=1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))


@pytest.mark.parametrize(("n_samples", "n_folds"), [(5, 6), (5, 1)])
def test_kfold_indices_rejects_bad_fold_count(n_samples, n_folds):
    with pytest.raises(DataShapeError, match=rf"{n_samples} stimuli into {n_folds} folds"):
        kfold_indices(n_samples, n_folds)


def test_pearson_columns_matches_scipy(rng):
    a = rng.standard_normal((25, 6))
    b = 0.5 * a + rng.standard_normal((25, 6)) + np.arange(6)
    expected = [pearsonr(a[:, j], b[:, j])[0] for j in range(6)]
    np.testing.assert_allclose(pearson_columns(a, b), expected, rtol=1e-12, atol=1e-14)


def test_pearson_columns_constant_column_is_zero(rng):
    a = rng.standard_normal((10, 3))
    a[:, 1] = 4.0
    b = rng.standard_normal((10, 3))
    r = pearson_columns(a, b)
    assert r[1] == 0.0
    np.testing.assert_allclose(
        r[[0, 2]], [pearsonr(a[:, j], b[:, j])[0] for j in (0, 2)], rtol=1e-12
    )
