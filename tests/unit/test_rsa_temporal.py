"""Time-resolved RSA (brainalign.rsa.temporal) against mne-rsa, rsatoolbox and planted timing."""

import logging

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import rankdata

from brainalign import rsa
from brainalign.errors import DataShapeError
from brainalign.rsa import temporal

METRICS = ["correlation", "cosine", "euclidean", "sqeuclidean"]


@pytest.fixture
def patterns(rng):
    """(12 stimuli, 6 channels, 40 samples) with an offset, so cosine != correlation."""
    return rng.standard_normal((12, 6, 40)) + 0.5


def window_slices(n_times, window):
    start = np.arange(n_times - window + 1)
    return [slice(s, s + window) for s in start]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("window", [1, 4, 5])
def test_time_rdms_equal_mne_rsa_compute_rdm(patterns, metric, window):
    from mne_rsa import compute_rdm

    ours = temporal.calc_rdm_temporal(patterns, metric=metric, window=window)
    ref = np.stack([compute_rdm(patterns[:, :, sl], metric=metric)
                    for sl in window_slices(patterns.shape[2], window)])
    assert ours.shape == ref.shape == (40 - window + 1, 66)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_time_rdms_memory_chunks_give_the_same_values(patterns, monkeypatch):
    whole = temporal.calc_rdm_temporal(patterns, metric="correlation", window=3)
    monkeypatch.setattr(temporal, "_GRAM_CHUNK_ELEMENTS", 12 * 12 * 5)  # 3 windows a chunk
    np.testing.assert_array_equal(
        temporal.calc_rdm_temporal(patterns, metric="correlation", window=3), whole)


@pytest.mark.parametrize(("ours", "theirs", "scale"),
                         [("correlation", "correlation", 1.0), ("sqeuclidean", "euclidean", 6)])
def test_time_rdms_equal_rsatoolbox_calc_rdm_movie(patterns, ours, theirs, scale):
    """rsatoolbox's 'euclidean' is the squared distance divided by the number of channels."""
    from rsatoolbox.data import TemporalDataset
    from rsatoolbox.rdm import calc_rdm_movie

    n_stim, _, n_times = patterns.shape
    ds = TemporalDataset(patterns, obs_descriptors={"stim": np.arange(n_stim)},
                         time_descriptors={"time": np.arange(n_times) / 100.0})
    ref = calc_rdm_movie(ds, method=theirs, descriptor="stim").get_vectors()
    np.testing.assert_allclose(temporal.calc_rdm_temporal(patterns, metric=ours) / scale, ref,
                               rtol=1e-9, atol=1e-12)


def _evokeds(patterns, sfreq, tmin):
    import mne

    info = mne.create_info([f"E{i}" for i in range(patterns.shape[1])], sfreq, "eeg")
    return [mne.EvokedArray(p, info, tmin=tmin, verbose=False) for p in patterns]


@pytest.mark.parametrize(("metric", "radius"), [("correlation", 0), ("correlation", 2),
                                                ("sqeuclidean", 1), ("cosine", 2)])
def test_rsa_time_course_equals_mne_rsa_rsa_evokeds(rng, metric, radius, monkeypatch):
    """mne-rsa's temporal_radius r (s) is round(r * sfreq) samples: windows of 2 r + 1."""
    from mne_rsa import rsa_evokeds

    monkeypatch.setattr(temporal, "_FUSED_CHUNK_ELEMENTS", 20 * 20 * 7)  # chunks of 7

    x = rng.standard_normal((20, 8, 50))
    models = rng.random((3, 190))
    sfreq, tmin = 200.0, -0.1
    ref = rsa_evokeds(_evokeds(x, sfreq, tmin), list(models), temporal_radius=radius / sfreq,
                      evoked_rdm_metric=metric, rsa_metric="spearman", n_jobs=1,
                      verbose=False)
    window = 2 * radius + 1
    scores = temporal.compare_rdms_temporal(
        temporal.calc_rdm_temporal(x, metric=metric, window=window), models, method="spearman")
    np.testing.assert_allclose(scores, np.stack([e.data[0] for e in ref], axis=1), atol=1e-9)
    fused = temporal.rsa_time_course(x, models, metric=metric, window=window)
    np.testing.assert_allclose(fused, scores, atol=1e-12)
    times = tmin + np.arange(50) / sfreq
    np.testing.assert_allclose(temporal.window_times(times, window), ref[0].times, atol=1e-12)


@pytest.mark.parametrize(("ours", "theirs"), [("pearson", "pearson"),
                                              ("kendall_tau_a", "kendall-tau-a")])
def test_other_comparisons_equal_mne_rsa(rng, ours, theirs):
    from mne_rsa import rsa_evokeds

    x = rng.standard_normal((10, 5, 12))
    models = rng.random((2, 45))
    ref = rsa_evokeds(_evokeds(x, 100.0, 0.0), list(models), temporal_radius=0.01,
                      evoked_rdm_metric="correlation", rsa_metric=theirs, verbose=False)
    scores = temporal.rsa_time_course(x, models, window=3, method=ours)
    np.testing.assert_allclose(scores, np.stack([e.data[0] for e in ref], axis=1), atol=1e-9)


