"""NCSNR noise ceilings (Allen et al. 2022, NSD) on simulated voxels with known signal and noise."""

import numpy as np
import pytest
from scipy import stats

from brainalign.errors import BIDSInputError
from brainalign.fmri.responses import (
    average_repeats,
    ncsnr,
    noise_ceiling_from_ncsnr,
    noise_ceiling_from_reliability,
    split_half_reliability,
    zscore_within,
)

#: true signal-to-noise ratios (signal SD / noise SD) of the simulated voxel groups
SNRS = np.array([0.2, 0.5, 1.0, 2.0])


def simulate(rng, *, n_stim=300, n_rep=4, n_vox_per_snr=50, offsets=False):
    """Each run shows every stimulus once (shuffled): beta = gain * (signal + noise) + offset.

    Signal variance 1 - 1 / (1 + snr**2), noise variance 1 / (1 + snr**2): total variance 1.
    """
    snr = np.repeat(SNRS, n_vox_per_snr)
    var_n = 1 / (1 + snr**2)
    var_s = 1 - var_n
    signal = rng.standard_normal((n_stim, snr.size)) * np.sqrt(var_s)
    stim, run, rows = [], [], []
    for r in range(n_rep):
        order = rng.permutation(n_stim)
        noise = rng.standard_normal((n_stim, snr.size)) * np.sqrt(var_n)
        b = signal[order] + noise
        if offsets:  # per run and voxel: a planted gain and offset
            b = b * rng.uniform(0.3, 3.0, snr.size) + rng.uniform(-50, 50, snr.size)
        rows.append(b)
        stim += [f"s{i:03d}" for i in order]
        run += [r] * n_stim
    return np.concatenate(rows), np.array(stim), np.array(run), signal, snr, var_s, var_n


def test_zscore_within_removes_run_offsets_and_scales(rng):
    betas, stim, run, *_ = simulate(rng, n_stim=50, n_vox_per_snr=3, offsets=True)
    z = zscore_within(betas, run)
    for r in np.unique(run):
        np.testing.assert_allclose(z[run == r], stats.zscore(betas[run == r], axis=0),
                                   atol=1e-10)
        np.testing.assert_allclose(z[run == r].mean(0), 0, atol=1e-10)
        np.testing.assert_allclose(z[run == r].std(0), 1, atol=1e-10)
    const = np.ones((6, 2))
    assert np.all(zscore_within(const, [0, 0, 0, 1, 1, 1]) == 0)


@pytest.mark.parametrize("offsets", [False, True])
def test_ncsnr_recovers_planted_snr(rng, offsets):
    betas, stim, run, _, snr_true, *_ = simulate(rng, offsets=offsets)
    snr, noise_sd = ncsnr(zscore_within(betas, run), stim)
    for s in SNRS:
        sel = snr_true == s
        # 300 stimuli x 4 repeats (900 dof): the noise variance is known to ~5%, which at
        # SNR 0.2 (signal variance 0.04) leaves an absolute error of ~0.03 on the ratio
        assert np.median(snr[sel]) == pytest.approx(s, rel=0.06, abs=0.03), s
        assert np.median(noise_sd[sel]) == pytest.approx(np.sqrt(1 / (1 + s**2)), rel=0.03)


def test_run_offsets_break_ncsnr_without_zscoring(rng):
    """The planted run offsets are what z-scoring removes: without it the noise SD is wrong."""
    betas, stim, run, _, snr_true, *_ = simulate(rng, offsets=True)
    raw, _ = ncsnr(betas, stim)
    assert np.median(raw[snr_true == 1.0]) < 0.5


