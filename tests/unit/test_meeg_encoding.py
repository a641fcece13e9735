"""Time-resolved encoding: ridge from layer features to every channel x time point, one fit.

Checked against scikit-learn (a grid search over ``StandardScaler + Ridge`` in every outer
training set, same folds, same penalties, same criterion) on a few targets, against separate
fits of each time point, and against planted timing: a layer that drives some channels around
a known latency gives its peak score there.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from brainalign.encoding import cross_validated_ridge
from brainalign.encoding.splits import kfold_indices, make_splits
from brainalign.encoding.temporal import group_time_means, time_resolved_ridge
from brainalign.errors import DataShapeError
from brainalign.io import read_tsv, save_npz
from brainalign.meeg.steps import step_meeg_encoding
from brainalign.report.scores import SCORE_COLUMNS

ALPHAS = [0.1, 1.0, 10.0, 100.0, 1000.0, 1e4]
RIDGE = {"alphas": ALPHAS, "n_folds": 4, "n_inner_folds": 3, "seed": 3}


def _planted(rng, n_stim=48, n_features=20, n_channels=6, times=None, peak=0.2, width=0.03,
             noise=0.5):
    """Channels 0-2 follow one feature projection with a Gaussian time profile at ``peak``."""
    times = np.arange(-0.1, 0.4001, 0.01) if times is None else times
    X = rng.standard_normal((n_stim, n_features))
    drive = X @ rng.standard_normal(n_features) / np.sqrt(n_features)
    profile = np.exp(-0.5 * ((times - peak) / width) ** 2)
    gains = np.r_[np.ones(3), np.zeros(n_channels - 3)]
    Y = drive[:, None, None] * gains[None, :, None] * profile[None, None, :]
    Y = Y + noise * rng.standard_normal(Y.shape)
    return X, Y, times


def _sk_predict(alpha, X_train, y_train, X_test):
    """scikit-learn: z-score on the training set, then Ridge with an intercept."""
    model = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(X_train, y_train)
    return model.predict(X_test)


def _sklearn_nested_r(X, y, *, alphas, n_folds, n_inner_folds, seed):
    """Held-out r of one target: per outer fold, the penalty of least summed squared error over
    the inner folds (a grid search), refit on the outer training set, r on its test fold."""
    rs, chosen = [], []
    n = X.shape[0]
    for test in kfold_indices(n, n_folds, seed=seed):
        train = np.setdiff1d(np.arange(n), test)
        xtr, ytr = X[train], y[train]
        inner = make_splits(n_inner_folds, train.size, seed=seed + 1)
        sse = [sum(np.sum((_sk_predict(a, xtr[i], ytr[i], xtr[o]) - ytr[o]) ** 2)
                   for i, o in inner) for a in alphas]
        best = alphas[int(np.argmin(sse))]
        pred = _sk_predict(best, xtr, ytr, X[test])
        rs.append(np.corrcoef(pred, y[test])[0, 1])
        chosen.append(best)
    return np.mean(rs), np.array(chosen)


@pytest.mark.parametrize("n_features", [20, 70])  # primal and dual (kernel) solver
def test_matches_sklearn_grid_search_on_the_same_folds(rng, n_features):
    X, Y, _ = _planted(rng, n_features=n_features, n_channels=4,
                       times=np.array([0.0, 0.1, 0.2, 0.3]), peak=0.2, width=0.1)
    res = time_resolved_ridge(X, Y, **RIDGE)
    assert res["r"].shape == (4, 4) and res["alpha"].shape == (4, 4, 4)
    chosen = set()
    for c, t in [(0, 2), (3, 0), (1, 3)]:
        r_ref, alpha_ref = _sklearn_nested_r(X, Y[:, c, t], **RIDGE)
        np.testing.assert_allclose(res["r"][c, t], r_ref, rtol=0, atol=1e-8)
        np.testing.assert_array_equal(res["alpha"][:, c, t], alpha_ref)
        chosen |= set(alpha_ref)
    assert len(chosen) >= 2  # penalties differ between targets: the comparison has teeth


def test_one_fit_equals_a_fit_per_time_point(rng):
    X, Y, times = _planted(rng, n_features=30, n_channels=5)
    res = time_resolved_ridge(X, Y, **RIDGE)
    for t in range(0, times.size, 7):
        ref = cross_validated_ridge(X, Y[:, :, t], **RIDGE)
        np.testing.assert_allclose(res["r"][:, t], ref["r"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(res["r2"][:, t], ref["r2"], rtol=0, atol=1e-10)
        np.testing.assert_array_equal(res["alpha"][:, :, t], ref["alpha"])


def test_planted_latency_gives_the_peak(rng):
    X, Y, times = _planted(rng, n_stim=60, peak=0.18, width=0.03, noise=0.4)
    res = time_resolved_ridge(X, Y, **RIDGE)
    driven = res["r"][:3].mean(0)
    assert abs(times[np.argmax(driven)] - 0.18) <= 0.02 + 1e-9
    assert driven.max() > 0.6
    # channels without signal, and the baseline, stay near chance
    assert abs(res["r"][3:].mean()) < 0.1
    assert abs(driven[times < 0].mean()) < 0.15
    assert driven.max() > res["r"][3:].mean(0).max() + 0.3


def test_group_time_means(rng):
    values = rng.standard_normal((5, 7))
    masks = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 0, 1]], bool)
    got = group_time_means(values, masks)
    for g, m in enumerate(masks):
        np.testing.assert_allclose(got[g], values[np.flatnonzero(m)].mean(0), atol=1e-14)
    with pytest.raises(DataShapeError, match="Empty channel group"):
        group_time_means(values, np.zeros((1, 5), bool))
    with pytest.raises(DataShapeError, match="do not match"):
        group_time_means(values, masks[:, :4])


def test_bad_shapes(rng):
    with pytest.raises(DataShapeError, match="n_channels, n_times"):
        time_resolved_ridge(rng.standard_normal((10, 3)), rng.standard_normal((10, 4)),
                            alphas=ALPHAS)
    with pytest.raises(DataShapeError, match="one row per stimulus"):
        time_resolved_ridge(rng.standard_normal((9, 3)), rng.standard_normal((10, 4, 2)),
                            alphas=ALPHAS)


# --- step ------------------------------------------------------------------------------------


def _write_inputs(tmp_path, rng):
    X, Y, times = _planted(rng, n_stim=48, peak=0.15, width=0.03, noise=0.4)
    stimuli = np.array([f"stim{i:02d}.png" for i in range(len(X))])
    ceiling = np.clip(0.05 + 0.9 * np.exp(-0.5 * ((times - 0.15) / 0.05) ** 2), 0, 1)
    ceiling = np.tile(ceiling, (Y.shape[1], 1)) * np.linspace(0.8, 1.0, Y.shape[1])[:, None]
    masks = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], bool)
    save_npz(tmp_path / "resp.npz", responses=Y, half1=Y, half2=Y,
             n_repeats=np.full(len(X), 4), stimuli=stimuli,
             channels=np.array([f"E{i}" for i in range(6)]), ch_types=np.array(["eeg"] * 6),
             rois=np.array(["occipital", "temporal"]), roi_masks=masks, times=times,
             sfreq=np.array(100.0), noise_ceiling=ceiling)
    # feature files: rows shuffled, one extra stimulus the subject did not see
    order = rng.permutation(len(X))
    extra = rng.standard_normal((1, X.shape[1]))
    for name, feats in (("early", X), ("noise", rng.standard_normal(X.shape))):
        save_npz(tmp_path / f"{name}.npz", features=np.vstack([feats[order], extra]),
                 stimuli=np.r_[stimuli[order], ["unseen.png"]])
    return X, Y, times, ceiling, masks


def test_step_writes_the_time_score_table(tmp_path, rng):
    X, Y, times, ceiling, masks = _write_inputs(tmp_path, rng)
    out = tmp_path / "scores.tsv"
    step_meeg_encoding(str(tmp_path / "resp.npz"),
                       {"early": str(tmp_path / "early.npz"), "noise": str(tmp_path / "noise.npz")},
                       subject="01", datatype="eeg", model="net", ridge=RIDGE, out=str(out))
    t = read_tsv(out)
    assert len(t) == 2 * 2 * times.size  # layers x groups x times
    assert {"modality", "time"} <= set(t.columns)
    assert set(t.columns) - {"modality", "time", "n_channels", "median_alpha"} <= set(
        SCORE_COLUMNS)
    assert (t["analysis"] == "encoding").all() and (t["metric"] == "pearson_r").all()
    assert (t["modality"] == "eeg").all() and (t["subject"] == "01").all()
    # scores: the group means of the direct fit on the aligned features
    ref = time_resolved_ridge(X, Y, **RIDGE)["r"]
    early = t[(t["layer"] == "early")]
    for g, roi in enumerate(["occipital", "temporal"]):
        rows = early[early["roi"] == roi].sort_values("time")
        np.testing.assert_allclose(rows["time"], times, atol=1e-12)
        np.testing.assert_allclose(rows["score"], ref[masks[g]].mean(0), atol=1e-9)
        np.testing.assert_allclose(rows["noise_ceiling"], ceiling[masks[g]].mean(0), atol=1e-9)
        nc = rows["noise_ceiling"].to_numpy()
        norm = rows["normalized_score"].to_numpy()
        assert np.isnan(norm[nc < 0.1]).all() and (nc < 0.1).any()
        np.testing.assert_allclose(norm[nc >= 0.1], (rows["score"] / rows["noise_ceiling"])
                                   .to_numpy()[nc >= 0.1], atol=1e-12)
        assert (rows["n_channels"] == 3).all()
    # the planted layer peaks at the planted latency in the driven group, the noise layer does not
    occ = early[early["roi"] == "occipital"]
    assert abs(occ.loc[occ["score"].idxmax(), "time"] - 0.15) <= 0.02 + 1e-9
    noise = t[(t["layer"] == "noise") & (t["roi"] == "occipital")]
    assert noise["score"].max() < occ["score"].max() - 0.3


def test_step_rejects_an_incomplete_responses_file(tmp_path, rng):
    save_npz(tmp_path / "resp.npz", responses=rng.standard_normal((5, 2, 3)),
             stimuli=np.array(list("abcde")))
    with pytest.raises(DataShapeError, match="meeg_responses"):
        step_meeg_encoding(str(tmp_path / "resp.npz"), {"l": "absent.npz"}, subject="01",
                           datatype="eeg", model="net", ridge=RIDGE, out=str(tmp_path / "o.tsv"))
    with pytest.raises(DataShapeError, match="No layer features"):
        step_meeg_encoding(str(tmp_path / "resp.npz"), {}, subject="01", datatype="eeg",
                           model="net", ridge=RIDGE, out=str(tmp_path / "o.tsv"))


def test_table_reads_as_a_dataframe(tmp_path, rng):
    _write_inputs(tmp_path, rng)
    out = tmp_path / "scores.tsv"
    step_meeg_encoding(str(tmp_path / "resp.npz"), {"early": str(tmp_path / "early.npz")},
                       subject="02", datatype="meg", model="net", ridge=RIDGE, out=str(out),
                       min_noise_ceiling=0.5)
    t = pd.read_csv(out, sep="\t", na_values=["n/a"], keep_default_na=False)
    assert (t["modality"] == "meg").all()
    assert t["normalized_score"].isna().sum() == (t["noise_ceiling"] < 0.5).sum() > 0


def test_zero_min_ceiling_normalizes_every_positive_ceiling(tmp_path, rng):
    _write_inputs(tmp_path, rng)
    out = tmp_path / "scores.tsv"
    step_meeg_encoding(str(tmp_path / "resp.npz"), {"early": str(tmp_path / "early.npz")},
                       subject="02", datatype="eeg", model="net", ridge=RIDGE, out=str(out),
                       min_noise_ceiling=0.0)
    t = read_tsv(out)
    assert (t["noise_ceiling"] > 0).all() and t["normalized_score"].notna().all()
    np.testing.assert_allclose(t["normalized_score"], t["score"] / t["noise_ceiling"])


def test_encoding_tables_feed_the_group_step(tmp_path, rng):
    from brainalign.meeg.steps import step_meeg_group

    tables = []
    for s in range(3):
        sub = tmp_path / f"sub{s}"
        sub.mkdir()
        _write_inputs(sub, rng)
        out = sub / "scores.tsv"
        step_meeg_encoding(str(sub / "resp.npz"), {"early": str(sub / "early.npz")},
                           subject=f"0{s + 1}", datatype="eeg", model="net", ridge=RIDGE,
                           out=str(out))
        tables.append(str(out))
    stats = {"n_permutations": 100, "cluster_p": 0.05, "alpha": 0.05, "n_bootstrap": 200,
             "ci_percent": 95.0, "seed": 0}
    step_meeg_group(tables, stats=stats, clusters_out=str(tmp_path / "c.tsv"),
                    peaks_out=str(tmp_path / "p.tsv"))
    peaks = read_tsv(tmp_path / "p.tsv")
    assert len(peaks) == 2 and (peaks["n_subjects"] == 3).all()
    assert (peaks["analysis"] == "encoding").all() and (peaks["modality"] == "eeg").all()
    occ = peaks[peaks["roi"] == "occipital"].iloc[0]
    assert abs(occ["peak_time"] - 0.15) <= 0.02 + 1e-9
    assert occ["ci_low"] <= 0.15 <= occ["ci_high"]
    clusters = read_tsv(tmp_path / "c.tsv")
    occ_cl = clusters[clusters["roi"] == "occipital"]
    # the driven window forms a cluster (3 subjects cannot reach p < 0.05 with sign flips)
    assert ((occ_cl["t_start"] <= 0.15) & (occ_cl["t_stop"] >= 0.15)).any()
