"""The LSTM cell (with a forget gate), BPTT written out; gate blocks in PyTorch's order.

    [i, f, g, o] = [sigma, sigma, tanh, sigma](x_t W_x + h_{t-1} W_h + b)
    c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t),   h_0 = c_0 = 0

Forward: the input projection of all four gates and all T steps is one ``(T*B, F) @ (F, 4H)``
product; each step adds one ``(B, H) @ (H, 4H)`` product and one fused element-wise step, which
overwrites the pre-activations with the gate activations kept for the backward pass. Backward
keeps the gate pre-activation gradients dA_t ``(B, 4H)`` of every step, so dW_x = X^T dA,
dW_h = H_{t-1}^T dA and db are each one product (or sum) over all T*B rows; per step one
``(B, 4H) @ (4H, H)`` product carries dh_t back to dh_{t-1}.
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

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        b = np.zeros(4 * hidden)
        b[hidden : 2 * hidden] = 1.0
        return {
            "W_x": rng.standard_normal((n_features, 4 * hidden)) * math.sqrt(1.0 / n_features),
            "W_h": rng.standard_normal((hidden, 4 * hidden)) * math.sqrt(1.0 / hidden),
            "b": b,
        }

    def forward(self, p: Mapping[str, Any], x_t: Any) -> tuple[Any, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        gates = ws.get(xp, "gates", (T * B, 4 * H), self.dtype)  # x W_x + b, then activations
        hs = ws.get(xp, "h", (T + 1, B, H), self.dtype)  # hs[t + 1] = h_t
        cs = ws.get(xp, "c", (T + 1, B, H), self.dtype)  # cs[t + 1] = c_t
        tcs = ws.get(xp, "tanh_c", (T, B, H), self.dtype)  # tcs[t] = tanh(c_t)
        rec = ws.get(xp, "rec", (B, 4 * H), self.dtype)
        be.matmul(x_t.reshape(T * B, F), p["W_x"], out=gates)
        gates += p["b"]
        gates = gates.reshape(T, B, 4 * H)
        hs[0] = 0
        cs[0] = 0
        for t in range(T):
            be.matmul(hs[t], p["W_h"], out=rec)
            be.lstm_forward(gates[t], rec, cs[t], cs[t + 1], tcs[t], hs[t + 1])
        return hs[T], (x_t, gates, cs, tcs, hs)

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        x_t, gates, cs, tcs, hs = cache
        T, B, F = x_t.shape
        H = hs.shape[2]
        da = ws.get(xp, "da", (T * B, 4 * H), self.dtype)
        da_t = da.reshape(T, B, 4 * H)
        dh_t = ws.get(xp, "dh", (B, H), self.dtype)
        dc = ws.get(xp, "dc", (B, H), self.dtype)
        dh_t[...] = dh
        dc[...] = 0
        W_h_T = p["W_h"].T
        for t in range(T - 1, -1, -1):
            be.lstm_backward(gates[t], cs[t], tcs[t], dh_t, dc, da_t[t])
            if t:
                be.matmul(da_t[t], W_h_T, out=dh_t)
        return {
            "W_x": be.matmul(x_t.reshape(T * B, F).T, da),
            "W_h": be.matmul(hs[:T].reshape(T * B, H).T, da),
            "b": da.sum(axis=0),
        }
