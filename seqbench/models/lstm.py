"""The LSTM cell (with a forget gate), BPTT written out; gate blocks in PyTorch's order.

    [i, f, g, o] = [sigma, sigma, tanh, sigma](x_t W_x + h_{t-1} W_h + b)
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t),   h_0 = c_0 = 0

Forward: the input projection of all four gates and all T steps is one ``(T*B, F) @ (F, 4H)``
product; each step adds one ``(B, H) @ (H, 4H)`` product and one fused element-wise step, which
overwrites the pre-activations with the gate activations kept for the backward pass. Backward
keeps the gate pre-activation gradients dA_t ``(B, 4H)`` of every step, so dW_x = X^T dA,
dW_h = H_{t-1}^T dA and db are each one product (or sum) over all T*B rows; per step one
``(B, 4H) @ (4H, H)`` product carries dh_t back to dh_{t-1}. A sequence too long for its
buffers is done in chunks of steps, each such product once a chunk
(:class:`~seqbench.models.recurrent.CellBase`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from seqbench.models.recurrent import CellBase


class LSTM(CellBase):
    """LSTM cell; parameters ``W_x (F, 4H)``, ``W_h (H, 4H)``, ``b (4H,)``, blocks [i, f, g, o].

    Weights start as randn * sqrt(1 / fan_in) (as the RNN's), ``b`` at 0 except the forget-gate
    block, which starts at 1.
    """

    widths = 11  # a step's buffers, in (B, H) arrays: gates and their gradients (4 each), h, c, tanh(c)

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        b = np.zeros(4 * hidden)
        b[hidden : 2 * hidden] = 1.0
        return {
            "W_x": rng.standard_normal((n_features, 4 * hidden)) * math.sqrt(1.0 / n_features),
            "W_h": rng.standard_normal((hidden, 4 * hidden)) * math.sqrt(1.0 / hidden),
            "b": b,
        }

    def forward(self, p: Mapping[str, Any], x_t: Any) -> tuple[Any, Any]:
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        K = self.chunk_len(T, B, H)
        bufs = self._buffers(K, B, H)
        h, starts = self._forward_chunks(x_t, K, bufs[1:3], lambda x: self._steps(p, x, *bufs))
        return h, (x_t, K, starts)

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
            be.lstm_forward(gates[t], rec, cs[t], cs[t + 1], tcs[t], hs[t + 1])
        return n

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        x_t, K, starts = cache
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        bufs = self._buffers(K, B, H)
        gates, hs, cs, tcs = bufs
        da = ws.get(xp, "da", (K * B, 4 * H), self.dtype)
        dh_t = ws.get(xp, "dh", (B, H), self.dtype)
        dc = ws.get(xp, "dc", (B, H), self.dtype)
        dh_last, dh_every = self._readout_grads(dh, T)
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
            da_c = da[: n * B]
            da_t = da_c.reshape(n, B, 4 * H)
            for t in range(n - 1, -1, -1):
                be.lstm_backward(g_t[t], cs[t], tcs[t], dh_t, dc, da_t[t])
                if c0 + t:
                    be.matmul(da_t[t], W_h_T, out=dh_t)
                    if dh_every is not None:
                        dh_t += dh_every
            self._add(grads, "W_x", x.reshape(n * B, F).T, da_c)
            self._add(grads, "W_h", hs[:n].reshape(n * B, H).T, da_c)
            self._add_sum(grads, "b", da_c)
        return grads
