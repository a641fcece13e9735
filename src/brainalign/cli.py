"""Command line: ``brainalign demo-data OUTDIR``, ``brainalign layers ARCH``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo_data(args: argparse.Namespace) -> int:
    from brainalign.demo import DemoSpec, make_demo_dataset

    bids = make_demo_dataset(args.outdir, spec=DemoSpec(seed=args.seed))
    print(f"demo dataset written to {bids} (planted truth: {bids.parent / 'truth.json'})")
    return 0


def _layers(args: argparse.Namespace) -> int:
    from brainalign.features import ARCHITECTURES

    if args.architecture not in ARCHITECTURES:
        print(f"Unknown architecture '{args.architecture}': expected one of "
              f"{', '.join(sorted(ARCHITECTURES))}.", file=sys.stderr)
        return 2
    print("\n".join(ARCHITECTURES[args.architecture].layers))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainalign`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        Exit status.
    """
    from brainalign.errors import BrainAlignError

    parser = argparse.ArgumentParser(prog="brainalign", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo-data", help="write the built-in demo BIDS dataset")
    demo.add_argument("outdir", help="new folder: gets bids/ and truth.json")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=_demo_data)
    layers = sub.add_parser("layers", help="list the layer names of a registry architecture")
    layers.add_argument("architecture")
    layers.set_defaults(func=_layers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (BrainAlignError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
