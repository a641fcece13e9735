r"""A small BIDS fMRI sentence-reading study whose language ROI is planted from instruct models.

    .venv/bin/python examples/instruction_tuning/make_dataset.py results/instruction_tuning_data

Writes ``<out>/models/`` (the four tiny causal LMs of ``make_models.py``, unless ``--models``
names existing ones), ``<out>/bids/`` (a BIDS dataset: 2 subjects x 2 runs of reading the 48
sentences of ``make_models.SENTENCES``, each run shows every sentence once; one ``.txt`` per
sentence under ``stimuli/``; a derivative ROI atlas with a ``language`` and a ``null`` ROI) and
``<out>/truth.json`` (the planted truth).

Planted truth (the paradigm of Aw et al. 2023, "Instruction-tuning aligns LLMs to the human
brain"): each ``language`` voxel is a random linear readout (a handful of units, Gaussian
weights) of the z-scored hidden state of ONE layer, :data:`PLANTED_LAYER` (the output of block
``h.1``), at the last token of the sentence, of one of the two instruct models (half the voxels
``instruct_small``, half ``instruct_large``). The base models' states enter nowhere, so each
instruct model should align better with the ROI than the base model of its size, at the planted
layer, and the planted layer should be the best layer of each instruct model.

The planted features go through plain ``transformers`` (``output_hidden_states=True``, one
sentence at a time, no padding) and numpy pooling, not through ``brainalign.features``, which
must recover them. BOLD = HRF-convolved trial responses (nilearn's SPM HRF) + slow cosine drift
+ AR(1) noise, as in brainalign's built-in demo (whose brain mask, ROI placement and noise
helpers are reused from :mod:`brainalign.demo`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_models import SENTENCES, make_models  # noqa: E402

from brainalign import __version__  # noqa: E402
from brainalign.demo import ar1_noise, brain_mask, roi_blocks, write_json  # noqa: E402

TASK = "reading"
#: Index into ``output_hidden_states`` (0 = embeddings, k = output of block ``h.{k-1}``).
PLANTED_HIDDEN_STATE = 2
#: The planted layer, as named in the model's module tree (GPT2Model).
PLANTED_LAYER = "h.1"
PLANTED_MODELS = ("instruct_small", "instruct_large")
POOLING = "last"


@dataclass
class StudySpec:
    """Parameters of the simulated study (all saved in ``truth.json``).

    Attributes
    ----------
    n_subjects, n_runs : int
        Subjects; runs per subject (each run shows every sentence once, in a new order).
    t_r_s : float
        Repetition time (s).
    grid_shape : tuple of int
        Voxel grid; ``voxel_mm`` isotropic voxel size (mm).
    n_roi_voxels : int
        Voxels of each ROI (``language`` and ``null``).
    units_per_voxel : int
        Units of the planted layer each language voxel reads out.
    signal_psc, noise_psc, drift_psc, trial_jitter_psc : float
        Percent signal change: std of the stimulus responses across sentences, AR(1) noise std,
        drift amplitude, and trial-to-trial variability of a voxel's response to one sentence.
    ar1_rho : float
        Lag-1 autocorrelation of the noise.
    stim_duration_s : float
        Time each sentence stays on screen (s); ``isi_range_s`` the uniform gap between them.
    seed : int
        Seed of every random draw.
    """

    n_subjects: int = 2
    n_runs: int = 2
    t_r_s: float = 2.0
    grid_shape: tuple = (12, 12, 8)
    voxel_mm: float = 3.0
    n_roi_voxels: int = 60
    units_per_voxel: int = 8
    signal_psc: float = 3.0
    noise_psc: float = 0.6
    drift_psc: float = 1.0
    trial_jitter_psc: float = 0.2
    ar1_rho: float = 0.3
    stim_duration_s: float = 2.0
    isi_range_s: tuple = (2.0, 4.0)
    lead_in_s: float = 8.0
    tail_s: float = 16.0
    seed: int = 0


def pooled_hidden_states(model_dir: str | Path, sentences, *, hidden_state: int,
                         pooling: str = POOLING) -> np.ndarray:
    """One layer's hidden states per sentence, pooled over tokens (plain transformers + numpy).

    Parameters
    ----------
    model_dir : str or Path
        A folder written by ``save_pretrained`` (model and tokenizer).
    sentences : sequence of str
    hidden_state : int
        Index into the model's ``output_hidden_states`` (0 = token + position embeddings).
    pooling : {"last", "mean", "first"}
        Token pooling.

    Returns
    -------
    features : ndarray, shape (n_sentences, hidden_size)
        float64.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    rows = []
    with torch.inference_mode():
        for sentence in sentences:  # one at a time: no padding to get wrong
            ids = tokenizer(sentence, return_tensors="pt")
            states = model(**ids, output_hidden_states=True).hidden_states[hidden_state]
            tokens = states[0].double().numpy()
            rows.append({"last": tokens[-1], "first": tokens[0],
                         "mean": tokens.mean(axis=0)}[pooling])
    return np.stack(rows)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def planted_responses(features: dict[str, np.ndarray], n_voxels: int, units_per_voxel: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Noise-free language-ROI responses: each voxel reads out one planted model's layer.

    Parameters
    ----------
    features : dict of str to ndarray, shape (n_sentences, n_units)
        Planted model -> pooled features of the planted layer.
    n_voxels : int
        Language voxels; they are assigned to the models in turn, in a random order.
    units_per_voxel : int
        Units each voxel pools (random Gaussian weights on z-scored units).
    rng : numpy.random.Generator

    Returns
    -------
    responses : ndarray, shape (n_sentences, n_voxels)
        Each column z-scored over sentences.
    sources : list of str
        The planted model of each voxel.
    """
    names = list(features)
    sources = [names[i] for i in rng.permutation(np.arange(n_voxels) % len(names))]
    columns = []
    for name in sources:
        f = _zscore(features[name])
        units = rng.choice(f.shape[1], units_per_voxel, replace=False)
        columns.append(f[:, units] @ rng.standard_normal(units_per_voxel))
    return _zscore(np.column_stack(columns)), sources


def make_dataset(outdir: str | Path, *, models_dir: str | Path | None = None,
                 spec: StudySpec | None = None) -> Path:
    """Write ``outdir/bids`` and ``outdir/truth.json`` (and ``outdir/models`` if needed).

    Parameters
    ----------
    outdir : str or Path
        Destination folder; its ``bids/`` must not exist yet.
    models_dir : str or Path, optional
        The folder of ``make_models.py``; default ``outdir/models``, built when missing.
    spec : StudySpec, optional
        Study parameters (default ``StudySpec()``).

    Returns
    -------
    bids_dir : Path
    """
    import nibabel as nib
    from nilearn.glm.first_level import compute_regressor

    spec = spec or StudySpec()
    outdir = Path(outdir)
    bids = outdir / "bids"
    if bids.exists():
        raise FileExistsError(f"{bids} already exists: expected a new path. Remove it first.")
    models_dir = Path(models_dir) if models_dir is not None else outdir / "models"
    if not (models_dir / PLANTED_MODELS[0] / "config.json").is_file():
        make_models(models_dir)
    rng = np.random.default_rng(spec.seed)
    n_stim = len(SENTENCES)
    stim_files = [f"sentence{i + 1:02d}.txt" for i in range(n_stim)]
    feats = {name: pooled_hidden_states(models_dir / name, SENTENCES,
                                        hidden_state=PLANTED_HIDDEN_STATE)
             for name in PLANTED_MODELS}

    (bids / "stimuli").mkdir(parents=True)
    for name, text in zip(stim_files, SENTENCES, strict=True):
        (bids / "stimuli" / name).write_text(text + "\n")
    write_json(bids / "dataset_description.json", {
        "Name": "brainalign example: sentence reading with a planted instruct-model language ROI",
        "BIDSVersion": "1.10.0", "DatasetType": "raw", "License": "CC0",
        "Authors": ["brainalign"],
        "GeneratedBy": [{"Name": "brainalign examples/instruction_tuning/make_dataset.py",
                         "Version": __version__}],
    })
    (bids / "README").write_text(
        "Synthetic sentence-reading fMRI study written by brainalign's "
        f"examples/instruction_tuning/make_dataset.py (seed {spec.seed}).\n\n{n_stim} sentences "
        "(stimuli/*.txt), each shown once per run. The language ROI's voxels read out one layer "
        "of tiny instruction-tuned language models; the planted truth is in ../truth.json.\n")
    (bids / "CHANGES").write_text("1.0.0 2026-12-02\n  - Generated by make_dataset.py.\n")
    write_json(bids / f"task-{TASK}_bold.json", {
        "TaskName": TASK, "RepetitionTime": spec.t_r_s,
        "TaskDescription": f"Silent reading of sentences ({spec.stim_duration_s:g} s each).",
    })
    write_json(bids / f"task-{TASK}_events.json", {
        "onset": {"Description": "Sentence onset from the first volume", "Units": "s"},
        "duration": {"Description": "Time the sentence stays on screen", "Units": "s"},
        "trial_type": {"Description": "Kind of trial", "Levels": {"sentence": "a sentence"}},
        "stim_file": {"Description": "Text file of the sentence shown, relative to stimuli/"},
    })
    subjects = [f"{i + 1:02d}" for i in range(spec.n_subjects)]
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects],
                  "age": rng.integers(20, 40, len(subjects))}).to_csv(
        bids / "participants.tsv", sep="\t", index=False)
    write_json(bids / "participants.json", {"age": {"Description": "Age", "Units": "year"}})

    roi_names = ["language", "null"]
    brain = brain_mask(spec.grid_shape)
    labels = roi_blocks(brain, roi_names, spec.n_roi_voxels)
    vox_labels = labels[brain]
    n_vox = int(brain.sum())
    lang = np.flatnonzero(vox_labels == 1)
    affine = np.diag([spec.voxel_mm] * 3 + [1.0])
    affine[:3, 3] = -np.array(spec.grid_shape) * spec.voxel_mm / 2
    rois = bids / "derivatives" / "rois"
    rois.mkdir(parents=True)
    write_json(rois / "dataset_description.json", {
        "Name": "Instruction-tuning example ROI atlas", "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainalign examples/instruction_tuning/make_dataset.py",
                         "Version": __version__}],
    })
    pd.DataFrame({"index": [1, 2], "name": roi_names}).to_csv(
        rois / "desc-language_dseg.tsv", sep="\t", index=False)

    truth = {"spec": asdict(spec), "task": TASK, "sentences": list(SENTENCES),
             "stim_files": stim_files, "planted": {
                 "roi": "language", "layer": PLANTED_LAYER,
                 "hidden_state_index": PLANTED_HIDDEN_STATE, "models": list(PLANTED_MODELS),
                 "pooling": POOLING}, "subjects": {}}
    for sub in subjects:
        resp = np.zeros((n_stim, n_vox))
        planted, sources = planted_responses(feats, lang.size, spec.units_per_voxel, rng)
        resp[:, lang] = spec.signal_psc * planted
        baseline = 800 + 400 * rng.random(n_vox)
        (rois / f"sub-{sub}" / "anat").mkdir(parents=True)
        nib.save(nib.Nifti1Image(labels, affine),
                 rois / f"sub-{sub}" / "anat" / f"sub-{sub}_desc-language_dseg.nii.gz")
        func = bids / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        for run in range(1, spec.n_runs + 1):
            order = rng.permutation(n_stim)
            isis = rng.uniform(*spec.isi_range_s, size=n_stim)
            onsets = spec.lead_in_s + np.concatenate(
                [[0.0], np.cumsum(spec.stim_duration_s + isis[:-1])])
            n_scans = int(np.ceil((onsets[-1] + spec.tail_s) / spec.t_r_s))
            frame_times = np.arange(n_scans) * spec.t_r_s
            regs = np.column_stack([
                compute_regressor(np.array([[o], [spec.stim_duration_s], [1.0]]), "spm",
                                  frame_times)[0][:, 0] for o in onsets])
            regs /= regs.max(axis=0)  # unit peak: amplitudes are peak percent signal change
            amps = resp[order] + rng.standard_normal((n_stim, n_vox)) * (
                spec.trial_jitter_psc * (vox_labels > 0))
            k = np.arange(1, 4)
            drift = np.cos(np.pi * np.outer(frame_times / frame_times[-1], k)) @ (
                rng.standard_normal((k.size, n_vox)) * spec.drift_psc / np.sqrt(k.size))
            noise = ar1_noise(rng, n_scans, n_vox, spec.ar1_rho, spec.noise_psc)
            data = np.zeros((*spec.grid_shape, n_scans), dtype=np.float32)
            data[brain] = (baseline * (1 + (regs @ amps + drift + noise) / 100)).T
            img = nib.Nifti1Image(data, affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header["pixdim"][4] = spec.t_r_s
            stem = f"sub-{sub}_task-{TASK}_run-{run}"
            nib.save(img, func / f"{stem}_bold.nii.gz")
            pd.DataFrame({"onset": onsets.round(3), "duration": spec.stim_duration_s,
                          "trial_type": "sentence",
                          "stim_file": [stim_files[i] for i in order]}).to_csv(
                func / f"{stem}_events.tsv", sep="\t", index=False)
        truth["subjects"][sub] = {
            "roi_n_voxels": {n: int((vox_labels == i + 1).sum()) for i, n in enumerate(roi_names)},
            "language_voxel_sources": {m: sources.count(m) for m in PLANTED_MODELS},
        }
    truth["note"] = (
        "Each language voxel is a random linear readout of the z-scored hidden state "
        f"{PLANTED_HIDDEN_STATE} (output of block {PLANTED_LAYER}) at the last token of one "
        "instruct model; the null ROI has no stimulus signal.")
    write_json(outdir / "truth.json", truth)
    return bids


def main(argv: list[str] | None = None) -> None:
    """Command line: write the example study (and its models if missing)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", help="folder for bids/, truth.json (and models/)")
    parser.add_argument("--models", default=None,
                        help="folder written by make_models.py (default: <outdir>/models)")
    args = parser.parse_args(argv)
    print(make_dataset(args.outdir, models_dir=args.models))


if __name__ == "__main__":
    main()
