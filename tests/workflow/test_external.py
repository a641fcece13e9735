"""External input: published RDM sets + a stimulus table run the same DAG (real data)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from brainalign.errors import BIDSInputError, DataShapeError
from brainalign.ingest.external import load_rdm_set, read_stimulus_table, square_to_condensed
from tests.conftest import REPO, SHARED_DATA, job_counts, run_snakemake

K92 = SHARED_DATA / "kriegeskorte2008_92images"
ALG = SHARED_DATA / "algonauts2019_fmri_rdms"
needs_data = pytest.mark.skipif(
    not (K92.is_dir() and ALG.is_dir()),
    reason=f"real data folders {K92} / {ALG} are absent (../shared/data)")


@needs_data
def test_kriegeskorte_sessions_are_averaged_per_subject():
    import scipy.io as sio

    rdms, subjects = load_rdm_set(K92 / "original" / "92_brainRDMs.mat", variable="RDMs",
                                  subject_pattern=r"\| (\w+) \|", n_stimuli=92)
    assert subjects == ["BE", "KO", "SN", "TI"] and rdms.shape == (4, 92, 92)
    raw = sio.loadmat(K92 / "original" / "92_brainRDMs.mat", squeeze_me=True,
                      struct_as_record=False)["RDMs"]
    be = [e.RDM for e in raw.ravel(order="F") if "| BE |" in e.name]
    np.testing.assert_allclose(rdms[0], np.mean(be, axis=0))


@needs_data
def test_algonauts_v73_file_reads_subjects_first():
    import h5py

    rdms, subjects = load_rdm_set(ALG / "target_fmri_92.mat", variable="IT_RDMs", n_stimuli=92)
    assert rdms.shape == (15, 92, 92) and subjects[0] == "01"
    with h5py.File(ALG / "target_fmri_92.mat") as f:
        np.testing.assert_allclose(rdms[3], np.asarray(f["IT_RDMs"])[:, :, 3].T)
    assert np.allclose(np.diagonal(rdms, axis1=1, axis2=2), 0)


@needs_data
def test_rdm_errors_name_file_and_fix(tmp_path):
    with pytest.raises(DataShapeError, match="92 x 92 but the stimulus table has 90 rows"):
        load_rdm_set(ALG / "target_fmri_92.mat", variable="IT_RDMs", n_stimuli=90)
    with pytest.raises(BIDSInputError, match="no variable 'V1_RDMs'.*EVC_RDMs"):
        load_rdm_set(ALG / "target_fmri_92.mat", variable="V1_RDMs")
    asym = np.arange(16.0).reshape(4, 4)
    np.save(tmp_path / "a.npy", asym)
    with pytest.raises(DataShapeError, match="not symmetric"):
        load_rdm_set(tmp_path / "a.npy")
    with pytest.raises(BIDSInputError, match="names 'stim93.png', which is not in"):
        table = tmp_path / "s.tsv"
        table.write_text("file\nstim01.png\nstim93.png\n")
        read_stimulus_table(table, stimuli_dir=K92 / "stimuli", column="file")


def test_square_to_condensed_matches_pdist_order():
    from scipy.spatial.distance import pdist, squareform

    x = np.random.default_rng(0).normal(size=(7, 3))
    assert np.allclose(square_to_condensed(squareform(pdist(x))), pdist(x))


@needs_data
def test_example_config_dry_run_schedules_external_dag(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "examples" / "kriegeskorte92.yaml").read_text())
    cfg["data"] = str(SHARED_DATA)
    path = tmp_path / "k92.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_snakemake(tmp_path, path, "-n")
    assert res.returncode == 0, res.stdout + res.stderr
    assert job_counts(res.stdout) == {
        "ingest_external": 1, "features_extract_efficientnet_lite0": 1, "rsa_layer_rdms": 1,
        "rsa_import_rdms": 3, "rsa_group_compare": 3, "report_scores": 1, "report_html": 1,
        "report_description": 1, "all": 1}


def test_bids_and_external_together_is_a_config_error(tmp_path, demo_root):
    cfg = yaml.safe_load((REPO / "config" / "examples" / "kriegeskorte92.yaml").read_text())
    cfg["bids"] = {"bids_dir": str(demo_root / "bids"), "tasks": ["demo"]}
    cfg["data"] = str(SHARED_DATA)
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_snakemake(tmp_path, path, "-n")
    assert res.returncode != 0
    assert "expected exactly one to be set" in res.stdout + res.stderr
