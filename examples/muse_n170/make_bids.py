r"""Turn the EEG-notebooks v0.1 N170 Muse recordings (faces vs houses) into a BIDS EEG dataset.

    .venv/bin/python examples/muse_n170/make_bids.py \
        ../shared/data/muse_n170_face_house_eeg results/muse_n170_bids

Source: ``<source>/eeg/subject<S>/session<K>/*.csv`` (12 recordings of NeuroTechX's
eeg-notebooks v0.1, InteraXon Muse 2016, 4 dry electrodes) and ``<source>/stimuli/{faces,houses}``
(the Haxby et al. 2001 pictures). Each CSV has ``timestamps`` (s, host clock), ``TP9, AF7, AF8,
TP10`` (uV, reference Fpz), ``Right AUX`` (the optional extra electrode, mostly unconnected) and
``Marker0``.

What is written, and why
------------------------
- One BIDS subject per source subject (``sub-1``, ``sub-2``, ``sub-3``, ``sub-11``), the source
  sessions (``ses-1``, ``ses-3``), task ``n170``, one run per recording in time order. Run numbers
  are unique within a subject across its sessions (sub-3: ses-1 runs 1-2, ses-3 run 3) because
  brainalign's derivative names carry task and run but not session.
- BrainVision files written by ``mne_bids.write_raw_bids``: the 4 EEG channels and ``Right AUX``
  as a ``misc`` channel; electrode positions of the 10-05 names from MNE's ``standard_1005``
  template (electrodes.tsv, coordsystem.json): template positions, not digitised ones.
- Sampling rate 256 Hz. PROVENANCE.md says 250 Hz, but the files hold 30,720-30,732 samples over
  120 s (256.0-256.03 Hz from the timestamps), the Muse 2016 streams at 256 Hz, and
  eeg-notebooks' own loader uses ``sfreq=256``. The script checks each file's rate against 256 Hz.
- ``PowerLineFrequency`` 60 Hz: the recordings' origin is not documented, but every recording has
  a line peak at 60 Hz (up to ~37 dB above the neighbouring bins at TP9/TP10) and none at 50 Hz
  (below ~12 dB, mostly < 3 dB).
- Marker0: **2 = face, 1 = house**. PROVENANCE.md says 1 = face, 2 = house; the presentation
  script that recorded them (``stimulus_presentation/n170.py`` of eeg-notebooks v0.1 and, before
  it, muse-lsl's ``generate_N170.py``) draws a face when ``label == 1`` and pushes marker
  ``[1, 2][label]`` = 2, and all eeg-notebooks N170 analyses use ``{'House': 1, 'Face': 2}``.
  The data agree: the markers-2 responses are the more negative ones at TP9/TP10 around 200-240 ms
  (the N170 is larger for faces).
- Event onsets: the sample that carries the marker, divided by 256 Hz, i.e. relative to the
  first sample (first timestamp) of the recording on the sample clock that the written data use.
  The host timestamps jitter by up to ~50 ms around that clock (Bluetooth packets arrive in
  bursts), so they are not used for onsets; the script reports the largest difference.
  Duration 0.2 s: the v0.1 script shows each picture for ``soa = 0.2`` s (inter-trial interval
  0.3 s + up to 0.2 s jitter).
- Stimuli: the picture shown on each trial was NOT logged, only its category (each trial drew one
  of the 12 ``*_3.jpg`` faces or the 12 ``*.3.jpg`` houses at random). So events carry
  ``trial_type`` face/house and a ``stim_file`` that names a category stimulus, not the picture:
  ``stimuli/face_mean12.png`` and ``stimuli/house_mean12.png``, the pixel-wise mean of those 12
  pictures each, computed here. Analyses of this dataset are category level (2 stimuli); a DNN
  sees a blurred average face and house, not a picture a subject saw (README and events.json
  say so).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SFREQ = 256.0
LINE_FREQ = 60.0
TASK = "n170"
EEG_CHANNELS = ("TP9", "AF7", "AF8", "TP10")
AUX_CHANNEL = "Right AUX"
MARKERS = {1: "house", 2: "face"}  # see the module docstring: 2 = face in the source code
STIM_FILES = {"face": "face_mean12.png", "house": "house_mean12.png"}
STIM_GLOBS = {"face": ("faces", "*_3.jpg"), "house": ("houses", "*.3.jpg")}
STIM_DURATION_S = 0.2
MAX_RATE_ERROR = 0.005  # relative: timestamps give 256.00-256.03 Hz

_README = """\
# EEG-notebooks v0.1 N170 (Muse, faces vs houses) in BIDS

