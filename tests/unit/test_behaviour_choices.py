"""Scoring of triplet choices: accuracy, choice model, bootstrap, beh files and planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.design.behaviour import (
    bootstrap_accuracy,
    bootstrap_indices,
    choice_accuracy,
    fit_choice_model,
    option_values,
)
from brainalign.design.steps import ImagePool, read_beh, score_choices
from brainalign.design.triplets import similarity_matrix
from brainalign.errors import BIDSInputError, ConfigError


def _sim(n=15, seed=0):
    return similarity_matrix(np.random.default_rng(seed).normal(size=(n, 8)))


def _triplets(n, m, seed=1):
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(n, 3, replace=False) for _ in range(m)])


def test_accuracy_against_loops():
    sim = _sim()
    tri = _triplets(15, 200)
    rng = np.random.default_rng(2)
    ms = rng.integers(1, 3, 200)
    got = choice_accuracy(option_values(sim, tri, "most-similar"), ms, "most-similar")
    want = [float((sim[r, a] > sim[r, b]) == (c == 1))
            for (r, a, b), c in zip(tri, ms, strict=True)]
    np.testing.assert_array_equal(got, want)
    odd = rng.integers(0, 3, 200)
    got = choice_accuracy(option_values(sim, tri, "odd-one-out"), odd, "odd-one-out")
    want = []
    for (r, a, b), c in zip(tri, odd, strict=True):
        pairs = {0: sim[a, b], 1: sim[r, b], 2: sim[r, a]}  # odd one = the one left out
        want.append(float(max(pairs, key=pairs.get) == c))
    np.testing.assert_array_equal(got, want)
    # ties share the credit
    tie = np.array([[0.5, 0.5]])
    assert choice_accuracy(tie, np.array([2]), "most-similar")[0] == 0.5
    with pytest.raises(Exception, match="image1 or image2"):
        choice_accuracy(tie, np.array([0]), "most-similar")
    with pytest.raises(ConfigError, match="Unknown task type"):
        option_values(sim, tri, "same-different")


def test_choice_model_matches_sklearn_logistic():
    from sklearn.linear_model import LogisticRegression

    sim = _sim(20)
    tri = _triplets(20, 400)
    v = option_values(sim, tri, "most-similar")
    d = v[:, 0] - v[:, 1]
    rng = np.random.default_rng(3)
    p1 = 1 / (1 + np.exp(-8 * d))
    choice = np.where(rng.random(400) < p1, 1, 2)
    fit = fit_choice_model(v, choice, "most-similar")
    lr = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-10, max_iter=1000)
    lr.fit(d[:, None], (choice == 1).astype(int))
    p = lr.predict_proba(d[:, None])[:, 1]
    ll = np.mean(np.where(choice == 1, np.log(p), np.log(1 - p)))
    assert fit.log_likelihood == pytest.approx(ll, abs=1e-6)
    # beta is on values standardised by `scale`: z1 - z2 = d / scale
    assert fit.beta / fit.scale == pytest.approx(lr.coef_[0, 0], rel=1e-3)
    assert fit.pseudo_r2 == pytest.approx(1 - ll / np.log(0.5), abs=1e-6)


def test_odd_one_out_model_matches_grid_search():
    sim = _sim(20)
    tri = _triplets(20, 300)
    v = option_values(sim, tri, "odd-one-out")
    rng = np.random.default_rng(4)
    z = (v - v.mean(1, keepdims=True))
    z = z / np.sqrt(np.mean(z**2))
    p = np.exp(2 * z) / np.exp(2 * z).sum(1, keepdims=True)
    choice = (rng.random((300, 1)) > p.cumsum(1)).sum(1)
    fit = fit_choice_model(v, choice, "odd-one-out")
    grid = np.linspace(-10, 10, 20001)
    lls = [np.mean(np.log((np.exp(b * z) / np.exp(b * z).sum(1, keepdims=True))[
        np.arange(300), choice])) for b in grid]
    assert fit.beta == pytest.approx(grid[int(np.argmax(lls))], abs=2e-3)
    assert fit.log_likelihood == pytest.approx(max(lls), abs=1e-6)
    assert fit.chance_log_likelihood == pytest.approx(np.log(1 / 3))


def test_bootstrap_trials_and_subjects():
    idx = bootstrap_indices(np.zeros(50), n_boot=3, seed=9)
    rng = np.random.default_rng(9)
    for got in idx:
        np.testing.assert_array_equal(got, rng.integers(0, 50, 50))
    subjects = np.repeat(["a", "b", "c"], [10, 20, 30])
    for got in bootstrap_indices(subjects, n_boot=20, seed=1):
        # whole subjects are drawn: the resample's size is a sum of three subjects' sizes
        drawn = pd.Series(subjects[got]).value_counts()
        assert drawn.index.isin(["a", "b", "c"]).all()
        assert all(v % {"a": 10, "b": 20, "c": 30}[k] == 0 for k, v in drawn.items())
    credit = np.random.default_rng(0).random((2, 60)) < [[0.8], [0.6]]
    res = bootstrap_accuracy(credit.astype(float), np.zeros(60), n_boot=500, seed=2)
    samples = np.stack([credit[:, i].mean(1) for i in bootstrap_indices(np.zeros(60),
                                                                         n_boot=500, seed=2)])
    np.testing.assert_allclose(res["ci_low"], np.quantile(samples, 0.025, axis=0))
    np.testing.assert_allclose(res["ci_high"], np.quantile(samples, 0.975, axis=0))
    np.testing.assert_allclose(res["accuracy"], credit.mean(1))
    assert res["p_best"].sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="Confidence level"):
        bootstrap_accuracy(credit, np.zeros(60), ci=95)


def test_planted_space_is_recovered():
    """Observers follow space B; scoring ranks B first with an interval above chance."""
    n = 25
    rng = np.random.default_rng(11)
    base = rng.normal(size=(n, 10))
    spaces = {("m", "A"): similarity_matrix(base + 1.5 * rng.normal(size=(n, 10))),
              ("m", "B"): similarity_matrix(base + 0.3 * rng.normal(size=(n, 10))),
              ("m", "C"): similarity_matrix(rng.normal(size=(n, 10)))}
    tri = _triplets(n, 600, seed=5)
    v = option_values(spaces[("m", "B")], tri, "most-similar")
    d = (v[:, 0] - v[:, 1]) / np.std(v[:, 0] - v[:, 1])
    choice = np.where(rng.random(600) < 1 / (1 + np.exp(-3 * d)), 1, 2)
    trials = pd.DataFrame({"subject": np.repeat(["01", "02", "03"], 200), "root": tri[:, 0],
                           "image1": tri[:, 1], "image2": tri[:, 2], "choice": choice,
                           "task_type": "most-similar"})
    scores = score_choices(trials, spaces, n_boot=300, seed=0).set_index("layer")
    assert scores["accuracy"].idxmax() == "B" and scores.loc["B", "p_best"] > 0.95
    assert scores.loc["B", "ci_low"] > 0.5 and scores.loc["B", "above_chance"]
    assert scores["pseudo_r2"].idxmax() == "B"
    assert scores.loc["C", "ci_low"] < 0.5 < scores.loc["C", "ci_high"]


def _pool():
    names = [f"img{i:02d}.png" for i in range(6)]
    return ImagePool([f"/nowhere/{n}" for n in names], names), names


def test_read_beh(tmp_path):
    pool, names = _pool()
    f = tmp_path / "sub-07_task-triplets_beh.tsv"
    pd.DataFrame({"root": names[:3], "image1": names[1:4], "image2": names[2:5],
                  "choice": ["image1", "n/a", names[4]], "response_time": [0.5, 0.7, 0.9]}
                 ).to_csv(f, sep="\t", index=False)
    t = read_beh([f], pool)
    assert t["subject"].tolist() == ["07", "07"] and t["choice"].tolist() == [1, 2]
    assert t[["root", "image1", "image2"]].to_numpy().tolist() == [[0, 1, 2], [2, 3, 4]]
    odd = read_beh([f], pool, task_type="odd-one-out")
    assert odd["task_type"].unique().tolist() == ["odd-one-out"]


@pytest.mark.parametrize(("change", "message"), [
    ({"image2": ["img01.png", "elephant.png"]}, "names image 'elephant.png', which is not in"),
    ({"choice": ["image1", "root"]}, "names the root as its choice"),
    ({"choice": ["image1", "img05.png"]}, "not one of the trial's three images"),
    ({"choice": ["image1", "left"]}, "neither root, image1, image2"),
    ({"task_type": ["most-similar", "triad"]}, "Task type"),
])
def test_read_beh_errors(tmp_path, change, message):
    pool, names = _pool()
    table = {"root": ["img00.png", "img02.png"], "image1": ["img03.png", "img03.png"],
             "image2": ["img01.png", "img04.png"], "choice": ["image1", "image2"]}
    table.update(change)
    f = tmp_path / "sub-01_beh.tsv"
    pd.DataFrame(table).to_csv(f, sep="\t", index=False)
    with pytest.raises((BIDSInputError, ConfigError), match=message):
        read_beh([f], pool)


def test_read_beh_wrong_column(tmp_path):
    pool, names = _pool()
    f = tmp_path / "sub-01_beh.tsv"
    pd.DataFrame({"root": names[:1], "left": names[1:2], "image2": names[2:3],
                  "response": ["image1"]}).to_csv(f, sep="\t", index=False)
    with pytest.raises(BIDSInputError, match=r"missing \['image1', 'choice'\]"):
        read_beh([f], pool)
    with pytest.raises(BIDSInputError, match="does not exist"):
        read_beh([tmp_path / "nope_beh.tsv"], pool)


def test_model_specs_from_registry_and_config():
    from brainalign.design.steps import model_spec, parse_space

    assert parse_space("efficientnet_lite0:stem,head") == ("efficientnet_lite0", ["stem", "head"])
    assert parse_space("efficientnet_lite0") == ("efficientnet_lite0", [])
    spec = model_spec("efficientnet_lite0")
    assert spec["weights"] == "shipped" and "stage5" in spec["layers"]
    mine = model_spec("mynet", {"mynet": {"architecture": "alexnet", "weights": "random",
                                          "layers": ["conv1"]}})
    assert mine["architecture"] == "alexnet" and mine["layers"] == ["conv1"]
    with pytest.raises(ConfigError, match="no shipped weights.*--config"):
        model_spec("vgg16")
    with pytest.raises(ConfigError, match="Unknown model 'nosuch'"):
        model_spec("nosuch")
