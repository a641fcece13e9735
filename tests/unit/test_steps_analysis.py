"""The encoding, RSA and report steps, run without Snakemake on small files.

Each step is checked for what it adds to the maths it calls: reading and aligning files by
stimulus, and the tables it writes. References are computed independently (scipy, pandas,
numpy) on the same inputs.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr, zscore

from brainalign.encoding.steps import step_encoding_fit, step_encoding_summary
from brainalign.errors import DataShapeError
from brainalign.io import read_tsv, save_npz
from brainalign.report.steps import step_report_scores
from brainalign.rsa.steps import (
    step_import_rdms,
    step_layer_rdms,
    step_roi_rdms,
    step_rsa_compare,
    step_rsa_group_compare,
)

N_STIM = 30
STIMULI = np.array([f"img{i:02d}.png" for i in range(N_STIM)])
RIDGE = {"alphas": [0.1, 1.0, 10.0, 100.0], "n_folds": 5, "n_inner_folds": 3, "seed": 0}


@pytest.fixture
def planted(rng, tmp_path):
    """Features of 30 stimuli stored in a shuffled row order, and responses in stimulus order
    with 4 voxels driven by the features and 3 of noise."""
    X = rng.standard_normal((N_STIM, 12))
    W = rng.standard_normal((12, 4))
    Y = np.hstack([X @ W + 0.3 * rng.standard_normal((N_STIM, 4)),
                   rng.standard_normal((N_STIM, 3))])
    order = rng.permutation(N_STIM)
    feats = tmp_path / "features.npz"
    save_npz(feats, features=X[order].astype(np.float32), stimuli=STIMULI[order])
    resp = tmp_path / "responses.npz"
    save_npz(resp, responses=Y, stimuli=STIMULI, roi=np.array(["sig"] * 4 + ["noise"] * 3),
             noise_ceiling=np.linspace(0.5, 0.8, 7))
    return {"X": X, "Y": Y, "order": order, "features": feats, "responses": resp}


def test_encoding_fit_aligns_features_to_the_responses(planted, tmp_path):
    out = tmp_path / "scores.tsv"
    step_encoding_fit(str(planted["features"]), str(planted["responses"]), ridge=RIDGE,
                      out=str(out))
    t = read_tsv(out)
    assert list(t.columns) == ["voxel", "roi", "r", "r2", "alpha", "noise_ceiling",
                               "ceiling_method"]
    assert t["roi"].tolist() == ["sig"] * 4 + ["noise"] * 3
    np.testing.assert_allclose(t["noise_ceiling"], np.linspace(0.5, 0.8, 7))
    # planted signal is found only where it was planted: alignment by stimulus name works
    assert (t["r"][:4] > 0.8).all()
    assert (t["r"][4:].abs() < 0.5).all()
    # the same features stored in stimulus order give the same table
    aligned = tmp_path / "aligned.npz"
    save_npz(aligned, features=planted["X"].astype(np.float32), stimuli=STIMULI)
    out2 = tmp_path / "scores2.tsv"
    step_encoding_fit(str(aligned), str(planted["responses"]), ridge=RIDGE, out=str(out2))
    pd.testing.assert_frame_equal(read_tsv(out2), t)


def test_encoding_fit_missing_stimulus_names_the_file(planted, tmp_path):
    short = tmp_path / "short.npz"
    save_npz(short, features=planted["X"][:-1].astype(np.float32), stimuli=STIMULI[:-1])
    with pytest.raises(DataShapeError, match=r"short\.npz: features lack 1 stimuli .*img29"
                                             r".*Re-run feature extraction"):
        step_encoding_fit(str(short), str(planted["responses"]), ridge=RIDGE,
                          out=str(tmp_path / "x.tsv"))
    assert not (tmp_path / "x.tsv").exists()


def test_encoding_summary_means_per_roi(tmp_path, rng):
    paths = {}
    frames = {}
    for layer in ("l1", "l2"):
        t = pd.DataFrame({"voxel": range(6), "roi": ["a", "a", "b", "b", "b", "c"],
                          "r": rng.uniform(-0.2, 0.8, 6), "r2": rng.uniform(-0.1, 0.5, 6),
                          "alpha": [1.0, 10.0, 10.0, 100.0, 1.0, 1.0],
                          "noise_ceiling": rng.uniform(0.3, 0.9, 6)})
        paths[("m", layer)] = tmp_path / f"{layer}.tsv"
        t.to_csv(paths[("m", layer)], sep="\t", index=False)
        frames[layer] = t
    out = tmp_path / "summary.tsv"
    step_encoding_summary({k: str(v) for k, v in paths.items()}, subject="07", out=str(out))
    s = read_tsv(out)
    assert len(s) == 2 * 3
    assert set(s["subject"]) == {"07"} and set(s["analysis"]) == {"encoding"}
    for layer, t in frames.items():
        ref = t.groupby("roi").agg(score=("r", "mean"), nc=("noise_ceiling", "mean"),
                                   n=("r", "size"), med=("alpha", "median"))
        got = s[s["layer"] == layer].set_index("roi")
        np.testing.assert_allclose(got["score"], ref["score"])
        np.testing.assert_allclose(got["noise_ceiling"], ref["nc"])
        assert got["n_voxels"].tolist() == ref["n"].tolist()
        np.testing.assert_allclose(got["median_alpha"], ref["med"])


def test_layer_rdms_are_correlation_distances_of_zscored_features(tmp_path, rng):
    feats = {}
    raw = {}
    for layer in ("conv1_1", "fc6"):
        x = rng.standard_normal((N_STIM, 9)) * rng.uniform(0.1, 10, 9) + 3
        raw[layer] = x
        feats[layer] = str(tmp_path / f"{layer}.npz")
        save_npz(feats[layer], features=x.astype(np.float32), stimuli=STIMULI)
    out = tmp_path / "rdms.npz"
    step_layer_rdms(feats, metric="correlation", out=str(out))
    with np.load(out) as z:
        assert z["layers"].tolist() == ["conv1_1", "fc6"]
        assert z["stimuli"].tolist() == STIMULI.tolist()
        for layer, x in raw.items():
            ref = pdist(zscore(x.astype(np.float32).astype(np.float64), axis=0),
                        "correlation")
            np.testing.assert_allclose(z[layer], ref, atol=1e-6)


def test_rsa_compare_aligns_stimuli_and_matches_scipy(tmp_path, rng):
    patterns = rng.standard_normal((N_STIM, 20))
    roi_rdm = pdist(patterns, "correlation")
    # the layer RDMs come in another stimulus order
    order = rng.permutation(N_STIM)
    layer_patterns = patterns[order] + rng.standard_normal((N_STIM, 20))
    layer_rdm = pdist(layer_patterns, "correlation")
    roi = tmp_path / "roi.npz"
    save_npz(roi, rois=np.array(["V1"]), stimuli=STIMULI, rdm_V1=roi_rdm,
             ceiling_V1=np.array(0.7), ceiling_lower_V1=np.array(0.6))
    layers = tmp_path / "layers.npz"
    save_npz(layers, layers=np.array(["l1"]), stimuli=STIMULI[order], l1=layer_rdm)
    out = tmp_path / "scores.tsv"
    step_rsa_compare(str(roi), str(layers), subject="01", model="m", comparison="spearman",
                     out=str(out))
    t = read_tsv(out)
    back = np.argsort(order)  # layer row of each stimulus in STIMULI order
    ref_rdm = squareform(squareform(layer_rdm)[np.ix_(back, back)])
    assert t.loc[0, "score"] == pytest.approx(spearmanr(roi_rdm, ref_rdm)[0], abs=1e-12)
    assert t.loc[0, "score"] > 0.2  # the planted shared structure
    assert t.loc[0, "noise_ceiling"] == pytest.approx(0.7)
    assert t.loc[0, "noise_ceiling_lower"] == pytest.approx(0.6)
    assert t.loc[0, ["analysis", "subject", "roi", "model", "layer", "metric"]].tolist() == \
        ["rsa", "01", "V1", "m", "l1", "spearman"]


def test_import_rdms_and_group_compare(tmp_path, rng):
    n_sub = 4
    truth = rng.standard_normal((N_STIM, 15))
    squares = np.stack([squareform(pdist(truth + rng.standard_normal((N_STIM, 15)),
                                         "correlation")) for _ in range(n_sub)])
    npy = tmp_path / "rdms.npy"
    np.save(npy, squares)
    stim = tmp_path / "stimuli.tsv"
    pd.DataFrame({"stim_id": range(N_STIM), "stim_file": STIMULI}).to_csv(stim, sep="\t",
                                                                         index=False)
    brain = tmp_path / "brain.npz"
    step_import_rdms(str(npy), str(stim), name="IT", spec={}, out=str(brain))
    with np.load(brain) as z:
        assert z["rdms"].shape == (n_sub, N_STIM * (N_STIM - 1) // 2)
        for k in range(n_sub):
            np.testing.assert_allclose(z["rdms"][k], squareform(squares[k], checks=False))
        np.testing.assert_allclose(z["rdm_IT"], z["rdms"].mean(0))
        condensed = z["rdms"].copy()
    layer = pdist(truth, "correlation")
    layers = tmp_path / "layers.npz"
    save_npz(layers, layers=np.array(["deep"]), stimuli=STIMULI, deep=layer)
    out = tmp_path / "group.tsv"
    step_rsa_group_compare(str(brain), str(layers), rdmset="IT", model="m",
                           comparison="spearman",
                           inference={"n_bootstrap": 200, "bootstrap_over": "stimuli",
                                      "ci_percent": 95, "seed": 0}, out=str(out))
    t = read_tsv(out)
    subj = t[t["subject"] != "group"].reset_index(drop=True)
    assert len(subj) == n_sub
    for k in range(n_sub):
        assert subj.loc[k, "score"] == pytest.approx(spearmanr(condensed[k], layer)[0],
                                                     abs=1e-10)
    group = t[t["subject"] == "group"].iloc[0]
    assert group["ci_low"] < group["score"] < group["ci_high"]
    assert group["score"] == pytest.approx(subj["score"].mean(), abs=1e-10)
    assert group["noise_ceiling_lower"] <= group["noise_ceiling"]


def test_report_scores_normalises_and_orders_layers(tmp_path):
    rows = pd.DataFrame({
        "analysis": "rsa", "subject": "01", "roi": "V1", "model": "m",
        "layer": ["deep", "early"], "metric": "spearman", "score": [0.3, 0.2],
        "noise_ceiling": [0.6, 0.05]})
    path = tmp_path / "t.tsv"
    rows.to_csv(path, sep="\t", index=False)
    out = tmp_path / "scores.tsv"
    step_report_scores([str(path)], layer_order={"m": ["early", "deep"]},
                       min_noise_ceiling=0.1, out=str(out))
    s = read_tsv(out)
    assert s["layer"].tolist() == ["early", "deep"]  # registry order, not file order
    assert np.isnan(s.loc[0, "normalized_score"])  # ceiling 0.05 < 0.1
    assert s.loc[1, "normalized_score"] == pytest.approx(0.5)


def test_roi_rdms_and_their_split_half_ceilings(tmp_path, rng):
    truth = rng.standard_normal((N_STIM, 40))
    h1 = truth + 1.5 * rng.standard_normal((N_STIM, 40))
    h2 = truth + 1.5 * rng.standard_normal((N_STIM, 40))
    roi = np.array(["A"] * 25 + ["B"] * 15)
    resp = tmp_path / "responses.npz"
    save_npz(resp, responses=(h1 + h2) / 2, half1=h1, half2=h2, roi=roi, stimuli=STIMULI,
             n_repeats=np.full(N_STIM, 2))
    out = tmp_path / "rdms.npz"
    step_roi_rdms(str(resp), metric="correlation", comparison="spearman", out=str(out))
    with np.load(out) as z:
        assert z["rois"].tolist() == ["A", "B"]
        for name in ("A", "B"):
            sel = roi == name
            np.testing.assert_allclose(z[f"rdm_{name}"], pdist(((h1 + h2) / 2)[:, sel],
                                                                "correlation"), atol=1e-12)
            r = spearmanr(pdist(h1[:, sel], "correlation"), pdist(h2[:, sel], "correlation"))[0]
            assert r > 0.1
            # two repeats, one per half: lower = Spearman-Brown; upper = the noise x noise
            # term, (1 + c)^2 = 1 / r^2 and reliability 1 / (1 + c / 4)
            assert float(z[f"ceiling_lower_{name}"]) == pytest.approx(np.sqrt(2 * r / (1 + r)))
            c = 1 / r - 1
            assert float(z[f"ceiling_{name}"]) == pytest.approx(np.sqrt(1 / (1 + c / 4)))
