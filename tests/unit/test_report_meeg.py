"""The report's M/EEG parts, on small synthetic time score tables, group tables and logs.

``group/scores.tsv`` gains ``modality`` and ``time`` (fMRI rows first and as before); the HTML
report draws layer x time curves per modality and channel group with the significant clusters,
lists peak latencies, clusters and what preprocessing removed, and has none of it without
M/EEG. The curves are checked against means computed here from the planted values.
"""

from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

from brainalign.io import read_tsv, write_tsv
from brainalign.report import SCORE_COLUMNS, collect_scores, write_html_report
from brainalign.report.meeg import (
    CLUSTER_COLUMNS,
    PEAK_COLUMNS,
    PREPROC_COLUMNS,
    fusion_figure,
    meeg_time_figure,
    read_meeg_group_table,
    read_meeg_preproc_logs,
)
from brainalign.report.steps import step_report_html

LAYERS = ["early", "late"]
SUBJECTS = ["01", "02", "03"]
TIMES = np.round(np.arange(-0.05, 0.351, 0.02), 3)  # 21 time points, s
PEAKS = {"early": 0.1, "late": 0.2}
# modality -> channel groups (3 figures: eeg occipital, eeg temporal, meg meg)
GROUPS = {"eeg": ["occipital", "temporal"], "meg": ["meg"]}
FMRI_ROIS = ["V1", "IT"]
IMG = "<img src='data:image/png;base64,"


def _planted(subject: str, layer: str) -> np.ndarray:
    """A layer's score over time: a bump at its planted latency, a subject-specific height."""
    height = 0.3 + 0.05 * SUBJECTS.index(subject)
    return height * np.exp(-0.5 * ((TIMES - PEAKS[layer]) / 0.03) ** 2)


def _fmri_tables(tmp_path):
    paths = []
    for analysis in ("encoding", "rsa"):
        rows = [{"analysis": analysis, "subject": s, "roi": roi, "model": "net", "layer": layer,
                 "metric": "pearson_r" if analysis == "encoding" else "spearman",
                 "score": 0.1 * (i + 1), "noise_ceiling": 0.5}
                for s in SUBJECTS[:2] for roi in FMRI_ROIS for i, layer in enumerate(LAYERS)]
        paths.append(tmp_path / f"fmri_{analysis}.tsv")
        write_tsv(pd.DataFrame(rows), paths[-1])
    return paths


def _time_tables(tmp_path):
    """Time score tables as the M/EEG steps write them: one per subject, modality, model."""
    paths = []
    for subject in SUBJECTS:
        for modality, groups in GROUPS.items():
            for analysis in ("rsa", "encoding") if modality == "eeg" else ("rsa",):
                rows = []
                # deepest layer first: collect_scores must sort by depth, then time
                for layer in reversed(LAYERS):
                    for roi in groups:
                        for t, v in zip(TIMES, _planted(subject, layer), strict=True):
                            rows.append({
                                "analysis": analysis, "subject": subject, "roi": roi,
                                "model": "net", "layer": layer,
                                "metric": "spearman" if analysis == "rsa" else "pearson_r",
                                "score": v, "noise_ceiling": 0.6,
                                "noise_ceiling_lower": 0.5 if analysis == "rsa" else np.nan,
                                "modality": modality, "time": t})
                paths.append(tmp_path / f"sub-{subject}_{modality}_{analysis}.tsv")
                write_tsv(pd.DataFrame(rows), paths[-1])
        # fusion: the fMRI ROIs in the order the table gives them (IT before V1)
        rows = [{"analysis": "fusion", "subject": subject, "roi": "occipital", "model": "fmri",
                 "layer": roi, "metric": "spearman", "score": v, "noise_ceiling": 0.6,
                 "modality": "eeg", "time": t}
                for roi, layer in (("IT", "late"), ("V1", "early"))
                for t, v in zip(TIMES, _planted(subject, layer), strict=True)]
        paths.append(tmp_path / f"sub-{subject}_eeg_fusion.tsv")
        write_tsv(pd.DataFrame(rows), paths[-1])
    return paths


