r"""Turn EEGLAB's tutorial recording (eeglab_data.set, 32 channels, 128 Hz) into a BIDS EEG dataset.

    .venv/bin/python examples/eeglab_tutorial/make_bids.py \
        ../shared/data/eeglab_tutorial_eeg results/eeglab_tutorial_bids

Source: ``eeglab_data.set`` + ``.fdt`` (continuous, one subject of Makeig et al. 1999's visual
selective-attention task) and ``eeglab_chan32.locs`` (EEGLAB polar channel locations).

What is written, and why
------------------------
- ``sub-1/eeg/sub-1_task-attention_eeg.set`` (+ ``.fdt``) by ``mne_bids.write_raw_bids`` in the
  EEGLAB format the data came in (mne-bids copies the files; the samples are untouched).
- Channel types: ``EOG1`` and ``EOG2`` are EOG, the 30 others EEG (channels.tsv).
- Electrode positions: ``eeglab_chan32.locs`` read with ``mne.channels.read_custom_montage``
  (electrodes.tsv, coordsystem.json; the polar locations projected on MNE's 95 mm sphere).
- ``PowerLineFrequency`` 60 Hz: the recording was made in San Diego, and its spectrum has a
  60 Hz line peak (~25 dB above the neighbouring bins) and none at 50 Hz.
- Events (events.tsv), from the ``EEG.event`` structure of the ``.set`` file (onset = (latency
  - 1) / 128 Hz, latencies being 1-based and fractional):

  * the 80 ``square`` targets: ``trial_type`` ``square_pos1`` / ``square_pos2`` after their
    ``position`` field (40 each; the two left-hemifield box locations), ``stim_file``
    ``square_pos1.png`` / ``square_pos2.png``, duration 0 (the file does not give it);
  * the 74 ``rt`` button presses: ``trial_type`` ``rt``, ``stim_file`` n/a, so brainalign
    epochs only the squares.
- Stimuli: the study's display is not part of the file; ``stimuli/square_pos<1|2>.png`` are
  SCHEMATIC pictures drawn here: five outlined boxes in a row above a fixation cross (the
  paradigm's layout), with a filled square in box 1 (leftmost) or box 2. They stand for the two
  target positions; they are not the original display (README says so). With two such stimuli
  nothing model-based is meaningful; the dataset exercises EEGLAB ingestion, montage, events and
  epoching.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TASK = "attention"
SUBJECT = "1"
LINE_FREQ = 60.0
EOG_CHANNELS = ("EOG1", "EOG2")
POSITIONS = (1, 2)
IMAGE_SIZE = 400

_README = """\
# EEGLAB tutorial recording in BIDS

Written by brainalign's `examples/eeglab_tutorial/make_bids.py` from EEGLAB's
`sample_data/eeglab_data.set` (https://github.com/sccn/eeglab; cite Makeig et al. 1999, J Neurosci
19:2665-2680, and Delorme & Makeig 2004): one subject of a visual selective-attention task, 32
channels (30 EEG, EOG1, EOG2), 128 Hz, 238 s of concatenated 3-s segments. Electrode positions are
EEGLAB's `eeglab_chan32.locs`. PowerLineFrequency 60 Hz (San Diego; 60 Hz line peak in the data).

