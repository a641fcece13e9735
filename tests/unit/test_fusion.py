"""M/EEG-fMRI fusion (Cichy et al. 2014): every time point's RDM against every fMRI ROI's RDM.

Checked against scipy (``spearmanr`` / ``pearsonr`` per time point and ROI, RDMs subset through
``squareform``) and planted timing: M/EEG patterns that take one ROI's geometry early and the
other's late give fusion peaks in that order.
"""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr, spearmanr

from brainalign.errors import DataShapeError
from brainalign.io import read_tsv, save_npz
from brainalign.meeg.steps import step_meeg_fusion
from brainalign.rsa.fusion import fusion_scores, shared_stimuli, subset_rdms


def _names(n, prefix="s"):
    return np.array([f"{prefix}{i:02d}.png" for i in range(n)])


def test_subset_rdms_matches_squareform(rng):
    stim = _names(9)
    rdms = np.stack([pdist(rng.standard_normal((9, 4))) for _ in range(3)])
    keep = stim[[7, 2, 5, 0]]
    got = subset_rdms(rdms, stim, keep)
    idx = [7, 2, 5, 0]
    for k in range(3):
        ref = squareform(squareform(rdms[k])[np.ix_(idx, idx)], checks=False)
        np.testing.assert_array_equal(got[k], ref)
    with pytest.raises(DataShapeError, match="missing"):
        subset_rdms(rdms, stim, ["absent.png"])
    with pytest.raises(DataShapeError, match="stimulus names"):
        subset_rdms(rdms, stim[:8], keep)


def test_shared_stimuli_keeps_the_reference_order():
    got = shared_stimuli(["c", "a", "b", "d"], ["a", "b", "c"], ["b", "c", "x", "a"])
    assert got.tolist() == ["c", "a", "b"]


@pytest.mark.parametrize(("method", "ref"), [("spearman", spearmanr), ("pearson", pearsonr)])
def test_fusion_scores_match_scipy(rng, method, ref):
    meeg = rng.standard_normal((6, 45))
    fmri = rng.standard_normal((3, 45))
    meeg[:, :5] = np.round(meeg[:, :5])  # ties for the rank correlation
    got = fusion_scores(meeg, fmri, method=method)
    assert got.shape == (3, 6)
    for k in range(3):
        for t in range(6):
            np.testing.assert_allclose(got[k, t], ref(fmri[k], meeg[t])[0], atol=1e-12)


def test_fusion_scores_leave_out_missing_pairs(rng):
    meeg = rng.standard_normal((4, 28))
    fmri = rng.standard_normal(28)
    fmri[[3, 10]] = np.nan
    keep = np.ones(28, bool)
    keep[[3, 10]] = False
    got = fusion_scores(meeg, fmri)
    for t in range(4):
        np.testing.assert_allclose(got[0, t], spearmanr(fmri[keep], meeg[t, keep])[0],
                                   atol=1e-12)
    meeg[2, 5] = np.nan  # a time point whose RDM lacks a pair: no score there
    got = fusion_scores(meeg, fmri)
    assert np.isnan(got[0, 2]) and np.isfinite(got[0, [0, 1, 3]]).all()
    with pytest.raises(DataShapeError, match="same stimuli"):
        fusion_scores(meeg, fmri[:21])
    with pytest.raises(DataShapeError, match="No stimulus pair"):
        fusion_scores(meeg, np.full(28, np.nan))


def _planted(rng, n_stim=30, n_times=40):
    """Two fMRI ROIs with independent geometries; M/EEG takes A's at t 10, B's at t 28."""
    pat_a = rng.standard_normal((n_stim, 50))
    pat_b = rng.standard_normal((n_stim, 50))
    t = np.arange(n_times)
    w_a = np.exp(-0.5 * ((t - 10) / 3) ** 2)
    w_b = np.exp(-0.5 * ((t - 28) / 3) ** 2)
    mix = rng.standard_normal((50, 64))  # fMRI geometry seen through 64 channels
    noise = rng.standard_normal((n_times, n_stim, 64))
    patterns = (w_a[:, None, None] * (pat_a @ mix)[None] + w_b[:, None, None] *
                (pat_b @ mix)[None] + 0.4 * noise * np.sqrt(50))
    meeg = np.stack([pdist(p, "correlation") for p in patterns])
    return pat_a, pat_b, meeg


def test_planted_timing_and_order(rng):
    pat_a, pat_b, meeg = _planted(rng)
    fmri = np.stack([pdist(pat_a, "correlation"), pdist(pat_b, "correlation")])
    got = fusion_scores(meeg, fmri)
    peaks = np.argmax(got, axis=1)
    assert abs(peaks[0] - 10) <= 2 and abs(peaks[1] - 28) <= 2
    assert got[0, 10] > 0.5 and got[1, 28] > 0.5
    assert abs(got[:, :3].mean()) < 0.1  # before either geometry appears


