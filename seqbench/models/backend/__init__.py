"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, behind one small interface.

The model code calls ``backend.xp`` for array functions and the fused element-wise helpers
of :class:`NumpyBackend` for the per-step work of the recurrent loops; on CuPy these are
single CUDA kernels (:mod:`.cupy_backend`), its matrix products go straight to cuBLAS
(:mod:`.cublas`) and a training step can be replayed as a CUDA graph (:mod:`.cuda_graph`).
Nothing here imports CuPy until a CuPy backend is built.
"""

from __future__ import annotations

from seqbench.models.backend.cupy_backend import CupyBackend, cupy_unavailable
from seqbench.models.backend.numpy_backend import NumpyBackend

__all__ = ["CupyBackend", "NumpyBackend", "cupy_unavailable", "get_backend"]


def get_backend(name: str, threads: int = 1) -> NumpyBackend:
    """``"numpy"`` (with ``threads`` CPU threads) or ``"cupy"``."""
    if name == "numpy":
        return NumpyBackend(threads)
    if name == "cupy":
        return CupyBackend()
    raise ValueError(f"unknown backend {name!r} (expected 'numpy' or 'cupy')")
