"""Model families: checkpoints expand into one model each; the report's score-vs-checkpoint data.

The expansion is checked on its own and through validate_config (a second validation of the
result changes nothing); the figure's data against the scores table, recomputed here with pandas
and scipy, and against the lines the figure draws.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from brainalign.config import resolve_paths, validate_config
from brainalign.errors import ConfigError
from brainalign.features.checkpoints import checkpoint_families, expand_checkpoints
from brainalign.report.checkpoints import checkpoint_figure, checkpoint_scores
from tests.conftest import REPO

LAYERS = ["stem", "stage2", "stage6"]


def _family(**checkpoints):
    return {"architecture": "efficientnet_lite0", "seed": 3, "layers": ["stage2"],
            "kwargs": {}, "checkpoints": checkpoints}


def _config(tmp_path, models):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["bids"]["bids_dir"] = str(tmp_path / "bids")
    cfg["output_dir"] = str(tmp_path / "out")
    cfg["features"]["models"] = models
    return cfg


# --- expansion ------------------------------------------------------------------------------


def test_checkpoints_expand_in_order_with_their_family():
    models = {"zeta": {"weights": "random", "layers": ["a"]},
              "net": _family(late="l.pth", early="e.pth", mid="shipped")}
    out = expand_checkpoints(models)
    assert list(out) == ["zeta", "net_late", "net_early", "net_mid"]
    assert out["zeta"] == models["zeta"]
    for k, label in enumerate(["late", "early", "mid"]):
        spec = out[f"net_{label}"]
        assert spec["weights"] == models["net"]["checkpoints"][label]
        assert (spec["family"], spec["checkpoint"], spec["checkpoint_index"]) == ("net", label, k)
        assert spec["checkpoints"] is None
        assert spec["seed"] == 3 and spec["layers"] == ["stage2"]
    assert "checkpoints" in models["net"] and models["net"]["checkpoints"]  # input untouched
    fams = checkpoint_families(out)
    assert fams == {"net": [{"model": f"net_{lab}", "checkpoint": lab, "checkpoint_index": k}
                            for k, lab in enumerate(["late", "early", "mid"])]}


def test_a_checkpoint_may_override_architecture_and_kwargs():
    """A size series: each member its own architecture / constructor arguments."""
    out = expand_checkpoints({"tv": {
        "architecture": "resnet18", "layers": ["layer4"], "kwargs": {"num_classes": 10},
        "checkpoints": {"small": {"weights": "random", "architecture": "resnet18"},
                        "big": {"weights": "b.pth", "architecture": "resnet50",
                                "kwargs": {"num_classes": 5}}}}})
    assert out["tv_small"]["architecture"] == "resnet18"
    assert out["tv_small"]["kwargs"] == {"num_classes": 10}
    assert (out["tv_big"]["architecture"], out["tv_big"]["weights"]) == ("resnet50", "b.pth")
    assert out["tv_big"]["kwargs"] == {"num_classes": 5}


def test_validate_config_expands_and_is_idempotent(tmp_path):
    for name in ("a.pth", "b.pth"):
        (tmp_path / name).write_bytes(b"")
    cfg = _config(tmp_path, {"lite": _family(b="b.pth", a="a.pth"),
                             "plain": {"architecture": "efficientnet_lite0", "weights": "shipped",
                                       "layers": ["stem"]}})
    valid = validate_config(cfg, base_dir=tmp_path)
    models = valid["features"]["models"]
    assert set(models) == {"lite_b", "lite_a", "plain"}
    # the given order survives the sorted keys, as checkpoint_index
    assert [m["checkpoint"] for m in checkpoint_families(models)["lite"]] == ["b", "a"]
    assert "family" not in models["plain"]
    assert validate_config(valid, base_dir=tmp_path) == valid


def test_a_size_series_is_a_family(tmp_path):
    """EfficientNet-Lite0/1/2 (shipped weights) as one family: each member's architecture."""
    sizes = {f"lite{k}": {"weights": "shipped", "architecture": f"efficientnet_lite{k}"}
             for k in range(3)}
    cfg = _config(tmp_path, {"effnet": {"layers": ["stage2", "stage6"], "checkpoints": sizes}})
    models = validate_config(cfg, base_dir=tmp_path)["features"]["models"]
    assert {m: s["architecture"] for m, s in models.items()} == {
        f"effnet_lite{k}": f"efficientnet_lite{k}" for k in range(3)}
    assert [m["checkpoint"] for m in checkpoint_families(models)["effnet"]] == [
        "lite0", "lite1", "lite2"]


