"""The NumPy backend: the host CPU, with batch shards on threads."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from seqbench.models.kernels import Kernel

T_ = TypeVar("T_")


class NumpyBackend:
    """NumPy on the host CPU.

    With ``threads > 1``, :meth:`map_shards` runs a batch's shards on that many threads at once,
    each with a single-threaded BLAS: the recurrent loops are many small products and
    element-wise steps, which one thread per shard keeps busy better than a multi-threaded BLAS.
    With ``fused`` (and numba importable), a cell's element-wise steps are its numba-compiled
    kernels, else its NumPy ones; :attr:`kernels` says which.
    """

    name = "numpy"
    device = "cpu"
    xp = np

    def __init__(self, threads: int = 1, fused: bool = True) -> None:
        from seqbench.models.kernels import numba_unavailable  # imports numba: only for a model

        self.threads = max(1, int(threads))
        self.fused = bool(fused) and numba_unavailable() is None
        self.kernels = "numba" if self.fused else "numpy"
        self._pool: ThreadPoolExecutor | None = None
        self._blas: Any = None

    def kernel(self, k: Kernel) -> Callable[..., None]:
        """The form of a cell's element-wise step that runs here."""
        return k.fused if self.fused and k.fused is not None else k.numpy

    def map_shards(self, fn: Callable[[int, slice], T_], n: int, min_rows: int = 32) -> list[T_]:
        """``[fn(i, rows_i)]`` over contiguous shards of ``range(n)``, in shard order."""
        k = min(self.threads, n // min_rows)
        if k <= 1:
            return [fn(0, slice(0, n))]
        if self._pool is None:
            from threadpoolctl import ThreadpoolController

            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="seqbench-shard")
            self._blas = ThreadpoolController()
        bounds = [n * i // k for i in range(k + 1)]
        with self._blas.limit(limits=1, user_api="blas"):
            futures = [self._pool.submit(fn, i, slice(bounds[i], bounds[i + 1])) for i in range(k)]
            return [f.result() for f in futures]

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self) -> None:
        pass

    def peak_memory_bytes(self) -> int | None:
        return None

    def graphed(self, step: Callable[[Any, Any], T_]) -> Callable[[Any, Any], T_]:
        """``step`` as it is: there are no CUDA graphs on the CPU."""
        return step

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``a @ b`` of two 2-D arrays, into ``out`` (C-contiguous) when given."""
        return np.matmul(a, b, out=out)

    def scalar(self, value: float, dtype: Any) -> np.ndarray:
        """A one-element array holding ``value``, refilled in place (``.fill``) between steps."""
        return np.full(1, value, dtype=dtype)

    def adam_update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        m: np.ndarray,
        v: np.ndarray,
        rate: np.ndarray,
        b1: float,
        b2: float,
        eps: float,
    ) -> None:
        """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= rate m / (sqrt(v) + eps)."""
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        p -= rate * m / (v**0.5 + eps)