def test_ncsnr_ceiling_equals_analytic_and_empirical_variance_explained(rng):
    n_rep = 4
    betas, stim, run, signal, snr_true, var_s, var_n = simulate(rng, n_rep=n_rep, offsets=True)
    snr, _ = ncsnr(zscore_within(betas, run), stim)
    stimuli = [f"s{i:03d}" for i in range(signal.shape[0])]
    mean, *_ = average_repeats(zscore_within(betas, run), stim, stimuli)
    frac = noise_ceiling_from_ncsnr(snr, n_rep, units="variance")
    r = noise_ceiling_from_ncsnr(snr, n_rep)
    np.testing.assert_allclose(r, np.sqrt(frac))
    analytic = var_s / (var_s + var_n / n_rep)
    # empirical: squared correlation between the true signal and the averaged response
    emp = np.array([np.corrcoef(signal[:, v], mean[:, v])[0, 1] ** 2 for v in range(snr.size)])
    for s in SNRS:
        sel = snr_true == s
        assert np.median(frac[sel]) == pytest.approx(analytic[sel][0], abs=0.03), s
        assert emp[sel].mean() == pytest.approx(analytic[sel][0], abs=0.03), s


def test_ceiling_formula_and_unequal_repeats():
    snr = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(noise_ceiling_from_ncsnr(snr, 3, units="variance"),
                               snr**2 / (snr**2 + 1 / 3))
    # NSD: images with 3, 2 and 1 trials -> 1/n averaged over images
    n = np.array([3, 3, 2, 1])
    inv = (2 / 3 + 1 / 2 + 1) / 4
    np.testing.assert_allclose(noise_ceiling_from_ncsnr(snr, n, units="variance"),
                               snr**2 / (snr**2 + inv))
    with pytest.raises(ValueError, match="units"):
        noise_ceiling_from_ncsnr(snr, 3, units="percent")


def test_noise_pooled_over_repeated_stimuli_only():
    # stimulus b shown once contributes nothing; a: values 0, 2 (var 2); c: 1, 1, 4 (var 3)
    betas = np.array([[0.0], [2.0], [5.0], [1.0], [1.0], [4.0]])
    stim = ["a", "a", "b", "c", "c", "c"]
    _, noise_sd = ncsnr(betas, stim)
    pooled = (1 * 2.0 + 2 * 3.0) / (1 + 2)  # dof-weighted
    assert noise_sd[0] == pytest.approx(np.sqrt(pooled))
    # identical repeats: infinite SNR, ceiling 1; a constant voxel: SNR 0, ceiling 0
    snr, _ = ncsnr(np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]]),
                   ["a", "a", "b", "b"])
    assert np.isinf(snr[0]) and snr[1] == 0
    np.testing.assert_array_equal(noise_ceiling_from_ncsnr(snr, 2), [1.0, 0.0])
    with pytest.raises(BIDSInputError, match="more than once"):
        ncsnr(betas[:3], ["a", "b", "c"])


@pytest.mark.parametrize("n_rep", [2, 4])
def test_ncsnr_and_split_half_ceilings_agree(rng, n_rep):
    """Both estimate corr(signal, average of n trials); on large samples they agree."""
    betas, stim, run, signal, snr_true, var_s, var_n = simulate(rng, n_stim=600, n_rep=n_rep)
    stimuli = [f"s{i:03d}" for i in range(signal.shape[0])]
    _, h1, h2, n_repeats = average_repeats(betas, stim, stimuli)
    split = noise_ceiling_from_reliability(split_half_reliability(h1, h2), n_repeats=n_repeats)
    snr, _ = ncsnr(zscore_within(betas, run), stim)
    nc = noise_ceiling_from_ncsnr(snr, n_repeats)
    truth = np.sqrt(var_s / (var_s + var_n / n_rep))
    for s in SNRS[1:]:  # at SNR 0.2 with 2 repeats the split-half r is too noisy per voxel
        sel = snr_true == s
        assert nc[sel].mean() == pytest.approx(split[sel].mean(), abs=0.03), s
        assert nc[sel].mean() == pytest.approx(truth[sel][0], abs=0.03), s


