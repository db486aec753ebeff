"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, behind one small interface.

The model code calls ``backend.xp`` for array functions and the fused element-wise helpers
below for the per-step work of the recurrent loops; on CuPy these are single CUDA kernels.
"""

from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import numpy as np

T_ = TypeVar("T_")


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


class NumpyBackend:
    """NumPy on the host CPU.

    With ``threads > 1``, :meth:`map_shards` runs a batch's shards on that many threads at once,
    each with a single-threaded BLAS: the recurrent loops are many small products and
    element-wise steps, which one thread per shard keeps busy better than a multi-threaded BLAS.
    """

    name = "numpy"
    device = "cpu"
    xp = np

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None
        self._blas: Any = None

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
        self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, rate: np.ndarray, b1: float, b2: float, eps: float
    ) -> None:
        """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= rate m / (sqrt(v) + eps)."""
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        p -= rate * m / (v**0.5 + eps)

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

    def lstm_forward(
        self, g: np.ndarray, rec: np.ndarray, c_prev: np.ndarray, c: np.ndarray, tc: np.ndarray, h: np.ndarray
    ) -> None:
        """One LSTM step; ``g``, ``rec`` ``(B, 4H)``, blocks [i, f, g, o]; the rest ``(B, H)``.

        In: ``g`` = x_t W_x + b, ``rec`` = h_{t-1} W_h. Out: ``g`` = the gate activations
        [sigma, sigma, tanh, sigma](g + rec); c = f c_prev + i g; tc = tanh(c); h = o tc.
        """
        H = c.shape[1]
        gi, gf, gg, go = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
        np.add(g, rec, out=g)
        self.sigmoid(g[:, : 2 * H], out=g[:, : 2 * H])
        np.tanh(gg, out=gg)
        self.sigmoid(go, out=go)
        np.multiply(gf, c_prev, out=c)
        np.multiply(gi, gg, out=tc)
        np.add(c, tc, out=c)
        np.tanh(c, out=tc)
        np.multiply(go, tc, out=h)

    def lstm_backward(
        self, g: np.ndarray, c_prev: np.ndarray, tc: np.ndarray, dh: np.ndarray, dc: np.ndarray, dg: np.ndarray
    ) -> None:
        """Backward of :meth:`lstm_forward`, given its activations ``g`` = [i, f, g, o] and dL/dh_t.

        In/out ``dc``: dL/dc_t through c_{t+1}, becomes dL/dc_{t-1}. Out ``dg`` ``(B, 4H)``, the
        pre-activation gradients: with d = dc + dh o (1 - tc^2),
        [d g i(1-i), d c_prev f(1-f), d i (1-g^2), dh tc o(1-o)]; then dc = d f.
        """
        H = dc.shape[1]
        gi, gf, gg, go = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
        di, df, dgg, do = dg[:, :H], dg[:, H : 2 * H], dg[:, 2 * H : 3 * H], dg[:, 3 * H :]
        np.subtract(1, go, out=do)
        np.multiply(do, go, out=do)
        np.multiply(do, tc, out=do)
        np.multiply(do, dh, out=do)
        np.multiply(tc, tc, out=dgg)  # dgg is scratch until its own turn
        np.subtract(1, dgg, out=dgg)
        np.multiply(dgg, go, out=dgg)
        np.multiply(dgg, dh, out=dgg)
        np.add(dc, dgg, out=dc)
        np.subtract(1, gi, out=di)
        np.multiply(di, gi, out=di)
        np.multiply(di, gg, out=di)
        np.multiply(di, dc, out=di)
        np.subtract(1, gf, out=df)
        np.multiply(df, gf, out=df)
        np.multiply(df, c_prev, out=df)
        np.multiply(df, dc, out=df)
        np.multiply(gg, gg, out=dgg)
        np.subtract(1, dgg, out=dgg)
        np.multiply(dgg, gi, out=dgg)
        np.multiply(dgg, dc, out=dgg)
        np.multiply(dc, gf, out=dc)

    def gru_forward(
        self, gx: np.ndarray, gh: np.ndarray, b_h: np.ndarray, h_prev: np.ndarray, h: np.ndarray
    ) -> None:
        """One GRU step; ``gx``, ``gh`` ``(B, 3H)``, blocks [r, z, n]; ``h_prev``, ``h`` ``(B, H)``.

        In: ``gx`` = x_t W_x + b_x, ``gh`` = h_{t-1} W_h. Out: ``gh`` += b_h; ``gx`` = [r, z, n]
        with r, z = sigma(gx + gh), n = tanh(gx_n + r gh_n); h = n + z (h_prev - n).
        """
        H = h.shape[1]
        rz, n, r, z = gx[:, : 2 * H], gx[:, 2 * H :], gx[:, :H], gx[:, H : 2 * H]
        np.add(gh, b_h, out=gh)
        np.add(rz, gh[:, : 2 * H], out=rz)
        self.sigmoid(rz, out=rz)
        np.multiply(r, gh[:, 2 * H :], out=h)  # h is scratch until the last two lines
        np.add(n, h, out=n)
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=h)
        np.multiply(h, z, out=h)
        np.add(h, n, out=h)

    def gru_backward(
        self, gx: np.ndarray, gh: np.ndarray, h_prev: np.ndarray, rec: np.ndarray, dh: np.ndarray,
        dgx: np.ndarray, dgh: np.ndarray,
    ) -> None:
        """Backward of :meth:`gru_forward` given its outputs ``gx`` = [r, z, n] and ``gh``.

        dL/dh_t is d = ``dh + rec`` (the direct part plus the part through the gates of step
        t+1). In/out ``dh`` becomes the direct part of dL/dh_{t-1}, d z. Out, the pre-activation
        gradients ``dgx`` = [da_r, da_z, da_n] (for W_x, b_x) and ``dgh`` = [da_r, da_z, r da_n]
        (for W_h, b_h): da_n = d (1-z)(1-n^2), da_r = da_n gh_n r(1-r), da_z = d (h_prev - n) z(1-z).
        """
        H = dh.shape[1]
        r, z, n, hn = gx[:, :H], gx[:, H : 2 * H], gx[:, 2 * H :], gh[:, 2 * H :]
        dar, daz, dan = dgx[:, :H], dgx[:, H : 2 * H], dgx[:, 2 * H :]
        sz, dhn = dgh[:, H : 2 * H], dgh[:, 2 * H :]  # scratch until their own turn
        np.add(dh, rec, out=dh)
        np.subtract(1, z, out=dan)
        np.multiply(dan, dh, out=dan)
        np.multiply(n, n, out=dhn)
        np.subtract(1, dhn, out=dhn)
        np.multiply(dan, dhn, out=dan)
        np.multiply(dan, r, out=dhn)
        np.subtract(1, r, out=dar)
        np.multiply(dar, r, out=dar)
        np.multiply(dar, hn, out=dar)
        np.multiply(dar, dan, out=dar)
        np.subtract(h_prev, n, out=daz)
        np.multiply(daz, dh, out=daz)
        np.subtract(1, z, out=sz)
        np.multiply(sz, z, out=sz)
        np.multiply(daz, sz, out=daz)
        np.copyto(dgh[:, : 2 * H], dgx[:, : 2 * H])
        np.multiply(dh, z, out=dh)


class CupyBackend(NumpyBackend):
    """CuPy on a CUDA device; the element-wise helpers are fused CUDA kernels."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy

        super().__init__(threads=1)  # one device: shards would only queue on the same stream
        self.xp = cupy
        self._cupy = cupy
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        gpu_name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        self.device = f"cuda:{dev.id} ({gpu_name})"
        self._cublas = _Cublas(cupy)  # before the baseline: its workspace is shared, not this model's
        self._mempool = cupy.get_default_memory_pool()
        self._baseline = self._mempool.used_bytes()  # what earlier models in this process still hold
        self._peak = 0
        self._graph_pools: list[Any] = []
        k = _cupy_kernels()
        self._tanh_add, self._tanh_backward, self._sigmoid = k[:3]
        self._lstm_forward, self._lstm_backward, self._gru_forward, self._gru_backward, self._adam = k[3:]

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

    def tanh_add(self, a: Any, b: Any, out: Any) -> None:
        self._tanh_add(a, b, out)

    def tanh_backward(self, dh: Any, h: Any, out: Any) -> None:
        self._tanh_backward(dh, h, out)

    def sigmoid(self, a: Any, out: Any) -> None:
        self._sigmoid(a, out)

    def lstm_forward(self, g: Any, rec: Any, c_prev: Any, c: Any, tc: Any, h: Any) -> None:
        self._lstm_forward(rec, c_prev, c.shape[1], g, c, tc, h)

    def lstm_backward(self, g: Any, c_prev: Any, tc: Any, dh: Any, dc: Any, dg: Any) -> None:
        self._lstm_backward(g, c_prev, tc, dh, dc.shape[1], dc, dg)

    def gru_forward(self, gx: Any, gh: Any, b_h: Any, h_prev: Any, h: Any) -> None:
        self._gru_forward(b_h, h_prev, h.shape[1], gx, gh, h)

    def gru_backward(self, gx: Any, gh: Any, h_prev: Any, rec: Any, dh: Any, dgx: Any, dgh: Any) -> None:
        self._gru_backward(gx, gh, h_prev, rec, dh.shape[1], dh, dgx, dgh)


