"""The HTML report from jinja2 templates, on a small synthetic scores table.

What a reader sees: flagged rows (scores above the noise ceiling) highlighted and explained,
columns that are n/a in every row left out of the tables (and named), the ROI voxel table,
names HTML-escaped, and figures whose legend stays off the data and whose metric is named once.
"""

from __future__ import annotations

import base64
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

from brainalign.io import read_tsv, write_tsv
from brainalign.report import (
    ABOVE_NOISE_CEILING,
    ROI_VOXEL_COLUMNS,
    SCORE_COLUMN_DESCRIPTIONS,
    SCORE_COLUMNS,
    collect_scores,
    write_html_report,
)
from brainalign.report.html import METRIC_LABELS, layer_figure, render_template, table_view
from brainalign.report.steps import step_report_html

LAYERS = ["conv1", "conv2", "fc"]
EVIL_ROI = "<script>alert('roi')</script>"
EVIL_MODEL = "net&<b>bold</b>"
# columns that the per-subject tables of a BIDS run never fill
BIDS_EMPTY = ["ci_low", "ci_high", "p_value", "p_fdr"]
IMG = "<img src='data:image/png;base64,"


def _per_subject_tables(tmp_path):
    """Encoding and RSA score tables of two subjects, as the workflow writes them."""
    paths = []
    for analysis, metric in (("encoding", "pearson_r"), ("rsa", "spearman")):
        rows = []
        for subject in ("01", "02"):
            # early's deepest layer scores 0.3 against a ceiling of 0.25: above it
            for roi, ceiling in (("early", 0.25), (EVIL_ROI, 0.5), ("null", 0.05)):
                for i, layer in enumerate(LAYERS):
                    rows.append({
                        "analysis": analysis, "subject": subject, "roi": roi, "model": EVIL_MODEL,
                        "layer": layer, "metric": metric, "score": 0.1 * (i + 1),
                        "noise_ceiling": ceiling,
                        # RSA ceilings are a range (rsa.split_half_ceiling)
                        **({"noise_ceiling_lower": 0.8 * ceiling} if analysis == "rsa" else {}),
                    })
        path = tmp_path / f"{analysis}.tsv"
        write_tsv(pd.DataFrame(rows), path)
        paths.append(path)
    return paths


@pytest.fixture
def scores(tmp_path):
    return collect_scores(_per_subject_tables(tmp_path), layer_order={EVIL_MODEL: LAYERS},
                          min_noise_ceiling=0.1)


@pytest.fixture
def rdm_files(tmp_path):
    rng = np.random.default_rng(0)
    brain = tmp_path / "brain.npz"
    np.savez(brain, rois=np.array(["early", EVIL_ROI]), rdm_early=rng.random(15),
             **{f"rdm_{EVIL_ROI}": rng.random(15)})
    layers = tmp_path / "layers.npz"
    np.savez(layers, layers=np.array(LAYERS), **{name: rng.random(15) for name in LAYERS})
    return {"sub-01": str(brain)}, {EVIL_MODEL: str(layers)}


@pytest.fixture
def roi_voxels():
    return pd.DataFrame({
        "subject": ["01", "01", "02", "02"],
        "roi": ["early", EVIL_ROI, "early", EVIL_ROI],
        "n_voxels_atlas": [40, 30, 40, 30],
        "n_voxels_analysed": [40, 21, 39, np.nan],  # a missing count must not turn into 21.000
        "n_voxels_removed": [0, 9, 1, np.nan],
        # "1" alone in a file must stay "1", not become the number 1.000
        "removed_runs": [np.nan, "2;3", "1", np.nan],
        "reason": [np.nan, "outside the brain mask (fmri.mask.method=data)", "non-finite values",
                   np.nan],
    })


@pytest.fixture
def no_figures(monkeypatch):
    """Tiny stand-ins for the figures, for tests of the tables (matplotlib takes seconds)."""
    import brainalign.report.html as report_html

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    monkeypatch.setattr(report_html, "_layer_figure", lambda scores, analysis: png)
    monkeypatch.setattr(report_html, "_rdm_figure", lambda rdms, title: png)


def _report(tmp_path, scores, rdm_files, **kwargs):
    out = tmp_path / "report" / "report.html"
    brain, layers = rdm_files
    write_html_report(scores, out, brain_rdms=brain, layer_rdms=layers,
                      provenance={"dataset": {"name": "study <1>", "path": "/data/a&b",
                                              "subjects": ["01", "02"]}}, **kwargs)
    return out.read_text()


