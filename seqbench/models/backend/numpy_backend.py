"""The NumPy backend: the host CPU, with batch shards on threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import numpy as np

T_ = TypeVar("T_")


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
