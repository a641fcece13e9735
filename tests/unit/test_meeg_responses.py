"""Per-stimulus evoked responses and per-time noise ceilings (brainalign.meeg.responses)."""

import logging

import mne
import numpy as np
import pandas as pd
import pytest

from brainalign.errors import BIDSInputError, ConfigError
from brainalign.fmri.responses import noise_ceiling_from_reliability, split_half_reliability
from brainalign.meeg.responses import evoked_responses

SFREQ = 100.0


def make_epochs(rng, *, n_stim=6, n_rep=3, n_chan=5, n_times=20, eog=False, names=None):
    """EpochsArray of n_stim x n_rep shuffled trials with a stim_file metadata column."""
    order = np.concatenate([rng.permutation(n_stim) for _ in range(n_rep)])
    stim = np.array([f"img{i:02d}.png" for i in order])
    data = rng.standard_normal((order.size, n_chan, n_times)) * 1e-6
    names = names or [f"E{i}" for i in range(n_chan)]
    types = ["eeg"] * n_chan
    if eog:
        names, types = [*names, "EOG1"], [*types, "eog"]
        data = np.concatenate([data, rng.standard_normal((order.size, 1, n_times))], axis=1)
    info = mne.create_info(names, SFREQ, types)
    meta = pd.DataFrame({"stim_file": stim, "onset": np.arange(stim.size) * 2.0,
                         "trial": np.arange(stim.size)})
    return mne.EpochsArray(data, info, tmin=-0.05, metadata=meta, verbose=False)


