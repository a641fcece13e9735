"""Representational similarity analysis: RDMs, their comparison, noise ceilings and inference.

Subpackages follow rsatoolbox's nouns and give the same numbers (tests compare against
rsatoolbox 0.3 on the same inputs):

- :mod:`~brainalign.rsa.rdm`: ``calc_rdm``, ``calc_rdm_mahalanobis``, ``calc_rdm_crossnobis``,
  ``calc_rdm_timeseries``, ``zscore_features``
- :mod:`~brainalign.rsa.noise`: ``calc_noise_cov``, ``calc_noise_prec`` (shrinkage estimates)
- :mod:`~brainalign.rsa.compare`: ``compare_rdms``, ``rdm_reliability``, ``COMPARISONS``
- :mod:`~brainalign.rsa.noise_ceiling`: ``noise_ceiling``, ``pool_rdms``
- :mod:`~brainalign.rsa.split_half`: ``split_half_ceiling``, ``rdm_split_half_ceiling``
  (single-subject ceiling from odd/even repeats; brainalign's own, not in rsatoolbox)
- :mod:`~brainalign.rsa.inference`: ``bootstrap_compare``, ``permutation_test``, ``correct_fdr``
- :mod:`~brainalign.rsa.topological`: ``transform_geotopological``, ``transform_geodesic``,
  ``sweep_topological``
"""

from brainalign.rsa.compare import COMPARISONS, Comparison, compare_rdms, rdm_reliability
from brainalign.rsa.inference import (
    BOOTSTRAP_SCHEMES,
    FDR_METHODS,
    BootstrapResult,
    BootstrapScheme,
    PermutationResult,
    bootstrap_compare,
    correct_fdr,
    draw_bootstrap_indices,
    permutation_test,
)
from brainalign.rsa.noise import COV_METHODS, calc_noise_cov, calc_noise_prec
from brainalign.rsa.noise_ceiling import noise_ceiling, pool_rdms
from brainalign.rsa.rdm import (
    RDM_METRICS,
    calc_rdm,
    calc_rdm_crossnobis,
    calc_rdm_mahalanobis,
    calc_rdm_timeseries,
    zscore_features,
)
from brainalign.rsa.split_half import (
    SplitHalfCeiling,
    prophesy_rdm_reliability,
    rdm_split_half_ceiling,
    split_half_ceiling,
)
from brainalign.rsa.topological import (
    THRESHOLD_MODES,
    sweep_topological,
    transform_geodesic,
    transform_geotopological,
)

__all__ = [
    "calc_rdm",
    "calc_rdm_mahalanobis",
    "calc_rdm_crossnobis",
    "calc_rdm_timeseries",
    "zscore_features",
    "RDM_METRICS",
    "calc_noise_cov",
    "calc_noise_prec",
    "COV_METHODS",
    "compare_rdms",
    "rdm_reliability",
    "COMPARISONS",
    "Comparison",
    "noise_ceiling",
    "pool_rdms",
    "split_half_ceiling",
    "rdm_split_half_ceiling",
    "SplitHalfCeiling",
    "prophesy_rdm_reliability",
    "bootstrap_compare",
    "BootstrapResult",
    "draw_bootstrap_indices",
    "permutation_test",
    "PermutationResult",
    "correct_fdr",
    "BOOTSTRAP_SCHEMES",
    "BootstrapScheme",
    "FDR_METHODS",
    "transform_geotopological",
    "transform_geodesic",
    "sweep_topological",
    "THRESHOLD_MODES",
]
