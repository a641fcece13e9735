"""Per-target scores and CV criteria against scikit-learn and himalaya; CV splits."""

import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold

from brainalign.encoding import (
    CV_SCORERS,
    group_kfold_indices,
    make_splits,
    normalize_by_ceiling,
    r2_columns,
    select_best_alphas,
)
from brainalign.errors import DataShapeError

himalaya_scoring = pytest.importorskip("himalaya.scoring")


def test_r2_columns_matches_sklearn_and_himalaya(rng):
    y = rng.standard_normal((30, 5)) + 2
    pred = y + rng.standard_normal((30, 5)) * np.arange(5)
    expected = r2_score(y, pred, multioutput="raw_values")
    np.testing.assert_allclose(r2_columns(y, pred), expected, rtol=1e-12)
    np.testing.assert_allclose(r2_columns(y, pred), himalaya_scoring.r2_score(y, pred), rtol=1e-12)


def test_r2_columns_constant_target_is_zero(rng):
    y = rng.standard_normal((10, 2))
    y[:, 0] = 3.0
    assert r2_columns(y, y + 1)[0] == 0.0


def test_cv_scorers_match_himalaya_score_functions(rng):
    # one fold: predictions for 4 penalties; himalaya scores them directly
    y = rng.standard_normal((12, 6))
    pred = y[None] + rng.standard_normal((4, 12, 6)) * np.array([0.1, 0.5, 1.0, 2.0])[:, None, None]
    sse = ((pred - y[None]) ** 2).sum(1)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(
        CV_SCORERS["neg_mse"](sse, ss_tot, 12), himalaya_scoring.l2_neg_loss(y, pred), rtol=1e-12
    )
    np.testing.assert_allclose(
        CV_SCORERS["r2"](sse, ss_tot, 12), himalaya_scoring.r2_score(y, pred), rtol=1e-12
    )
    np.testing.assert_allclose(CV_SCORERS["neg_sse"](sse, ss_tot, 12), -sse)


def test_select_best_alphas_breaks_ties_towards_larger_penalty():
    alphas = np.array([0.1, 1.0, 10.0])
    scores = np.zeros((2, 3, 2))
    scores[:, 0, 1] = 1.0  # target 1 prefers the smallest; target 0: exact tie
    best, best_score, mean = select_best_alphas(scores, alphas, dtype=np.dtype(np.float64))
    np.testing.assert_array_equal(best, [2, 0])
    np.testing.assert_allclose(mean[:, 1], [1.0, 0.0, 0.0])
    assert best_score[0] == pytest.approx(1e-10 * np.log(10.0))


def test_normalize_by_ceiling():
    score = np.array([0.2, 0.3, 0.1, 0.5])
    ceiling = np.array([0.4, 0.05, np.nan, 0.5])
    out = normalize_by_ceiling(score, ceiling, min_ceiling=0.1)
    np.testing.assert_allclose(out, [0.5, np.nan, np.nan, 1.0])
    np.testing.assert_allclose(normalize_by_ceiling(0.2, ceiling, min_ceiling=0.1)[0], 0.5)
    with pytest.raises(DataShapeError, match=r"Shapes do not broadcast for score and ceiling"):
        normalize_by_ceiling(np.ones(3), np.ones(4), min_ceiling=0.1)
    with pytest.raises(DataShapeError, match=r"Non-positive min_ceiling"):
        normalize_by_ceiling(score, ceiling, min_ceiling=0.0)


# ---------------------------------------------------------------------------------------------
# splits


def test_group_kfold_balances_and_keeps_groups(rng):
    groups = rng.integers(0, 40, size=200)
    folds = group_kfold_indices(groups, 5, seed=1)
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(200))
    owners = [set(groups[f]) for f in folds]
    assert all(not (owners[i] & owners[j]) for i in range(5) for j in range(i + 1, 5))
    sizes = [f.size for f in folds]
    assert max(sizes) - min(sizes) <= np.bincount(groups).max()
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(folds, group_kfold_indices(groups, 5, seed=2), strict=True)
    )


def test_make_splits_accepts_sklearn_splitters(rng):
    groups = np.repeat(np.arange(10), 3)
    ours = make_splits(GroupKFold(n_splits=5), 30, groups=groups)
    ref = list(GroupKFold(n_splits=5).split(np.zeros((30, 1)), groups=groups))
    for (tr, te), (rtr, rte) in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(tr, np.sort(rtr))
        np.testing.assert_array_equal(te, np.sort(rte))


@pytest.mark.parametrize(
    ("cv", "groups", "match"),
    [
        (6, np.repeat(np.arange(5), 2), r"Cannot split 5 groups into 6 folds for groups"),
        (3, np.arange(9), r"Wrong shape for groups: expected \(10,\)"),
        ([], None, r"No split for cv"),
        ([(np.arange(5), np.array([], int))], None, r"Split 0 has an empty test set"),
        ([np.arange(5)], None, r"Split 0 is not a \(train, test\) pair"),
    ],
)
def test_make_splits_errors(cv, groups, match):
    with pytest.raises(DataShapeError, match=match):
        make_splits(cv, 10, groups=groups)