def test_step_aligns_stimuli_and_averages_fmri_subjects(tmp_path, rng):
    n_stim, n_times = 30, 40
    pat_a, pat_b, meeg = _planted(rng, n_stim, n_times)
    stim = _names(n_stim)
    times = np.linspace(-0.1, 0.29, n_times)
    save_npz(tmp_path / "meeg.npz", rois=np.array(["eeg"]), times=times, stimuli=stim,
             rdm_eeg=meeg, ceiling_eeg=np.full(n_times, 0.7),
             ceiling_lower_eeg=np.full(n_times, 0.6))
    # two fMRI subjects: noisy copies of the geometries, other stimulus orders, one of them
    # without the last stimulus and with an extra ROI
    subjects = []
    for s, (order, extra) in enumerate([(rng.permutation(n_stim), True),
                                        (rng.permutation(n_stim - 1), False)]):
        sq = {}
        for roi, pat in (("V1", pat_a), ("IT", pat_b)):
            noisy = pat[order] + 0.3 * rng.standard_normal((order.size, pat.shape[1]))
            sq[roi] = pdist(noisy, "correlation")
        if extra:
            sq["FFA"] = pdist(rng.standard_normal((order.size, 5)))
        path = tmp_path / f"fmri{s}.npz"
        save_npz(path, rois=np.array(list(sq)), stimuli=stim[order],
                 **{f"rdm_{k}": v for k, v in sq.items()})
        subjects.append((path, order, sq))
    out = tmp_path / "fusion.tsv"
    step_meeg_fusion(str(tmp_path / "meeg.npz"), [str(p) for p, _, _ in subjects], subject="01",
                     datatype="eeg", comparison="spearman", out=str(out))
    t = read_tsv(out)
    assert set(t["layer"]) == {"V1", "IT"}  # FFA is not in every file
    assert (t["analysis"] == "fusion").all() and (t["model"] == "fmri").all()
    assert (t["roi"] == "eeg").all() and (t["metric"] == "spearman").all()
    assert (t["modality"] == "eeg").all() and (t["n_stimuli"] == n_stim - 1).all()
    assert t["noise_ceiling"].isna().all()  # not every M/EEG stimulus is used
    # reference: square matrices, reordered to the M/EEG order over the shared stimuli
    shared = list(range(n_stim - 1))
    for roi in ("V1", "IT"):
        mats = []
        for _, order, sq in subjects:
            m = np.full((n_stim, n_stim), np.nan)
            m[np.ix_(order, order)] = squareform(sq[roi])
            mats.append(m[np.ix_(shared, shared)])
        fmri_mean = squareform(np.mean(mats, axis=0), checks=False)
        rows = t[t["layer"] == roi].sort_values("time")
        np.testing.assert_allclose(rows["time"], times, atol=1e-12)
        for k in (0, 10, 28):
            meeg_k = squareform(squareform(meeg[k])[np.ix_(shared, shared)], checks=False)
            np.testing.assert_allclose(rows["score"].iloc[k], spearmanr(fmri_mean, meeg_k)[0],
                                       atol=1e-12)
    v1 = t[t["layer"] == "V1"].reset_index(drop=True)
    it = t[t["layer"] == "IT"].reset_index(drop=True)
    assert v1.loc[v1["score"].idxmax(), "time"] < it.loc[it["score"].idxmax(), "time"]


def test_step_ceiling_when_every_stimulus_is_shared(tmp_path, rng):
    stim = _names(8)
    meeg = rng.standard_normal((5, 28))
    save_npz(tmp_path / "meeg.npz", rois=np.array(["occ"]), times=np.arange(5) / 100,
             stimuli=stim, rdm_occ=meeg, ceiling_occ=np.linspace(0.1, 0.5, 5),
             ceiling_lower_occ=np.linspace(0.0, 0.4, 5))
    save_npz(tmp_path / "fmri.npz", rois=np.array(["V1"]), stimuli=stim[::-1],
             rdm_V1=rng.standard_normal(28))
    out = tmp_path / "f.tsv"
    step_meeg_fusion(str(tmp_path / "meeg.npz"), [str(tmp_path / "fmri.npz")], subject="02",
                     datatype="meg", comparison="pearson", out=str(out))
    t = read_tsv(out)
    np.testing.assert_allclose(t["noise_ceiling"], np.linspace(0.1, 0.5, 5))
    np.testing.assert_allclose(t["noise_ceiling_lower"], np.linspace(0.0, 0.4, 5))


def test_step_errors(tmp_path, rng):
    save_npz(tmp_path / "meeg.npz", rois=np.array(["occ"]), times=np.arange(2) / 100,
             stimuli=_names(4), rdm_occ=rng.standard_normal((2, 6)))
    save_npz(tmp_path / "fmri.npz", rois=np.array(["V1"]), stimuli=_names(4, "other"),
             rdm_V1=rng.standard_normal(6))
    with pytest.raises(DataShapeError, match="shared with the fMRI"):
        step_meeg_fusion(str(tmp_path / "meeg.npz"), [str(tmp_path / "fmri.npz")],
                         subject="01", datatype="eeg", comparison="spearman",
                         out=str(tmp_path / "o.tsv"))
    with pytest.raises(DataShapeError, match="No fMRI RDM file"):
        step_meeg_fusion(str(tmp_path / "meeg.npz"), [], subject="01", datatype="eeg",
                         comparison="spearman", out=str(tmp_path / "o.tsv"))
