"""Encoding for a whole study: one fit per layer for many subjects, and the ceiling it reports.

The shared fit is checked against the per-subject path it replaces (``cross_validated_ridge`` /
``step_encoding_fit`` on each subject alone, itself checked against scikit-learn and himalaya in
test_encoding_ridge.py): same penalties, same scores to 1e-10, whatever the stimulus sets.
"""

import numpy as np
import pandas as pd
import pytest

from brainalign.encoding import (
    CEILING_KEYS,
    ceiling_key,
    cross_validated_ridge,
    cross_validated_ridge_shared,
    stimulus_groups,
)
from brainalign.encoding.steps import (
    VOXEL_SCORE_COLUMNS,
    step_encoding_fit,
    step_encoding_fit_study,
    step_encoding_summary,
)
from brainalign.errors import ConfigError, DataShapeError
from brainalign.io import read_tsv, save_npz
from brainalign.report.scores import SCORE_COLUMNS, collect_scores
from brainalign.workflow import DerivPaths, encoding_parts

ALPHAS = [0.1, 1.0, 10.0, 100.0, 1000.0, 1e4]
RIDGE = {"alphas": ALPHAS, "n_folds": 4, "n_inner_folds": 3, "seed": 2}
N_STIM = 40
STIMULI = np.array([f"img{i:02d}.png" for i in range(N_STIM)])


def _subject(rng, X, n_signal, n_noise, noise):
    """Voxels driven by the features (SNR varying per voxel) and voxels of pure noise."""
    W = rng.standard_normal((X.shape[1], n_signal)) / np.sqrt(X.shape[1])
    Y = X @ W * rng.uniform(0.2, 2.0, n_signal) + noise * rng.standard_normal((len(X), n_signal))
    return np.hstack([Y, rng.standard_normal((len(X), n_noise))])


@pytest.mark.parametrize("n_features", [12, 90])  # primal and dual (kernel) solver
def test_shared_fit_equals_per_subject_fits(rng, n_features):
    X = rng.standard_normal((N_STIM, n_features))
    Ys = [_subject(rng, X, 5, 3, noise) for noise in (0.3, 1.0, 3.0)]
    shared = cross_validated_ridge_shared(X, Ys, **RIDGE)
    assert len(shared) == 3
    chosen = set()
    for Y, got in zip(Ys, shared, strict=True):
        ref = cross_validated_ridge(X, Y, **RIDGE)
        np.testing.assert_array_equal(got["alpha"], ref["alpha"])
        for key in ("r", "r2", "predictions"):
            assert got[key].shape == ref[key].shape
            np.testing.assert_allclose(got[key], ref[key], rtol=0, atol=1e-10)
        chosen |= set(np.unique(ref["alpha"]))
    assert len(chosen) >= 3  # the penalties differ between voxels: the check has teeth
    # planted signal found only where planted
    assert shared[0]["r"][:5].mean() > 0.3 and (abs(shared[0]["r"][5:]) < 0.5).all()


def test_shared_fit_rejects_misaligned_targets(rng):
    X = rng.standard_normal((N_STIM, 5))
    with pytest.raises(DataShapeError, match=r"target set 1: expected \(40, n_voxels\).*"
                                             r"got \(39, 2\)"):
        cross_validated_ridge_shared(X, [np.zeros((40, 2)), np.zeros((39, 2))], alphas=ALPHAS)
    with pytest.raises(DataShapeError, match="at least one target set"):
        cross_validated_ridge_shared(X, [], alphas=ALPHAS)


def test_stimulus_groups_need_same_stimuli_in_same_order():
    a, b = ["s1", "s2", "s3"], ["s1", "s3"]
    groups = stimulus_groups({"01": a, "02": b, "03": list(a), "04": a[::-1], "05": np.array(b)})
    assert groups == [["01", "03"], ["02", "05"], ["04"]]


