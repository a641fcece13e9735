"""Group statistics over time: cluster permutation tests (MNE) and bootstrap peak latencies.

The cluster test is checked against a direct ``mne.stats.permutation_cluster_1samp_test`` call
on the same arrays, and against planted effects: a window where every subject's score rises is
found as a significant cluster covering it, pure noise gives no significant cluster, and the
bootstrap interval of the peak latency covers the planted peak.
"""

import mne
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp_stats

from brainalign.errors import DataShapeError
from brainalign.io import read_tsv, save_tsv
from brainalign.meeg.stats import cluster_test, cluster_threshold, peak_latency
from brainalign.meeg.steps import step_meeg_group

TIMES = np.round(np.arange(-0.1, 0.5, 0.01), 3)  # 60 time points
WINDOW = (TIMES >= 0.15) & (TIMES <= 0.30)
STATS = {"n_permutations": 500, "cluster_p": 0.05, "alpha": 0.05, "n_bootstrap": 500,
         "ci_percent": 95.0, "seed": 7}


def _curves(rng, n_subjects=12, effect=0.6, peak=None):
    """Subjects' noisy score curves; ``effect`` added in WINDOW (or a bump at ``peak``)."""
    x = 0.3 * rng.standard_normal((n_subjects, TIMES.size))
    if peak is not None:
        x += effect * np.exp(-0.5 * ((TIMES - peak) / 0.04) ** 2)
    elif effect:
        x[:, WINDOW] += effect
    return x


def test_threshold_is_the_one_sided_t_quantile():
    assert cluster_threshold(10, 0.05) == pytest.approx(sp_stats.t.ppf(0.95, 9))
    assert cluster_threshold(3, 0.01) == pytest.approx(6.964557, rel=1e-6)


def test_equals_a_direct_mne_call(rng):
    x = _curves(rng, effect=0.3)
    clusters, t_obs = cluster_test(x, TIMES, cluster_p=0.05, n_permutations=300, seed=3)
    t_ref, cl_ref, p_ref, _ = mne.stats.permutation_cluster_1samp_test(
        x, threshold=sp_stats.t.ppf(0.95, x.shape[0] - 1), n_permutations=300, tail=1,
        rng=3, out_type="indices", verbose=False)
    np.testing.assert_array_equal(t_obs, t_ref)
    assert len(clusters) == len(cl_ref) >= 1
    ref = sorted(zip(cl_ref, p_ref, strict=True), key=lambda c: c[0][0].min())
    for c, ((idx,), p) in zip(clusters, ref, strict=True):
        assert (c["start"], c["stop"]) == (idx.min(), idx.max())
        assert c["t_start"] == TIMES[idx.min()] and c["t_stop"] == TIMES[idx.max()]
        assert c["p_value"] == p
        assert c["cluster_stat"] == pytest.approx(t_ref[idx].sum())
    # and the t statistic is scipy's one-sample t
    np.testing.assert_allclose(t_obs, sp_stats.ttest_1samp(x, 0).statistic, rtol=1e-10)


def test_planted_window_is_a_significant_cluster(rng):
    clusters, _ = cluster_test(_curves(rng), TIMES, n_permutations=500, seed=1)
    sig = [c for c in clusters if c["p_value"] < 0.05]
    assert len(sig) == 1
    c = sig[0]
    # covers the window, give or take a sample of noise at its edges
    assert c["t_start"] <= 0.15 + 0.011 and c["t_stop"] >= 0.30 - 0.011
    assert c["t_start"] >= 0.15 - 0.031 and c["t_stop"] <= 0.30 + 0.031


def test_null_curves_give_no_significant_cluster(rng):
    for _ in range(3):
        clusters, _ = cluster_test(_curves(rng, effect=0.0), TIMES, n_permutations=200, seed=2)
        assert all(c["p_value"] >= 0.05 for c in clusters)


def test_same_seed_same_p_values(rng):
    x = _curves(rng, effect=0.15)
    a, _ = cluster_test(x, TIMES, n_permutations=100, seed=11)
    b, _ = cluster_test(x, TIMES, n_permutations=100, seed=11)
    assert a and a == b
    c, _ = cluster_test(x, TIMES, n_permutations=100, seed=12)
    assert [x["p_value"] for x in c] != [x["p_value"] for x in a]  # the seed is used


def test_peak_latency_ci_covers_the_planted_peak(rng):
    x = _curves(rng, effect=1.0, peak=0.17)
    peak = peak_latency(x, TIMES, n_bootstrap=500, ci_percent=95, seed=0)
    assert peak["ci_low"] <= 0.17 <= peak["ci_high"]
    assert abs(peak["peak_time"] - 0.17) <= 0.03
    assert peak["ci_high"] - peak["ci_low"] < 0.15
    assert peak["peak_score"] == pytest.approx(x.mean(0).max())
    assert peak == peak_latency(x, TIMES, n_bootstrap=500, ci_percent=95, seed=0)
    # direct bootstrap, same generator: the same interval
    rng_ref = np.random.default_rng(0)
    idx = rng_ref.integers(0, x.shape[0], size=(500, x.shape[0]))
    boot = TIMES[np.argmax(x[idx].mean(1), axis=1)]
    assert (peak["ci_low"], peak["ci_high"]) == tuple(np.percentile(boot, [2.5, 97.5]))