def _table(html, section):
    """The first table of a section, as header names and rows of (class, cells)."""
    body = re.search(rf'<section id="{section}">(.*?)</section>', html, re.S)
    assert body, f"no section {section}"
    table = re.search(r"<table.*?</table>", body.group(1), re.S).group(0)
    header = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table)
    rows = [
        (attrs, re.findall(r"<td[^>]*>(.*?)</td>", cells))
        for attrs, cells in re.findall(r"<tr([^>]*)>(.*?)</tr>", table.split("</thead>")[1], re.S)
    ]
    return header, rows


def test_collect_scores_appends_flags_and_keeps_the_earlier_columns(tmp_path, scores):
    # readers of today's columns keep working: same names, same order, flags only appended
    assert SCORE_COLUMNS[:14] == [
        "analysis", "subject", "roi", "model", "layer", "metric", "score", "noise_ceiling",
        "normalized_score", "noise_ceiling_lower", "ci_low", "ci_high", "p_value", "p_fdr"]
    # in the order they came (modality and time with M/EEG)
    assert SCORE_COLUMNS[14:] == ["flags", "ceiling_method", "modality", "time"]
    assert list(scores.columns) == SCORE_COLUMNS
    # tables written without the M/EEG columns are fMRI rows, with no time
    assert (scores["modality"] == "fmri").all() and scores["time"].isna().all()
    above = scores["normalized_score"] > 1
    # early's fc layer (0.3 / 0.25 = 1.2), in 2 analyses x 2 subjects
    assert sorted(map(tuple, scores.loc[above, ["analysis", "subject", "roi", "layer"]]
                      .to_numpy().tolist())) == [
        (a, s, "early", "fc") for a in ("encoding", "rsa") for s in ("01", "02")]
    assert (scores.loc[above, "flags"] == ABOVE_NOISE_CEILING).all()
    assert scores.loc[~above, "flags"].isna().all()
    # a ceiling too low to divide by gives no normalised score and no flag (ratio 6 here)
    null = scores["roi"] == "null"
    assert (scores.loc[null, "score"] / scores.loc[null, "noise_ceiling"] > 1).any()
    assert scores.loc[null, "flags"].isna().all()
    # round trip through the TSV: n/a stays missing, the flag stays a string
    write_tsv(scores, tmp_path / "scores.tsv")
    back = read_tsv(tmp_path / "scores.tsv")
    assert list(back.columns) == SCORE_COLUMNS
    assert (back["flags"].isna() == ~above).all()


def test_every_score_column_is_described():
    assert set(SCORE_COLUMN_DESCRIPTIONS) == set(SCORE_COLUMNS)
    for column in BIDS_EMPTY:
        assert "n/a in BIDS mode" in SCORE_COLUMN_DESCRIPTIONS[column]


def test_flagged_rows_are_highlighted_and_explained(tmp_path, scores, rdm_files,
        no_figures):
    n_above = int((scores["normalized_score"] > 1).sum())
    assert n_above == 4  # fc of early: 2 analyses x 2 subjects

    html = _report(tmp_path, scores, rdm_files)
    assert f"<b>{n_above} score(s) above the noise ceiling</b>" in html
    assert "the ceiling is underestimated" in html and "the score itself is noisy" in html
    header, rows = _table(html, "all-scores")
    flags = header.index("flags")
    normalized = header.index("normalized_score")
    flagged = [cells for attrs, cells in rows if 'class="flagged"' in attrs]
    assert len(flagged) == n_above
    assert all(cells[flags] == ABOVE_NOISE_CEILING for cells in flagged)
    assert all(float(cells[normalized]) > 1 for cells in flagged)
    unflagged = [cells for attrs, cells in rows if 'class="flagged"' not in attrs]
    assert all(cells[flags] == "n/a" for cells in unflagged)
    # the best-layer tables highlight them too (fc is the best layer of early)
    _, best = _table(html, "encoding")
    assert sum('class="flagged"' in attrs for attrs, _ in best) == 2


def test_no_warning_without_flags_and_empty_columns_hidden(tmp_path, scores, rdm_files,
        no_figures):
    html = _report(tmp_path, scores[scores["roi"] != "early"], rdm_files)
    assert 'id="flag-warning"' not in html and 'class="flagged"' not in html
    header, rows = _table(html, "all-scores")
    assert len(rows) == 2 * 2 * 2 * len(LAYERS)
    for column in [*BIDS_EMPTY, "flags"]:  # n/a in every row: not shown, but named
        assert column not in header
    assert header == ["analysis", "subject", "roi", "model", "layer", "metric", "score",
                      "noise_ceiling", "normalized_score", "noise_ceiling_lower", "modality"]
    note = re.search(r'<section id="all-scores">.*?<p class="note">(.*?)</p>', html, re.S)
    assert note and all(f"<code>{c}</code>" in note.group(1) for c in BIDS_EMPTY)
    # the section on the columns says what each holds, and which were empty in this run
    columns = re.search(r'<section id="columns">(.*?)</section>', html, re.S).group(1)
    for column in SCORE_COLUMNS:
        assert f"<dt>{column}" in columns
    # + flags, ceiling_method (these encoding summaries predate encoding.noise_ceiling) and
    # time (no M/EEG rows)
    assert columns.count("(n/a in every row of this run)") == len(BIDS_EMPTY) + 3
    assert "n/a in BIDS mode" in unescape(columns)


