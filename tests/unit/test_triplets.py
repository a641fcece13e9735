"""Triplet design: similarity, candidates, decorrelation and cell balance (incl. an unseen pool)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.design import (
    CELLS,
    cell_labels,
    design_triplets,
    sample_triplets,
    similarity_matrix,
    triplet_differences,
)
from brainalign.errors import BIDSInputError, ConfigError


def _correlated_spaces(n=30, seed=0):
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, 10))
    low = shared @ rng.normal(size=(10, 40)) + 1.5 * rng.normal(size=(n, 40))
    high = shared @ rng.normal(size=(10, 50)) + 1.5 * rng.normal(size=(n, 50))
    return similarity_matrix(low), similarity_matrix(high)


def test_similarity_matches_numpy_and_sklearn():
    from sklearn.metrics.pairwise import cosine_similarity

    x = np.random.default_rng(1).normal(size=(12, 30))
    np.testing.assert_allclose(similarity_matrix(x), np.corrcoef(x), atol=1e-12)
    np.testing.assert_allclose(similarity_matrix(x, metric="cosine"), cosine_similarity(x),
                               atol=1e-12)
    with pytest.raises(ConfigError, match="Unknown similarity metric 'euclid'"):
        similarity_matrix(x, metric="euclid")


def test_candidates_all_or_sampled():
    n = 9
    every = sample_triplets(n)
    assert len(every) == n * (n - 1) * (n - 2) // 2
    assert len(np.unique(every, axis=0)) == len(every)
    assert (every[:, 1] < every[:, 2]).all()
    assert ((every[:, 0] != every[:, 1]) & (every[:, 0] != every[:, 2])).all()
    some = sample_triplets(40, max_candidates=500, seed=3)
    assert some.shape == (500, 3) and len(np.unique(some, axis=0)) == 500
    assert ((some[:, 0] != some[:, 1]) & (some[:, 0] != some[:, 2])).all()
    assert (some[:, 1] < some[:, 2]).all() and some.max() < 40
    np.testing.assert_array_equal(some, sample_triplets(40, max_candidates=500, seed=3))


def test_design_decorrelates_and_balances():
    sl, sh = _correlated_spaces()
    d = design_triplets(sl, sh, 120, seed=0)
    # the two spaces are correlated in random triplets, not in the design
    assert d.random_corr > 0.3 and d.candidate_corr > 0.3
    assert abs(d.corr) < 0.05
    assert abs(np.corrcoef(d.d_low, d.d_high)[0, 1] - d.corr) < 1e-9
    assert d.cell_counts == {c: 30 for c in CELLS}
    # differences and cells recomputed directly from the matrices
    r, a, b = d.triplets.T
    np.testing.assert_allclose(d.d_low, sl[r, a] - sl[r, b])
    np.testing.assert_allclose(d.d_high, sh[r, a] - sh[r, b])
    assert (d.cells == np.char.add(np.char.add(np.where(d.d_low > 0, "low1", "low2"), "_"),
                                   np.where(d.d_high > 0, "high1", "high2"))).all()
    # informative: larger differences than random triplets; no triplet twice; images spread
    def informative(dl, dh):  # both differences large, in units of the candidates' spread
        return np.mean(np.minimum(np.abs(dl) / d.scale_low, np.abs(dh) / d.scale_high))

    assert informative(d.d_low, d.d_high) > 1.1 * informative(d.random_d_low, d.random_d_high)
    unordered = np.column_stack([r, np.minimum(a, b), np.maximum(a, b)])
    assert len(np.unique(unordered, axis=0)) == 120
    assert d.uses.max() <= 3 * 120 / 30 + 1 and d.uses.min() >= 6  # mean use 12


def test_design_is_deterministic_and_seeded():
    sl, sh = _correlated_spaces()
    one = design_triplets(sl, sh, 40, seed=5)
    np.testing.assert_array_equal(one.triplets, design_triplets(sl, sh, 40, seed=5).triplets)
    assert not np.array_equal(one.triplets, design_triplets(sl, sh, 40, seed=6).triplets)


def test_design_bad_inputs():
    sl, sh = _correlated_spaces(n=8)
    with pytest.raises(ConfigError, match="multiple of 4"):
        design_triplets(sl, sh, 10)
    with pytest.raises(ConfigError, match="candidate triplets"):
        design_triplets(sl, sh, 400)
    with pytest.raises(Exception, match="square and of the same size"):
        design_triplets(sl, sh[:5, :5], 8)
    assert cell_labels(np.array([0.1, -0.1]), np.array([-0.2, -0.3])).tolist() == [
        "low1_high2", "low2_high2"]
    np.testing.assert_allclose(triplet_differences(sl, np.array([[0, 1, 2]])),
                               [sl[0, 1] - sl[0, 2]])


# ---------------------------------------------------------------------------------------------
# an unseen pool: synthesised gratings, noise and shapes, through the real command


def _synth_pool(folder: Path, n: int = 24, seed: int = 7) -> list[str]:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:96, 0:96] / 96
    names = []
    for i in range(n):
        kind = i % 3
        if kind == 0:  # coloured grating
            theta, freq = rng.uniform(0, np.pi), rng.uniform(2, 12)
            wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)))
            arr = (wave[..., None] * rng.uniform(0.3, 1, 3) * 255).astype(np.uint8)
            img = Image.fromarray(arr)
        elif kind == 1:  # smooth or fine noise
            small = rng.uniform(0, 255, (int(rng.integers(3, 24)),) * 2 + (3,)).astype(np.uint8)
            img = Image.fromarray(small).resize((96, 96), Image.BILINEAR)
        else:  # a shape on a background
            img = Image.new("RGB", (96, 96), tuple(int(v) for v in rng.integers(0, 255, 3)))
            draw = ImageDraw.Draw(img)
            x0, y0 = rng.integers(5, 45, 2)
            size = int(rng.integers(20, 45))
            box = [int(x0), int(y0), int(x0) + size, int(y0) + size]
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            shape = (i // 3) % 3
            if shape == 0:
                draw.ellipse(box, fill=fill)
            elif shape == 1:
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([(box[0], box[3]), (box[2], box[3]),
                              ((box[0] + box[2]) // 2, box[1])], fill=fill)
        name = f"synth_{i:02d}.png"
        img.save(folder / name)
        names.append(name)
    return names


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("unseen_pool")
    names = _synth_pool(root / "pool")
    return root, names


def _design_argv(root: Path, out: Path, seed: int = 0) -> list[str]:
    return ["design-triplets", "--pool", str(root / "pool"), "--low", "efficientnet_lite0:stem",
            "--high", "efficientnet_lite0:head", "--n-trials", "48", "--out", str(out),
            "--seed", str(seed), "--image-size", "112", "--cache", str(root / "cache"),
            "--device", "cpu"]


def test_unseen_pool_design_command(synth, capsys):
    from brainalign.cli import main
    from brainalign.design.steps import layer_features, model_spec, read_pool

    root, names = synth
    assert main(_design_argv(root, root / "design")) == 0
    table = pd.read_csv(root / "design" / "triplets.tsv", sep="\t")
    assert list(table.columns) == ["trial", "root", "image1", "image2", "d_low", "d_high",
                                   "cell"]
    assert len(table) == 48 and table["cell"].value_counts().to_dict() == {c: 12 for c in CELLS}
    assert set(table[["root", "image1", "image2"]].to_numpy().ravel()) <= set(names)
    # decorrelation measured on the written table, with features recomputed here
    r = np.corrcoef(table["d_low"], table["d_high"])[0, 1]
    assert abs(r) < 0.05
    pool = read_pool(root / "pool")
    feats = layer_features(pool.paths, model_spec("efficientnet_lite0"), ["stem", "head"],
                           image_size=112, device="cpu", cache_dir=root / "cache")
    idx = {n: i for i, n in enumerate(pool.names)}
    t = table[["root", "image1", "image2"]].map(idx.get).to_numpy()
    for layer, col in (("stem", "d_low"), ("head", "d_high")):
        c = np.corrcoef(feats[layer].astype(np.float64))
        np.testing.assert_allclose(table[col], c[t[:, 0], t[:, 1]] - c[t[:, 0], t[:, 2]],
                                   rtol=1e-4, atol=1e-5)
    # random triplets of the same pool are correlated; the sidecar says so
    side = json.loads((root / "design" / "triplets.json").read_text())
    assert {"trial", "d_low", "d_high", "cell"} <= set(side)
    assert side["Summary"]["candidate_corr"] > 0.2 > 0.05 > side["Summary"]["abs_corr"]
    assert side["Summary"]["cell_counts"] == {c: 12 for c in CELLS}
    assert (root / "design" / "triplets_design.png").stat().st_size > 10_000
    # same seed, same table
    assert main(_design_argv(root, root / "again")) == 0
    pd.testing.assert_frame_equal(table, pd.read_csv(root / "again" / "triplets.tsv", sep="\t"))
    assert '"abs_corr"' in capsys.readouterr().out


def test_pool_errors(tmp_path, synth):
    from brainalign.cli import main
    from brainalign.design.steps import read_pool

    root, names = synth
    listing = tmp_path / "pool.tsv"
    pd.DataFrame({"file": [*names[:4], "missing.png"]}).to_csv(listing, sep="\t", index=False)
    with pytest.raises(BIDSInputError, match="missing.png"):
        read_pool(listing, stimuli_dir=root / "pool")
    pd.DataFrame({"image": names[:4]}).to_csv(listing, sep="\t", index=False)
    with pytest.raises(BIDSInputError, match="expected a column 'file'"):
        read_pool(listing)
    with pytest.raises(BIDSInputError, match="does not exist"):
        read_pool(tmp_path / "nowhere")
    pd.DataFrame({"file": names[:5]}).to_csv(listing, sep="\t", index=False)
    assert read_pool(listing, stimuli_dir=root / "pool").names == names[:5]
    argv = _design_argv(root, tmp_path / "d")
    argv[argv.index("efficientnet_lite0:stem")] = "efficientnet_lite0:stem,head"
    assert main(argv) == 1
    argv[argv.index("efficientnet_lite0:stem,head")] = "nosuchnet:stem"
    assert main(argv) == 1


def test_unseen_pool_score_command_recovers_planted_layer(synth, tmp_path):
    """Choices simulated from stage5 through torchvision's own extractor; stage5 scores best."""
    import importlib.util

    from brainalign.cli import main
    from tests.conftest import REPO

    root, names = synth
    if not (root / "design" / "triplets.tsv").is_file():
        assert main(_design_argv(root, root / "design")) == 0
    spec = importlib.util.spec_from_file_location(
        "simulate_choices", REPO / "examples" / "triplets" / "simulate_choices.py")
    sim_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim_mod)
    # more trials than the design: all-candidate random triplets of the pool, planted stage5
    rng = np.random.default_rng(0)
    tri = np.array([rng.choice(len(names), 3, replace=False) for _ in range(300)])
    design = pd.DataFrame({"root": np.array(names)[tri[:, 0]],
                           "image1": np.array(names)[tri[:, 1]],
                           "image2": np.array(names)[tri[:, 2]]})
    planted = sim_mod.planted_similarity([root / "pool" / n for n in names], "stage5",
                                         image_size=112)
    tables = sim_mod.simulate(design, names, planted, subjects=2, beta=6.0, seed=1)
    beh = []
    for sub, table in tables.items():
        beh.append(tmp_path / f"sub-{sub}_task-triplets_beh.tsv")
        table.to_csv(beh[-1], sep="\t", index=False)
    argv = ["score-triplets", "--pool", str(root / "pool"), "--beh", *map(str, beh),
            "--model", "efficientnet_lite0:stem,stage2,stage5,head", "--out",
            str(tmp_path / "scores"), "--image-size", "112", "--cache", str(root / "cache"),
            "--device", "cpu", "--n-boot", "300"]
    assert main(argv) == 0
    scores = pd.read_csv(tmp_path / "scores" / "choice_scores.tsv", sep="\t").set_index("layer")
    assert scores["accuracy"].idxmax() == "stage5"
    assert scores.loc["stage5", "ci_low"] > 0.5 and scores.loc["stage5", "p_best"] > 0.8
    assert (scores["n_subjects"] == 2).all() and (scores["n_trials"] == 600).all()
    assert (tmp_path / "scores" / "choice_scores.png").is_file()
    # a beh file naming an image the pool lacks fails with a clear message
    bad = tables["01"].copy()
    bad.loc[0, "root"] = "not_in_pool.png"
    bad.to_csv(tmp_path / "sub-09_beh.tsv", sep="\t", index=False)
    argv[argv.index("--beh") + 1] = str(tmp_path / "sub-09_beh.tsv")
    assert main(argv) == 1


def test_design_with_a_config_model_of_another_source(synth, tmp_path):
    """--config names a torchvision model (random weights): the design runs on its layers."""
    import yaml

    from brainalign.cli import main

    root, _ = synth
    cfg = tmp_path / "models.yaml"
    cfg.write_text(yaml.safe_dump({"features": {"models": {"tv": {
        "source": "torchvision", "architecture": "resnet18", "weights": "random", "seed": 3}}}}))
    argv = ["design-triplets", "--pool", str(root / "pool"), "--config", str(cfg),
            "--low", "tv:layer1.0.relu", "--high", "tv:avgpool", "--n-trials", "24",
            "--out", str(tmp_path / "d"), "--image-size", "64", "--device", "cpu"]
    assert main(argv) == 0
    side = json.loads((tmp_path / "d" / "triplets.json").read_text())
    assert side["Summary"]["cell_counts"] == {c: 6 for c in CELLS}
    assert side["Summary"]["abs_corr"] < 0.1
    argv[argv.index("tv:layer1.0.relu")] = "tv:no_such_layer"
    assert main(argv) == 1