def _clusters(tmp_path):
    rows = [
        ("rsa", "eeg", "occipital", "net", "early", 0.08, 0.14, 12.5, 0.002, True, 3),
        ("rsa", "eeg", "occipital", "net", "late", 0.18, 0.26, 9.25, 0.01, True, 3),
        ("rsa", "eeg", "occipital", "net", "late", 0.30, 0.32, 1.5, 0.41, False, 3),
        ("fusion", "eeg", "occipital", "fmri", "V1", 0.06, 0.16, 7.75, 0.02, True, 3),
    ]
    path = tmp_path / "group" / "meeg" / "desc-clusters_stats.tsv"
    write_tsv(pd.DataFrame(rows, columns=CLUSTER_COLUMNS), path)
    return path


def _peaks(tmp_path):
    rows = [("rsa", "eeg", "occipital", "net", "early", 0.1, 0.09, 0.12, 0.35, 3),
            ("rsa", "eeg", "occipital", "net", "late", 0.2, 0.18, 0.23, 0.35, 3),
            ("fusion", "eeg", "occipital", "fmri", "IT", 0.21, 0.17, 0.25, 0.33, 3)]
    path = tmp_path / "group" / "meeg" / "desc-peaks_stats.tsv"
    write_tsv(pd.DataFrame(rows, columns=PEAK_COLUMNS), path)
    return path


def _logs(tmp_path):
    """Three runs' logs: step_meeg_preprocess's keys, other keys with an MNE drop log, none."""
    folder = tmp_path / "sub-01" / "eeg"
    folder.mkdir(parents=True)
    flat = folder / "sub-01_task-faces_run-1_desc-preproc_log.json"
    # as brainalign.meeg.steps.step_meeg_preprocess writes it (the parts the report reads)
    flat.write_text(json.dumps({
        "datatype": "eeg", "recording": {"bads": ["Fp1", "T7", "EOG2"]},
        "bad_channels": {"bads": ["Fp1", "T7", "EOG2"], "interpolated": ["Fp1", "T7"],
                         "dropped": ["EOG2"], "action": "interpolated"},
        "ica": {"n_components": 20, "excluded": [
            {"component": 0, "reason": "eog", "channel": "EOG1", "score": 4.2, "threshold": 3},
            {"component": 3, "reason": "ecg", "channel": "ECG", "score": 0.4, "threshold": 0.1}]},
        "rejection": {"method": "peak_to_peak", "thresholds": {"eeg": 1.5e-4}},
        "epochs": {"n_total": 120, "n_kept": 111, "n_dropped": 9,
                   "dropped": [{"trial": i, "stim_file": "a.png", "onset": 1.0 * i,
                                "reasons": ["Fp2"] if i < 6 else ["O1"]} for i in range(9)],
                   "kept_per_stimulus": {"a.png": 12, "b.png": 9}},
    }))
    nested = folder / "sub-01_task-faces_run-2_desc-preproc_log.json"
    nested.write_text(json.dumps({
        "subject": "01", "task": "faces", "run": "2", "datatype": "eeg",
        "channels": {"bad": [], "interpolated": []},
        "ica": {"applied": False},
        # MNE's drop log: [] kept, ["IGNORED"] never selected, else the reasons
        "epochs": {"drop_log": [[], [], ["autoreject"], ["IGNORED"], ["Fp2", "O1"], []]},
    }))
    bare = tmp_path / "sub-02" / "meg" / "sub-02_task-faces_run-1_desc-preproc_log.json"
    bare.parent.mkdir(parents=True)
    bare.write_text(json.dumps({"filter": {"l_freq": 0.1}}))
    return [flat, nested, bare]


@pytest.fixture
def tables(tmp_path):
    return _fmri_tables(tmp_path), _time_tables(tmp_path)


@pytest.fixture
def scores(tables):
    fmri, timed = tables
    return collect_scores([*fmri, *timed], layer_order={"net": LAYERS}, min_noise_ceiling=0.1)


def _section(html, section):
    body = re.search(rf'<section id="{section}">(.*?)</section>', html, re.S)
    assert body, f"no section {section}"
    return body.group(1)


def _table(html, table_id):
    table = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    header = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table.group(0))
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r)
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0).split("</thead>")[1],
                                re.S)]
    return header, [[unescape(c) for c in r] for r in rows]


