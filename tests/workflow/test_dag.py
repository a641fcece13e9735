"""Dry-run DAG tests: the job set, config errors and bad input stop before any job runs."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, job_counts, make_config, run_snakemake


def test_dry_run_schedules_every_step_once_per_unit(tmp_path, demo_root):
    cfg = make_config(tmp_path, demo_root / "bids")
    res = run_snakemake(tmp_path, cfg, "-n", "--cores", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout)
    n_sub, n_runs, n_layers = 2, 4, 5
    assert counts == {
        "ingest_manifest": 1,
        "fmri_preprocess": n_sub * n_runs,
        "fmri_glm": n_sub * n_runs,
        "fmri_responses": n_sub,
        # features: once per stimulus set, not per subject
        "features_extract_efficientnet_lite0": 1,
        "rsa_layer_rdms": 1,
        # encoding: one job per layer for every subject (encoding.subjects_per_job: 10)
        "encoding_fit": n_layers,
        "encoding_summarize": n_sub,
        "rsa_roi_rdms": n_sub,
        "rsa_compare": n_sub,
        "report_scores": 1,
        "report_html": 1,
        "report_description": 1,
        "all": 1,
    }
    assert not (tmp_path / "results").exists()


def _jobs(stdout: str, rule: str) -> list[dict[str, str]]:
    """The fields (input, output, wildcards ...) of each job of ``rule`` in a dry run."""
    return [dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
            for block in stdout.split("\nrule ")[1:] if block.startswith(f"{rule}:")]


def _encoding_jobs(stdout: str) -> dict[tuple[str, str], dict[str, list[str]]]:
    """(layer, part) -> the inputs and outputs of each encoding_fit job of a dry run."""
    jobs = {}
    for fields in _jobs(stdout, "encoding_fit"):
        wc = dict(kv.split("=") for kv in fields["wildcards"].split(", "))
        jobs[(wc["layer"], wc["part"])] = {k: fields[k].split(", ") for k in ("input", "output")}
    return jobs


def test_encoding_jobs_fit_a_layer_for_a_part_of_the_subjects(tmp_path, demo_root):
    # one subject per part here; the default (10) puts the demo's 2 in one (test_dag_layers.py)
    parts = {"1": ["01"], "2": ["02"]}
    cfg = make_config(tmp_path, demo_root / "bids", **{"encoding.subjects_per_job": 1})
    res = run_snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    layers = ["stem", "stage2", "stage4", "stage6", "head"]
    counts = job_counts(res.stdout)
    assert counts["encoding_fit"] == len(layers) * len(parts)
    assert counts["encoding_summarize"] == 2
    jobs = _encoding_jobs(res.stdout)
    assert set(jobs) == {(layer, part) for layer in layers for part in parts}
    m = "efficientnetlite0"
    for (layer, part), io in jobs.items():
        # the layer's features once, and the responses of every subject of the part
        assert io["input"] == [
            f"results/features/model-{m}/model-{m}_layer-{layer}_features.npz",
            *(f"results/sub-{s}/func/sub-{s}_desc-stimulus_responses.npz" for s in parts[part]),
        ]
        assert io["output"] == [
            f"results/encoding/model-{m}_layer-{layer}_part-{part}_voxelscores.tsv"]
    # each subject's summary reads its part's tables and writes its per-voxel tables
    summaries = {f["wildcards"]: f for f in _jobs(res.stdout, "encoding_summarize")}
    for part, subjects in parts.items():
        for s in subjects:
            job = summaries[f"subject={s}"]
            assert job["input"].split(", ") == [
                f"results/encoding/model-{m}_layer-{layer}_part-{part}_voxelscores.tsv"
                for layer in layers]
            assert job["output"].split(", ") == [
                f"results/sub-{s}/encoding/sub-{s}_desc-summary_scores.tsv",
                *(f"results/sub-{s}/encoding/sub-{s}_model-{m}_layer-{layer}_voxelscores.tsv"
                  for layer in layers)]


def test_participant_label_selects_subjects(tmp_path, demo_root):
    cfg = make_config(tmp_path, demo_root / "bids", **{"bids.participant_label": ["02"]})
    res = run_snakemake(tmp_path, cfg, "-n", "--cores", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert job_counts(res.stdout)["fmri_glm"] == 4
    assert "sub-01" not in res.stdout


def test_misspelled_key_fails_before_any_job(tmp_path, demo_root):
    cfg = make_config(tmp_path, demo_root / "bids")
    text = cfg.read_text().replace("    alphas:", "    alpha:")
    cfg.write_text(text)
    res = run_snakemake(tmp_path, cfg, "--cores", "1")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "Unknown key 'encoding.ridge.alpha'" in out
    assert "Did you mean 'encoding.ridge.alphas'?" in out
    assert not (tmp_path / "results").exists()


def test_unknown_layer_fails_naming_the_key(tmp_path, demo_root):
    cfg = make_config(tmp_path, demo_root / "bids", **{
        "features.models.efficientnet_lite0.layers": ["stage2", "stage9"]})
    res = run_snakemake(tmp_path, cfg, "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "stage9" in out and "features.models.efficientnet_lite0.layers" in out


def test_too_many_folds_fails_at_dag_construction(tmp_path, demo_root):
    cfg = make_config(tmp_path, demo_root / "bids", **{"encoding.ridge.n_folds": 60})
    res = run_snakemake(tmp_path, cfg, "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "encoding.ridge.n_folds" in out and "48 stimuli" in out


def _copy_bids(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_missing_stim_file_names_subject_run_and_file(tmp_path, demo_root):
    bids = _copy_bids(demo_root / "bids", tmp_path / "bids")
    events = bids / "sub-02" / "func" / "sub-02_task-demo_run-3_events.tsv"
    lines = events.read_text().splitlines()
    fields = lines[5].split("\t")
    fields[3] = "img_044.png"
    lines[5] = "\t".join(fields)
    events.write_text("\n".join(lines) + "\n")
    cfg = make_config(tmp_path, bids)
    res = run_snakemake(tmp_path, cfg, "--cores", "1")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert re.search(r"sub-02 task-demo_run-3: events.tsv names stim_file 'img_044.png', "
                     r"which is not in .*stimuli/", out), out
    assert "Add the file or drop the row" in out
    assert not (tmp_path / "results").exists()


def test_tr_mismatch_is_reported(tmp_path, demo_root):
    bids = _copy_bids(demo_root / "bids", tmp_path / "bids")
    (bids / "sub-01" / "func" / "sub-01_task-demo_run-2_bold.json").write_text(
        '{"RepetitionTime": 2.5}\n')
    res = run_snakemake(tmp_path, make_config(tmp_path, bids), "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "sub-01 task-demo_run-2" in out and "2.5" in out


def test_missing_dataset_says_how_to_create_it(tmp_path):
    res = run_snakemake(tmp_path, make_config(tmp_path, tmp_path / "nope"), "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "No BIDS dataset at" in out and "make demo" in out


# --- the shape of rules and scripts ----------------------------------------------------------

RULE_RE = re.compile(r"^\s*rule(?: (\w+))?:\n(.*?)(?=^\s*rule[ :]|\Z)", re.S | re.M)


def _rules():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for m in RULE_RE.finditer(smk.read_text()):
            yield smk.name, m.group(1) or "features_extract_<model>", m.group(2)


@pytest.mark.parametrize("directive", ["log:", "threads:", "resources:", "conda:",
                                       "container:", "script:", "mem_mb=", "runtime="])
def test_every_rule_declares(directive):
    rules = list(_rules())
    assert len(rules) == 27  # fmriprep, fmri_import_fmriprep, 7 meeg_*, 2 responses_*
    lacking = [name for _, name, body in rules if directive not in body]
    assert not lacking, f"rules without {directive}: {lacking}"


def test_env_files_named_by_rules_exist():
    for _, name, body in _rules():
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', body):
            assert (REPO / "rules" / env).resolve().is_file(), (name, env)


@pytest.mark.parametrize("script", sorted((REPO / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_scripts_are_thin_adapters(script):
    """A script imports from brainalign (and the stdlib), and calls one step inside job_context."""
    tree = ast.parse(script.read_text())
    lines = [ln for ln in script.read_text().splitlines() if ln.strip()]
    assert len(lines) <= 30
    imports = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imports |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    assert imports <= {"brainalign", "json", "pathlib"}, imports
    calls = [n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id.startswith("step_")]
    assert len(calls) == 1
    assert not any(isinstance(n, ast.For | ast.While | ast.FunctionDef) for n in ast.walk(tree))
