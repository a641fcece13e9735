"""Real BOLD (Haxby 2001, subject 1, one slice) through the light path and the trial GLM.

Reference: nilearn's FirstLevelModel fitted on the same image with the same design matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign import fmri

HAXBY = (Path(__file__).resolve().parents[3] / "shared" / "data" / "haxby2001_pymvpa"
         / "haxby2001" / "sub001" / "BOLD" / "task001_run001")

pytestmark = pytest.mark.skipif(
    not HAXBY.is_dir(), reason=f"real data folder {HAXBY} is absent (../shared/data)")


def test_light_path_and_trial_betas_match_nilearn_first_level_model():
    from nilearn.glm.first_level import FirstLevelModel
    from nilearn.masking import apply_mask

    bold = HAXBY / "bold_1slice.nii.gz"
    events = pd.read_csv(HAXBY / "bold_events.tsv", sep="\t")
    preproc, mask, conf, _ = fmri.preprocess_light(bold, n_confounds=3)
    assert preproc.shape[3] == 121 and conf.shape == (121, 3)
    data = apply_mask(preproc, mask)
    # percent signal change: every voxel's time course has mean 0
    assert np.abs(data.mean(0)).max() < 1e-3
    design, cols = fmri.single_trial_design(events, data.shape[0], 2.5, confounds=conf)
    assert len(cols) == len(events) == 8
    betas = fmri.fit_single_trial_betas(data, design, cols, noise_model="ar1")

    flm = FirstLevelModel(mask_img=mask, noise_model="ar1", minimize_memory=False,
                          signal_scaling=False)
    flm.fit(preproc, design_matrices=[design])
    for i, col in enumerate(cols):
        ref = apply_mask(flm.compute_contrast(col, output_type="effect_size"), mask)
        np.testing.assert_allclose(betas[i], ref, rtol=1e-5, atol=1e-6)
    # real signal: faces and houses evoke different responses in this ventral slice. Under the
    # null, |z| > 3.3 (p < 0.001) would hold for ~0.5 of the 530 voxels; 30 reach it here.
    col = dict(zip(events["trial_type"], cols, strict=True))
    z = apply_mask(flm.compute_contrast(f"{col['face']} - {col['house']}", stat_type="t",
                                        output_type="z_score"), mask)
    assert (np.abs(z) > 3.3).sum() >= 10
    # and our betas carry that difference: it correlates with the contrast's z map
    diff = betas[cols.index(col["face"])] - betas[cols.index(col["house"])]
    assert np.corrcoef(diff, z)[0, 1] > 0.8
