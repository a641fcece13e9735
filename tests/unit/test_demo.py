"""Unit tests of brainalign.demo: stimulus drawing and the generated BIDS dataset."""

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainalign.demo import COLOURS, SHAPES, DemoSpec, draw_stimulus, make_demo_dataset
from brainalign.io import read_tsv

SMALL = {"n_subjects": 1, "n_runs": 2, "grid_shape": (12, 12, 8), "n_roi_voxels": 20}
GREY = (128, 128, 128)

# ---------------------------------------------------------------------------------------------
# draw_stimulus


def _pixels(shape, colour, ori):
    img = draw_stimulus(shape, colour, ori)
    assert img.mode == "RGB"
    assert img.size == (224, 224)
    return np.asarray(img)


def _shape_mask(pixels):
    # the shape is every pixel that is not the grey background (the mask is drawn without
    # anti-aliasing, and no stripe colour is pure grey)
    return ~np.all(pixels == GREY, axis=-1)


def test_draw_stimulus_size_and_mode():
    img = draw_stimulus("circle", "red", 0, size=64)
    assert img.mode == "RGB" and img.size == (64, 64)
    assert np.asarray(img).dtype == np.uint8
    assert tuple(np.asarray(img)[0, 0]) == GREY  # corner is background


def test_draw_stimulus_colour_changes_pixels_not_shape():
    red, blue = _pixels("star", "red", 60), _pixels("star", "blue", 60)
    np.testing.assert_array_equal(_shape_mask(red), _shape_mask(blue))
    inside = _shape_mask(red)
    assert np.all(np.any(red[inside] != blue[inside], axis=-1))
    # the brightest stripe pixels carry exactly the nominal colour
    assert tuple(red[inside].max(axis=0)) == COLOURS["red"]


def test_draw_stimulus_orientation_changes_stripes_not_shape():
    a, b = _pixels("square", "green", 0), _pixels("square", "green", 120)
    np.testing.assert_array_equal(_shape_mask(a), _shape_mask(b))
    assert not np.array_equal(a, b)


def test_draw_stimulus_shapes_differ():
    masks = {s: _shape_mask(_pixels(s, "yellow", 0)) for s in SHAPES}
    for i, s in enumerate(SHAPES):
        assert 0.1 < masks[s].mean() < 0.6  # a sizeable shape on the background
        for t in SHAPES[i + 1 :]:
            assert not np.array_equal(masks[s], masks[t]), (s, t)
    # the circle's area is pi r^2 with r = 0.36 * 224 pixels (to 2 %)
    assert masks["circle"].sum() == pytest.approx(np.pi * (0.36 * 224) ** 2, rel=0.02)


def test_draw_stimulus_unknown_shape():
    with pytest.raises(ValueError, match=r"Unknown shape 'hexagon'"):
        draw_stimulus("hexagon", "red", 0)


# ---------------------------------------------------------------------------------------------
# the planted features: an independent read-out of EfficientNet-Lite0 agrees with brainalign's


def test_planted_features_agree_with_brainalign_features(tmp_path):
    """Hooks on the raw package modules vs the traced-graph read-out of brainalign.features.

    The demo plants its truth through the first path and the workflow recovers it through the
    second, so a wrong layer map in either one fails here (the stages have distinct outputs:
    a map off by one block gives other values, or another shape).
    """
    from brainalign.demo import _load_stimuli, _planted_features
    from brainalign.features import ARCHITECTURES, build_model, extract_features, load_images

    paths = []
    for shape, colour, ori in [("circle", "red", 0), ("star", "blue", 60),
                               ("triangle", "yellow", 120)]:
        paths.append(tmp_path / f"{shape}.png")
        draw_stimulus(shape, colour, ori).save(paths[-1])
    layers = list(ARCHITECTURES["efficientnet_lite0"].layers)  # stem, stage1..7, head, logits
    planted = _planted_features(paths, layers, spatial_pool=2, batch_size=2)
    model = build_model({"architecture": "efficientnet_lite0", "weights": "shipped", "seed": 0})
    recovered = extract_features(model, "efficientnet_lite0", paths, layers, spatial_pool=2,
                                 batch_size=3, device="cpu")
    widths = {"stem": 32, "stage1": 16, "stage2": 24, "stage3": 40, "stage4": 80, "stage5": 112,
              "stage6": 192, "stage7": 320, "head": 1280}
    for layer in layers:
        n = 1000 if layer == "logits" else widths[layer] * 4
        assert planted[layer].shape == recovered[layer].shape == (3, n), layer
        np.testing.assert_allclose(planted[layer], recovered[layer], rtol=1e-4, atol=1e-4,
                                   err_msg=layer)
    # the tolerance tells neighbouring blocks apart: block 1 has stage2's width (stage2 ends at
    # block 2), and its output is far from stage2's, so a map off by one block fails above
    import torch
    import torch.nn.functional as F

    grabbed = {}
    hook = model._blocks[1].register_forward_hook(lambda _m, _i, out: grabbed.setdefault(1, out))
    with torch.no_grad():
        model(load_images(paths))
    hook.remove()
    block1 = F.adaptive_avg_pool2d(grabbed[1], 2).flatten(1).numpy()
    assert block1.shape == recovered["stage2"].shape
    assert np.abs(block1 - recovered["stage2"]).max() > 0.1
    # the two image loaders agree exactly (the planted path does not import brainalign's)
    np.testing.assert_array_equal(_load_stimuli(paths).numpy(), load_images(paths).numpy())


# ---------------------------------------------------------------------------------------------
# make_demo_dataset (one generation shared by the module)


