"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, behind one small interface.

The model code calls ``backend.xp`` for array functions, ``backend.matmul`` for products and
``backend.kernel`` for the form of a cell's element-wise step that runs on this backend
(:mod:`seqbench.models.kernels`): numba-compiled or NumPy on the CPU, a CUDA kernel on CuPy,
whose matrix products go straight to cuBLAS (:mod:`.cublas`) and whose training step can be
replayed as a CUDA graph (:mod:`.cuda_graph`).
Nothing here imports CuPy until a CuPy backend is built.
"""

from __future__ import annotations

from seqbench.models.backend.cupy_backend import CupyBackend, cupy_unavailable
from seqbench.models.backend.numpy_backend import NumpyBackend

__all__ = ["CupyBackend", "NumpyBackend", "cupy_unavailable", "get_backend"]


def get_backend(name: str, threads: int = 1, fused: bool = True) -> NumpyBackend:
    """``"numpy"`` (with ``threads`` CPU threads, numba-compiled kernels where ``fused``) or ``"cupy"``."""
    if name == "numpy":
        return NumpyBackend(threads, fused)
    if name == "cupy":
        return CupyBackend()
    raise ValueError(f"unknown backend {name!r} (expected 'numpy' or 'cupy')")