def _write_responses(path, Y, stimuli, rng, *, ncsnr=True):
    roi = np.array(["v1", "v4"] * (Y.shape[1] // 2) + ["v1"] * (Y.shape[1] % 2))
    arrays = {"responses": Y, "stimuli": stimuli, "roi": roi,
              "noise_ceiling": rng.uniform(0.2, 0.5, Y.shape[1])}
    if ncsnr:
        arrays["noise_ceiling_ncsnr"] = rng.uniform(0.6, 0.9, Y.shape[1])
    save_npz(path, **arrays)
    return arrays


@pytest.fixture
def study(rng, tmp_path):
    """Features stored in shuffled order; 5 subjects: 01, 02, 04 saw every stimulus in the
    manifest order, 03 missed 6 stimuli, 05 saw every stimulus in another order."""
    X = rng.standard_normal((N_STIM, 60))
    order = rng.permutation(N_STIM)
    feats = tmp_path / "features.npz"
    save_npz(feats, features=X[order].astype(np.float32), stimuli=STIMULI[order])
    rows = {"01": np.arange(N_STIM), "02": np.arange(N_STIM), "03": np.arange(6, N_STIM),
            "04": np.arange(N_STIM), "05": rng.permutation(N_STIM)}
    responses, arrays = {}, {}
    for s, idx in rows.items():
        Y = _subject(rng, X[idx], 6, 3, 0.5)
        responses[s] = str(tmp_path / f"sub-{s}_responses.npz")
        arrays[s] = _write_responses(responses[s], Y, STIMULI[idx], rng)
    return {"features": str(feats), "responses": responses, "arrays": arrays}


def test_study_step_equals_per_subject_steps(study, tmp_path):
    out = tmp_path / "part.tsv"
    step_encoding_fit_study(study["features"], study["responses"], ridge=RIDGE, out=str(out))
    part = read_tsv(out)
    assert list(part.columns) == ["subject", *VOXEL_SCORE_COLUMNS]
    assert part["subject"].unique().tolist() == ["01", "02", "03", "04", "05"]
    for s, path in study["responses"].items():
        ref_path = tmp_path / f"ref-{s}.tsv"
        step_encoding_fit(study["features"], path, ridge=RIDGE, out=str(ref_path))
        ref = read_tsv(ref_path)
        got = part[part["subject"] == s].drop(columns="subject").reset_index(drop=True)
        assert got["voxel"].tolist() == ref["voxel"].tolist()
        assert got["roi"].tolist() == ref["roi"].tolist()
        np.testing.assert_array_equal(got["alpha"], ref["alpha"])
        np.testing.assert_allclose(got[["r", "r2"]], ref[["r", "r2"]], rtol=0, atol=1e-10)
        np.testing.assert_array_equal(got["noise_ceiling"], study["arrays"][s]["noise_ceiling"])
        assert set(got["ceiling_method"]) == {"split_half"}
        assert got["r"][:6].mean() > 0.3 > got["r"][6:].mean()  # planted signal, per subject
    # the subject with fewer stimuli got other folds: a joint fit of its rows would differ
    r03 = part.loc[part["subject"] == "03", "r"].to_numpy()
    r01 = part.loc[part["subject"] == "01", "r"].to_numpy()
    assert not np.allclose(r03, r01)


def test_study_step_logs_its_stimulus_groups(study, tmp_path, caplog):
    caplog.set_level("INFO", logger="brainalign.encoding.steps")
    step_encoding_fit_study(study["features"], study["responses"], ridge=RIDGE,
                            out=str(tmp_path / "part.tsv"))
    assert "subjects 01, 02, 04: 40 stimuli, one shared fit" in caplog.text
    assert "subjects 03: 34 stimuli" in caplog.text and "subjects 05: 40 stimuli" in caplog.text
    assert "3 stimulus sets among 5 subjects" in caplog.text


@pytest.mark.parametrize("method", ["split_half", "ncsnr"])
def test_ceiling_choice_is_used_and_reported(study, tmp_path, method):
    part = tmp_path / "part.tsv"
    responses = {s: study["responses"][s] for s in ("01", "02")}
    step_encoding_fit_study(study["features"], responses, ridge=RIDGE, out=str(part),
                            noise_ceiling=method)
    key = CEILING_KEYS[method]
    t = read_tsv(part)
    assert set(t["ceiling_method"]) == {method}
    for s in responses:
        np.testing.assert_array_equal(t.loc[t["subject"] == s, "noise_ceiling"],
                                      study["arrays"][s][key])
    # the per-subject summary carries the chosen ceiling and says which it is
    summary = tmp_path / "summary.tsv"
    step_encoding_summary({("m", "l1"): str(part)}, subject="02", out=str(summary))
    s = read_tsv(summary).set_index("roi")
    arr = study["arrays"]["02"]
    for roi in ("v1", "v4"):
        sel = arr["roi"] == roi
        assert s.loc[roi, "ceiling_method"] == method
        np.testing.assert_allclose(s.loc[roi, "noise_ceiling"], arr[key][sel].mean())
    # and so does the group table, normalized by that ceiling
    scores = collect_scores([summary], layer_order={"m": ["l1"]}, min_noise_ceiling=0.0)
    assert list(scores.columns) == SCORE_COLUMNS and "ceiling_method" in SCORE_COLUMNS
    assert set(scores["ceiling_method"]) == {method}
    np.testing.assert_allclose(scores["normalized_score"],
                               scores["score"] / scores["noise_ceiling"])
    other = CEILING_KEYS[{"split_half": "ncsnr", "ncsnr": "split_half"}[method]]
    assert not np.allclose(scores["noise_ceiling"].to_numpy(),
                           [arr[other][arr["roi"] == r].mean() for r in scores["roi"]])


def test_missing_ncsnr_ceiling_names_the_file_and_the_fix(rng, tmp_path, study):
    old = tmp_path / "sub-09_responses.npz"
    _write_responses(old, rng.standard_normal((N_STIM, 4)), STIMULI, rng, ncsnr=False)
    with pytest.raises(DataShapeError, match=r"sub-09_responses\.npz: no 'noise_ceiling_ncsnr' "
                                             r"array.*Re-run the fmri_responses step.*"
                                             r"encoding\.noise_ceiling: split_half"):
        step_encoding_fit_study(study["features"], {"09": str(old)}, ridge=RIDGE,
                                out=str(tmp_path / "x.tsv"), noise_ceiling="ncsnr")
    assert not (tmp_path / "x.tsv").exists()
    with pytest.raises(ConfigError, match=r"encoding\.noise_ceiling.*got 'nsd'"):
        ceiling_key("nsd")


def test_summary_splits_the_part_into_the_subjects_voxel_tables(study, tmp_path):
    parts = {}
    for layer in ("l1", "l2"):
        parts[("m", layer)] = str(tmp_path / f"part-{layer}.tsv")
        step_encoding_fit_study(study["features"], study["responses"],
                                ridge={**RIDGE, "seed": int(layer[-1])}, out=parts[("m", layer)])
    voxel_out = {k: str(tmp_path / f"sub-04_{k[1]}.tsv") for k in parts}
    summary = tmp_path / "summary.tsv"
    step_encoding_summary(parts, subject="04", out=str(summary), voxel_scores_out=voxel_out)
    for k, path in voxel_out.items():
        mine = read_tsv(path)
        part = read_tsv(parts[k])
        ref = part[part["subject"] == "04"].drop(columns="subject").reset_index(drop=True)
        assert list(mine.columns) == VOXEL_SCORE_COLUMNS
        pd.testing.assert_frame_equal(mine, ref)
    s = read_tsv(summary)
    assert len(s) == 2 * 2 and set(s["subject"]) == {"04"}
    with pytest.raises(DataShapeError, match=r"part-l1\.tsv: no row of subject '99'"):
        step_encoding_summary(parts, subject="99", out=str(tmp_path / "s99.tsv"))


def test_encoding_parts_cover_every_subject_once():
    subjects = [f"{i:02d}" for i in range(1, 24)]
    parts = encoding_parts(subjects, 10)
    assert list(parts) == ["1", "2", "3"]
    assert [len(p) for p in parts.values()] == [10, 10, 3]
    assert sum(parts.values(), []) == subjects
    assert encoding_parts(subjects, None) == {"1": subjects}
    assert encoding_parts(["01", "02"], 10) == {"1": ["01", "02"]}
    assert encoding_parts([], 4) == {}
    path = DerivPaths("out").encoding_part_scores("efficientnet_lite0", "conv1_1", "2")
    assert path.endswith("encoding/model-efficientnetlite0_layer-conv11_part-2_voxelscores.tsv")
