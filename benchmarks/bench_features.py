"""Time feature extraction against the bare forward pass of the same model and batch size.

Issue 12, part 6: extraction (hooks or graph read-out, pooling, copies to the host, writing)
should run at >= 0.9x the throughput of ``model(x)`` alone. For each model, in one run and
interleaved, best of ``--repeats``:

``bare``
    ``model(x)`` on batches already decoded and on the device (``torch.inference_mode``), the
    reference.
``readout``
    brainalign's read-out on the same preloaded batches: the layers' outputs captured, pooled
    (``spatial_pool``) and copied to the host as numpy arrays. ``bare / readout`` is the cost of
    hooks and pooling.
``extract``
    :func:`brainalign.features.extract_image_features` from the image files, decoding included
    (a background thread decodes the next batches while the network runs), plus writing each
    layer with :func:`brainalign.features.steps.save_features`. Compared with ``bare`` and
    with ``bare + decode`` (what a loop without overlap would take).
``decode``
    Decoding and preprocessing the images alone.

Models: a CNN (EfficientNet-Lite0 with its shipped weights, 6 layers; or ``--cnn resnet50``,
torchvision, random weights, 6 graph nodes) and a transformer (timm ``vit_tiny_patch16_224``,
random weights, 6 layers; ``--vit`` to choose another timm ViT).

Images: the 92 images of Kriegeskorte et al. (2008) from ``../shared/data`` when present,
repeated to ``--images``; otherwise drawn shapes.

Usage::

    python benchmarks/bench_features.py [--images 184] [--batch-size 32] [--repeats 3]
        [--device auto] [--precision float32] [--cnn efficientnet_lite0|resnet50]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kriegeskorte2008_92images"
logger = logging.getLogger("bench_features")

MODELS = {
    "efficientnet_lite0": ({"source": "registry", "architecture": "efficientnet_lite0",
                            "weights": "shipped"},
                           ["stem", "stage2", "stage4", "stage6", "head", "logits"]),
    "resnet50": ({"source": "torchvision", "architecture": "resnet50", "weights": "random"},
                 ["maxpool", "layer1", "layer2", "layer3", "layer4", "fc"]),
}


def vit_entry(name: str) -> tuple[dict, list[str]]:
    """A timm ViT with random weights and 6 layers spread over its blocks."""
    return ({"source": "timm", "architecture": name, "weights": "random"},
            ["patch_embed", "blocks.2", "blocks.5", "blocks.8", "blocks.11", "norm"])


def image_files(n: int, folder: Path) -> list[Path]:
    """``n`` image paths: the 92 real images (cycled), else drawn stimuli."""
    real = sorted((DATA / "stimuli").glob("*.png")) if DATA.is_dir() else []
    if real:
        return [real[k % len(real)] for k in range(n)]
    from brainalign.demo import draw_stimulus

    shapes = ("circle", "star", "square")
    paths = []
    for k in range(min(n, 96)):
        path = folder / f"img{k:03d}.png"
        draw_stimulus(shapes[k % 3], ("red", "blue", "green")[k % 3 - 1], 7 * k).save(path)
        paths.append(path)
    return [paths[k % len(paths)] for k in range(n)]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_model(label: str, spec: dict, layers: list[str], paths: list[Path], *, args,
                out_dir: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Best-of-N wall and CPU seconds of bare forward, read-out, extraction and decoding."""
    import functools

    import torch

    from brainalign.features.extract import _capture, extract_image_features, resolve_device
    from brainalign.features.sources import load_model
    from brainalign.features.steps import save_features

    device = resolve_device(args.device)
    loaded = load_model(spec, name=label, image_size=args.image_size)
    loaded.module.to(device)
    bs = args.batch_size
    batches = [loaded.preprocess.load(paths[i : i + bs]).to(device)
               for i in range(0, len(paths), bs)]
    dtype = getattr(torch, args.precision)
    autocast = functools.partial(torch.autocast, device_type=torch.device(device).type,
                                 dtype=dtype, enabled=args.precision != "float32")
    run = loaded.readout(layers, capture=functools.partial(_capture,
                                                           spatial_pool=args.spatial_pool))

    def bare() -> None:
        with torch.inference_mode(), autocast():
            for x in batches:
                loaded.forward(x)
        _sync(device)

    def readout() -> None:
        pending = None
        with torch.inference_mode(), autocast():
            for x in batches:
                outs = run(x)
                if pending is not None:
                    {k: v.cpu().numpy() for k, v in pending.items()}
                pending = outs
            {k: v.cpu().numpy() for k, v in pending.items()}
        _sync(device)

    def extract() -> None:
        feats = extract_image_features(
            loaded, paths, layers, batch_size=bs, spatial_pool=args.spatial_pool, device=device,
            precision=args.precision, progress="none")
        for layer, x in feats.items():
            save_features(out_dir / f"{label}_{layer}.npz", x,
                          np.array([p.name for p in paths]))

    def setup() -> None:  # the read-out built once per extraction (FX: two traces)
        loaded.readout(layers, capture=functools.partial(_capture, spatial_pool=1))

    def decode() -> None:
        for i in range(0, len(paths), bs):
            loaded.preprocess.load(paths[i : i + bs])

    timers = {"bare": bare, "readout": readout, "extract": extract, "decode": decode,
              "setup": setup}
    bare()  # warm-up (cuDNN autotuning, allocator, lazy inits)
    readout()
    best = dict.fromkeys(timers, float("inf"))
    cpu = dict.fromkeys(timers, float("inf"))
    for _ in range(args.repeats):
        for name, fn in timers.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    return best, cpu


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table of ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=None,
                        help="number of images (default 512 on a GPU, 64 on the CPU)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per batch (default 64 on a GPU, 16 on the CPU)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--spatial-pool", type=int, default=4)
    parser.add_argument("--cnn", default="efficientnet_lite0", choices=tuple(MODELS))
    parser.add_argument("--vit", default="vit_tiny_patch16_224")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from brainalign.features.extract import resolve_device

    device = resolve_device(args.device)
    gpu = device.startswith("cuda")
    args.images = args.images or (512 if gpu else 64)
    args.batch_size = args.batch_size or (64 if gpu else 16)
    where = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device {where}; {args.images} images, batch {args.batch_size}, "
          f"{args.image_size} px, precision {args.precision}, best of {args.repeats}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    entries = {args.cnn: MODELS[args.cnn], args.vit: vit_entry(args.vit)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = image_files(args.images, Path(tmp))
        print(f"images: {'Kriegeskorte 2008 (92, cycled)' if DATA.is_dir() else 'drawn'}")
        print("seconds: bare, readout, extract, decode, setup | ratios bare/readout, "
              "bare/extract, (bare+decode)/extract, the same two without the one-off setup | "
              "images/s of extract. Wall, then CPU seconds (all threads of the process: "
              "steadier than wall time on a loaded machine)")
        for label, (spec, layers) in entries.items():
            wall, cpu = bench_model(label, spec, layers, paths, args=args, out_dir=Path(tmp))
            for kind, t in (("wall", wall), ("cpu", cpu)):
                steady = t["extract"] - t["setup"]
                print(f"{label:<22}{kind:<5}{t['bare']:>7.2f}{t['readout']:>7.2f}"
                      f"{t['extract']:>7.2f}{t['decode']:>7.2f}{t['setup']:>7.2f} | "
                      f"{t['bare'] / t['readout']:>6.3f}{t['bare'] / t['extract']:>7.3f}"
                      f"{(t['bare'] + t['decode']) / t['extract']:>7.3f}"
                      f"{t['bare'] / steady:>7.3f}{(t['bare'] + t['decode']) / steady:>7.3f} | "
                      f"{args.images / t['extract']:>7.1f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
