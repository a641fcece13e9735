"""Motion correction and motion confounds of the light path (brainalign.fmri.motion).

Planted ground truth: a smooth synthetic head (Gaussian blobs on a sphere, smoothed by a
1-voxel Gaussian like an EPI's point spread; 24 voxels of 3 mm per side) moved by known rigid
transforms per volume (up to 1.5 mm and 2 degrees per axis; scipy.ndimage.affine_transform,
cubic spline). Realignment must recover translations within 0.1 mm and rotations within
0.35 degree (nipy's default estimation: grid sub-sampled 5x, 5 loops; measured 0.03 mm and
0.18 degree). FD and DVARS are nipype's; they are
checked against independent numpy implementations of the published definitions.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import affine_transform, gaussian_filter
from scipy.spatial.transform import Rotation

from brainalign.errors import ConfigError, DataShapeError
from brainalign.fmri import motion
from brainalign.fmri.preprocess import preprocess_light

N, VOX, T = 24, 3.0, 10
AFFINE = np.diag([VOX, VOX, VOX, 1.0])
AFFINE[:3, 3] = -VOX * (N - 1) / 2  # world origin at the grid's centre
TRANS_TOL_MM, ROT_TOL_DEG = 0.1, 0.35


def _rigid(p):
    """4x4 world transform from (translation mm, rotation vector rad)."""
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(p[3:]).as_matrix()
    m[:3, 3] = p[:3]
    return m


def _head(seed=0):
    rng = np.random.default_rng(seed)
    g = np.indices((N, N, N)).reshape(3, -1).T.astype(float)
    vol = np.zeros(N ** 3)
    for _ in range(8):
        c, s = rng.uniform(4, N - 5, 3), rng.uniform(1.5, 2.5)
        vol += rng.uniform(300, 600) * np.exp(-((g - c) ** 2).sum(1) / (2 * s * s))
    sphere = np.linalg.norm(g - (N - 1) / 2, axis=1) < 9
    return gaussian_filter((vol + 1000.0 * sphere).reshape(N, N, N), 1.0)


def _moved_run(true, seed=0):
    """Volume t shows the head moved by transform true[t]: I_t(y) = I_0(T_t^-1 y)."""
    head = _head(seed)
    vols = []
    for p in true:
        v = np.linalg.inv(AFFINE) @ np.linalg.inv(_rigid(p)) @ AFFINE
        vols.append(affine_transform(head, v[:3, :3], offset=v[:3, 3], order=3,
                                     mode="constant"))
    return nib.Nifti1Image(np.stack(vols, -1).astype(np.float32), AFFINE)


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(42)
    true = np.zeros((T, 6))
    true[1:, :3] = rng.uniform(-1.5, 1.5, (T - 1, 3))
    true[1:, 3:] = np.deg2rad(rng.uniform(-2.0, 2.0, (T - 1, 3)))
    return true, _moved_run(true)


def _errors(est, true):
    return (np.abs(est[:, :3] - true[:, :3]).max(),
            np.rad2deg(np.abs(est[:, 3:] - true[:, 3:]).max()))


def test_realign_to_first_volume_recovers_planted_motion(planted):
    true, img = planted
    realigned, est = motion.realign(img, reference="first")
    trans_err, rot_err = _errors(est, true)
    assert trans_err < TRANS_TOL_MM, trans_err
    assert rot_err < ROT_TOL_DEG, rot_err
    # the corrected volumes line up with the first one: far smaller differences than before
    # (cubic-spline resampling twice keeps a small residual)
    inside = np.asarray(img.dataobj)[..., 0] > 500
    raw, fixed = np.asarray(img.dataobj)[inside], np.asarray(realigned.dataobj)[inside]
    before = np.abs(raw[:, 1:].T - raw[:, 0])
    after = np.abs(fixed[:, 1:].T - fixed[:, 0])
    assert after.mean() < 0.2 * before.mean(), (after.mean(), before.mean())


def test_realign_to_mean_recovers_motion_relative_to_first_volume(planted):
    true, img = planted
    _, est = motion.realign(img, reference="mean")
    # the reference is the run's mean position: re-express every volume relative to volume 0
    ref = np.linalg.inv(_rigid(est[0]))
    rel = np.array([np.r_[(ref @ _rigid(p))[:3, 3],
                          Rotation.from_matrix((ref @ _rigid(p))[:3, :3]).as_rotvec()]
                    for p in est])
    trans_err, rot_err = _errors(rel, true)
    assert trans_err < 2 * TRANS_TOL_MM, trans_err
    assert rot_err < 2 * ROT_TOL_DEG, rot_err
    assert np.abs(est[0]).max() > 0.05  # a reference of its own, not volume 0


def _power_fd(params, radius=50.0):
    """Power et al. 2012 from nipy parameters; rotations as Euler angles (M = Rx Ry Rz)."""
    euler = Rotation.from_rotvec(params[:, 3:]).as_euler("XYZ")
    p = np.hstack([params[:, :3], radius * euler])
    return np.r_[0.0, np.abs(np.diff(p, axis=0)).sum(axis=1)]


def test_framewise_displacement_equals_power_2012():
    rng = np.random.default_rng(3)
    params = np.hstack([rng.normal(0, 0.5, (30, 3)), rng.normal(0, 0.02, (30, 3))])
    fd = motion.framewise_displacement(params)
    np.testing.assert_allclose(fd, _power_fd(params), rtol=1e-7, atol=1e-7)
    assert fd[0] == 0.0 and fd.shape == (30,)
    # the parameter table holds the same Euler angles the FD differences
    table = motion.motion_parameters_table(params)
    np.testing.assert_allclose(table[["rot_x", "rot_y", "rot_z"]],
                               Rotation.from_rotvec(params[:, 3:]).as_euler("XYZ"), atol=1e-10)
    np.testing.assert_allclose(table[["trans_x", "trans_y", "trans_z"]], params[:, :3])


def _dvars_numpy(data, mask):
    """DVARS as nipype defines it (Power 2012; Nichols 2013 standardisation), from scratch."""
    x = data[mask].astype(np.float64)
    x = x / np.median(x) * 1000.0
    q75 = np.percentile(x, 75, axis=1, method="lower")
    q25 = np.percentile(x, 25, axis=1, method="lower")
    sd = (q75 - q25) / 1.349
    x, sd = x[sd > 1e-7], sd[sd > 1e-7]
    xc = x - x.mean(axis=1, keepdims=True)
    ar1 = (xc[:, 1:] * xc[:, :-1]).sum(1) / (xc ** 2).sum(1)  # Yule-Walker, lag 1
    diff_sd = np.sqrt(2 * (1 - ar1)) * sd
    d = np.diff(x, axis=1)
    nstd = np.sqrt((d ** 2).mean(axis=0))
    return nstd, nstd / diff_sd.mean()


def test_dvars_equals_numpy_definition():
    rng = np.random.default_rng(5)
    shape, n = (8, 9, 7), 25
    noise = rng.normal(size=shape + (n,))
    ar = np.zeros_like(noise)
    for t in range(n):  # AR(1) noise so the standardisation matters
        ar[..., t] = noise[..., t] + (0.4 * ar[..., t - 1] if t else 0)
    data = (1000 + 200 * rng.random(shape))[..., None] + 15 * ar
    data[..., 12] += 40  # a spike
    mask = np.zeros(shape, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    mask[2, 2, 2] = True
    data[2, 2, 2, :] = 900  # a constant voxel inside the mask: left out by nipype
    img = nib.Nifti1Image(data.astype(np.float32), np.eye(4))
    out = motion.compute_dvars(img, nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)))
    nstd, std = _dvars_numpy(data.astype(np.float32), mask)
    from nipype.interfaces.base import BaseInterface

    assert BaseInterface._etelemetry_version_data is None  # nipype never went online
    assert list(out.columns) == ["dvars", "std_dvars"] and np.isnan(out.iloc[0]).all()
    np.testing.assert_allclose(out["dvars"].to_numpy()[1:], nstd, rtol=1e-4)
    np.testing.assert_allclose(out["std_dvars"].to_numpy()[1:], std, rtol=1e-4)
    assert out["dvars"].to_numpy()[1:].argmax() in (11, 12)  # the spike's two differences


def test_scrubbing_censors_exactly_the_volumes_above_threshold():
    fd = np.array([0.0, 0.1, 0.6, 0.5, 0.2, 0.9, 0.1, 0.1, 0.1, 2.0])
    keep = motion.scrub_sample_mask(fd, threshold_mm=0.5)
    np.testing.assert_array_equal(~keep, fd > 0.5)  # 0.5 itself is kept
    keep = motion.scrub_sample_mask(fd, threshold_mm=0.5, before=1, after=2)
    expect = np.ones(10, bool)
    expect[[1, 2, 3, 4, 4, 5, 6, 7, 8, 9]] = False
    np.testing.assert_array_equal(keep, expect)


def test_params24_terms():
    params = pd.DataFrame(np.arange(18.0).reshape(3, 6) ** 1.5, columns=motion.PARAM_COLUMNS)
    out = motion.expand_params24(params)
    assert list(out.columns) == motion.MOTION_CONFOUNDS["params24"]
    np.testing.assert_allclose(out["rot_y_derivative1"], np.r_[0, np.diff(params["rot_y"])])
    np.testing.assert_allclose(out["trans_x_power2"], params["trans_x"] ** 2)
    np.testing.assert_allclose(out["trans_z_derivative1_power2"],
                               np.r_[0, np.diff(params["trans_z"])] ** 2)


@pytest.mark.parametrize(("options", "match"), [
    ({"motion_reference": "middle"}, "motion_reference' is 'middle'"),
    ({"motion_correction": True, "motion_confounds": ["fd", "rp"]}, r"names \['rp'\]"),
    ({"motion_correction": True, "motion_confounds": ["params6", "params24"]}, "Keep one"),
    ({"motion_correction": True, "motion_confounds": ["fd", "fd"]}, "repeats"),
    ({"motion_confounds": ["params6"]}, "motion_correction' is false"),
    ({"scrub_fd_mm": 0.5}, "scrub_fd_mm' is 0.5 but"),
    ({"motion_correction": True, "scrub_fd_mm": -1}, "positive threshold"),
    ({"motion_correction": True, "scrub_after": -1}, "scrub_after"),
])
def test_motion_options_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        motion.check_motion_options(options)
    motion.check_motion_options({"motion_confounds": ["dvars"]})  # DVARS needs no realignment


def test_preprocess_light_with_motion_correction(planted):
    true, img = planted
    true = true.copy()
    kw = {"n_confounds": 2}
    psc0, _, conf0, info0 = preprocess_light(img, **kw)
    assert "sample_mask" not in info0 and "motion" not in info0
    assert list(conf0.columns) == ["hv_00", "hv_01"]
    psc1, mask1, conf1, info1 = preprocess_light(
        img, motion_correction=True, motion_reference="first",
        motion_confounds=["params6", "fd", "std_dvars"], scrub_fd_mm=4.0, **kw)
    # residual motion: the voxels' temporal SD (percent signal change) of a still head is ~0
    inside = np.asarray(mask1.dataobj) > 0
    sd0 = np.asarray(psc0.dataobj)[inside].std(axis=1).mean()
    sd1 = np.asarray(psc1.dataobj)[inside].std(axis=1).mean()
    assert sd1 < 0.25 * sd0, (sd1, sd0)
    assert list(conf1.columns) == ["hv_00", "hv_01", *motion.PARAM_COLUMNS,
                                   "framewise_displacement", "std_dvars"]
    assert not conf1.isna().any().any()
    table = info1["motion_table"]
    np.testing.assert_allclose(conf1["framewise_displacement"], _power_fd(
        np.hstack([table[motion.PARAM_COLUMNS[:3]],
                   Rotation.from_euler("XYZ", table[motion.PARAM_COLUMNS[3:]]).as_rotvec()])),
        atol=1e-6)
    np.testing.assert_allclose(conf1["trans_x"], true[:, 0], atol=TRANS_TOL_MM)
    fd = conf1["framewise_displacement"].to_numpy()
    np.testing.assert_array_equal(info1["sample_mask"], fd <= 4.0)
    assert info1["motion"]["CensoredVolumes"] == int((fd > 4.0).sum())
    assert info1["motion"]["MaxFramewiseDisplacementMm"] == pytest.approx(fd.max())


def test_realign_refuses_a_single_slice(planted):
    _, img = planted
    with pytest.raises(DataShapeError,
                       match=r"got shape \(24, 24, 1, 10\).*motion_correction: false"):
        motion.realign(img.slicer[:, :, 12:13])


def test_scrubbing_every_volume_is_an_error(planted):
    _, img = planted
    with pytest.raises(DataShapeError, match="leaving fewer than 2"):
        preprocess_light(img.slicer[..., :3], n_confounds=0, motion_correction=True,
                         scrub_fd_mm=0.001, scrub_before=1)


def test_config_validation_checks_motion_keys():
    import copy

    import yaml

    from brainalign.config import validate_config

    base = yaml.safe_load((Path(__file__).parents[2] / "config" / "config.yaml").read_text())
    bad = copy.deepcopy(base)
    bad["fmri"]["light"]["scrub_fd_mm"] = 0.5
    with pytest.raises(ConfigError, match="scrub_fd_mm' is 0.5 but"):
        validate_config(bad, base_dir=".")
    good = copy.deepcopy(base)
    good["fmri"]["light"].update(motion_correction=True, motion_confounds=["params24", "fd"],
                                 scrub_fd_mm=0.5, scrub_after=2)
    assert validate_config(good, base_dir=".")["fmri"]["light"]["motion_reference"] == "mean"