Written by brainalign's `examples/muse_n170/make_bids.py` from the 12 recordings of NeuroTechX
eeg-notebooks v0.1 (https://github.com/NeuroTechX/eeg-notebooks_v0.1, BSD 3-Clause, Copyright
2017 Alexandre Barachant): 4-channel InteraXon Muse 2016 EEG (TP9, AF7, AF8, TP10; reference Fpz;
256 Hz) during rapid presentation of face and house pictures (200 ms each, 300-500 ms apart),
about 195 trials in each 2-minute recording. `Right AUX` is the optional extra electrode (mostly
unconnected), kept as a misc channel. Electrode positions are MNE's standard_1005 template.
PowerLineFrequency is 60 Hz (the recordings show a 60 Hz and no 50 Hz line peak).

Stimuli: grey-scale pictures from Haxby et al. (2001), Science 293:2425-2430, CC BY-SA 3.0. On each
trial one of 12 faces (`*_3.jpg`) or 12 houses (`*.3.jpg`) was drawn at random and only its
category was logged. The events therefore name a CATEGORY stimulus: `stimuli/face_mean12.png` and
`stimuli/house_mean12.png` are the pixel-wise means of those 12 pictures each (made by the
conversion script), not pictures the subjects saw. Item-level analyses are impossible.

Marker code of the source: 2 = face, 1 = house (from the presentation script; the face responses
are the more negative ones at TP9/TP10 around 200-240 ms, the N170).
"""


@dataclass(frozen=True)
class Recording:
    """One source CSV and its BIDS labels."""

    path: Path
    subject: str
    session: str
    run: int


def _error(message: str) -> Exception:
    from brainalign.errors import BIDSInputError

    return BIDSInputError(message)


def find_recordings(source: Path) -> list[Recording]:
    """The CSV recordings of ``source/eeg``, with subject, session and run labels.

    Runs are numbered in time order (file name order) per subject, across its sessions.
    """
    eeg = source / "eeg"
    found = []
    for path in sorted(eeg.glob("subject*/session*/*.csv")):
        sub = re.fullmatch(r"subject(\d+)", path.parent.parent.name)
        ses = re.fullmatch(r"session(\d+)", path.parent.name)
        if sub and ses:
            found.append((int(sub.group(1)), int(ses.group(1)), path.name, path))
    if not found:
        raise _error(
            f"no recordings found: expected {eeg}/subject<N>/session<N>/*.csv (the "
            "muse_n170_face_house_eeg folder of the shared data), found none. Point the script "
            "at that folder."
        )
    found.sort()
    recordings, runs = [], {}
    for sub, ses, _, path in found:
        runs[sub] = runs.get(sub, 0) + 1
        recordings.append(Recording(path, str(sub), str(ses), runs[sub]))
    return recordings


def read_recording(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data (5, n) in V: the 4 EEG channels then Right AUX, marker (n,), timestamps (n,))."""
    import pandas as pd

    frame = pd.read_csv(path)
    columns = ["timestamps", *EEG_CHANNELS, AUX_CHANNEL, "Marker0"]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _error(
            f"{path}: expected the Muse CSV columns {columns}, missing {missing} (found "
            f"{list(frame.columns)}). Use the eeg-notebooks v0.1 recordings unchanged."
        )
    if frame[columns].isna().any().any():
        raise _error(f"{path}: empty cells in {columns}; the recording is damaged.")
    stamps = frame["timestamps"].to_numpy(float)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    if abs(rate / SFREQ - 1) > MAX_RATE_ERROR:
        raise _error(
            f"{path}: the timestamps give {rate:.2f} Hz, expected the Muse's {SFREQ:g} Hz "
            f"(within {MAX_RATE_ERROR:.1%}); samples were dropped or this is not a Muse 2016 "
            "recording."
        )
    marker = frame["Marker0"].to_numpy()
    unknown = sorted(set(np.unique(marker).tolist()) - {0, *MARKERS})
    if unknown:
        raise _error(f"{path}: Marker0 holds {unknown}; expected 0, 1 (house) or 2 (face).")
    data = frame[[*EEG_CHANNELS, AUX_CHANNEL]].to_numpy(float).T * 1e-6  # uV -> V
    return data, marker.astype(int), stamps