@pytest.mark.parametrize("method", sorted(rsa.COMPARISONS))
def test_temporal_and_paired_comparisons_equal_compare_rdms(rng, method):
    a = rng.random((7, 28))
    a[2, :5] = a[2, 5:10]  # ties: the fast ranking must fall back to average ranks
    b = rng.random((3, 28))
    np.testing.assert_allclose(temporal.compare_rdms_temporal(a, b, method=method),
                               rsa.compare_rdms(a, b, method=method), atol=1e-12)
    c = rng.random((7, 28))
    np.testing.assert_allclose(temporal.compare_rdms_paired(a, c, method=method),
                               [rsa.compare_rdms(x, y, method=method)
                                for x, y in zip(a, c, strict=True)],
                               atol=1e-12)


def test_centred_ranks_equal_scipy_average_ranks(rng):
    x = rng.standard_normal((8, 300))
    x[0, :20] = x[0, 20:40]                  # exact ties
    x[1] = np.round(x[1], 1)                 # many ties
    x[2, 3], x[2, 4] = -0.0, 0.0             # signed zeros are equal
    x[3, 5] = x[3, 6] * (1 + 1e-15)          # equal up to the bits the index replaces
    x[4, 7], x[4, 8] = np.inf, -np.inf
    x[5] = np.abs(x[5])                      # the non-negative (float sort) path
    for rows in (x, np.abs(x)):
        np.testing.assert_array_equal(temporal._centred_ranks(rows),
                                      rankdata(rows, axis=1) - 150.5)


@pytest.mark.parametrize("window", [1, 3])
def test_split_half_ceiling_per_time_equals_the_fmri_roi_ceiling(rng, window):
    truth = rng.standard_normal((15, 6, 10))
    h1 = truth + rng.standard_normal(truth.shape)
    h2 = truth + rng.standard_normal(truth.shape)
    n_rep = rng.integers(2, 6, 15)
    lower, upper, r_half = temporal.temporal_split_half_ceiling(
        h1, h2, n_repeats=n_rep, metric="correlation", window=window, method="spearman")
    for k, sl in enumerate(window_slices(10, window)):
        ref = rsa.rdm_split_half_ceiling(h1[:, :, sl].reshape(15, -1),
                                         h2[:, :, sl].reshape(15, -1), n_repeats=n_rep,
                                         metric="correlation", method="spearman")
        assert (lower[k], upper[k], r_half[k]) == pytest.approx(
            (ref.lower, ref.upper, ref.r_half), abs=1e-12)


def test_even_window_times_are_the_midpoints_of_the_middle_samples():
    times = np.arange(6) * 0.01
    np.testing.assert_allclose(temporal.window_times(times, 4), [0.015, 0.025, 0.035])
    np.testing.assert_allclose(temporal.window_times(times, 3), [0.01, 0.02, 0.03, 0.04])
    assert temporal.n_windows(6, 4) == 3


def test_bad_window_and_shapes_raise_clear_errors(patterns):
    with pytest.raises(DataShapeError, match="window"):
        temporal.calc_rdm_temporal(patterns, window=41)
    with pytest.raises(DataShapeError, match="n_stimuli >= 3"):
        temporal.calc_rdm_temporal(patterns[:2])
    with pytest.raises(ValueError, match="metric"):
        temporal.calc_rdm_temporal(patterns, metric="mahalanobis")


def simulate_planted(rng, *, latencies, n_stim=40, n_chan=16, sfreq=250.0, noise=1.0, amp=0.7):
    """Layer k's features drive the channels with a Gaussian bump at latencies[k] (s)."""
    times = np.arange(-0.1, 0.5, 1 / sfreq)
    feats = [rng.standard_normal((n_stim, 6)) for _ in latencies]
    x = noise * rng.standard_normal((n_stim, n_chan, times.size))
    for f, lat in zip(feats, latencies, strict=True):
        bump = np.exp(-0.5 * ((times - lat) / 0.015) ** 2)
        x += amp * (f @ rng.standard_normal((6, n_chan)))[:, :, None] * bump
    layers = np.stack([pdist(f, "correlation") for f in feats])
    return x, layers, times


@pytest.mark.parametrize("window", [1, 5])
def test_planted_layer_latencies_are_recovered_in_order(rng, window):
    latencies = [0.1, 0.2, 0.32]
    x, layers, times = simulate_planted(rng, latencies=latencies)
    scores = temporal.compare_rdms_temporal(
        temporal.calc_rdm_temporal(x, window=window), layers, method="spearman")
    peaks = temporal.window_times(times, window)[np.argmax(scores, axis=0)]
    np.testing.assert_allclose(peaks, latencies, atol=0.016)  # 4 samples
    assert scores.max(axis=0).min() > 0.5
    baseline = temporal.window_times(times, window) < 0
    assert np.abs(scores[baseline]).max() < 0.3


# --- steps ------------------------------------------------------------------------------


