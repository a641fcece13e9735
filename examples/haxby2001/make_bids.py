r"""Turn PyMVPA's Haxby et al. (2001) subject 1 into a BIDS dataset (one slice, 12 runs).

    .venv/bin/python examples/haxby2001/make_bids.py ../shared/data/haxby2001_pymvpa \
        ../shared/data/muse_n170_face_house_eeg/stimuli results/haxby2001_bids

The logic lives in :mod:`brainalign.ingest.haxby`; the dataset's README says what it holds
(face and house are real pictures; the other six categories get generated placeholders).
"""

from __future__ import annotations

import argparse
import sys

from brainalign.ingest.haxby import make_haxby_bids


def main(argv: list[str] | None = None) -> int:
    """Command line: SOURCE STIMULI OUT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder with PyMVPA's haxby2001/ and example_slice/")
    parser.add_argument("stimuli", help="folder with the study's faces/ and houses/ pictures")
    parser.add_argument("out", help="BIDS dataset to write (new or empty folder)")
    args = parser.parse_args(argv)
    out = make_haxby_bids(args.source, args.out, stimuli_dir=args.stimuli)
    sys.stdout.write(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