def test_validate_config_checks_every_checkpoints_weights(tmp_path):
    (tmp_path / "a.pth").write_bytes(b"")
    cfg = _config(tmp_path, {"lite": _family(a="a.pth", b="missing.pth")})
    with pytest.raises(ConfigError, match=r"features\.models\.lite_b\.weights"):
        validate_config(cfg, base_dir=tmp_path)


def test_checkpoint_labels_must_be_alphanumeric(tmp_path):
    cfg = _config(tmp_path, {"lite": _family(**{"a-1": "shipped"})})
    with pytest.raises(ConfigError, match=r"features\.models\.lite\.checkpoints"):
        validate_config(cfg, base_dir=tmp_path)


def test_weights_and_checkpoints_together_are_refused():
    with pytest.raises(ConfigError, match="sets both 'weights'.*Remove 'weights'"):
        expand_checkpoints({"net": {**_family(a="shipped"), "weights": "shipped"}})


def test_neither_weights_nor_checkpoints_is_refused(tmp_path):
    cfg = _config(tmp_path, {"net": {"architecture": "efficientnet_lite0", "layers": ["stem"]}})
    with pytest.raises(ConfigError, match="'features.models.net' has no 'weights'"):
        validate_config(cfg, base_dir=tmp_path)


def test_empty_checkpoints_are_refused():
    with pytest.raises(ConfigError, match=r"checkpoints' is empty"):
        expand_checkpoints({"net": _family()})


def test_an_expanded_name_that_exists_is_refused():
    with pytest.raises(ConfigError, match="expands to the model 'net_a'.*already has"):
        expand_checkpoints({"net_a": {"weights": "random", "layers": ["x"]},
                            "net": _family(a="shipped")})


def test_an_expanded_name_whose_file_label_exists_is_refused():
    # net_a0 -> label neta0, which the model neta0 already has
    with pytest.raises(ConfigError, match="share the file-name label 'neta0'"):
        expand_checkpoints({"neta0": {"weights": "random", "layers": ["x"]},
                            "net": _family(a0="shipped")})


def test_a_half_written_family_is_refused():
    with pytest.raises(ConfigError, match=r"sets \['family'\] but not"):
        expand_checkpoints({"net": {"weights": "random", "layers": ["x"], "family": "f"}})


def test_resolve_paths_makes_checkpoint_weights_absolute(tmp_path):
    cfg = {"features": {"models": {"net": {"checkpoints": {
        "a": "ck/a.pth", "b": "shipped", "c": {"weights": "ck/c.pth", "architecture": "x"}}}}}}
    out = resolve_paths(cfg, tmp_path)["features"]["models"]["net"]["checkpoints"]
    assert out == {"a": str(tmp_path / "ck/a.pth"), "b": "shipped",
                   "c": {"weights": str(tmp_path / "ck/c.pth"), "architecture": "x"}}


# --- figure data ----------------------------------------------------------------------------

FAMILIES = {"net": [{"model": f"net_{lab}", "checkpoint": lab, "checkpoint_index": k}
                    for k, lab in enumerate(["c0", "c5", "c9"])]}


@pytest.fixture
def subject_scores(rng):
    """Per-subject rows (a BIDS run) of a 3-checkpoint family and one other model."""
    rows = []
    for analysis, metric in (("encoding", "pearson_r"), ("rsa", "spearman")):
        for subject in ("01", "02", "03"):
            for roi in ("early", "late"):
                for member in [*FAMILIES["net"], {"model": "other"}]:
                    for layer in LAYERS:
                        rows.append({"analysis": analysis, "subject": subject, "roi": roi,
                                     "model": member["model"], "layer": layer, "metric": metric,
                                     "score": rng.uniform(-0.2, 0.8),
                                     "noise_ceiling": {"early": 0.7, "late": 0.6}[roi]
                                     + 0.01 * int(subject),
                                     "noise_ceiling_lower": np.nan, "time": np.nan})
    return pd.DataFrame(rows)


