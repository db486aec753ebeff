"""The GRU cell exactly as PyTorch's ``nn.GRU`` (two biases, reset gate inside the candidate),
BPTT written out; gate blocks in PyTorch's order [r, z, n].

    r = sigma(x_t W_xr + b_xr + h_{t-1} W_hr + b_hr)
    z = sigma(x_t W_xz + b_xz + h_{t-1} W_hz + b_hz)
    n = tanh(x_t W_xn + b_xn + r * (h_{t-1} W_hn + b_hn))
    h_t = (1 - z) * n + z * h_{t-1},   h_0 = 0

Forward: the input projection of all three gates and all T steps is one ``(T*B, F) @ (F, 3H)``
product; each step adds one ``(B, H) @ (H, 3H)`` product and one fused element-wise step.
Backward keeps, for every step, the pre-activation gradients dA_t = [da_r, da_z, da_n] and their
recurrent counterparts dR_t = [da_r, da_z, r * da_n] (the n block reaches h_{t-1} W_hn + b_hn
through r), so dW_x = X^T dA and dW_h = H_{t-1}^T dR are one product each over all T*B rows;
per step one ``(B, 3H) @ (3H, H)`` product carries dh back, plus the direct path dh_t z.
A sequence too long for its buffers is done in chunks of steps, each such product once a chunk
(:class:`~seqbench.models.recurrent.CellBase`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from seqbench.models.recurrent import CellBase


class GRU(CellBase):
    """GRU cell; parameters ``W_x (F, 3H)``, ``W_h (H, 3H)``, ``b_x (3H,)``, ``b_h (3H,)``.

    Weights start as randn * sqrt(1 / fan_in) (as the RNN's), biases at 0.
    """

    widths = 13  # a step's buffers, in (B, H) arrays: gx, gh, da, dr (3 each), h

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        return {
            "W_x": rng.standard_normal((n_features, 3 * hidden)) * math.sqrt(1.0 / n_features),
            "W_h": rng.standard_normal((hidden, 3 * hidden)) * math.sqrt(1.0 / hidden),
            "b_x": np.zeros(3 * hidden),
            "b_h": np.zeros(3 * hidden),
        }

    def forward(self, p: Mapping[str, Any], x_t: Any) -> tuple[Any, Any]:
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        K = self.chunk_len(T, B, H)
        bufs = self._buffers(K, B, H)
        h, starts = self._forward_chunks(x_t, K, (bufs[2],), lambda x: self._steps(p, x, *bufs))
        return h, (x_t, K, starts)

    def _buffers(self, K: int, B: int, H: int) -> tuple[Any, Any, Any]:
        """A chunk's forward buffers: ``gx`` (x W_x + b_x, then [r, z, n]), ``gh`` (h W_h + b_h), ``hs``."""
        xp, ws = self.xp, self.ws
        return (ws.get(xp, "gx", (K * B, 3 * H), self.dtype), ws.get(xp, "gh", (K, B, 3 * H), self.dtype),
                ws.get(xp, "h", (K + 1, B, H), self.dtype))

    def _steps(self, p: Mapping[str, Any], x: Any, gx: Any, gh: Any, hs: Any) -> int:
        """The forward steps of a chunk ``x`` ``(n, B, F)`` from the state ``hs[0]``; returns n."""
        be = self.backend
        n, B, F = x.shape
        H = p["W_h"].shape[0]
        gx = gx[: n * B]
        be.matmul(x.reshape(n * B, F), p["W_x"], out=gx)
        gx += p["b_x"]
        gx = gx.reshape(n, B, 3 * H)
        for t in range(n):
            be.matmul(hs[t], p["W_h"], out=gh[t])
            be.gru_forward(gx[t], gh[t], p["b_h"], hs[t], hs[t + 1])
        return n

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        x_t, K, starts = cache
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        gx, gh, hs = self._buffers(K, B, H)
        da = ws.get(xp, "da", (K * B, 3 * H), self.dtype)
        dr = ws.get(xp, "dr", (K * B, 3 * H), self.dtype)
        dh_direct = ws.get(xp, "dh", (B, H), self.dtype)  # dh_t * z, the path around the gates
        dh_rec = ws.get(xp, "dh_rec", (B, H), self.dtype)  # dR_{t+1} W_h^T
        dh_last, dh_every = self._readout_grads(dh, T)
        dh_direct[...] = 0
        dh_rec[...] = dh_last
        W_h_T = p["W_h"].T
        grads: dict[str, Any] = {}
        for i, c0, x, recompute in self._chunks_backward(x_t, K):
            n = x.shape[0]
            if recompute:
                hs[0] = starts[i, 0]
                self._steps(p, x, gx, gh, hs)
            gx_t = gx[: n * B].reshape(n, B, 3 * H)
            da_c, dr_c = da[: n * B], dr[: n * B]
            da_t, dr_t = da_c.reshape(n, B, 3 * H), dr_c.reshape(n, B, 3 * H)
            for t in range(n - 1, -1, -1):
                be.gru_backward(gx_t[t], gh[t], hs[t], dh_rec, dh_direct, da_t[t], dr_t[t])
                if c0 + t:
                    be.matmul(dr_t[t], W_h_T, out=dh_rec)
                    if dh_every is not None:
                        dh_rec += dh_every
            self._add(grads, "W_x", x.reshape(n * B, F).T, da_c)
            self._add(grads, "W_h", hs[:n].reshape(n * B, H).T, dr_c)
            self._add_sum(grads, "b_x", da_c)
            self._add_sum(grads, "b_h", dr_c)
        return grads