Events: 80 `square` targets (trial_type square_pos1 / square_pos2 after the target's box, 40 each)
and 74 `rt` button presses (stim_file n/a). The two stimulus pictures in `stimuli/` are SCHEMATIC
drawings made by the conversion script (five boxes above a fixation cross, a filled square in box
1 or 2), standing for the two target positions; they are not the original display.
"""


def _error(message: str) -> Exception:
    from brainalign.errors import BIDSInputError

    return BIDSInputError(message)


def read_events(set_file: Path, sfreq: float) -> list[dict]:
    """The ``EEG.event`` entries of an EEGLAB ``.set``: onset (s), trial_type, stim_file."""
    from scipy.io import loadmat

    eeg = loadmat(set_file, squeeze_me=True, struct_as_record=False)["EEG"]
    rows = []
    for ev in np.atleast_1d(eeg.event):
        onset = (float(ev.latency) - 1.0) / sfreq
        if ev.type == "square":
            pos = int(ev.position)
            if pos not in POSITIONS:
                raise _error(f"{set_file}: a square event at position {pos}; expected 1 or 2.")
            rows.append({"onset": onset, "trial_type": f"square_pos{pos}",
                         "stim_file": f"square_pos{pos}.png"})
        elif ev.type == "rt":
            rows.append({"onset": onset, "trial_type": "rt", "stim_file": "n/a"})
        else:
            raise _error(f"{set_file}: unexpected event type {ev.type!r} (expected square, rt).")
    return sorted(rows, key=lambda r: r["onset"])


def draw_stimulus(position: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """Schematic display: 5 outlined boxes above a fixation cross, box ``position`` filled."""
    img = np.full((size, size), 128, np.uint8)
    box, gap, top = size // 8, size // 40, size // 4
    left = (size - (5 * box + 4 * gap)) // 2
    for b in range(5):
        x0 = left + b * (box + gap)
        img[top:top + box, x0:x0 + box] = 255
        img[top + 3:top + box - 3, x0 + 3:x0 + box - 3] = 128
        if b + 1 == position:
            m = box // 4
            img[top + m:top + box - m, x0 + m:x0 + box - m] = 0
    cy, cx, arm = size // 2 + size // 8, size // 2, size // 40  # fixation cross below
    img[cy - arm:cy + arm + 1, cx - 1:cx + 2] = 0
    img[cy - 1:cy + 2, cx - arm:cx + arm + 1] = 0
    return img


def make_eeglab_bids(source: str | Path, out: str | Path) -> Path:
    """Convert the eeglab_tutorial_eeg folder into a BIDS EEG dataset at ``out``.

    Parameters
    ----------
    source : str or Path
        Folder with ``eeglab_data.set``, ``eeglab_data.fdt`` and ``eeglab_chan32.locs``.
    out : str or Path
        A new or empty folder.

    Returns
    -------
    Path
        The BIDS root.
    """
    import mne
    import pandas as pd
    from mne_bids import BIDSPath, make_dataset_description, update_sidecar_json, write_raw_bids
    from PIL import Image

    source, out = Path(source), Path(out)
    set_file, locs = source / "eeglab_data.set", source / "eeglab_chan32.locs"
    for need in (set_file, source / "eeglab_data.fdt", locs):
        if not need.is_file():
            raise _error(
                f"EEGLAB tutorial source is incomplete: expected {need}, found nothing. Point "
                "the script at the eeglab_tutorial_eeg folder of the shared data.")
    if out.exists() and any(out.iterdir()):
        raise _error(f"output folder {out} is not empty; give a new or empty folder.")

    raw = mne.io.read_raw_eeglab(set_file, preload=False, verbose=False)
    montage = mne.channels.read_custom_montage(locs)
    if sorted(montage.ch_names) != sorted(raw.ch_names):
        raise _error(f"{locs} names {montage.ch_names}, the recording {raw.ch_names}.")
    raw.set_montage(montage, verbose=False)  # before typing EOG: they keep a position
    raw.set_channel_types({ch: "eog" for ch in EOG_CHANNELS}, verbose=False)
    raw.info["line_freq"] = LINE_FREQ
    events = read_events(set_file, raw.info["sfreq"])
    raw.set_annotations(mne.Annotations([e["onset"] for e in events], 0.0,
                                        [e["trial_type"] for e in events]))

    path = BIDSPath(subject=SUBJECT, task=TASK, datatype="eeg", root=out)
    write_raw_bids(raw, path, format="EEGLAB", overwrite=False, verbose=False)

    # stim_file next to each event (mne-bids writes onset, duration, trial_type, value, sample)
    tsv = path.copy().update(suffix="events", extension=".tsv").fpath
    frame = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    if frame["trial_type"].tolist() != [e["trial_type"] for e in events]:
        raise _error(f"{tsv}: mne-bids wrote the events in another order than EEG.event.")
    frame["stim_file"] = [e["stim_file"] for e in events]
    frame.to_csv(tsv, sep="\t", index=False)
    sidecar = tsv.with_suffix(".json")
    desc = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    desc["trial_type"] = {"Description": "square_pos1/square_pos2: target square in box 1 or 2 "
                          "(EEG.event position); rt: button press.",
                          "Levels": {"square_pos1": "target square in box 1",
                                     "square_pos2": "target square in box 2",
                                     "rt": "button press (not a stimulus)"}}
    desc["stim_file"] = {"Description": "Schematic picture in stimuli/ of the target position "
                         "(drawn by the conversion script, not the original display); n/a for "
                         "button presses."}
    sidecar.write_text(json.dumps(desc, indent=4) + "\n")
    update_sidecar_json(path.copy().update(suffix="eeg", extension=".json"), {
        "Manufacturer": "n/a",
        "EEGReference": "common reference (EEGLAB tutorial: 'common')",
        "TaskDescription": "Visual selective attention (Makeig et al. 1999): squares flashed in "
                           "one of five boxes above fixation; button press to targets in the "
                           "attended box. 3-s segments around left-hemifield targets.",
        "SoftwareFilters": "n/a"}, verbose=False)

    stim = out / "stimuli"
    stim.mkdir(exist_ok=True)
    for pos in POSITIONS:
        Image.fromarray(draw_stimulus(pos)).save(stim / f"square_pos{pos}.png")
    make_dataset_description(
        path=out, name="EEGLAB tutorial recording (visual selective attention)",
        dataset_type="raw", authors=["Scott Makeig", "Arnaud Delorme"],
        references_and_links=[
            "https://github.com/sccn/eeglab (sample_data/eeglab_data.set)",
            "Makeig et al. (1999) J Neurosci 19:2665-2680",
            "Delorme & Makeig (2004) J Neurosci Methods 134:9-21"],
        generated_by=[{"Name": "brainalign examples/eeglab_tutorial/make_bids.py"}],
        overwrite=True, verbose=False)
    (out / "README").write_text(_README)
    counts = pd.Series([e["trial_type"] for e in events]).value_counts().to_dict()
    sys.stdout.write(f"events: {counts}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: SOURCE OUT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the eeglab_tutorial_eeg folder")
    parser.add_argument("out", help="BIDS dataset to write (new or empty folder)")
    args = parser.parse_args(argv)
    out = make_eeglab_bids(args.source, args.out)
    sys.stdout.write(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