def test_checkpoint_scores_are_the_tables_best_layer_means(subject_scores):
    table = checkpoint_scores(subject_scores, FAMILIES)
    assert len(table) == 2 * 2 * 3  # analyses x ROIs x checkpoints
    assert "other" not in set(table["model"])
    for (analysis, roi), g in table.groupby(["analysis", "roi"]):
        assert g["checkpoint"].tolist() == ["c0", "c5", "c9"]  # checkpoint order
        for _, row in g.iterrows():
            sub = subject_scores[(subject_scores["analysis"] == analysis)
                                 & (subject_scores["roi"] == roi)
                                 & (subject_scores["model"] == row["model"])]
            means = sub.pivot(index="subject", columns="layer", values="score").mean()
            assert row["layer"] == means.idxmax()
            assert row["score"] == pytest.approx(means.max())
            at = sub[sub["layer"] == row["layer"]]
            sem = stats.sem(at["score"])
            assert row["err_low"] == pytest.approx(means.max() - sem)
            assert row["err_high"] == pytest.approx(means.max() + sem)
            assert row["noise_ceiling"] == pytest.approx(at["noise_ceiling"].mean())
            assert row["error"] == "sem" and row["n_subjects"] == 3


def test_checkpoint_scores_at_a_chosen_layer(subject_scores):
    table = checkpoint_scores(subject_scores, FAMILIES, layer="stem")
    assert set(table["layer"]) == {"stem"}
    sub = subject_scores[(subject_scores["layer"] == "stem")
                         & subject_scores["model"].str.startswith("net_")]
    expected = sub.groupby(["analysis", "roi", "model"])["score"].mean()
    got = table.set_index(["analysis", "roi", "model"])["score"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)


def test_group_rows_give_their_bootstrap_interval_and_ceiling_range():
    rows = []
    for k, member in enumerate(FAMILIES["net"]):
        for j, layer in enumerate(LAYERS):
            score = 0.1 * k + 0.05 * j
            rows.append({"analysis": "rsa", "subject": "group", "roi": "IT",
                         "model": member["model"], "layer": layer, "metric": "spearman",
                         "score": score, "ci_low": score - 0.02, "ci_high": score + 0.03,
                         "noise_ceiling": 0.5, "noise_ceiling_lower": 0.4})
    table = checkpoint_scores(pd.DataFrame(rows), FAMILIES)
    assert table["layer"].tolist() == ["stage6"] * 3
    np.testing.assert_allclose(table["score"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(table["err_low"], [0.08, 0.18, 0.28])
    np.testing.assert_allclose(table["err_high"], [0.13, 0.23, 0.33])
    assert table["error"].tolist() == ["ci"] * 3
    assert table["noise_ceiling_lower"].tolist() == [0.4] * 3


def test_the_figure_plots_the_tables_values(subject_scores):
    import matplotlib.pyplot as plt

    table = checkpoint_scores(subject_scores, FAMILIES)
    fig = checkpoint_figure(table)
    try:
        axes = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title() for ax in axes] == ["net: encoding", "net: rsa"]
        for ax, analysis in zip(axes, ("encoding", "rsa"), strict=True):
            assert [t.get_text() for t in ax.get_xticklabels()] == ["c0", "c5", "c9"]
            for roi in ("early", "late"):
                bars = next(c for c in ax.containers if c.get_label() == f"ROI {roi}")
                line = bars.lines[0]
                # independent: the best layer's subject mean, straight from the scores
                sub = subject_scores[(subject_scores["analysis"] == analysis)
                                     & (subject_scores["roi"] == roi)]
                best = [sub[sub["model"] == m["model"]].groupby("layer")["score"].mean().max()
                        for m in FAMILIES["net"]]
                np.testing.assert_allclose(line.get_ydata(), best)
                np.testing.assert_allclose(line.get_xdata(), [0, 1, 2])
                ceiling = next(ln for ln in ax.get_lines()
                               if ln.get_gid() == f"noise-ceiling-{roi}")
                np.testing.assert_allclose(ceiling.get_ydata(),
                                           {"early": 0.72, "late": 0.62}[roi])
    finally:
        plt.close(fig)


def test_the_report_has_the_family_section(tmp_path, subject_scores):
    from brainalign.report import SCORE_COLUMNS, write_html_report

    subject_scores = subject_scores.reindex(columns=SCORE_COLUMNS)
    out = tmp_path / "report.html"
    write_html_report(subject_scores, out, brain_rdms={}, layer_rdms={},
                      provenance={"dataset": {"path": "x", "subjects": ["01"]}},
                      families=FAMILIES)
    html = out.read_text()
    section = re.search(r'<section id="model-families">(.*?)</section>', html, re.S).group(1)
    assert "<img src='data:image/png;base64," in section
    assert section.count("<tr") == 1 + 12  # header + analyses x ROIs x checkpoints
    # without families, no section
    write_html_report(subject_scores, out, brain_rdms={}, layer_rdms={},
                      provenance={"dataset": {"path": "x", "subjects": ["01"]}})
    assert 'id="model-families"' not in Path(out).read_text()
