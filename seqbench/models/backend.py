"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, behind one small interface.

The model code calls ``backend.xp`` for array functions and the fused element-wise helpers
below for the per-step work of the recurrent loops; on CuPy these are single CUDA kernels.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def cupy_unavailable() -> str | None:
    """Why CuPy cannot run here, or ``None`` when it can."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return f"CuPy is not importable ({type(exc).__name__}: {exc}); install it with pip install -e '.[gpu]'"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"no usable CUDA device ({type(exc).__name__}: {str(exc).strip()})"
    if count < 1:
        return "no CUDA device found"
    return None


class NumpyBackend:
    """NumPy on the host CPU."""

    name = "numpy"
    device = "cpu"
    xp = np

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self) -> None:
        pass

    def peak_memory_bytes(self) -> int | None:
        return None

    # Fused element-wise helpers (out may alias an input).
    def tanh_add(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        """out = tanh(a + b)"""
        np.add(a, b, out=out)
        np.tanh(out, out=out)

    def tanh_backward(self, dh: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
        """out = dh * (1 - h^2), the gradient through h = tanh(z)."""
        np.multiply(h, h, out=out)
        np.subtract(1, out, out=out)
        np.multiply(dh, out, out=out)

    def sigmoid(self, a: np.ndarray, out: np.ndarray) -> None:
        """out = 1 / (1 + exp(-a)), written through tanh so it cannot overflow."""
        np.multiply(a, 0.5, out=out)
        np.tanh(out, out=out)
        np.multiply(out, 0.5, out=out)
        np.add(out, 0.5, out=out)


class CupyBackend(NumpyBackend):
    """CuPy on a CUDA device; the element-wise helpers are fused CUDA kernels."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy

        self.xp = cupy
        self._cupy = cupy
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        gpu_name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        self.device = f"cuda:{dev.id} ({gpu_name})"
        k = _cupy_kernels()
        self._tanh_add, self._tanh_backward, self._sigmoid = k

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        return self._cupy.asarray(a, dtype=dtype)

    def to_host(self, a: Any) -> np.ndarray:
        return self._cupy.asnumpy(a)

    def synchronize(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()

    def peak_memory_bytes(self) -> int | None:
        return int(self._cupy.get_default_memory_pool().total_bytes())

    def tanh_add(self, a: Any, b: Any, out: Any) -> None:
        self._tanh_add(a, b, out)

    def tanh_backward(self, dh: Any, h: Any, out: Any) -> None:
        self._tanh_backward(dh, h, out)

    def sigmoid(self, a: Any, out: Any) -> None:
        self._sigmoid(a, out)


@functools.lru_cache(maxsize=1)
def _cupy_kernels() -> tuple[Any, Any, Any]:
    import cupy

    tanh_add = cupy.ElementwiseKernel("T a, T b", "T y", "y = tanh(a + b)", "seqbench_tanh_add")
    tanh_backward = cupy.ElementwiseKernel(
        "T dh, T h", "T dz", "dz = dh * (T(1) - h * h)", "seqbench_tanh_backward"
    )
    sigmoid = cupy.ElementwiseKernel(
        "T a", "T y", "y = T(0.5) * tanh(T(0.5) * a) + T(0.5)", "seqbench_sigmoid"
    )
    return tanh_add, tanh_backward, sigmoid


def get_backend(name: str) -> NumpyBackend:
    """``"numpy"`` or ``"cupy"``."""
    if name == "numpy":
        return NumpyBackend()
    if name == "cupy":
        return CupyBackend()
    raise ValueError(f"unknown backend {name!r} (expected 'numpy' or 'cupy')")
