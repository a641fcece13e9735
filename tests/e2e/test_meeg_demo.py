"""End-to-end: the M/EEG branch recovers planted layer timing, on the demo and an unseen study.

(a) The demo (fMRI + EEG for sub-01 and sub-02, ``bids.modalities: auto``, as ``make demo``
runs it): the early planted layer (stem, occipital channels) peaks at ~100 ms and the late one
(stage6, temporal channels) at ~200 ms, in the time-resolved RSA and encoding, per subject and
in the group peak latencies; the fusion with the fMRI ROIs runs.
(b) An EEG-only study unlike the demo (BioSemi 64 channels, 512 Hz, 60 Hz mains, two runs per
subject, task ``view``, three subjects, sources at 150 and 300 ms), run with the repository's
config changed only where the study differs (bids_dir, tasks, no fMRI section).

Tolerances: the planted Gaussians are 20-40 ms wide; the workflow's epochs are decimated to
125 / 256 Hz (8 / 4 ms samples), and with 4 repeats per stimulus noise moves a curve's maximum by
a few samples. Per-subject peaks must lie within 30 ms (early) / 40 ms (late) of the planted
latency, the group peak within 25 / 35 ms: well under half the 100-150 ms gap between the
sources, so a peak at the other source's latency always fails.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainalign.io import read_tsv
from tests.conftest import make_config, run_snakemake

pytestmark = pytest.mark.slow

TOL_SUBJECT = {"early": 0.030, "late": 0.040}
TOL_GROUP = {"early": 0.025, "late": 0.035}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, demo_root):
    work = tmp_path_factory.mktemp("meeg_demo")
    cfg = make_config(work, demo_root / "bids", **{"bids.modalities": "auto"})
    res = run_snakemake(work, cfg, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, json.loads((demo_root / "truth.json").read_text())


@pytest.fixture(scope="module")
def unseen_run(tmp_path_factory):
    from brainalign.meeg.simulate import make_eeg_study, unseen_eeg_spec

    root = tmp_path_factory.mktemp("unseen") / "study"
    bids = make_eeg_study(root, unseen_eeg_spec())
    work = tmp_path_factory.mktemp("unseen_run")
    cfg = make_config(work, bids, fmri=None, **{"bids.tasks": ["view"]})
    res = run_snakemake(work, cfg, "--cores", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, json.loads((root / "truth.json").read_text())


def _time_scores(work) -> pd.DataFrame:
    """Every subject's time-resolved score tables (the per-subject contract)."""
    tables = sorted((work / "results").glob("sub-*/eeg/*_timescores.tsv"))
    assert tables
    return pd.concat([read_tsv(t) for t in tables], ignore_index=True)


def _peak_times(scores: pd.DataFrame, analysis: str, layer: str) -> dict[str, float]:
    """Subject -> time of the maximum of one layer's curve (the subject's one channel group)."""
    rows = scores[(scores["analysis"] == analysis) & (scores["layer"] == layer)]
    assert not rows.empty, (analysis, layer)
    out = {}
    for subject, g in rows.groupby("subject"):
        assert g["roi"].nunique() == 1 and g["time"].is_unique
        out[str(subject)] = float(g.loc[g["score"].idxmax(), "time"])
    return out


def _check_planted_timing(work, meeg_truth: dict) -> None:
    early, late = meeg_truth["sources"]
    planted = {"early": early, "late": late}
    scores = _time_scores(work)
    subjects = sorted(scores["subject"].astype(str).unique())
    assert subjects == meeg_truth["subjects"]
    peaks = read_tsv(work / "results" / "group" / "meeg" / "desc-peaks_stats.tsv")
    for analysis in ("rsa", "encoding"):
        got = {name: _peak_times(scores, analysis, src["layer"]) for name, src in planted.items()}
        for subject in subjects:
            for name, src in planted.items():
                assert abs(got[name][subject] - src["latency_s"]) <= TOL_SUBJECT[name], (
                    analysis, subject, name, got)
            assert got["early"][subject] < got["late"][subject], (analysis, subject, got)
        # group peak latency with its bootstrap CI over subjects
        group = {}
        for name, src in planted.items():
            row = peaks[(peaks["analysis"] == analysis) & (peaks["layer"] == src["layer"])]
            assert len(row) == 1, (analysis, src["layer"], peaks)
            row = row.iloc[0]
            assert abs(row["peak_time"] - src["latency_s"]) <= TOL_GROUP[name], (analysis, row)
            assert row["ci_low"] <= row["peak_time"] <= row["ci_high"]
            assert row["n_subjects"] == len(subjects) and row["peak_score"] > 0
            group[name] = row["peak_time"]
        assert group["early"] < group["late"]


