"""The CuPy backend: a CUDA device, with each cell's element-wise steps as fused CUDA kernels."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from seqbench.models.backend.cublas import Cublas
from seqbench.models.backend.cuda_graph import CudaGraphStep
from seqbench.models.backend.numpy_backend import T_, NumpyBackend

if TYPE_CHECKING:
    from seqbench.models.kernels import Kernel


@functools.lru_cache(maxsize=1)
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


class CupyBackend(NumpyBackend):
    """CuPy on a CUDA device; a cell's element-wise steps are its CUDA kernels (:meth:`kernel`)."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy

        super().__init__(threads=1)  # one device: shards would only queue on the same stream
        self.kernels = "cuda"
        self.xp = cupy
        self._cupy = cupy
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        gpu_name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        self.device = f"cuda:{dev.id} ({gpu_name})"
        self._cublas = Cublas(cupy)  # before the baseline: its workspace is shared, not this model's
        self._mempool = cupy.get_default_memory_pool()
        self._baseline = self._mempool.used_bytes()  # what earlier models in this process still hold
        self._peak = 0
        self._graph_pools: list[Any] = []
        self._adam = _adam_kernel()

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        return self._cupy.asarray(a, dtype=dtype)

    def to_host(self, a: Any) -> np.ndarray:
        return self._cupy.asnumpy(a)

    def synchronize(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()
        used = self._mempool.used_bytes() + sum(p.used_bytes() for p in self._graph_pools)
        self._peak = max(self._peak, used - self._baseline)

    def peak_memory_bytes(self) -> int | None:
        """Most device memory this model's arrays held at any synchronisation point."""
        return int(self._peak)

    def graphed(self, step: Callable[[Any, Any], T_]) -> Callable[[Any, Any], T_]:
        """``step(x, y)`` replayed as a CUDA graph, one per batch shape (see :class:`CudaGraphStep`)."""
        graph_step = CudaGraphStep(self._cupy, step)
        self._graph_pools.append(graph_step.pool)
        return graph_step

    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a @ b`` through one cuBLAS call (also inside a CUDA-graph capture, where CuPy's own
        ``matmul`` refuses to run); anything other than float32/float64 C- or F-ordered
        matrices goes to ``cupy.matmul``."""
        if out is None:
            out = self._cupy.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
        if not self._cublas.gemm(a, b, out):
            self._cupy.matmul(a, b, out=out)
        return out

    def scalar(self, value: float, dtype: Any) -> Any:
        return self._cupy.full(1, value, dtype=dtype)

    def adam_update(self, p: Any, g: Any, m: Any, v: Any, rate: Any, b1: float, b2: float, eps: float) -> None:
        t = p.dtype.type
        self._adam(g, rate, t(b1), t(b2), t(eps), p, m, v)

    def kernel(self, k: Kernel) -> Callable[..., None]:
        """A cell's element-wise step as one fused CUDA kernel."""
        return _compiled(k)


@functools.cache
def _compiled(k: Kernel) -> Any:
    """A cell's element-wise step as a CuPy ``ElementwiseKernel`` (compiled once per process)."""
    import cupy

    c = k.cuda
    if c is None:
        raise ValueError(f"{k.name} has no CUDA form")
    return cupy.ElementwiseKernel(c.in_params, c.out_params, c.body, k.name, preamble=c.preamble)


@functools.lru_cache(maxsize=1)
def _adam_kernel() -> Any:
    import cupy

    return cupy.ElementwiseKernel(
        "T g, raw T rate, T b1, T b2, T eps", "T p, T m, T v",
        "m = b1 * m + (T(1) - b1) * g; v = b2 * v + (T(1) - b2) * (g * g); p -= rate[0] * m / (sqrt(v) + eps);",
        "seqbench_adam",
    )