# --- group/scores.tsv ---------------------------------------------------------------------------

def test_collect_scores_adds_modality_and_time(tmp_path, tables, scores):
    fmri, timed = tables
    assert SCORE_COLUMNS[-2:] == ["modality", "time"] and list(scores.columns) == SCORE_COLUMNS
    n_fmri = 2 * 2 * len(FMRI_ROIS) * len(LAYERS)
    n_time = len(SUBJECTS) * len(TIMES) * (
        (2 * 2 + 1) * len(LAYERS)  # eeg: rsa + encoding x 2 groups, meg: rsa x 1 group
        + len(FMRI_ROIS))          # fusion
    assert len(scores) == n_fmri + n_time
    # the fMRI rows come first, exactly as a table of them alone
    alone = collect_scores(fmri, layer_order={"net": LAYERS}, min_noise_ceiling=0.1)
    pd.testing.assert_frame_equal(scores.iloc[:n_fmri].reset_index(drop=True), alone)
    assert (alone["modality"] == "fmri").all() and alone["time"].isna().all()
    meeg = scores.iloc[n_fmri:]
    assert meeg["time"].notna().all()
    assert set(meeg["modality"]) == {"eeg", "meg"}
    # per curve: layers shallow to deep (the tables wrote them deepest first), times ascending
    curve = meeg[(meeg["analysis"] == "rsa") & (meeg["subject"] == "02")
                 & (meeg["roi"] == "temporal")]
    assert curve["layer"].tolist() == ["early"] * len(TIMES) + ["late"] * len(TIMES)
    np.testing.assert_allclose(curve["time"], np.tile(TIMES, 2))
    np.testing.assert_allclose(curve["score"], np.concatenate(
        [_planted("02", "early"), _planted("02", "late")]), rtol=1e-12)
    np.testing.assert_allclose(curve["normalized_score"], curve["score"] / 0.6)
    # fusion rows: their "layers" are fMRI ROIs, kept in the tables' order, not a model's
    fusion = meeg[meeg["analysis"] == "fusion"]
    assert set(fusion["model"]) == {"fmri"}
    assert list(dict.fromkeys(fusion["layer"])) == ["IT", "V1"]
    # the TSV round trip keeps modality as text and time as numbers
    write_tsv(scores, tmp_path / "scores.tsv")
    back = read_tsv(tmp_path / "scores.tsv")
    assert list(back.columns) == SCORE_COLUMNS
    assert back["modality"].tolist() == scores["modality"].tolist()
    np.testing.assert_allclose(back["time"], scores["time"])


def test_collect_scores_names_a_layer_the_config_lacks(tables):
    _, timed = tables
    with pytest.raises(ValueError, match=r"model 'net' and layer 'late'.*features.models"):
        collect_scores(timed, layer_order={"net": ["early"]})


# --- figures ------------------------------------------------------------------------------------

def test_time_figure_draws_subject_means_ceilings_and_clusters(tmp_path, scores):
    clusters = read_meeg_group_table([_clusters(tmp_path)], CLUSTER_COLUMNS)
    fig = meeg_time_figure(scores, "eeg", "occipital", clusters)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2  # rsa and encoding of model net
    rsa = next(ax for ax in panels if "RSA" in ax.get_title())
    lines = {ln.get_label(): ln for ln in rsa.get_lines()}
    for layer in LAYERS:  # the mean over subjects, in ms
        line = lines[f"layer {layer}"]
        np.testing.assert_allclose(line.get_xdata(), TIMES * 1000)
        expected = np.mean([_planted(s, layer) for s in SUBJECTS], axis=0)
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
    np.testing.assert_allclose(lines["noise ceiling"].get_ydata(), 0.6)
    # the significant clusters of this panel only, as bars (ms) under every curve, over their
    # samples' extent: half a sample (10 ms) beyond the first and last time point
    bars = sorted((tuple(ln.get_xdata()), ln.get_ydata()[0]) for ln in rsa.get_lines()
                  if ln.get_gid() == "cluster")
    np.testing.assert_allclose([b[0] for b in bars], [(70.0, 150.0), (170.0, 270.0)])
    lowest = min(np.min(ln.get_ydata()) for ln in rsa.get_lines() if ln.get_gid() != "cluster")
    assert all(y < lowest for _, y in bars)
    encoding = next(ax for ax in panels if "encoding" in ax.get_title())
    assert not [ln for ln in encoding.get_lines() if ln.get_gid() == "cluster"]

    assert rsa.get_ylabel() == "Spearman rho (model vs brain RDM)"
    assert encoding.get_ylabel() == "held-out Pearson r (mean over channels)"

    fig = fusion_figure(scores, clusters)
    (ax,) = [ax for ax in fig.axes if ax.get_title()]
    assert ax.get_ylabel() == "Spearman rho (M/EEG vs fMRI RDM)"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["fMRI ROI V1"].get_ydata(),
                               np.mean([_planted(s, "early") for s in SUBJECTS], axis=0))
    np.testing.assert_allclose(
        [tuple(ln.get_xdata()) for ln in ax.get_lines() if ln.get_gid() == "cluster"],
        [(50.0, 170.0)])
    import matplotlib.pyplot as plt

    plt.close("all")