def _write_responses(path, rng, *, n_stim=20, n_chan=8, n_rep=4):
    """A responses npz (the contract of step_meeg_responses) with a planted layer at 0.2 s."""
    x, layers, times = simulate_planted(rng, latencies=[0.2], n_stim=n_stim, n_chan=n_chan,
                                        noise=0.0, amp=0.7)
    reps = x[None] + rng.standard_normal((n_rep, *x.shape))
    stimuli = np.array([f"s{i:02d}.png" for i in range(n_stim)])
    np.savez(path, responses=reps.mean(0), half1=reps[0::2].mean(0), half2=reps[1::2].mean(0),
             n_repeats=np.full(n_stim, n_rep), stimuli=stimuli,
             channels=np.array([f"E{i}" for i in range(n_chan)]),
             ch_types=np.array(["eeg"] * n_chan), rois=np.array(["front", "back"]),
             roi_masks=np.array([np.arange(n_chan) < 3, np.arange(n_chan) >= 3]), times=times,
             sfreq=np.array(250.0), noise_ceiling=np.zeros((n_chan, times.size)))
    return reps, layers[0], stimuli, times


def test_steps_meeg_rdms_and_rsa_write_the_contract(tmp_path, rng, caplog):
    from brainalign.meeg.steps import step_meeg_rdms, step_meeg_rsa
    from brainalign.report.scores import SCORE_COLUMNS

    reps, layer, stimuli, times = _write_responses(tmp_path / "resp.npz", rng)
    step_meeg_rdms(str(tmp_path / "resp.npz"), distance="correlation", window=3,
                   comparison="spearman", out=str(tmp_path / "rdms.npz"))
    with np.load(tmp_path / "rdms.npz") as z:
        assert set(z.files) == {"rois", "times", "stimuli", "rdm_front", "rdm_back",
                                "ceiling_front", "ceiling_back", "ceiling_lower_front",
                                "ceiling_lower_back"}
        np.testing.assert_allclose(z["times"], times[1:-1])
        back = reps.mean(0)[:, 3:]
        np.testing.assert_allclose(z["rdm_back"][10], pdist(back[:, :, 10:13].reshape(20, -1),
                                                            "correlation"), atol=1e-12)
        ref = rsa.rdm_split_half_ceiling(reps[0::2].mean(0)[:, 3:, 10:13].reshape(20, -1),
                                         reps[1::2].mean(0)[:, 3:, 10:13].reshape(20, -1),
                                         n_repeats=np.full(20, 4))
        assert z["ceiling_back"][10] == pytest.approx(ref.upper, abs=1e-12)
        assert z["ceiling_lower_back"][10] == pytest.approx(ref.lower, abs=1e-12)
    # layer RDMs in another stimulus order, with an extra stimulus: aligned by name
    perm = np.r_[rng.permutation(20), 20]
    from scipy.spatial.distance import squareform

    sq = np.pad(squareform(layer), (0, 1), constant_values=1.0)
    names = np.r_[stimuli, ["extra.png"]]
    null = rng.random(sq.shape[0] * (sq.shape[0] - 1) // 2)  # a second layer: unrelated
    np.savez(tmp_path / "layers.npz", stimuli=names[perm], layers=np.array(["conv1", "fc"]),
             conv1=squareform(sq[np.ix_(perm, perm)], checks=False), fc=null)
    with caplog.at_level(logging.INFO):
        step_meeg_rsa(str(tmp_path / "rdms.npz"), str(tmp_path / "layers.npz"), subject="01",
                      datatype="eeg", model="alexnet", comparison="spearman",
                      out=str(tmp_path / "scores.tsv"))
    table = pd.read_csv(tmp_path / "scores.tsv", sep="\t")
    known = [c for c in SCORE_COLUMNS if c in table]
    assert list(table.columns) == known + [c for c in ("modality", "time") if c not in known]
    assert {"analysis", "subject", "roi", "model", "layer", "metric", "score", "noise_ceiling",
            "noise_ceiling_lower", "normalized_score"} <= set(table.columns)
    assert len(table) == 2 * 2 * (times.size - 2) and set(table["analysis"]) == {"rsa"}
    assert set(table["modality"]) == {"eeg"} and set(table["roi"]) == {"front", "back"}
    back = table[(table["roi"] == "back") & (table["layer"] == "conv1")]
    with np.load(tmp_path / "rdms.npz") as z:
        expected = rsa.compare_rdms(z["rdm_back"], layer, method="spearman")[:, 0]
        np.testing.assert_allclose(back["score"], expected, atol=1e-12)
        np.testing.assert_allclose(back["noise_ceiling"], z["ceiling_back"], atol=1e-12)
    positive = back["noise_ceiling"] > 0
    assert positive.any() and (~positive).any()  # the baseline has no reliable RDM
    np.testing.assert_allclose(back["normalized_score"][positive],
                               (back["score"] / back["noise_ceiling"])[positive])
    assert back["normalized_score"][~positive].isna().all()
    fc = table[(table["roi"] == "back") & (table["layer"] == "fc")]
    assert fc["score"].abs().mean() < 0.15 and fc["score"].max() < back["score"].max() - 0.2
    assert back["time"].iloc[int(np.argmax(back["score"]))] == pytest.approx(0.2, abs=0.02)