def mean_image(files: list[Path]) -> np.ndarray:
    """Pixel-wise mean (uint8, grey scale) of equally sized pictures."""
    from PIL import Image

    stack = [np.asarray(Image.open(f).convert("L"), dtype=float) for f in files]
    shapes = {s.shape for s in stack}
    if len(shapes) != 1:
        raise _error(f"pictures of different sizes {sorted(shapes)}: {files}")
    return np.clip(np.rint(np.mean(stack, axis=0)), 0, 255).astype(np.uint8)


def write_stimuli(source: Path, bids_root: Path) -> dict[str, list[str]]:
    """Write the two category stimuli; return category -> the source pictures averaged."""
    from PIL import Image

    out = bids_root / "stimuli"
    out.mkdir(parents=True, exist_ok=True)
    used = {}
    for category, (folder, pattern) in STIM_GLOBS.items():
        files = sorted((source / "stimuli" / folder).glob(pattern))
        if len(files) != 12:
            raise _error(
                f"expected the 12 pictures {source / 'stimuli' / folder / pattern} shown in "
                f"the experiment, found {len(files)}."
            )
        Image.fromarray(mean_image(files)).save(out / STIM_FILES[category])
        used[category] = [f.name for f in files]
    return used


def _montage_name() -> str:
    """MNE's standard_1005 template (renamed colin27_1005 in MNE 1.13; same positions)."""
    import mne

    names = mne.channels.get_builtin_montages()
    return "colin27_1005" if "colin27_1005" in names else "standard_1005"


def make_raw(data: np.ndarray):
    """MNE RawArray: 4 EEG channels with standard_1005 positions and Right AUX as misc."""
    import mne

    info = mne.create_info([*EEG_CHANNELS, AUX_CHANNEL], SFREQ,
                           ["eeg"] * len(EEG_CHANNELS) + ["misc"], verbose=False)
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.set_montage(mne.channels.make_standard_montage(_montage_name()), verbose=False)
    raw.info["line_freq"] = LINE_FREQ
    return raw


def convert_recording(rec: Recording, bids_root: Path) -> dict:
    """Write one recording to BIDS; return a summary (events, timestamp jitter)."""
    import pandas as pd
    from mne_bids import BIDSPath, write_raw_bids

    data, marker, stamps = read_recording(rec.path)
    raw = make_raw(data)
    samples = np.flatnonzero(marker)
    onsets = samples / SFREQ
    jitter = np.abs((stamps[samples] - stamps[0]) - onsets)
    categories = [MARKERS[m] for m in marker[samples]]
    events = np.column_stack([samples, np.zeros_like(samples), marker[samples]])
    event_id = {name: code for code, name in MARKERS.items()}
    metadata = pd.DataFrame({"stim_file": [STIM_FILES[c] for c in categories]})
    path = BIDSPath(subject=rec.subject, session=rec.session, task=TASK, run=rec.run,
                    datatype="eeg", root=bids_root)
    write_raw_bids(
        raw, path, events=events, event_id=event_id, event_metadata=metadata,
        extra_columns_descriptions={
            "stim_file": "Category stimulus in stimuli/: the mean of the 12 pictures of the "
                         "trial's category (the picture shown was not logged)."},
        format="BrainVision", allow_preload=True, overwrite=False, verbose=False)
    return {"source": str(rec.path), "subject": rec.subject, "session": rec.session,
            "run": rec.run, "n_face": categories.count("face"),
            "n_house": categories.count("house"),
            "max_timestamp_jitter_s": float(jitter.max()) if len(jitter) else 0.0}