class _Cublas:
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


@functools.lru_cache(maxsize=None)
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
    workspace = cupy.empty(_Cublas.WORKSPACE_BYTES, dtype=cupy.uint8)
    return lib, int(handle.value), workspace


class CudaGraphStep:
    """Runs a training step ``step(x, y) -> loss`` as a captured CUDA graph.

    Per batch shape: the first call runs eagerly (compiling kernels, creating buffers), the
    second captures the step on a side stream into a graph over static input buffers, and every
    call from then on copies its batch into those buffers and launches the graph: one launch
    instead of hundreds. The step must do device work only (no host synchronisation, no
    values read back); host-side state such as an optimizer's step count is set before the call.
    Memory allocated during a capture comes from this object's own pool, so no other array can
    ever be given an address that the graph writes to. If a capture fails, the step runs eagerly
    from then on, with one warning.
    """

    def __init__(self, cupy: Any, step: Callable[[Any, Any], Any]) -> None:
        self.cupy, self.step = cupy, step
        self.pool = cupy.cuda.MemoryPool()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.graphs: dict[tuple, Any] = {}
        self.failure: str | None = None

    def __call__(self, x: Any, y: Any) -> Any:
        if self.failure is not None:
            return self.step(x, y)
        key = (x.shape, x.dtype.str, y.shape, y.dtype.str)
        entry = self.graphs.get(key)
        if entry is None:
            self.graphs[key] = "warm"
            return self.step(x, y)
        if entry == "warm":
            try:
                entry = self.graphs[key] = self._capture(x, y)
            except Exception as exc:  # a CuPy call that cannot be captured, an old driver...
                self.failure = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"CUDA graph capture failed, training step runs eagerly: {self.failure}", stacklevel=2)
                return self.step(x, y)
        xs, ys, graph, loss = entry
        xs[...] = x
        ys[...] = y
        graph.launch()
        return loss.copy()

    def _capture(self, x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        cupy, stream = self.cupy, self.stream
        xs, ys = x.copy(), y.copy()
        with cupy.cuda.using_allocator(self.pool.malloc), stream:
            # relaxed: the private pool may cudaMalloc while the capture runs
            stream.begin_capture(mode=getattr(cupy.cuda.runtime, "streamCaptureModeRelaxed", 2))
            try:
                loss = self.step(xs, ys)
            finally:
                graph = stream.end_capture()
        return xs, ys, graph, loss


# The gated kernels run one thread per (batch row, hidden unit) of the (B, H) arrays and reach
# the gate blocks of their (B, kH) arrays through ``raw`` flat C-order indices.
_SIGMOID = "__device__ inline T sigm(T a) { return T(0.5) * tanh(T(0.5) * a) + T(0.5); }\n"
_BLOCK_INDEX = "const ptrdiff_t j = i % H, k = (i / H) * {blocks} * H + j;\n"

_LSTM_FORWARD = _BLOCK_INDEX.format(blocks=4) + """
const T gi = sigm(g[k] + rec[k]);
const T gf = sigm(g[k + H] + rec[k + H]);
const T gg = tanh(g[k + 2 * H] + rec[k + 2 * H]);
const T go = sigm(g[k + 3 * H] + rec[k + 3 * H]);
g[k] = gi; g[k + H] = gf; g[k + 2 * H] = gg; g[k + 3 * H] = go;
c = gf * c_prev + gi * gg;
tc = tanh(c);
h = go * tc;
"""

_LSTM_BACKWARD = _BLOCK_INDEX.format(blocks=4) + """
const T gi = g[k], gf = g[k + H], gg = g[k + 2 * H], go = g[k + 3 * H];
dg[k + 3 * H] = (T(1) - go) * go * tc * dh;
const T d = dc + (T(1) - tc * tc) * go * dh;
dg[k] = (T(1) - gi) * gi * gg * d;
dg[k + H] = (T(1) - gf) * gf * c_prev * d;
dg[k + 2 * H] = (T(1) - gg * gg) * gi * d;
dc = d * gf;
"""

_GRU_FORWARD = _BLOCK_INDEX.format(blocks=3) + """
const T hr = gh[k] + b_h[j], hz = gh[k + H] + b_h[j + H], hn = gh[k + 2 * H] + b_h[j + 2 * H];
gh[k] = hr; gh[k + H] = hz; gh[k + 2 * H] = hn;
const T r = sigm(gx[k] + hr);
const T z = sigm(gx[k + H] + hz);
const T n = tanh(gx[k + 2 * H] + r * hn);
gx[k] = r; gx[k + H] = z; gx[k + 2 * H] = n;
h = (h_prev - n) * z + n;
"""

_GRU_BACKWARD = _BLOCK_INDEX.format(blocks=3) + """
const T r = gx[k], z = gx[k + H], n = gx[k + 2 * H], hn = gh[k + 2 * H];
const T d = dh + rec;
const T dan = (T(1) - z) * d * (T(1) - n * n);
const T dar = (T(1) - r) * r * hn * dan;
const T daz = (h_prev - n) * d * ((T(1) - z) * z);
dgx[k] = dar; dgx[k + H] = daz; dgx[k + 2 * H] = dan;
dgh[k] = dar; dgh[k + H] = daz; dgh[k + 2 * H] = dan * r;
dh = d * z;
"""


@functools.lru_cache(maxsize=1)
def _cupy_kernels() -> tuple[Any, ...]:
    import cupy

    tanh_add = cupy.ElementwiseKernel("T a, T b", "T y", "y = tanh(a + b)", "seqbench_tanh_add")
    tanh_backward = cupy.ElementwiseKernel(
        "T dh, T h", "T dz", "dz = dh * (T(1) - h * h)", "seqbench_tanh_backward"
    )
    sigmoid = cupy.ElementwiseKernel("T a", "T y", "y = sigm(a)", "seqbench_sigmoid", preamble=_SIGMOID)
    lstm_forward = cupy.ElementwiseKernel(
        "raw T rec, T c_prev, int32 H", "raw T g, T c, T tc, T h", _LSTM_FORWARD,
        "seqbench_lstm_forward", preamble=_SIGMOID,
    )
    lstm_backward = cupy.ElementwiseKernel(
        "raw T g, T c_prev, T tc, T dh, int32 H", "T dc, raw T dg", _LSTM_BACKWARD,
        "seqbench_lstm_backward",
    )
    gru_forward = cupy.ElementwiseKernel(
        "raw T b_h, T h_prev, int32 H", "raw T gx, raw T gh, T h", _GRU_FORWARD,
        "seqbench_gru_forward", preamble=_SIGMOID,
    )
    gru_backward = cupy.ElementwiseKernel(
        "raw T gx, raw T gh, T h_prev, T rec, int32 H", "T dh, raw T dgx, raw T dgh", _GRU_BACKWARD,
        "seqbench_gru_backward",
    )
    adam = cupy.ElementwiseKernel(
        "T g, raw T rate, T b1, T b2, T eps", "T p, T m, T v",
        "m = b1 * m + (T(1) - b1) * g; v = b2 * v + (T(1) - b2) * (g * g); p -= rate[0] * m / (sqrt(v) + eps);",
        "seqbench_adam",
    )
    return tanh_add, tanh_backward, sigmoid, lstm_forward, lstm_backward, gru_forward, gru_backward, adam


def get_backend(name: str, threads: int = 1) -> NumpyBackend:
    """``"numpy"`` (with ``threads`` CPU threads) or ``"cupy"``."""
    if name == "numpy":
        return NumpyBackend(threads)
    if name == "cupy":
        return CupyBackend()
    raise ValueError(f"unknown backend {name!r} (expected 'numpy' or 'cupy')")
