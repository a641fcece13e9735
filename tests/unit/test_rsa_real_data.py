"""Real data: human IT RDMs of Kriegeskorte et al. (2008), 92 images, 4 subjects x 2 sessions,
and the 8 model RDMs distributed with them (../shared/data/kriegeskorte2008_92images, copied
byte-for-byte from rsatoolbox's demo data; see PROVENANCE.md there).

Comparisons, noise ceilings and a bootstrap over stimuli are checked against rsatoolbox 0.3 on
the same RDMs. The bootstrap uses the same resampling indices: rsatoolbox draws them from
numpy's legacy global generator, which is seeded and replayed here.
"""

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import squareform

from brainalign import rsa

DATA = (Path(__file__).resolve().parents[3] / "shared" / "data" / "kriegeskorte2008_92images"
        / "original")

pytestmark = pytest.mark.skipif(
    not (DATA / "92_brainRDMs.mat").is_file(),
    reason=f"real data folder {DATA} is absent (../shared/data)")

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import boot_noise_ceiling, eval_bootstrap_pattern  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs, compare  # noqa: E402

RSATOOLBOX_NAMES = {name: c.rsatoolbox_name for name, c in rsa.COMPARISONS.items()}


@pytest.fixture(scope="module")
def kriegeskorte():
    from scipy.io import loadmat

    def load(name, var):
        return loadmat(DATA / name, squeeze_me=True, struct_as_record=False)[var].flat

    subjects = np.stack([squareform(np.asarray(e.RDM, float), checks=False)
                         for e in load("92_brainRDMs.mat", "RDMs")])
    models = {e.name: squareform(np.asarray(e.RDM, float), checks=False)
              for e in load("92_modelRDMs.mat", "Models")}
    return subjects, models


def test_data_are_what_provenance_says(kriegeskorte):
    subjects, models = kriegeskorte
    assert subjects.shape == (8, 92 * 91 // 2)
    assert list(models) == ["animacy", "FaceBodyManmadeNatobj", "monkeyIT", "EVA", "HMAX",
                            "V1", "Silhouette", "RADON"]


@pytest.mark.parametrize("method", ["spearman", "pearson", "rho_a", "cosine", "corr_cov",
                                    "cosine_cov", "kendall_tau_a"])
def test_real_comparisons_and_noise_ceiling_match_rsatoolbox(kriegeskorte, method):
    subjects, models = kriegeskorte
    model_stack = np.stack(list(models.values()))
    if method == "kendall_tau_a":  # exact O(n^2) per pair: three models keep this short
        model_stack = model_stack[[0, 2, 4]]
    ours = rsa.compare_rdms(model_stack, subjects, method=method)
    ref = compare(RDMs(model_stack), RDMs(subjects), method=RSATOOLBOX_NAMES[method])
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)  # 4186 pairs: 1e-10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox: tau noise ceiling pools ranks
        ref_nc = boot_noise_ceiling(RDMs(subjects), method=RSATOOLBOX_NAMES[method])
    lower, upper = rsa.noise_ceiling(subjects, method=method)
    assert (lower, upper) == pytest.approx(ref_nc, abs=1e-10)
    assert 0 < lower < upper < 1


def test_real_findings(kriegeskorte):
    # Kriegeskorte et al. 2008: monkey IT and the animacy category model predict human IT
    # better than the low-level image models
    subjects, models = kriegeskorte
    score = {name: rsa.compare_rdms(m, subjects, method="spearman").mean()
             for name, m in models.items()}
    assert score["monkeyIT"] > score["V1"] and score["animacy"] > score["RADON"]
    lower, upper = rsa.noise_ceiling(subjects, method="spearman")
    assert max(score.values()) < upper


def test_real_bootstrap_matches_eval_bootstrap_pattern(kriegeskorte):
    subjects, models = kriegeskorte
    model_stack = np.stack(list(models.values()))
    n_boot, seed = 20, 1
    # rsatoolbox draws from numpy's legacy global generator: replay its draws, in order
    legacy = np.random.RandomState(seed)  # noqa: NPY002
    indices = np.stack([legacy.randint(0, 92, size=92) for _ in range(n_boot)])
    ours = rsa.bootstrap_compare(model_stack, subjects, method="spearman",
                                 indices={"stimuli": indices}, test_type="t-test")
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # tqdm
            ref = eval_bootstrap_pattern([ModelFixed(n, m) for n, m in models.items()],
                                         RDMs(subjects), method="spearman", N=n_boot)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    # weighted ranks vs materialised samples: tolerance 1e-12
    np.testing.assert_allclose(ours.samples, ref.evaluations, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.noise_ceiling_samples, ref.noise_ceiling.T, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(ours.p_zero, ref.test_zero(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.p_pairwise, ref.test_pairwise(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.p_noise, ref.test_noise(), rtol=1e-9, atol=1e-12)