def test_a_column_with_one_value_is_shown(tmp_path, scores, rdm_files,
        no_figures):
    scores = scores.copy()
    scores.loc[0, "p_value"] = 0.01
    header, rows = _table(_report(tmp_path, scores, rdm_files), "all-scores")
    assert "p_value" in header and "ci_low" not in header
    assert rows[0][1][header.index("p_value")] == "0.010"
    assert rows[1][1][header.index("p_value")] == "n/a"


def test_roi_voxel_section(tmp_path, scores, rdm_files, roi_voxels,
        no_figures):
    html = _report(tmp_path, scores, rdm_files, roi_voxels=roi_voxels)
    assert "<h2>ROI voxels before and after masking</h2>" in html
    header, rows = _table(html, "roi-voxels")
    assert header == ROI_VOXEL_COLUMNS
    cells = [c for _, c in rows]
    assert cells[1] == ["01", "&lt;script&gt;alert(&#39;roi&#39;)&lt;/script&gt;", "30", "21",
                        "9", "2;3", "outside the brain mask (fmri.mask.method=data)"]
    assert cells[2][3:] == ["39", "1", "1", "non-finite values"]
    assert cells[3][3:] == ["n/a"] * 4
    # without the table, no section
    assert 'id="roi-voxels"' not in _report(tmp_path, scores, rdm_files)


def test_roi_voxel_tsv_without_a_column_is_refused(tmp_path, roi_voxels):
    from brainalign.report.html import read_roi_voxels

    write_tsv(roi_voxels.drop(columns="removed_runs"), tmp_path / "sub-01_roivoxels.tsv")
    with pytest.raises(ValueError, match=r"sub-01_roivoxels.tsv: expected columns .*"
                                         r"missing \['removed_runs'\]"):
        read_roi_voxels([tmp_path / "sub-01_roivoxels.tsv"])


def test_roi_voxel_tsv_with_a_count_that_is_not_one_is_refused(tmp_path, roi_voxels):
    from brainalign.report.html import read_roi_voxels

    write_tsv(roi_voxels.assign(n_voxels_atlas=["40", "many", "40", "30"]), tmp_path / "v.tsv")
    with pytest.raises(ValueError, match=r"v.tsv: expected whole voxel counts in column "
                                         r"'n_voxels_atlas', got 'many'"):
        read_roi_voxels([tmp_path / "v.tsv"])


def test_roi_voxel_table_without_a_column_is_refused(tmp_path, scores, rdm_files, roi_voxels,
        no_figures):
    with pytest.raises(ValueError, match=r"ROI voxel table.*missing \['reason'\]"):
        _report(tmp_path, scores, rdm_files, roi_voxels=roi_voxels.drop(columns="reason"))


def test_names_are_html_escaped(tmp_path, scores, rdm_files, roi_voxels,
        no_figures):
    html = _report(tmp_path, scores, rdm_files, roi_voxels=roi_voxels)
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;roi&#39;)&lt;/script&gt;" in html
    assert "net&amp;&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>study &lt;1&gt;</b> (/data/a&amp;b)" in html
    # the provenance JSON is escaped too, and reads back whole
    assert "study &lt;1&gt;" in re.search(r"<pre>(.*?)</pre>", html, re.S).group(1)


def test_figures_are_embedded_pngs(tmp_path, scores, rdm_files):
    html = _report(tmp_path, scores, rdm_files)
    images = re.findall(IMG + r"([A-Za-z0-9+/=]+)' alt=\"([^\"]*)\">", html)
    # one figure per analysis, one row of brain RDMs, one of layer RDMs
    assert len(images) == html.count(IMG) == 4
    for data, alt in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert alt


