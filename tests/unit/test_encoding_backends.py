"""The torch backend runs the numpy algorithm: same penalties, same predictions."""

import numpy as np
import pytest

from brainalign.encoding import BandedRidgeCV, RidgeCV
from brainalign.errors import ConfigError

torch = pytest.importorskip("torch")

ALPHAS = np.logspace(-2, 4, 9)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _data(rng, n, p, n_targets=40):
    x = rng.standard_normal((n, p)) + 0.5
    y = (x @ rng.standard_normal((p, n_targets))) * np.linspace(0, 0.4, n_targets)
    return x, y + rng.standard_normal((n, n_targets)), rng.standard_normal((15, p)) + 0.5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-5), ("float32", 1e-3)])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"standardize": False, "scoring": "neg_mse"},
        {"cv": "loo", "standardize": False, "scoring": "neg_mse"},
        {"scoring": "r2", "fit_intercept": False, "standardize": False},
    ],
    ids=["default", "himalaya", "loo", "r2-no-intercept"],
)
@pytest.mark.parametrize(("n", "p"), [(70, 20), (50, 110)], ids=["primal", "dual"])
def test_torch_matches_numpy(rng, n, p, params, dtype, rtol, device):
    x, y, x_new = _data(rng, n, p)
    ref = RidgeCV(ALPHAS, dtype=dtype, **params).fit(x, y)
    got = RidgeCV(
        ALPHAS, dtype=dtype, backend="torch", device=device, n_targets_batch=9, **params
    ).fit(x, y)
    assert got.solver_ == ref.solver_
    np.testing.assert_array_equal(got.alpha_, ref.alpha_)
    scale = np.abs(ref.predict(x_new)).max()
    np.testing.assert_allclose(got.predict(x_new), ref.predict(x_new), rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(got.cv_sse_, ref.cv_sse_, rtol=rtol)
    assert isinstance(got.coef_, np.ndarray) and got.coef_.dtype == np.dtype(dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_banded_matches_numpy(rng, device):
    xa, xb = rng.standard_normal((50, 30)), rng.standard_normal((50, 70))
    y = xa @ rng.standard_normal((30, 12)) + rng.standard_normal((50, 12))
    x = np.hstack([xa, xb])
    kw = dict(feature_spaces=(30, 70), gammas=5, n_folds=4)
    ref = BandedRidgeCV(ALPHAS, **kw).fit(x, y)
    got = BandedRidgeCV(ALPHAS, backend="torch", device=device, **kw).fit(x, y)
    np.testing.assert_array_equal(got.gamma_, ref.gamma_)
    np.testing.assert_array_equal(got.alpha_, ref.alpha_)
    np.testing.assert_allclose(got.predict(x), ref.predict(x), rtol=1e-8, atol=1e-8)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_request_without_gpu_is_explained(rng):
    x, y, _ = _data(rng, 20, 4)
    with pytest.raises(ConfigError, match=r"Unavailable device for backend 'torch'.*cuda"):
        RidgeCV(ALPHAS, backend="torch", device="cuda").fit(x, y)