def test_bad_input(rng):
    with pytest.raises(DataShapeError, match="at least two subjects"):
        cluster_test(rng.standard_normal((1, 10)), TIMES[:10])
    x = rng.standard_normal((3, 10))
    x[1, 2] = np.nan
    with pytest.raises(DataShapeError, match="Non-finite"):
        peak_latency(x, TIMES[:10])
    with pytest.raises(DataShapeError, match="times"):
        peak_latency(rng.standard_normal((3, 10)), TIMES[:9])


# --- step ------------------------------------------------------------------------------------


def _tables(tmp_path, rng, n_subjects):
    paths, curves = [], {"early": [], "noise": []}
    for s in range(n_subjects):
        rows = []
        for layer, effect in (("early", 0.6), ("noise", 0.0)):
            x = _curves(rng, n_subjects=1, effect=effect)[0]
            curves[layer].append(x)
            rows.append(pd.DataFrame({
                "analysis": "rsa", "subject": f"{s + 1:02d}", "roi": "eeg", "model": "net",
                "layer": layer, "metric": "spearman", "score": x, "noise_ceiling": 0.5,
                "modality": "eeg", "time": TIMES}))
        path = tmp_path / f"sub-{s + 1:02d}_rsa.tsv"
        save_tsv(pd.concat(rows), path)
        paths.append(str(path))
    return paths, {k: np.array(v) for k, v in curves.items()}


CLUSTER_COLUMNS = ["analysis", "modality", "roi", "model", "layer", "t_start", "t_stop",
                   "cluster_stat", "p_value", "significant", "n_subjects"]
PEAK_COLUMNS = ["analysis", "modality", "roi", "model", "layer", "peak_time", "ci_low",
                "ci_high", "peak_score", "n_subjects"]


def test_step_group_tables(tmp_path, rng):
    paths, curves = _tables(tmp_path, rng, 10)
    step_meeg_group(paths, stats=STATS, clusters_out=str(tmp_path / "clusters.tsv"),
                    peaks_out=str(tmp_path / "peaks.tsv"))
    clusters = read_tsv(tmp_path / "clusters.tsv")
    peaks = read_tsv(tmp_path / "peaks.tsv")
    assert list(clusters.columns) == CLUSTER_COLUMNS
    assert list(peaks.columns) == PEAK_COLUMNS
    assert (clusters["n_subjects"] == 10).all() and (peaks["n_subjects"] == 10).all()
    sig = clusters[clusters["significant"]]
    assert set(sig["layer"]) == {"early"}
    assert sig["t_start"].min() <= 0.16 and sig["t_stop"].max() >= 0.29
    # the table holds what a direct call gives on the subjects' curves
    ref, _ = cluster_test(curves["early"], TIMES, cluster_p=0.05, n_permutations=500, seed=7)
    early = clusters[clusters["layer"] == "early"].reset_index(drop=True)
    assert len(early) == len(ref)
    for i, c in enumerate(ref):
        assert early.loc[i, "p_value"] == pytest.approx(c["p_value"])
        assert early.loc[i, "t_start"] == pytest.approx(c["t_start"])
        assert early.loc[i, "cluster_stat"] == pytest.approx(c["cluster_stat"])
    assert set(peaks["layer"]) == {"early", "noise"}
    row = peaks[peaks["layer"] == "early"].iloc[0]
    assert 0.15 <= row["peak_time"] <= 0.30
    ref_peak = peak_latency(curves["early"], TIMES, n_bootstrap=500, ci_percent=95, seed=7)
    assert row["ci_low"] == pytest.approx(ref_peak["ci_low"])
    assert row["peak_score"] == pytest.approx(ref_peak["peak_score"])


def test_step_with_one_subject_writes_headers_only(tmp_path, rng, caplog):
    paths, _ = _tables(tmp_path, rng, 1)
    with caplog.at_level("WARNING"):
        step_meeg_group(paths, stats=STATS, clusters_out=str(tmp_path / "c.tsv"),
                        peaks_out=str(tmp_path / "p.tsv"))
    assert "at least 2" in caplog.text
    c, p = read_tsv(tmp_path / "c.tsv"), read_tsv(tmp_path / "p.tsv")
    assert c.empty and list(c.columns) == CLUSTER_COLUMNS
    assert p.empty and list(p.columns) == PEAK_COLUMNS


def test_step_uses_the_time_points_every_subject_has(tmp_path, rng):
    paths, curves = _tables(tmp_path, rng, 4)
    t = read_tsv(paths[0])
    save_tsv(t[t["time"] < 0.4], paths[0])  # one subject's table ends earlier
    step_meeg_group(paths, stats=STATS, clusters_out=str(tmp_path / "c.tsv"),
                    peaks_out=str(tmp_path / "p.tsv"))
    p = read_tsv(tmp_path / "p.tsv")
    keep = TIMES < 0.4
    ref = peak_latency(curves["noise"][:, keep], TIMES[keep], n_bootstrap=500, seed=7)
    row = p[p["layer"] == "noise"].iloc[0]
    assert row["peak_time"] == pytest.approx(ref["peak_time"])
    assert row["peak_time"] < 0.4


def test_step_rejects_a_table_without_time(tmp_path):
    save_tsv(pd.DataFrame({"analysis": ["rsa"], "subject": ["01"], "score": [0.1]}),
             tmp_path / "t.tsv")
    with pytest.raises(DataShapeError, match="time"):
        step_meeg_group([str(tmp_path / "t.tsv")], stats=STATS,
                        clusters_out=str(tmp_path / "c.tsv"), peaks_out=str(tmp_path / "p.tsv"))
