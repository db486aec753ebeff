"""Row-major matrix products through cuBLAS called directly, so they run inside CUDA-graph captures."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


class Cublas:
    """Row-major ``out = a @ b`` through cuBLAS itself, on the current stream.

    cuBLAS is called through ctypes, not through CuPy's wrappers, which refuse to run while a
    stream is being captured into a CUDA graph. cuBLAS is column-major: a C-ordered ``(r, c)``
    matrix is its ``(c, r)`` transpose there, an F-ordered one is itself; so ``out^T = b^T a^T``
    is one gemm with each operand transposed or not according to its order.
    """

    WORKSPACE_BYTES = 32 << 20  # what cuBLAS asks for on Hopper; fixed, so a capture allocates none

    def __init__(self, cupy: Any) -> None:
        self.cupy = cupy
        self.lib, self.handle, workspace = _cublas_context(cupy.cuda.Device().id)
        self.workspace = workspace.data.ptr
        # alpha = 1 and beta = 0, passed as host pointers (the handle's default pointer mode)
        self.one = {np.dtype(t): np.ones(1, t) for t in (np.float32, np.float64)}
        self.zero = {np.dtype(t): np.zeros(1, t) for t in (np.float32, np.float64)}

    @staticmethod
    def _layout(a: Any) -> tuple[int, int] | None:
        """(operation, leading dimension) of a row-major matrix seen by cuBLAS, or None."""
        if a.flags.c_contiguous:
            return 0, max(1, a.shape[1])  # CUBLAS_OP_N on its transpose
        if a.flags.f_contiguous:
            return 1, max(1, a.shape[0])  # CUBLAS_OP_T
        return None

    def gemm(self, a: Any, b: Any, out: Any) -> bool:
        """``out = a @ b``; False (nothing done) when the arrays don't suit cuBLAS directly."""
        dt = a.dtype
        if a.ndim != 2 or b.ndim != 2 or dt not in self.one or b.dtype != dt or out.dtype != dt:
            return False
        la, lb = self._layout(a), self._layout(b)
        if la is None or lb is None or not out.flags.c_contiguous:
            return False
        (m, k), n = a.shape, b.shape[1]
        if m == 0 or n == 0 or k == 0:
            return False
        lib, h = self.lib, self.handle
        _check(lib.cublasSetStream_v2(h, self.cupy.cuda.get_current_stream().ptr), "cublasSetStream")
        _check(lib.cublasSetWorkspace_v2(h, self.workspace, self.WORKSPACE_BYTES), "cublasSetWorkspace")
        gemm = lib.cublasSgemm_v2 if dt == np.float32 else lib.cublasDgemm_v2
        one, zero = self.one[dt].ctypes.data, self.zero[dt].ctypes.data
        _check(gemm(h, lb[0], la[0], n, m, k, one, b.data.ptr, lb[1], a.data.ptr, la[1], zero, out.data.ptr, n), "gemm")
        return True


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"cuBLAS {what} failed with status {status}")


@functools.cache
def _cublas_context(device_id: int) -> tuple[Any, int, Any]:
    """The cuBLAS library CuPy loaded (through ctypes), a handle and a workspace for ``device_id``."""
    import ctypes
    import importlib

    import cupy

    importlib.import_module("cupy_backends.cuda.libs.cublas")  # CuPy loads libcublas

    lib = None
    for name in ("libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"):
        try:
            lib = ctypes.CDLL(name)  # a library already loaded is found by its soname
            break
        except OSError:
            continue
    if lib is None:
        from cuda.pathfinder import load_nvidia_dynamic_lib

        lib = ctypes.CDLL(load_nvidia_dynamic_lib("cublas").abs_path)
    p, i = ctypes.c_void_p, ctypes.c_int
    for name in ("cublasSgemm_v2", "cublasDgemm_v2"):
        getattr(lib, name).argtypes = [p, i, i, i, i, i, p, p, i, p, i, p, p, i]
        getattr(lib, name).restype = i
    lib.cublasSetStream_v2.argtypes, lib.cublasSetStream_v2.restype = [p, p], i
    lib.cublasSetWorkspace_v2.argtypes, lib.cublasSetWorkspace_v2.restype = [p, p, ctypes.c_size_t], i
    lib.cublasCreate_v2.argtypes, lib.cublasCreate_v2.restype = [ctypes.POINTER(p)], i
    handle = p()
    _check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
    assert handle.value is not None, "cublasCreate succeeded, so it set the handle"
    workspace = cupy.empty(Cublas.WORKSPACE_BYTES, dtype=cupy.uint8)
    return lib, int(handle.value), workspace
