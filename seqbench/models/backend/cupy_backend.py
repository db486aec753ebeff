"""The CuPy backend: a CUDA device, with the element-wise steps as fused kernels."""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from seqbench.models.backend.cublas import Cublas
from seqbench.models.backend.cuda_graph import CudaGraphStep
from seqbench.models.backend.numpy_backend import NumpyBackend, T_


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
        self._cublas = Cublas(cupy)  # before the baseline: its workspace is shared, not this model's
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