def test_evoked_averages_equal_mne_epochs_average(rng):
    epochs = make_epochs(rng, n_rep=4)
    stimuli = [f"img{i:02d}.png" for i in range(6)]
    res = evoked_responses(epochs.get_data(), epochs.metadata["stim_file"], stimuli)
    assert list(res.stimuli) == stimuli
    for i, s in enumerate(stimuli):
        sel = epochs[f"stim_file == '{s}'"]
        np.testing.assert_allclose(res.responses[i], sel.average().data, rtol=1e-12, atol=0)
        np.testing.assert_allclose(res.half1[i], sel[0::2].average().data, rtol=1e-12, atol=0)
        np.testing.assert_allclose(res.half2[i], sel[1::2].average().data, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(res.n_repeats, 4)


def test_single_epoch_stimuli_are_kept_unseen_dropped_order_kept(rng, caplog):
    data = rng.standard_normal((9, 2, 4))
    stim = ["b", "a", "c", "b", "a", "c", "b", "a", "d"]  # d once, e never
    with caplog.at_level(logging.WARNING):
        res = evoked_responses(data, stim, ["e", "d", "c", "b", "a"])
    assert list(res.stimuli) == ["d", "c", "b", "a"]
    np.testing.assert_array_equal(res.n_repeats, [1, 2, 3, 3])
    assert np.isnan(res.half2[0]).all() and np.isfinite(res.half2[1:]).all()
    np.testing.assert_allclose(res.responses[0], data[8])
    assert "single epoch" in caplog.text and "'d'" in caplog.text
    rows = [1, 2, 3]  # the ceiling uses c, b, a only
    expected = noise_ceiling_from_reliability(
        split_half_reliability(res.half1[rows].reshape(3, -1), res.half2[rows].reshape(3, -1)),
        n_repeats=res.n_repeats[rows]).reshape(2, 4)
    np.testing.assert_allclose(res.noise_ceiling, expected)


def test_no_epoch_of_the_study_raises(rng):
    with pytest.raises(BIDSInputError, match="stim_file"):
        evoked_responses(rng.standard_normal((3, 2, 4)), ["x", "y", "x"], ["a", "b", "c"])


def test_planted_snr_over_time_gives_the_ceiling_of_the_formula_and_of_the_truth(rng):
    """Signal SD per time point varies (noise SD 1): ceiling = corr(truth, mean of n repeats).

    The true ceiling is sqrt(var_s / (var_s + var_n / n)), and it is also measured directly
    as the correlation across stimuli between the planted signal and the averaged epochs.
    """
    n_stim, n_rep, n_chan = 400, 4, 6
    signal_sd = np.array([0.0, 0.2, 0.5, 1.0, 2.0])
    truth = rng.standard_normal((n_stim, n_chan, signal_sd.size)) * signal_sd
    order = np.concatenate([rng.permutation(n_stim) for _ in range(n_rep)])
    data = truth[order] + rng.standard_normal((order.size, n_chan, signal_sd.size))
    res = evoked_responses(data, order.astype(str), np.arange(n_stim).astype(str))
    formula = np.sqrt(signal_sd**2 / (signal_sd**2 + 1 / n_rep))
    measured = np.array([[np.corrcoef(truth[:, c, t], res.responses[:, c, t])[0, 1]
                          for t in range(1, signal_sd.size)] for c in range(n_chan)])
    ceiling = res.noise_ceiling.mean(axis=0)
    np.testing.assert_allclose(ceiling[1:], formula[1:], atol=0.06)
    np.testing.assert_allclose(ceiling[1:], measured.mean(axis=0), atol=0.06)
    assert ceiling[0] < 0.25  # no signal: split halves do not correlate
    assert np.all(np.diff(ceiling[1:]) > 0)


# --- step ------------------------------------------------------------------------------


def test_step_writes_the_contract_with_channel_groups(tmp_path, rng):
    from brainalign.meeg.steps import step_meeg_responses

    runs = [make_epochs(rng, n_rep=2, eog=True), make_epochs(rng, n_rep=2, eog=True)]
    runs[1].reorder_channels(runs[1].ch_names[::-1])  # same channels, other order
    paths = []
    for k, ep in enumerate(runs):
        paths.append(str(tmp_path / f"run-{k}_epo.fif"))
        ep.save(paths[-1], verbose=False)
    stimuli = ["missing.png"] + [f"img{i:02d}.png" for i in range(6)][::-1]
    out = tmp_path / "resp.npz"
    config = {"ch_types": None, "rois": {"left": ["E0", "E1"], "right": ["E3", "E4"]}}
    step_meeg_responses(paths, stimuli=stimuli, datatype="eeg", config=config, out=str(out))
    with np.load(out, allow_pickle=False) as z:
        assert set(z.files) == {"responses", "half1", "half2", "n_repeats", "stimuli",
                                "channels", "ch_types", "rois", "roi_masks", "times", "sfreq",
                                "noise_ceiling"}
        assert z["responses"].shape == z["half1"].shape == z["half2"].shape == (6, 5, 20)
        assert list(z["stimuli"]) == stimuli[1:]
        assert list(z["channels"]) == [f"E{i}" for i in range(5)]  # EOG left out
        assert set(z["ch_types"]) == {"eeg"}
        assert list(z["rois"]) == ["left", "right"]
        np.testing.assert_array_equal(z["roi_masks"], [[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]])
        np.testing.assert_allclose(z["times"], runs[0].times)
        assert float(z["sfreq"]) == SFREQ
        assert z["noise_ceiling"].shape == (5, 20)
        np.testing.assert_array_equal(z["n_repeats"], 4)
        # chronological halves over runs: run 0's two repeats, then run 1's (as saved: FIF
        # stores single precision)
        saved = [mne.read_epochs(p, verbose=False).pick("eeg") for p in paths]
        both = mne.concatenate_epochs([saved[0], saved[1].reorder_channels(saved[0].ch_names)],
                                      verbose=False)
        sel = both["stim_file == 'img03.png'"]
        i = list(z["stimuli"]).index("img03.png")
        np.testing.assert_allclose(z["responses"][i], sel.average().data, rtol=1e-12)
        np.testing.assert_allclose(z["half2"][i], sel[1::2].average().data, rtol=1e-12)


def test_step_default_group_and_bad_rois(tmp_path, rng):
    from brainalign.meeg.steps import step_meeg_responses

    path = str(tmp_path / "run_epo.fif")
    make_epochs(rng).save(path, verbose=False)
    stimuli = [f"img{i:02d}.png" for i in range(6)]
    out = tmp_path / "resp.npz"
    step_meeg_responses([path], stimuli=stimuli, datatype="eeg",
                        config={"ch_types": ["eeg"], "rois": None}, out=str(out))
    with np.load(out) as z:
        assert list(z["rois"]) == ["eeg"] and z["roi_masks"].all()
    with pytest.raises(ConfigError, match="Oz"):
        step_meeg_responses([path], stimuli=stimuli, datatype="eeg",
                            config={"ch_types": None, "rois": {"occ": ["E1", "Oz"]}},
                            out=str(out))
    with pytest.raises(ConfigError, match="ch_types"):
        step_meeg_responses([path], stimuli=stimuli, datatype="meg",
                            config={"ch_types": ["mag"], "rois": None}, out=str(out))
