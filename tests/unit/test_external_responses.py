"""External response matrices (npy / h5 / NWB), their noise ceilings and subsampling curves."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from brainalign.config import validate_config
from brainalign.errors import BIDSInputError, ConfigError, DataShapeError
from brainalign.fmri import responses as fmri
from brainalign.ingest.responses import read_responses, responses_from_trials
from brainalign.subsample import (
    condensed_subset,
    encoding_units_curve,
    subsample_curve,
    subsample_indices,
    summarize_curve,
)
from tests.conftest import REPO


def _make_nwb_module():
    path = REPO / "examples" / "mouse_visual_cortex" / "make_nwb.py"
    spec = importlib.util.spec_from_file_location("make_nwb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cube():
    """(repeats, stimuli, units) with distinct values, to trace every element."""
    return np.arange(3 * 6 * 4, dtype=float).reshape(3, 6, 4) + 0.5


def test_npy_layout_is_transposed_and_trials_are_repeat_major(tmp_path, cube):
    np.save(tmp_path / "r.npy", np.transpose(cube, (1, 2, 0)))  # stimuli, units, repeats
    out = read_responses({"path": str(tmp_path / "r.npy"), "layout": "stimuli_units_repeats"},
                         area="V1", n_stimuli=6)
    assert out.data.shape == (18, 4)
    np.testing.assert_array_equal(out.stimulus_index, np.tile(np.arange(6), 3))
    np.testing.assert_array_equal(out.data[6 + 2], cube[1, 2])  # 2nd repeat of stimulus 2


def test_npy_errors_name_file_shape_and_fix(tmp_path, cube):
    np.save(tmp_path / "r.npy", cube)
    spec = {"path": str(tmp_path / "r.npy")}
    with pytest.raises(DataShapeError, match=r"r\.npy.*stimuli axis has 6 rows but the stimulus "
                                             "table has 7"):
        read_responses(spec, area="V1", n_stimuli=7)
    with pytest.raises(DataShapeError, match="layout 'trials_units' expects a 2-D array, got 3-D"):
        read_responses({**spec, "layout": "trials_units"}, area="V1", n_stimuli=6)
    np.save(tmp_path / "t.npy", cube.reshape(18, 4))
    with pytest.raises(BIDSInputError, match="needs 'stimulus_index'"):
        read_responses({"path": str(tmp_path / "t.npy"), "layout": "trials_units"}, area="V1",
                       n_stimuli=6)
    np.save(tmp_path / "i.npy", np.r_[np.arange(17), 6])
    with pytest.raises(DataShapeError, match="stimulus_index holds 6: expected rows of the "
                                             "stimulus table, 0 to 5"):
        read_responses({"path": str(tmp_path / "t.npy"), "layout": "trials_units",
                        "stimulus_index": str(tmp_path / "i.npy")}, area="V1", n_stimuli=6)
    with pytest.raises(BIDSInputError, match="cannot tell the format.*'.mat'"):
        read_responses({"path": str(tmp_path / "r.mat")}, area="V1", n_stimuli=6)


def test_h5_trials_with_index_dataset(tmp_path, cube):
    import h5py

    rng = np.random.default_rng(0)
    index = rng.permutation(np.repeat(np.arange(6), 3))
    data = rng.normal(size=(18, 4))
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["area/V1"] = data
        f["area/stim"] = index
    out = read_responses({"path": str(tmp_path / "r.h5"), "dataset": "area/V1",
                          "layout": "trials_units", "stimulus_index": "area/stim"},
                         area="V1", n_stimuli=6)
    np.testing.assert_array_equal(out.data, data)
    np.testing.assert_array_equal(out.stimulus_index, index)
    with pytest.raises(BIDSInputError, match="no dataset 'area/V2'.*area/V1"):
        read_responses({"path": str(tmp_path / "r.h5"), "dataset": "area/V2"}, area="V1",
                       n_stimuli=6)


def test_nwb_written_by_example_reads_back_in_stimulus_order(tmp_path):
    make_nwb = _make_nwb_module()
    rng = np.random.default_rng(1)
    areas = {"VISp": rng.normal(size=(3, 5, 4)), "VISl": rng.normal(size=(3, 5, 2))}
    make_nwb.write_nwb(tmp_path / "m.nwb", areas, rng=np.random.default_rng(2))
    out = read_responses({"path": str(tmp_path / "m.nwb"), "dataset": "responses/VISl"},
                         area="VISl", n_stimuli=5)
    assert out.data.shape == (15, 2)
    # trials are shuffled within repeat blocks: rebuild the cube from the stimulus index
    for r in range(3):
        block = slice(5 * r, 5 * (r + 1))
        order = np.argsort(out.stimulus_index[block])
        np.testing.assert_allclose(out.data[block][order], areas["VISl"][r])
    assert not np.array_equal(out.stimulus_index[:5], np.arange(5))  # really shuffled
    with pytest.raises(BIDSInputError, match="no object 'VISx': expected one of.*VISp"):
        read_responses({"path": str(tmp_path / "m.nwb"), "dataset": "responses/VISx"},
                       area="VISx", n_stimuli=5)
    with pytest.raises(BIDSInputError, match="no column 'stim'.*stimulus_index"):
        read_responses({"path": str(tmp_path / "m.nwb"), "stimulus_index": "stim"},
                       area="VISp", n_stimuli=5)
    with pytest.raises(BIDSInputError, match="layout 'repeats_stimuli_units' with format nwb"):
        read_responses({"path": str(tmp_path / "m.nwb"), "layout": "repeats_stimuli_units"},
                       area="VISp", n_stimuli=5)


def test_ceilings_from_repeats_equal_the_split_half_function():
    rng = np.random.default_rng(3)
    cube = rng.normal(size=(4, 8, 5)) + rng.normal(size=(1, 8, 5))  # 4 repeats
    stimuli = np.array([f"s{i}.png" for i in range(10)])  # two table rows never shown
    shown = np.array([7, 0, 3, 5, 1, 2, 9, 4])
    trials = read_like = {"V1": _trials(cube[..., :3], shown), "V2": _trials(cube[..., 3:], shown)}
    out = responses_from_trials(read_like, stimuli)
    order = np.argsort(shown)  # the table's order
    half1 = cube[0::2].mean(0)[order]
    half2 = cube[1::2].mean(0)[order]
    np.testing.assert_array_equal(out["stimuli"], stimuli[np.sort(shown)])
    np.testing.assert_allclose(out["responses"], cube.mean(0)[order])
    np.testing.assert_allclose(out["half1"], half1)
    rel = fmri.split_half_reliability(half1, half2)
    np.testing.assert_allclose(out["reliability"], rel)
    np.testing.assert_allclose(out["noise_ceiling"],
                               fmri.noise_ceiling_from_reliability(rel, n_repeats=np.full(8, 4)))
    np.testing.assert_array_equal(out["roi"], ["V1"] * 3 + ["V2"] * 2)
    np.testing.assert_array_equal(out["n_repeats"], np.full(8, 4))
    assert trials["V1"].data.shape == (32, 3)
    # areas of one subject must share stimuli and repeats
    with pytest.raises(DataShapeError, match="repeats its stimuli \\[3\\] times"):
        responses_from_trials({"V1": _trials(cube[:, :, :2], shown),
                               "V2": _trials(cube[:3, :, :2], shown)}, stimuli)


def _trials(cube, rows):
    from brainalign.ingest.responses import TrialResponses

    n_rep, n_stim, n_units = cube.shape
    return TrialResponses(cube.reshape(n_rep * n_stim, n_units), np.tile(rows, n_rep))


def test_condensed_subset_equals_pdist_of_the_subset():
    x = np.random.default_rng(4).normal(size=(9, 3))
    rows = np.array([0, 2, 3, 7, 8])
    np.testing.assert_allclose(condensed_subset(pdist(x), 9, rows), pdist(x[rows]))


def test_subsample_curve_equals_direct_recomputation():
    rng = np.random.default_rng(5)
    Y = rng.normal(size=(12, 30))
    feats = {"a": rng.normal(size=(12, 8)), "b": Y[:, :10] + 0.1 * rng.normal(size=(12, 10))}
    layer_rdms = {k: pdist(v, "correlation") for k, v in feats.items()}
    curve = subsample_curve(Y, layer_rdms, roi="V1", units_sizes=[5], stimuli_sizes=[6],
                            n_draws=3, seed=7)
    for axis, size in (("units", 5), ("stimuli", 6)):
        total = 30 if axis == "units" else 12
        for draw, idx in enumerate(subsample_indices(total, size, n_draws=3, seed=7, axis=axis)):
            sub = Y[:, idx] if axis == "units" else Y[idx]
            for layer, x in feats.items():
                x = x if axis == "units" else x[idx]
                direct = spearmanr(pdist(sub, "correlation"), pdist(x, "correlation"))[0]
                got = curve[(curve["axis"] == axis) & (curve["size"] == size)
                            & (curve["draw"] == draw) & (curve["layer"] == layer)]["score"]
                assert len(got) == 1 and got.iloc[0] == pytest.approx(direct, abs=1e-12)
    # the full data is one draw per axis; sizes are seeded and without replacement
    assert set(curve.query("size == 30")["draw"]) == {0}
    idx = subsample_indices(30, 5, n_draws=3, seed=7, axis="units")
    assert all(len(set(i)) == 5 for i in idx)
    assert not np.array_equal(idx[0], idx[1])
    np.testing.assert_array_equal(idx[2], subsample_indices(30, 5, n_draws=3, seed=7,
                                                            axis="units")[2])
    summary = summarize_curve(curve)
    full = summary.query("axis == 'units' and size == 30").iloc[0]
    assert full["best_layer"] == full["full_best_layer"] == "b"


def test_encoding_units_curve_is_the_mean_r_of_the_same_subsets():
    rng = np.random.default_rng(6)
    unit_r = {"a": rng.uniform(size=25), "b": rng.uniform(size=25)}
    curve = encoding_units_curve(unit_r, roi="V1", units_sizes=[4, 40], n_draws=5, seed=3,
                                 n_stimuli=12)
    assert sorted(curve["size"].unique()) == [4, 25]  # 40 > 25 units: dropped, full added
    idx = subsample_indices(25, 4, n_draws=5, seed=3, axis="units")
    for draw, sub in enumerate(idx):
        for layer, r in unit_r.items():
            got = curve[(curve["size"] == 4) & (curve["draw"] == draw)
                        & (curve["layer"] == layer)]["score"]
            assert got.iloc[0] == pytest.approx(r[sub].mean())
    s = summarize_curve(curve).set_index("size")
    full = "a" if unit_r["a"].mean() > unit_r["b"].mean() else "b"
    assert s.loc[25, "full_best_layer"] == full and s.loc[25, "analysis"] == "encoding"
    wins = [max(unit_r, key=lambda k, i=i: unit_r[k][i].mean()) for i in idx]
    assert s.loc[4, "agreement"] == pytest.approx(np.mean([w == full for w in wins]))


def test_summarize_curve_counts_best_layers():
    curve = pd.DataFrame({
        "roi": "V1", "analysis": "rsa", "axis": "units", "size": [5] * 6 + [10] * 2,
        "draw": [0, 0, 1, 1, 2, 2, 0, 0], "layer": ["a", "b"] * 4,
        "score": [0.1, 0.3, 0.5, 0.2, 0.0, 0.4, 0.2, 0.6]})
    s = summarize_curve(curve).set_index("size")
    assert s.loc[5, "best_layer"] == "b" and s.loc[5, "best_layer_fraction"] == pytest.approx(2 / 3)
    assert s.loc[5, "full_best_layer"] == "b" and s.loc[5, "agreement"] == pytest.approx(2 / 3)
    assert s.loc[5, "best_score_mean"] == pytest.approx(np.mean([0.3, 0.5, 0.4]))


def _ext_config(tmp_path, **external):
    from PIL import Image

    stim = tmp_path / "stim"
    stim.mkdir()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(stim / "a.png")
    (tmp_path / "s.tsv").write_text("stim_file\na.png\n")
    return {"output_dir": str(tmp_path / "out"), "bids": None,
            "external": {"stimuli": str(tmp_path / "s.tsv"), "stimuli_dir": str(stim),
                         **external},
            "features": {"models": {"m": {"architecture": "alexnet", "weights": "random",
                                          "layers": ["conv1"]}}}}


def test_config_needs_rdms_or_responses_and_fills_defaults(tmp_path):
    cfg = _ext_config(tmp_path)
    with pytest.raises(ConfigError, match="neither 'rdms' nor 'responses'"):
        validate_config(cfg)
    cfg["external"]["responses"] = {"VISp": {"path": "{data}/v.nwb"}}
    cfg["data"] = "/d"
    out = validate_config(cfg)
    spec = out["external"]["responses"]["VISp"]
    assert spec["path"] == "/d/v.nwb" and spec["subject"] == "01" and spec["format"] == "auto"
    assert out["external"]["subsample"]["n_draws"] == 20
    cfg["external"]["responses"]["VISp"]["layout"] = "stimuli_units"
    with pytest.raises(ConfigError, match="external.responses.VISp.layout"):
        validate_config(cfg)
