"""The LSTM cell (with a forget gate), BPTT written out; gate blocks in PyTorch's order.

    [i, f, g, o] = [sigma, sigma, tanh, sigma](x_t W_x + h_{t-1} W_h + b)
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t),   h_0 = c_0 = 0

Forward: the input projection of all four gates and all T steps is one ``(T*B, F) @ (F, 4H)``
product; each step adds one ``(B, H) @ (H, 4H)`` product and one fused element-wise step
(:data:`FORWARD`), which overwrites the pre-activations with the gate activations kept for the
backward pass. Backward keeps the gate pre-activation gradients dA_t ``(B, 4H)`` of every step
of a segment (:data:`BACKWARD`; a segment is all steps of a row task), so dW_x = X^T dA,
dW_h = H_{t-1}^T dA and db are each one product (or sum) a segment; per step one
``(B, 4H) @ (4H, H)`` product carries dh_t back to dh_{t-1}. A sequence too long for its
buffers is done in chunks of steps (:class:`~seqbench.models.recurrent.CellBase`). Predictions
on the CPU take a leaner path (:meth:`LSTM.infer`, :data:`INFER`).

The element-wise steps are below the cell, each in its three forms (NumPy, numba, CUDA; see
:mod:`seqbench.models.kernels`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from seqbench.models.kernels import CUDA_BLOCK_INDEX, CUDA_SIGMOID, Cuda, Kernel, jit, one, sigmoid, sigmoid_numpy, tanh
from seqbench.models.recurrent import CellBase


class LSTM(CellBase):
    """LSTM cell; parameters ``W_x (F, 4H)``, ``W_h (H, 4H)``, ``b (4H,)``, blocks [i, f, g, o].

    Weights start as randn * sqrt(1 / fan_in) (as the RNN's), ``b`` at 0 except the forget-gate
    block, which starts at 1.
    """

    widths = 7  # a step's forward buffers, in (B, H) arrays: gates (4), h, c, tanh(c)
    grad_widths = 4  # and its gradient's: the gates' pre-activation gradients

    def __init__(self, backend: Any, dtype: np.dtype) -> None:
        super().__init__(backend, dtype)
        self._forward_step, self._backward_step = backend.kernel(FORWARD), backend.kernel(BACKWARD)
        self._infer_step = backend.kernel(INFER) if self.xp is np else None

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        b = np.zeros(4 * hidden)
        b[hidden : 2 * hidden] = 1.0
        return {
            "W_x": rng.standard_normal((n_features, 4 * hidden)) * math.sqrt(1.0 / n_features),
            "W_h": rng.standard_normal((hidden, 4 * hidden)) * math.sqrt(1.0 / hidden),
            "b": b,
        }

    def forward(self, p: Mapping[str, Any], x_t: Any, readout: str) -> tuple[Any, Any]:
        T, B, _ = x_t.shape
        H = p["W_h"].shape[0]
        K = self.chunk_len(T, B, H)
        bufs = self._buffers(K, B, H)
        h, starts = self._forward_chunks(x_t, K, bufs[1:3], lambda x: self._steps(p, x, *bufs), readout)
        return h, (x_t, K, starts, readout)

    def infer(self, p: Mapping[str, Any], x_t: Any, readout: str) -> Any:
        """The readout state alone (for predictions). On the CPU each step is one product
        ``[x_t, 1, h_{t-1}] @ [W_x; b; W_h]`` and one element-wise step (:data:`INFER`) that
        keeps only h and c: a K=28 input projection of all steps runs at about half the GEMM
        rate of the recurrent one, so folding it into the recurrent product is faster at the
        same flops (docs/results.md). Equal to :meth:`forward`'s state to float32 rounding."""
        if self._infer_step is None:  # the GPU: one input projection of all steps suits it best
            return super().infer(p, x_t, readout)
        xp, ws = self.xp, self.ws
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        w = ws.get(xp, "w_cat", (F + 1 + H, 4 * H), self.dtype)
        w[:F], w[F], w[F + 1 :] = p["W_x"], p["b"], p["W_h"]
        z = ws.get(xp, "z", (B, F + 1 + H), self.dtype)  # [x_t, 1, h_{t-1}]
        z[:, F] = 1
        z[:, F + 1 :] = 0
        a = ws.get(xp, "a", (B, 4 * H), self.dtype)
        c = ws.get(xp, "c_infer", (B, H), self.dtype)
        c[...] = 0
        h = ws.get(xp, "h_out", (B, H), self.dtype)
        mean = readout == "mean"
        if mean:
            h[...] = 0
        for t in range(T):
            z[:, :F] = x_t[t]
            self.backend.matmul(z, w, out=a)
            self._infer_step(a, H, F + 1, c, z)
            if mean:
                h += z[:, F + 1 :]
        if mean:
            h /= T
        else:
            h[...] = z[:, F + 1 :]
        return h

    def _buffers(self, K: int, B: int, H: int) -> tuple[Any, Any, Any, Any]:
        """A chunk's forward buffers: ``gates`` (x W_x + b, then activations), ``hs``, ``cs``
        (hs[i + 1], cs[i + 1]: h and c after its step i) and ``tcs`` (tanh(c) of its step i)."""
        xp, ws = self.xp, self.ws
        return (ws.get(xp, "gates", (K * B, 4 * H), self.dtype), ws.get(xp, "h", (K + 1, B, H), self.dtype),
                ws.get(xp, "c", (K + 1, B, H), self.dtype), ws.get(xp, "tanh_c", (K, B, H), self.dtype))

    def _steps(self, p: Mapping[str, Any], x: Any, gates: Any, hs: Any, cs: Any, tcs: Any) -> int:
        """The forward steps of a chunk ``x`` ``(n, B, F)`` from ``hs[0]``, ``cs[0]``; returns n."""
        be = self.backend
        n, B, F = x.shape
        H = p["W_h"].shape[0]
        rec = self.ws.get(self.xp, "rec", (B, 4 * H), self.dtype)
        gates = gates[: n * B]
        be.matmul(x.reshape(n * B, F), p["W_x"], out=gates)
        gates += p["b"]
        gates = gates.reshape(n, B, 4 * H)
        for t in range(n):
            be.matmul(hs[t], p["W_h"], out=rec)
            self._forward_step(rec, cs[t], H, gates[t], cs[t + 1], tcs[t], hs[t + 1])
        return n

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        x_t, K, starts, readout = cache
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        bufs = self._buffers(K, B, H)
        gates, hs, cs, tcs = bufs
        S = self.grad_len(K, B, H)
        da = ws.get(xp, "da", (S * B, 4 * H), self.dtype)
        dh_t = ws.get(xp, "dh", (B, H), self.dtype)
        dc = ws.get(xp, "dc", (B, H), self.dtype)
        dh_last, dh_every = self._readout_grads(dh, T, readout)
        dh_t[...] = dh_last
        dc[...] = 0
        W_h_T = p["W_h"].T
        grads: dict[str, Any] = {}
        for i, c0, x, recompute in self._chunks_backward(x_t, K):
            n = x.shape[0]
            if recompute:
                hs[0] = starts[i, 0]
                cs[0] = starts[i, 1]
                self._steps(p, x, *bufs)
            g_t = gates[: n * B].reshape(n, B, 4 * H)
            for s0, s1 in self._segments(n, S):
                da_s = da[: (s1 - s0) * B]
                da_t = da_s.reshape(s1 - s0, B, 4 * H)
                for t in range(s1 - 1, s0 - 1, -1):
                    self._backward_step(g_t[t], cs[t], tcs[t], dh_t, H, dc, da_t[t - s0])
                    if c0 + t:
                        be.matmul(da_t[t - s0], W_h_T, out=dh_t)
                        if dh_every is not None:
                            dh_t += dh_every
                self._add(grads, "W_x", x[s0:s1].reshape(-1, F).T, da_s)
                self._add(grads, "W_h", hs[s0:s1].reshape(-1, H).T, da_s)
                self._add_sum(grads, "b", da_s)
        return grads


# -- the element-wise steps -------------------------------------------------------------------------
# FORWARD(rec, c_prev, H, g, c, tc, h): ``g``, ``rec`` (B, 4H), blocks [i, f, g, o], the rest
# (B, H). In: ``g`` = x_t W_x + b, ``rec`` = h_{t-1} W_h. Out: ``g`` = the gate activations
# [sigma, sigma, tanh, sigma](g + rec); c = f c_prev + i g; tc = tanh(c); h = o tc.


def _activate_numpy(g: np.ndarray, H: int) -> None:
    """The gate activations [sigma, sigma, tanh, sigma] of ``g``'s blocks, in place."""
    sigmoid_numpy(g[:, : 2 * H], out=g[:, : 2 * H])
    np.tanh(g[:, 2 * H : 3 * H], out=g[:, 2 * H : 3 * H])
    sigmoid_numpy(g[:, 3 * H :], out=g[:, 3 * H :])


def _forward_numpy(rec: np.ndarray, c_prev: np.ndarray, H: int, g: np.ndarray, c: np.ndarray,
                   tc: np.ndarray, h: np.ndarray) -> None:
    gi, gf, gg, go = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
    np.add(g, rec, out=g)
    _activate_numpy(g, H)
    np.multiply(gf, c_prev, out=c)
    np.multiply(gi, gg, out=tc)
    np.add(c, tc, out=c)
    np.tanh(c, out=tc)
    np.multiply(go, tc, out=h)


@jit
def _forward_fused(rec, c_prev, H, g, c, tc, h):  # pragma: no cover - compiled by numba
    for b in range(c.shape[0]):
        gr, rr = g[b], rec[b]
        for j in range(2 * H):  # i and f
            gr[j] = sigmoid(gr[j] + rr[j])
        gg, rg = gr[2 * H : 3 * H], rr[2 * H : 3 * H]
        for j in range(H):
            gg[j] = tanh(gg[j] + rg[j])
        go, ro = gr[3 * H :], rr[3 * H :]
        for j in range(H):
            go[j] = sigmoid(go[j] + ro[j])
        cp, cr, tr, hr = c_prev[b], c[b], tc[b], h[b]
        for j in range(H):
            cr[j] = gr[H + j] * cp[j] + gr[j] * gr[2 * H + j]
            tr[j] = tanh(cr[j])
            hr[j] = gr[3 * H + j] * tr[j]


_CUDA_FORWARD = CUDA_BLOCK_INDEX.format(blocks=4) + """
const T gi = sigm(g[k] + rec[k]);
const T gf = sigm(g[k + H] + rec[k + H]);
const T gg = tanh(g[k + 2 * H] + rec[k + 2 * H]);
const T go = sigm(g[k + 3 * H] + rec[k + 3 * H]);
g[k] = gi; g[k + H] = gf; g[k + 2 * H] = gg; g[k + 3 * H] = go;
c = gf * c_prev + gi * gg;
tc = tanh(c);
h = go * tc;
"""

FORWARD = Kernel("seqbench_lstm_forward", _forward_numpy, _forward_fused,
                 Cuda("raw T rec, T c_prev, int32 H", "raw T g, T c, T tc, T h", _CUDA_FORWARD, CUDA_SIGMOID))

# INFER(a, H, at, c, z): FORWARD for predictions, keeping nothing for a backward pass. In: ``a``
# (B, 4H), the pre-activations x_t W_x + b + h_{t-1} W_h, blocks [i, f, g, o]. In/out ``c``
# (B, H): c_{t-1}, becomes c_t. Out: h_t into ``z[:, at : at + H]`` (where the next step's
# product reads it). CPU only: the GPU keeps FORWARD's whole-sequence input projection.


def _infer_numpy(a: np.ndarray, H: int, at: int, c: np.ndarray, z: np.ndarray) -> None:
    gi, gf, gg, go = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    _activate_numpy(a, H)
    np.multiply(c, gf, out=c)
    np.multiply(gi, gg, out=gi)
    np.add(c, gi, out=c)
    h = z[:, at : at + H]
    np.tanh(c, out=h)
    np.multiply(h, go, out=h)


@jit
def _infer_fused(a, H, at, c, z):  # pragma: no cover - compiled by numba
    for b in range(c.shape[0]):
        ar, cr = a[b], c[b]
        ai, af, ag, ao = ar[:H], ar[H : 2 * H], ar[2 * H : 3 * H], ar[3 * H :]
        for j in range(H):
            cr[j] = sigmoid(af[j]) * cr[j] + sigmoid(ai[j]) * tanh(ag[j])
        hr = z[b][at : at + H]
        for j in range(H):
            hr[j] = sigmoid(ao[j]) * tanh(cr[j])


INFER = Kernel("seqbench_lstm_infer", _infer_numpy, _infer_fused)

# BACKWARD(g, c_prev, tc, dh, H, dc, dg): backward of FORWARD given its activations ``g`` =
# [i, f, g, o] and dL/dh_t. In/out ``dc``: dL/dc_t through c_{t+1}, becomes dL/dc_{t-1}. Out
# ``dg`` (B, 4H), the pre-activation gradients: with d = dc + dh o (1 - tc^2),
# [d g i(1-i), d c_prev f(1-f), d i (1-g^2), dh tc o(1-o)]; then dc = d f.


def _backward_numpy(g: np.ndarray, c_prev: np.ndarray, tc: np.ndarray, dh: np.ndarray, H: int,
                    dc: np.ndarray, dg: np.ndarray) -> None:
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


@jit
def _backward_fused(g, c_prev, tc, dh, H, dc, dg):  # pragma: no cover - compiled by numba
    u = one(g)
    for b in range(dc.shape[0]):
        gr, dgr = g[b], dg[b]
        gi, gf, gg, go = gr[:H], gr[H : 2 * H], gr[2 * H : 3 * H], gr[3 * H :]
        di, df, dgg, do = dgr[:H], dgr[H : 2 * H], dgr[2 * H : 3 * H], dgr[3 * H :]
        t, dhr, d, cp = tc[b], dh[b], dc[b], c_prev[b]
        for j in range(H):
            do[j] = (u - go[j]) * go[j] * t[j] * dhr[j]
        for j in range(H):
            d[j] += (u - t[j] * t[j]) * go[j] * dhr[j]
        for j in range(H):
            di[j] = (u - gi[j]) * gi[j] * gg[j] * d[j]
        for j in range(H):
            df[j] = (u - gf[j]) * gf[j] * cp[j] * d[j]
        for j in range(H):
            dgg[j] = (u - gg[j] * gg[j]) * gi[j] * d[j]
        for j in range(H):
            d[j] *= gf[j]


_CUDA_BACKWARD = CUDA_BLOCK_INDEX.format(blocks=4) + """
const T gi = g[k], gf = g[k + H], gg = g[k + 2 * H], go = g[k + 3 * H];
dg[k + 3 * H] = (T(1) - go) * go * tc * dh;
const T d = dc + (T(1) - tc * tc) * go * dh;
dg[k] = (T(1) - gi) * gi * gg * d;
dg[k + H] = (T(1) - gf) * gf * c_prev * d;
dg[k + 2 * H] = (T(1) - gg * gg) * gi * d;
dc = d * gf;
"""

BACKWARD = Kernel("seqbench_lstm_backward", _backward_numpy, _backward_fused,
                  Cuda("raw T g, T c_prev, T tc, T dh, int32 H", "T dc, raw T dg", _CUDA_BACKWARD))
