"""Peak memory of feature extraction + analysis inputs for VGG-16 on 1,000 images.

    python benchmarks/bench_memory.py [--n-images 1000] [--n-components 4096]

VGG-16 (random weights), every conv and fc layer (16 layers; conv1_1 alone is 3.2 M values per
image), spatial_pool 0 (full maps), streamed through the sparse random projection
(features.reduce: srp). Measures, in a fresh subprocess each, the peak resident memory of
(a) extraction of all layers and (b) building every layer's RDM and one ridge fit from the
stored features, and prints them with the size the full activations would take.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from pathlib import Path
args = json.loads(sys.argv[1])
from brainalign.features import ARCHITECTURES, build_model, extract_features
layers = [l for l in ARCHITECTURES["vgg16"].layers]
paths = sorted(Path(args["images"]).glob("*.png"))
t0 = time.perf_counter()
if args["stage"] == "extract":
    model = build_model({"architecture": "vgg16", "weights": "random", "seed": 0})
    feats = extract_features(model, "vgg16", paths, layers, batch_size=args["batch_size"],
                             spatial_pool=0, reduce="srp", n_components=args["n_components"],
                             standardize=False, device="cpu")
    np.savez(args["out"], **feats)
else:
    from brainalign import rsa, encoding
    with np.load(args["out"]) as z:
        for layer in layers:
            rsa.calc_rdm(rsa.zscore_features(z[layer]))
        x = z["conv1_1"]
        y = np.random.default_rng(0).normal(size=(x.shape[0], 2000))
        encoding.cross_validated_ridge(x, y, alphas=[1.0, 100.0, 1e4], n_folds=5, n_inner_folds=3)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def _make_images(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        img = (rng.random((64, 64, 3)) * 255).astype("uint8")
        Image.fromarray(img).resize((224, 224)).save(folder / f"img{i:04d}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-images", type=int, default=1000)
    ap.add_argument("--n-components", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    from brainalign.features import ARCHITECTURES, build_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "img").mkdir()
        _make_images(tmp / "img", args.n_images)
        import torch

        model = build_model({"architecture": "vgg16", "weights": "random", "seed": 0})
        layers = ARCHITECTURES["vgg16"].layers
        with torch.inference_mode():
            acts = ARCHITECTURES["vgg16"].forward_layers(model, torch.zeros(1, 3, 224, 224),
                                                         layers)
        full_values = sum(int(a[0].numel()) for a in acts.values())
        del model, acts
        results = {}
        for stage in ("extract", "analyse"):
            payload = json.dumps({"stage": stage, "images": str(tmp / "img"),
                                  "out": str(tmp / "feats.npz"),
                                  "n_components": args.n_components,
                                  "batch_size": args.batch_size})
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True,
                                 text=True, check=True)
            results[stage] = json.loads(res.stdout.strip().splitlines()[-1])
            results[stage]["wall_s"] = time.perf_counter() - t
        out = {
            "n_images": args.n_images,
            "layers": len(layers),
            "full_activations_gb": full_values * 4 * args.n_images / 1024**3,
            "stored_gb": (tmp / "feats.npz").stat().st_size / 1024**3,
            **{f"{k}_{m}": v for k, r in results.items() for m, v in r.items()},
        }
    print(json.dumps(out, indent=2))
    print(f"peak RSS: extraction {out['extract_peak_rss_gb']:.2f} GB, analysis "
          f"{out['analyse_peak_rss_gb']:.2f} GB (target < 4 GB); full activations would be "
          f"{out['full_activations_gb']:.1f} GB, stored {out['stored_gb']:.2f} GB "
          f"(ratio {out['full_activations_gb'] / out['stored_gb']:.0f}x)")


if __name__ == "__main__":
    main()