def test_layer_figure_names_the_metric_once_and_keeps_the_legend_off_the_data(scores):
    scores = scores.copy()
    second = scores.assign(model="other")
    fig = layer_figure(pd.concat([scores, second], ignore_index=True), "encoding")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    label = METRIC_LABELS["pearson_r"]
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    # per model: once as the curves' y label, once in the heatmap's title; no colour bar label
    assert sum(t == label for t in texts) == 2
    assert sum(label in t and t != label for t in texts) == 2
    curves = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert len(curves) == 2  # one per model
    for ax in curves:
        legend = ax.get_legend().get_window_extent(renderer)
        box = ax.get_window_extent(renderer)
        assert legend.x0 >= box.x1  # right of the axes: it cannot cover a point
    colourbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colourbars) == 2 and all(not ax.get_ylabel() for ax in colourbars)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_table_without_flags_gets_them_from_the_normalised_score(tmp_path, scores, rdm_files,
        no_figures):
    html = _report(tmp_path, scores.drop(columns="flags"), rdm_files)
    header, rows = _table(html, "all-scores")
    assert header[-1] == "flags"
    assert sum('class="flagged"' in attrs for attrs, _ in rows) == 4


def test_table_view_formats_numbers_and_missing_values():
    view = table_view(pd.DataFrame({"a": [1.23456, np.nan], "b": ["x", None], "c": [np.nan] * 2,
                                    "n_voxels": [3.0, np.nan]}))
    assert view.columns == ["a", "b", "n_voxels"] and view.hidden == ["c"]
    assert [[c.text for c in r.cells] for r in view.rows] == [["1.235", "x", "3"],
                                                             ["n/a", "n/a", "n/a"]]
    # a column of numbers is right-aligned as a whole, its n/a cells too
    assert view.numeric == [True, False, True]
    assert [[c.numeric for c in r.cells] for r in view.rows] == [[True, False, True]] * 2


def test_templates_reject_undefined_names():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render_template("failures.html", jobs=[])


def test_step_report_html_concatenates_roi_voxel_tables(tmp_path, scores, rdm_files, roi_voxels,
        no_figures):
    write_tsv(scores, tmp_path / "scores.tsv")
    write_tsv(pd.DataFrame({"stimulus": ["a", "b"]}), tmp_path / "stimuli.tsv")
    parts = []
    for subject, table in roi_voxels.groupby("subject"):
        parts.append(str(tmp_path / f"sub-{subject}_roivoxels.tsv"))
        write_tsv(table, parts[-1])
    brain, layers = rdm_files
    out = tmp_path / "step" / "report.html"
    step_report_html(str(tmp_path / "scores.tsv"), brain_rdms=brain, layer_rdms=layers,
                     stimuli_table=str(tmp_path / "stimuli.tsv"),
                     provenance={"dataset": {"path": str(tmp_path)}}, out=str(out),
                     roi_voxels=parts)
    header, rows = _table(out.read_text(), "roi-voxels")
    assert [(c[0], unescape(c[1])) for _, c in rows] == [
        ("01", "early"), ("01", EVIL_ROI), ("02", "early"), ("02", EVIL_ROI)]
    # read back from TSVs: counts stay integers, a run list of one run stays as written
    assert [c[2:6] for _, c in rows] == [["40", "40", "0", "n/a"], ["30", "21", "9", "2;3"],
                                         ["40", "39", "1", "1"], ["30", "n/a", "n/a", "n/a"]]
    step_report_html(str(tmp_path / "scores.tsv"), brain_rdms=brain, layer_rdms=layers,
                     stimuli_table=str(tmp_path / "stimuli.tsv"),
                     provenance={"dataset": {"path": str(tmp_path)}}, out=str(out))
    assert 'id="roi-voxels"' not in out.read_text()


def test_noise_ceiling_section(tmp_path, scores, rdm_files, no_figures):
    from brainalign.report.html import NOISE_CEILING_COLUMNS, read_noise_ceilings

    new, old = tmp_path / "sub-01_responses.npz", tmp_path / "sub-02_responses.npz"
    roi = np.array(["early", "early", EVIL_ROI])
    np.savez(new, roi=roi, noise_ceiling=np.array([0.2, 0.4, 0.5]),
             noise_ceiling_ncsnr=np.array([0.3, 0.5, 0.6]), ncsnr=np.array([0.1, 0.3, 1.0]))
    np.savez(old, roi=roi, noise_ceiling=np.array([0.1, 0.3, 0.5]))  # before NCSNR: n/a
    table = read_noise_ceilings({"01": new, "02": old})
    assert list(table.columns) == NOISE_CEILING_COLUMNS
    html = _report(tmp_path, scores, rdm_files, noise_ceilings=table)
    assert "<h2>Noise ceilings</h2>" in html
    header, rows = _table(html, "noise-ceilings")
    assert header == NOISE_CEILING_COLUMNS
    cells = [c for _, c in rows]
    assert cells[0] == ["01", "early", "2", "0.300", "0.400", "0.200"]
    assert cells[1][1] == "&lt;script&gt;alert(&#39;roi&#39;)&lt;/script&gt;"
    assert cells[2] == ["02", "early", "2", "0.200", "n/a", "n/a"]
    assert 'id="noise-ceilings"' not in _report(tmp_path, scores, rdm_files)