def _check_scores_table(work, modalities: set[str]) -> pd.DataFrame:
    scores = read_tsv(work / "results" / "group" / "scores.tsv")
    assert {"modality", "time"} <= set(scores.columns)
    assert set(scores["modality"].dropna()) == modalities
    eeg = scores[scores["modality"] == "eeg"]
    assert {"rsa", "encoding"} <= set(eeg["analysis"]) and eeg["time"].notna().all()
    return scores


def test_demo_recovers_planted_eeg_timing(demo_run):
    work, truth = demo_run
    _check_planted_timing(work, truth["meeg"])
    log = json.loads(next((work / "results").glob("sub-01/eeg/*run-1*_log.json")).read_text())
    assert log["bad_channels"]["interpolated"] == truth["meeg"]["bad_channels"] == ["FC5"]
    assert log["filters"]["notch"]["freqs"] == [50.0, 100.0]  # notch auto: PowerLineFrequency


def test_demo_scores_table_holds_both_modalities(demo_run):
    work, truth = demo_run
    scores = _check_scores_table(work, {"fmri", "eeg"})
    fmri = scores[scores["modality"] == "fmri"]
    assert len(fmri) == 60 and fmri["time"].isna().all()  # as in the fMRI-only demo
    # the fMRI planted layers are still the best of their ROIs
    for analysis, g in fmri.groupby("analysis"):
        for subject, s in g.groupby("subject"):
            for roi in ("early", "late"):
                best = s[s["roi"] == roi].sort_values("score").iloc[-1]["layer"]
                assert best == truth["planted"][roi], (analysis, subject, roi)


def test_demo_fusion_late_roi_emerges_with_the_late_layer(demo_run):
    """The fMRI late ROI reads out stage6, the late EEG source's layer: fusion peaks there."""
    work, truth = demo_run
    scores = _time_scores(work)
    fusion = scores[scores["analysis"] == "fusion"]
    assert set(fusion["model"]) == {"fmri"} and set(fusion["layer"]) == {"early", "late", "null"}
    late = next(s for s in truth["meeg"]["sources"] if s["name"] == "late")
    mean = fusion[fusion["layer"] == "late"].groupby("time")["score"].mean()
    assert abs(mean.idxmax() - late["latency_s"]) <= TOL_GROUP["late"], mean.idxmax()


def test_unseen_eeg_study_recovers_planted_timing(unseen_run):
    work, truth = unseen_run
    meeg = truth["meeg"]
    assert [s["latency_s"] for s in meeg["sources"]] == [0.15, 0.3]
    _check_planted_timing(work, meeg)
    _check_scores_table(work, {"eeg"})
    # no fMRI job ran, and each of the two runs per subject was preprocessed
    logs = work / "results" / "logs"
    assert not (logs / "fmri_glm").exists() and not (logs / "meeg_fusion").exists()
    assert len(list((logs / "meeg_preprocess").glob("*.log"))) == 2 * len(meeg["subjects"])
    # the bad channel of channels.tsv was interpolated, not analysed as it was recorded
    log = json.loads(next((work / "results").glob("sub-01/eeg/*run-1*_log.json")).read_text())
    assert log["bad_channels"]["interpolated"] == meeg["bad_channels"] == ["F6"]
    assert log["recording"]["sfreq"] == 512 and log["filters"]["notch"]["freqs"][0] == 60
    assert np.isfinite(read_tsv(next((work / "results").glob(
        "sub-01/eeg/*rsa_timescores.tsv")))["score"]).all()
