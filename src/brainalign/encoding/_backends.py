"""Array backends of the ridge solvers: one small adapter per array library.

The solvers are written once against the few operations listed in :class:`NumpyBackend`; the
arithmetic operators, ``@``, ``.T``, ``.sum(axis)``, ``.mean(axis)``, ``.reshape``, ``.clip`` and
integer or boolean indexing are shared by NumPy arrays and torch tensors, so the same code runs on
both. Results always come back to the caller as NumPy arrays on the host.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache
from typing import Any

import numpy as np

from brainalign.errors import ConfigError

__all__ = ["BACKENDS", "DTYPES", "NumpyBackend", "TorchBackend", "get_backend"]

#: Floating-point precisions the solvers accept, by name.
DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


@cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController()


def _one_blas_thread() -> AbstractContextManager:
    """Run the enclosed LAPACK call on one BLAS thread.

    The symmetric eigensolver spends its time in the memory-bound tridiagonal reduction: with
    OpenBLAS it gains nothing from a second thread, and on a busy machine its threads spin at
    every barrier (1000 x 1000: 0.3 s on one thread, 0.5-8 s on two, measured here).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


class NumpyBackend:
    """NumPy arrays on the host.

    Parameters
    ----------
    dtype : numpy.dtype
        Floating-point precision of every array the solver creates.
    device : str
        Only ``"cpu"``.
    """

    name = "numpy"

    def __init__(self, dtype: np.dtype, device: str = "cpu"):
        if device != "cpu":
            raise ConfigError(
                f"Unknown device for backend 'numpy': expected 'cpu', got {device!r}. "
                "Use backend='torch' to run on a GPU."
            )
        self.dtype = np.dtype(dtype)
        self.device = device

    def asarray(self, a: Any) -> np.ndarray:
        """Host array in the backend's precision (no copy when already right)."""
        return np.ascontiguousarray(a, dtype=self.dtype)

    def asindex(self, idx: np.ndarray) -> np.ndarray:
        """Integer index array usable on this backend's arrays."""
        return np.asarray(idx, dtype=np.intp)

    def to_numpy(self, a: Any) -> np.ndarray:
        """NumPy view or copy of a backend array."""
        return np.asarray(a)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        """Zero array of the backend's precision."""
        return np.zeros(shape, dtype=self.dtype)

    def std(self, a: np.ndarray) -> np.ndarray:
        """Column standard deviation with ddof=0."""
        return a.std(0)

    def eigh(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (one BLAS thread)."""
        with _one_blas_thread():
            return np.linalg.eigh(a)


class TorchBackend:
    """Torch tensors on a CPU or CUDA device.

    Parameters
    ----------
    dtype : numpy.dtype
        Floating-point precision of every tensor the solver creates.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.
    """

    name = "torch"

    def __init__(self, dtype: np.dtype, device: str = "cpu"):
        import torch  # imported here: numpy-only users do not pay for it

        self._torch = torch
        self.dtype = np.dtype(dtype)
        self._tdtype = {"float32": torch.float32, "float64": torch.float64}[self.dtype.name]
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(
                f"Unavailable device for backend 'torch': expected a visible CUDA GPU for "
                f"device={device!r}, got torch.cuda.is_available() == False. "
                "Use device='cpu' or run on a GPU node."
            )
        self.device = torch.device(device)

    def asarray(self, a: Any):
        """Tensor on the backend's device in its precision."""
        torch = self._torch
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=self._tdtype)
        return torch.as_tensor(np.asarray(a, dtype=self.dtype), device=self.device)

    def asindex(self, idx: np.ndarray):
        """Integer index tensor on the backend's device."""
        return self._torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        """Host NumPy copy of a tensor."""
        return a.detach().cpu().numpy()

    def zeros(self, shape: tuple[int, ...]):
        """Zero tensor of the backend's precision."""
        return self._torch.zeros(shape, dtype=self._tdtype, device=self.device)

    def std(self, a):
        """Column standard deviation with ddof=0."""
        return a.std(0, correction=0)

    def eigh(self, a):
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix.

        On the CPU it runs on one thread, for the reason given in :func:`_one_blas_thread`
        (MKL's eigensolver behaves like OpenBLAS's there: 0.25 s on one thread, 0.3-1.6 s on
        two for 1000 x 1000).
        """
        torch = self._torch
        if self.device.type != "cpu":
            return torch.linalg.eigh(a)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return torch.linalg.eigh(a)
        finally:
            torch.set_num_threads(threads)


#: Backends by name: ``backend=`` of the estimators picks one.
BACKENDS = {"numpy": NumpyBackend, "torch": TorchBackend}


def get_backend(name: str, *, dtype: str, device: str) -> NumpyBackend | TorchBackend:
    """Instantiate a backend by name.

    Parameters
    ----------
    name : {"numpy", "torch"}
    dtype : {"float32", "float64"}
    device : str
        ``"cpu"``, or ``"cuda"`` with the torch backend.

    Returns
    -------
    backend : NumpyBackend or TorchBackend
    """
    if name not in BACKENDS:
        raise ConfigError(
            f"Unknown backend for ridge: expected one of {sorted(BACKENDS)}, got {name!r}. "
            "Pick one of those."
        )
    if dtype not in DTYPES:
        raise ConfigError(
            f"Unknown dtype for ridge: expected one of {sorted(DTYPES)}, got {dtype!r}. "
            "Pick one of those."
        )
    return BACKENDS[name](DTYPES[dtype], device)