def _step_inputs(tmp_path, rng, *, n_stim=150, n_rep=4, sessions=("1", "1", "2", "2")):
    """NIfTI betas of a (4, 4, 2) grid, every voxel at SNR 1, with run offsets and gains."""
    import json

    import nibabel as nib
    import pandas as pd

    shape, affine = (4, 4, 2), np.eye(4)
    n_vox = int(np.prod(shape))
    signal = rng.standard_normal((n_stim, n_vox)) * np.sqrt(0.5)
    names = [f"s{i:03d}.png" for i in range(n_stim)]
    betas, trials, masks, sides = [], [], [], []
    for r in range(n_rep):
        order = rng.permutation(n_stim)
        b = signal[order] + rng.standard_normal((n_stim, n_vox)) * np.sqrt(0.5)
        b = b * rng.uniform(0.5, 2.0, n_vox) + rng.uniform(-20, 20, n_vox)
        path = tmp_path / f"betas{r}.nii.gz"
        nib.save(nib.Nifti1Image(b.T.reshape(*shape, n_stim).astype(np.float32), affine), path)
        t = tmp_path / f"trials{r}.tsv"
        pd.DataFrame({"volume": range(n_stim), "stim_file": [names[i] for i in order]}).to_csv(
            t, sep="\t", index=False)
        m = tmp_path / f"mask{r}.nii.gz"
        nib.save(nib.Nifti1Image(np.ones(shape, np.uint8), affine), m)
        side = tmp_path / f"mask{r}.json"
        side.write_text(json.dumps({"MaskMethod": "rois", "ROIVoxels": {"all": {
            "atlas": n_vox, "in_mask": n_vox, "nonfinite": 0, "constant": 0,
            "outside_mask": 0}}}))
        betas.append(str(path)), trials.append(str(t)), masks.append(str(m))
        sides.append(str(side))
    dseg = tmp_path / "dseg.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(shape, np.int16), affine), dseg)
    labels = tmp_path / "labels.tsv"
    labels.write_text("index\tname\n1\tall\n")
    stim = tmp_path / "stimuli.tsv"
    pd.DataFrame({"stim_file": names}).to_csv(stim, sep="\t", index=False)
    return dict(betas=betas, trials=trials, masks=masks, mask_sidecars=sides,
                subject="01", runs=[f"task-x_run-{r + 1}" for r in range(n_rep)],
                stimuli_table=str(stim), dseg=str(dseg), labels=str(labels), roi_names=[],
                sessions=list(sessions))


@pytest.mark.parametrize("within", ["run", "session"])
def test_step_responses_saves_ncsnr_next_to_split_half(tmp_path, rng, within):
    from brainalign.fmri.steps import step_responses

    kw = _step_inputs(tmp_path, rng)
    out = tmp_path / "responses.npz"
    step_responses(**kw, out=str(out), voxels_out=str(tmp_path / "vox.tsv"),
                   zscore_within=within)
    with np.load(out) as z:
        assert z["ncsnr"].shape == z["noise_ceiling_ncsnr"].shape == z["noise_ceiling"].shape
        truth = np.sqrt(0.5 / (0.5 + 0.5 / 4))  # corr(signal, mean of 4 trials) at SNR 1
        # z-scoring within a session of 2 runs leaves the planted run offsets in: only the
        # run-wise z-score recovers the SNR; the split-half ceiling (raw betas) is hurt too
        if within == "run":
            assert np.median(z["ncsnr"]) == pytest.approx(1.0, rel=0.1)
            assert z["noise_ceiling_ncsnr"].mean() == pytest.approx(truth, abs=0.03)
        else:
            assert np.median(z["ncsnr"]) < 0.8
        assert np.all((z["noise_ceiling_ncsnr"] >= 0) & (z["noise_ceiling_ncsnr"] <= 1))
    with pytest.raises(ValueError, match="zscore_within"):
        step_responses(**kw, out=str(out), voxels_out=str(tmp_path / "vox.tsv"),
                       zscore_within="trial")
