"""Text stimuli in ingestion: ``.txt`` stim_file values and a text column (bids.text_column)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import BIDSInputError, ConfigError
from brainalign.ingest.bids import index_dataset
from brainalign.ingest.steps import step_ingest
from brainalign.io import read_tsv

SENTENCES = {"s01": "The cat sat on the mat.", "s02": "Rivers flow into the sea.",
             "s03": "Stocks fell on Monday.", "s04": "A dog barked twice."}


def _bids(root, events: pd.DataFrame, files: dict[str, bytes] | None = None):
    """A one-run BIDS dataset (8 volumes of 2x2x2 voxels, TR 2 s) with these events."""
    import nibabel as nib

    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "text", "BIDSVersion": "1.10.0"}))
    func = root / "sub-01" / "func"
    func.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.ones((2, 2, 2, 8), np.float32), np.eye(4))
    img.header["pixdim"][4] = 2.0
    nib.save(img, func / "sub-01_task-read_run-1_bold.nii.gz")
    (func / "sub-01_task-read_run-1_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    events.to_csv(func / "sub-01_task-read_run-1_events.tsv", sep="\t", index=False)
    (root / "stimuli").mkdir(exist_ok=True)
    for name, data in (files or {}).items():
        (root / "stimuli" / name).write_bytes(data)
    return root


def _events(stim, **extra) -> pd.DataFrame:
    return pd.DataFrame({"onset": 2.0 * np.arange(len(stim)), "duration": 1.0,
                         "stim_file": stim, **extra})


def test_txt_stimuli_are_read_as_texts(tmp_path):
    files = {f"{k}.txt": v.encode() + b"\n" for k, v in SENTENCES.items()}
    bids = _bids(tmp_path / "bids", _events(list(files)), files)
    index = index_dataset(bids, tasks=["read"])
    assert index.stimulus_kind == "text"
    assert index.texts == {}
    assert index.stimulus_files == [str(bids / "stimuli" / f) for f in sorted(files)]
    step_ingest(index, runs_out=str(tmp_path / "runs.tsv"), stimuli_out=str(tmp_path / "s.tsv"))
    manifest = read_tsv(tmp_path / "s.tsv")
    assert "text" not in manifest.columns  # read from the file by the features step
    from brainalign.features.text import stimulus_texts

    assert stimulus_texts(manifest) == [SENTENCES[k] for k in sorted(SENTENCES)]


@pytest.mark.parametrize("content,match", [(b"", "Empty text stimulus"),
                                           (b"  \n\t", "Empty text stimulus"),
                                           (b"caf\xe9 au lait", "Undecodable text stimulus")])
def test_bad_txt_stimulus_is_named(tmp_path, content, match):
    files = {"a.txt": b"fine", "b.txt": content}
    bids = _bids(tmp_path / "bids", _events(["a.txt", "b.txt"]), files)
    with pytest.raises(BIDSInputError, match=match) as err:
        index_dataset(bids, tasks=["read"])
    assert "b.txt" in str(err.value) and "line 3" in str(err.value)


def test_texts_and_images_are_not_mixed(tmp_path):
    from PIL import Image

    img = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(img)
    files = {"a.txt": b"a sentence", "x.png": img.read_bytes()}
    bids = _bids(tmp_path / "bids", _events(["a.txt", "x.png"]), files)
    with pytest.raises(BIDSInputError, match=r"mix text and image stimuli.*'a\.txt'.*'x\.png'"):
        index_dataset(bids, tasks=["read"])


def test_text_column_gives_identifiers_and_texts(tmp_path):
    ids = ["s02", "s01", "s03", "s04", "s01"]  # s01 shown twice, same text
    bids = _bids(tmp_path / "bids",
                 _events(ids, sentence=[SENTENCES[i] for i in ids]))  # no stimulus files at all
    index = index_dataset(bids, tasks=["read"], text_column="sentence")
    assert index.stimuli == sorted(SENTENCES)
    assert index.texts == SENTENCES
    assert index.stimulus_kind == "text"
    assert index.stimulus_files == []  # nothing for the features jobs to wait for
    step_ingest(index, runs_out=str(tmp_path / "runs.tsv"), stimuli_out=str(tmp_path / "s.tsv"))
    manifest = read_tsv(tmp_path / "s.tsv")
    assert manifest["stim_file"].tolist() == sorted(SENTENCES)
    assert manifest["text"].tolist() == [SENTENCES[k] for k in sorted(SENTENCES)]
    from brainalign.features.text import stimulus_texts

    assert stimulus_texts(manifest) == manifest["text"].tolist()


def test_text_column_errors(tmp_path):
    ids = ["s01", "s02"]
    bids = _bids(tmp_path / "a", _events(ids, sentence=[SENTENCES[i] for i in ids]))
    with pytest.raises(BIDSInputError, match="lacks the text column 'words'.*bids.text_column"):
        index_dataset(bids, tasks=["read"], text_column="words")
    bids = _bids(tmp_path / "b", _events(ids, sentence=["a text", "n/a"]))
    with pytest.raises(BIDSInputError, match="Empty text on line 3.*'s02'"):
        index_dataset(bids, tasks=["read"], text_column="sentence")
    bids = _bids(tmp_path / "c", _events(["s01", "s01"], sentence=["one text", "another"]))
    with pytest.raises(BIDSInputError, match="Two texts for stimulus 's01'.*line 2.*line 3"):
        index_dataset(bids, tasks=["read"], text_column="sentence")


def test_without_text_column_ids_must_be_files(tmp_path):
    """The same events without bids.text_column: stim_file must name files (it does not)."""
    bids = _bids(tmp_path / "bids", _events(["s01"], sentence=["a text"]))
    with pytest.raises(BIDSInputError, match="names stim_file 's01'"):
        index_dataset(bids, tasks=["read"])


def test_config_accepts_text_column():
    from brainalign.config import load_schema

    prop = load_schema()["properties"]["bids"]["properties"]["text_column"]
    assert prop["default"] is None and "description" in prop


def test_dataset_check_rejects_an_image_model_on_texts(tmp_path):
    from brainalign.workflow import check_dataset_against_config

    files = {f"{k}.txt": v.encode() for k, v in SENTENCES.items()}
    index = index_dataset(_bids(tmp_path / "bids", _events(list(files)), files), tasks=["read"])
    config = {"fmri": {"rois": {}}, "meeg": None,
              "encoding": {"ridge": {"n_folds": 2, "n_inner_folds": 2}},
              "features": {"models": {"vgg": {"source": "torchvision", "architecture": "vgg16",
                                              "weights": "random", "layers": ["x"]}}}}
    index.runs = []  # only the stimulus-kind check is under test here
    with pytest.raises(ConfigError, match="features.models.vgg is an image model.*texts"):
        check_dataset_against_config(index, config)