def _finish_run_files(bids_root: Path) -> None:
    """Events: trial_type and the 0.2 s picture duration; sidecar: the Muse's facts.

    mne-bids writes ``value`` but no ``trial_type`` when events come with metadata, a zero
    duration for an events array, and Brain Products (the file format's maker) as the
    manufacturer.
    """
    import pandas as pd
    from mne_bids import BIDSPath, update_sidecar_json

    for tsv in sorted(bids_root.glob("sub-*/ses-*/eeg/*_events.tsv")):
        frame = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
        frame["duration"] = f"{STIM_DURATION_S:g}"
        frame.insert(2, "trial_type", [MARKERS[int(v)] for v in frame["value"]])
        frame.to_csv(tsv, sep="\t", index=False)
        sidecar = tsv.with_suffix(".json")
        desc = json.loads(sidecar.read_text())
        desc["trial_type"] = {
            "Description": "Category of the picture shown (Marker0 of the source CSV).",
            "Levels": {"face": "a face picture (Marker0 2)", "house": "a house picture "
                       "(Marker0 1)"}}
        desc["value"]["Levels"] = {"1": "house", "2": "face"}
        sidecar.write_text(json.dumps(desc, indent=4) + "\n")
        eeg_json = BIDSPath(root=bids_root).update(
            **_entities(tsv), suffix="eeg", extension=".json", datatype="eeg")
        update_sidecar_json(eeg_json, {
            "Manufacturer": "InteraXon", "ManufacturersModelName": "Muse 2016 headband",
            "EEGReference": "Fpz (the Muse's reference electrode)",
            "EEGPlacementScheme": "Muse headband: TP9, AF7, AF8, TP10 (10-05 names); "
                                  "positions in electrodes.tsv are MNE's standard_1005 "
                                  "template, not digitised",
            "TaskDescription": "Passive viewing of face and house pictures (200 ms each, "
                               "300-500 ms apart), EEG-notebooks v0.1 N170 paradigm.",
            "SoftwareFilters": "n/a", "HardwareFilters": "n/a"}, verbose=False)


def _entities(path: Path) -> dict[str, str]:
    """subject, session, task, run of a BIDS file name."""
    from mne_bids import get_entities_from_fname

    ents = get_entities_from_fname(path.name)
    return {k: ents[k] for k in ("subject", "session", "task", "run")}


def make_muse_bids(source: str | Path, out: str | Path) -> Path:
    """Convert the muse_n170_face_house_eeg folder into a BIDS EEG dataset at ``out``.

    Parameters
    ----------
    source : str or Path
        The shared data folder (with ``eeg/`` and ``stimuli/``).
    out : str or Path
        A new or empty folder.

    Returns
    -------
    Path
        The BIDS root.
    """
    from mne_bids import make_dataset_description

    source, out = Path(source), Path(out)
    if out.exists() and any(out.iterdir()):
        raise _error(f"output folder {out} is not empty; give a new or empty folder.")
    recordings = find_recordings(source)
    out.mkdir(parents=True, exist_ok=True)
    used = write_stimuli(source, out)
    summary = [convert_recording(rec, out) for rec in recordings]
    _finish_run_files(out)
    make_dataset_description(
        path=out, name="EEG-notebooks v0.1 N170 (Muse, faces vs houses)",
        dataset_type="raw", data_license="BSD-3-Clause (recordings); CC BY-SA 3.0 (pictures)",
        authors=["NeuroTechX eeg-notebooks contributors"],
        references_and_links=[
            "https://github.com/NeuroTechX/eeg-notebooks_v0.1",
            "Haxby et al. (2001) Science 293:2425-2430, doi:10.1126/science.1063736"],
        generated_by=[{"Name": "brainalign examples/muse_n170/make_bids.py"}],
        overwrite=True, verbose=False)
    (out / "README").write_text(_README)
    (out / "stimuli" / "sources.json").write_text(json.dumps(
        {STIM_FILES[c]: {"description": f"pixel-wise mean of the 12 {c} pictures shown",
                         "pictures": names}
         for c, names in used.items()}, indent=2) + "\n")
    ignore = out / ".bidsignore"
    ignore.write_text("stimuli/sources.json\n")
    for row in summary:
        sys.stdout.write(
            f"sub-{row['subject']} ses-{row['session']} run-{row['run']}: {row['n_face']} face, "
            f"{row['n_house']} house; max |timestamp - sample time| at markers "
            f"{row['max_timestamp_jitter_s'] * 1e3:.0f} ms  <- {row['source']}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: SOURCE OUT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the muse_n170_face_house_eeg folder (eeg/, stimuli/)")
    parser.add_argument("out", help="BIDS dataset to write (new or empty folder)")
    args = parser.parse_args(argv)
    out = make_muse_bids(args.source, args.out)
    sys.stdout.write(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