@pytest.fixture(scope="module")
def demo(small_demo):
    """DemoSpec(**SMALL), generated once per session (tests/conftest.py, shared with
    test_demo_eeg.py)."""
    out, bids = small_demo
    assert json.loads((out / "truth.json").read_text())["spec"]["grid_shape"] == list(
        SMALL["grid_shape"])
    return out, bids


def _runs(bids):
    return sorted((bids / "sub-01" / "func").glob("*_events.tsv"))


def test_demo_layout(demo):
    out, bids = demo
    assert bids == out / "bids"
    assert (bids / "dataset_description.json").is_file()
    assert (out / "truth.json").is_file()
    assert not (bids / "truth.json").exists()  # the truth stays outside the BIDS dataset
    assert len(_runs(bids)) == 2
    assert len(sorted((bids / "sub-01" / "func").glob("*_bold.nii.gz"))) == 2
    assert not (bids / "sub-02").exists()
    # no partial temporary folder is left next to the output
    assert [p.name for p in out.parent.iterdir()] == ["out"]
    truth = json.loads((out / "truth.json").read_text())
    assert truth["spec"]["seed"] == 0
    assert truth["subjects"]["01"]["roi_n_voxels"] == {"early": 20, "late": 20, "null": 20}


def test_demo_refuses_existing_folder(demo):
    out, _ = demo
    with pytest.raises(FileExistsError, match=r"already exists"):
        make_demo_dataset(out, spec=DemoSpec(**SMALL))


def test_demo_rejects_odd_run_count(tmp_path):
    with pytest.raises(ValueError, match=r"n_runs must be even and >= 2, got 3"):
        make_demo_dataset(tmp_path / "odd", spec=DemoSpec(**{**SMALL, "n_runs": 3}))
    assert not (tmp_path / "odd").exists()


def test_demo_events_reference_existing_stimuli(demo):
    _, bids = demo
    stimuli = {p.name for p in (bids / "stimuli").glob("*.png")}
    assert len(stimuli) == len(SHAPES) * len(COLOURS) * 3
    for events_path in _runs(bids):
        events = read_tsv(events_path)
        assert list(events.columns[:2]) == ["onset", "duration"]
        assert np.all(np.diff(events["onset"]) > 0)
        for stim_file in events["stim_file"]:
            assert (bids / "stimuli" / stim_file).is_file(), stim_file
        # trial_type is the shape of the image
        assert all(
            f.startswith(t + "_")
            for f, t in zip(events["stim_file"], events["trial_type"], strict=True)
        )


def test_demo_each_stimulus_once_per_pair_of_runs(demo):
    _, bids = demo
    stimuli = {p.name for p in (bids / "stimuli").glob("*.png")}
    shown = Counter()
    for events_path in _runs(bids):
        shown.update(read_tsv(events_path)["stim_file"])
    assert set(shown) == stimuli
    assert set(shown.values()) == {1}


def test_demo_repetition_time(demo):
    _, bids = demo
    sidecar = json.loads((bids / "task-demo_bold.json").read_text())
    assert sidecar["RepetitionTime"] == 2.0
    for events_path in _runs(bids):
        bold = events_path.with_name(events_path.name.replace("_events.tsv", "_bold.nii.gz"))
        img = nib.load(bold)
        assert img.header["pixdim"][4] == 2.0
        assert img.header.get_xyzt_units() == ("mm", "sec")
        assert img.shape[:3] == SMALL["grid_shape"]
        # the run covers every trial plus the 16 s tail (onsets are rounded to 1 ms in the TSV)
        last_onset = read_tsv(events_path)["onset"].max()
        assert img.shape[3] * 2.0 >= last_onset + 16.0 - 1e-3


def _find_validator():
    found = shutil.which("bids-validator-deno")
    if found:
        return found
    for candidate in (
        Path(sys.prefix) / "bin" / "bids-validator-deno",
        Path(__file__).resolve().parents[2] / ".venv" / "bin" / "bids-validator-deno",
    ):
        if candidate.is_file():
            return str(candidate)
    return None


def test_demo_passes_bids_validator(demo):
    validator = _find_validator()
    if validator is None:
        pytest.skip("bids-validator-deno is not installed (pip install bids-validator-deno)")
    _, bids = demo
    proc = subprocess.run(
        [validator, "--format", "json", str(bids)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"validator gave no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}")
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert errors == [], errors


def test_demo_is_deterministic(demo, tmp_path):
    out, bids = demo
    bids2 = make_demo_dataset(tmp_path / "again", spec=DemoSpec(**SMALL))
    files = sorted(p.relative_to(bids) for p in bids.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(bids2) for p in bids2.rglob("*") if p.is_file())
    for rel in files:
        if rel.name.endswith(".nii.gz"):
            a, b = nib.load(bids / rel), nib.load(bids2 / rel)
            assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj)), rel
            np.testing.assert_array_equal(a.affine, b.affine)
        elif rel.suffix == ".tsv":
            pd.testing.assert_frame_equal(read_tsv(bids / rel), read_tsv(bids2 / rel))
        else:
            assert (bids / rel).read_bytes() == (bids2 / rel).read_bytes(), rel
    assert (out / "truth.json").read_text() == (tmp_path / "again" / "truth.json").read_text()
    # the two runs of the dataset are not copies of each other
    runs = sorted((bids / "sub-01" / "func").glob("*_bold.nii.gz"))
    a, b = (np.asanyarray(nib.load(r).dataobj) for r in runs)
    assert a.shape != b.shape or not np.array_equal(a, b)
