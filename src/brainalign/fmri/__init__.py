"""fMRI responses: preprocessing, single-trial betas, stimulus averages, ROIs, noise ceilings.

The heavy lifting is nilearn's (masking, confounds, design matrices, the AR(1) GLM); this
package chains it into per-stimulus response matrices.

Modules
-------
``preprocess``
    :data:`PREPROCESSORS` (the built-in *light* path: mask, percent signal change, confounds).
``glm``
    :func:`single_trial_design`, :func:`fit_single_trial_betas` (LSA or LSS, our own fits
    equal to nilearn's).
``responses``
    :func:`average_repeats`, split-half reliability and noise ceilings.
``masks``
    Brain masks from the data, the ROIs or a file; ROI voxels kept and removed per run.
``steps``
    The workflow steps (read inputs, call the above, write outputs).
"""

from brainalign.fmri.glm import fit_single_trial_betas, single_trial_design
from brainalign.fmri.preprocess import PREPROCESSORS, edge_mask, preprocess_light
from brainalign.fmri.responses import (
    average_repeats,
    noise_ceiling_from_reliability,
    spearman_brown,
    split_half_reliability,
)

__all__ = [
    "PREPROCESSORS",
    "preprocess_light",
    "edge_mask",
    "single_trial_design",
    "fit_single_trial_betas",
    "average_repeats",
    "split_half_reliability",
    "spearman_brown",
    "noise_ceiling_from_reliability",
]