# --- preprocessing logs -------------------------------------------------------------------------

def test_preprocessing_logs_are_read_defensively(tmp_path):
    table = read_meeg_preproc_logs(_logs(tmp_path))
    assert list(table.columns) == PREPROC_COLUMNS
    flat, nested, bare = (table.iloc[i].to_dict() for i in range(3))
    assert flat["subject"] == "01" and flat["task"] == "faces" and flat["run"] == "1"
    assert flat["datatype"] == "eeg"
    assert flat["bad_channels"] == "Fp1, T7, EOG2"
    assert flat["interpolated"] == "Fp1, T7; dropped: EOG2"
    assert flat["ica_removed"] == "0 (eog EOG1), 3 (ecg ECG)"
    assert flat["rejection"] == "peak_to_peak"
    assert (flat["n_epochs"], flat["n_kept"], flat["n_dropped"]) == (120, 111, 9)
    assert flat["drop_reasons"] == "Fp2 (6); O1 (3)"
    assert flat["n_min_per_stimulus"] == 9
    # an MNE drop log: 5 epochs (one IGNORED), 3 kept, reasons counted per channel
    assert (nested["n_epochs"], nested["n_kept"], nested["n_dropped"]) == (5, 3, 2)
    assert nested["drop_reasons"] == "autoreject (1); Fp2 (1); O1 (1)"
    assert nested["bad_channels"] == "none" and nested["ica_removed"] == "not run"
    # no keys: entities from the file name and folder, everything else n/a
    assert (bare["subject"], bare["datatype"], bare["run"]) == ("02", "meg", "1")
    for column in PREPROC_COLUMNS[4:]:
        assert pd.isna(bare[column]), column
    (tmp_path / "broken.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"broken.json: expected a JSON object, found list"):
        read_meeg_preproc_logs([tmp_path / "broken.json"])


def test_group_table_without_a_column_is_refused(tmp_path):
    path = _peaks(tmp_path)
    write_tsv(read_tsv(path).drop(columns="ci_high"), path)
    with pytest.raises(ValueError, match=r"desc-peaks_stats.tsv: expected columns .*"
                                         r"missing \['ci_high'\]"):
        read_meeg_group_table([path], PEAK_COLUMNS)


# --- the HTML report ----------------------------------------------------------------------------

@pytest.fixture
def fast_figures(monkeypatch):
    """fMRI figures as tiny stand-ins (their own tests draw them); M/EEG ones are recorded."""
    import brainalign.report.html as report_html
    import brainalign.report.meeg as report_meeg

    png = "iVBORw0KGgo="
    drawn = []
    monkeypatch.setattr(report_html, "_layer_figure", lambda scores, analysis: png)
    monkeypatch.setattr(report_html, "_rdm_figure", lambda rdms, title: png)
    monkeypatch.setattr(report_meeg, "_meeg_figure",
                        lambda scores, modality, roi, clusters: drawn.append((modality, roi))
                        or png)
    monkeypatch.setattr(report_meeg, "_fusion_figure",
                        lambda scores, clusters: drawn.append("fusion") or png)
    return drawn


def _step(tmp_path, scores, **kwargs):
    write_tsv(scores, tmp_path / "scores.tsv")
    write_tsv(pd.DataFrame({"stimulus": ["a", "b"]}), tmp_path / "stimuli.tsv")
    out = tmp_path / "out" / "report.html"
    step_report_html(str(tmp_path / "scores.tsv"), brain_rdms={}, layer_rdms={},
                     stimuli_table=str(tmp_path / "stimuli.tsv"),
                     provenance={"dataset": {"path": str(tmp_path)}}, out=str(out), **kwargs)
    return out.read_text()


def test_report_has_the_meeg_sections(tmp_path, scores, fast_figures):
    html = _step(tmp_path, scores, meeg_clusters=[str(_clusters(tmp_path))],
                 meeg_peaks=[str(_peaks(tmp_path))],
                 meeg_preproc_logs=[str(p) for p in _logs(tmp_path)])
    meeg = _section(html, "meeg")
    assert "<h2>M/EEG over time</h2>" in meeg
    # a figure per modality and channel group, in the table's order, and one of fusion
    assert fast_figures == [("eeg", "occipital"), ("eeg", "temporal"), ("meg", "meg"), "fusion"]
    assert re.findall(r"<h3>(.*?)</h3>", meeg)[:3] == [
        "eeg, channel group occipital", "eeg, channel group temporal", "meg, channel group meg"]
    assert meeg.count(IMG) == 3 and _section(html, "fusion").count(IMG) == 1
    # peak latencies in ms with their intervals
    header, rows = _table(html, "meeg-peaks")
    assert header == ["analysis", "modality", "roi", "model", "layer", "peak_time_ms",
                      "ci_low_ms", "ci_high_ms", "peak_score", "n_subjects"]
    assert rows[0] == ["rsa", "eeg", "occipital", "net", "early", "100.0", "90.0", "120.0",
                       "0.350", "3"]
    assert rows[2][4:8] == ["IT", "210.0", "170.0", "250.0"]
    # the significant clusters' spans; the non-significant one is left out
    header, rows = _table(html, "meeg-clusters")
    spans = [(r[header.index("layer")], r[header.index("t_start_ms")],
              r[header.index("t_stop_ms")]) for r in rows]
    assert spans == [("early", "80.0", "140.0"), ("late", "180.0", "260.0"),
                     ("V1", "60.0", "160.0")]
    assert "300.0" not in meeg
    # what preprocessing removed, one row per run
    header, rows = _table(html, "meeg-preprocessing-table")
    assert header == PREPROC_COLUMNS
    assert rows[0] == ["01", "eeg", "faces", "1", "Fp1, T7, EOG2", "Fp1, T7; dropped: EOG2",
                       "0 (eog EOG1), 3 (ecg ECG)", "peak_to_peak", "120", "111", "9",
                       "Fp2 (6); O1 (3)", "9"]
    assert rows[2][:4] == ["02", "meg", "faces", "1"] and rows[2][4:] == ["n/a"] * 9
    # the fMRI tables keep to the fMRI rows; the time rows are counted, not listed
    n_time = int(scores["time"].notna().sum())
    all_scores = _section(html, "all-scores")
    assert f"The {n_time} time-resolved M/EEG rows" in all_scores
    assert all_scores.count("<tr") == 1 + int(scores["time"].isna().sum())
    assert "occipital" not in _section(html, "encoding")


def test_eeg_only_report_without_group_statistics_says_why(tmp_path, scores, fast_figures):
    empty = tmp_path / "peaks.tsv"
    write_tsv(pd.DataFrame(columns=PEAK_COLUMNS), empty)
    # a study with M/EEG only: no fMRI sections, the M/EEG ones
    html = _step(tmp_path, scores[scores["time"].notna()], meeg_peaks=[str(empty)])
    assert 'id="encoding"' not in html and 'id="rsa"' not in html
    meeg = _section(html, "meeg")
    assert 'id="meeg-peaks"' not in meeg and 'id="meeg-clusters"' not in meeg
    assert "desc-peaks_stats.tsv has no rows: group statistics over time need at least two" \
        in meeg
    assert "No clusters table was given" in meeg


def test_report_without_meeg_has_no_meeg_section(tmp_path, tables, fast_figures):
    fmri, _ = tables
    scores = collect_scores(fmri, layer_order={"net": LAYERS})
    html = _step(tmp_path, scores)
    for section in ("meeg", "fusion", "meeg-preprocessing", "flag-warning-time",
                    "all-scores-meeg"):
        assert f'id="{section}"' not in html
    assert fast_figures == []
    # the same through write_html_report with empty M/EEG tables
    out = tmp_path / "direct.html"
    write_html_report(scores, out, brain_rdms={}, layer_rdms={}, provenance={},
                      meeg_clusters=pd.DataFrame(columns=CLUSTER_COLUMNS),
                      meeg_peaks=pd.DataFrame(columns=PEAK_COLUMNS),
                      meeg_preprocessing=pd.DataFrame(columns=PREPROC_COLUMNS))
    assert 'id="meeg' not in out.read_text()


def test_report_embeds_the_meeg_figures_as_pngs(tmp_path, scores, monkeypatch):
    import base64

    import brainalign.report.html as report_html

    monkeypatch.setattr(report_html, "_layer_figure", lambda scores, analysis: "iVBORw0KGgo=")
    timed = scores["time"].notna()
    html = _step(tmp_path, scores[~timed | (scores["roi"] == "occipital")],
                 meeg_clusters=[str(_clusters(tmp_path))])
    images = re.findall(IMG + r"([A-Za-z0-9+/=]+)' alt=\"([^\"]*)\">", html)
    assert [alt for _, alt in images][-2:] == [
        "layer x time curves: eeg occipital", "M/EEG-fMRI fusion: fMRI ROI curves over time"]
    for data, _ in images[-2:]:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_report_reads_the_tables_step_meeg_group_writes(tmp_path, scores, fast_figures):
    from brainalign.meeg.steps import step_meeg_group

    clusters, peaks = tmp_path / "clusters.tsv", tmp_path / "peaks.tsv"
    step_meeg_group([str(p) for p in _time_tables(tmp_path)],
                    stats={"n_permutations": 10, "cluster_p": 0.05, "alpha": 0.05,
                           "n_bootstrap": 10, "ci_percent": 95, "seed": 0},
                    clusters_out=str(clusters), peaks_out=str(peaks))
    written = read_tsv(peaks)
    html = _step(tmp_path, scores, meeg_clusters=[str(clusters)], meeg_peaks=[str(peaks)])
    _, rows = _table(html, "meeg-peaks")
    assert len(rows) == len(written) == 2 * 2 * 2 + 2 + 2  # eeg, meg and fusion curves
    for row, (_, peak) in zip(rows, written.iterrows(), strict=True):
        assert row[:5] == [str(peak[k]) for k in ("analysis", "modality", "roi", "model",
                                                  "layer")]
        assert row[5:8] == [f"{1000 * peak[k]:.1f}" for k in ("peak_time", "ci_low", "ci_high")]
    # 3 subjects: no sign-flip p-value is below 1/8, so no cluster is significant, and it says so
    n = len(read_tsv(clusters))
    assert n and f"None of the {n} clusters of group/meeg/desc-clusters_stats.tsv" in html


def test_time_rows_above_the_ceiling_are_counted_in_the_warning(tmp_path, tables, fast_figures):
    fmri, timed = tables
    # one subject's occipital RSA with a ceiling of 0.2: its peaks (0.3) are above it
    table = read_tsv(timed[0])
    table.loc[table["roi"] == "occipital", "noise_ceiling"] = 0.2
    write_tsv(table, timed[0])
    scores = collect_scores([*fmri, *timed], layer_order={"net": LAYERS})
    n_above = int((scores["normalized_score"] > 1).sum())
    assert n_above > 0 and scores["time"][scores["normalized_score"] > 1].notna().all()
    html = _step(tmp_path, scores)
    warning = re.search(r'<p id="flag-warning-time"><b>(\d+) time-resolved', html)
    assert warning and int(warning.group(1)) == n_above
    # the fMRI part of the warning stays away: no fMRI row is above its ceiling
    assert "score(s) above the noise ceiling</b> (<code>normalized_score</code> &gt; 1), " \
        "highlighted" not in html
