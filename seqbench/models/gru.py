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

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        return {
            "W_x": rng.standard_normal((n_features, 3 * hidden)) * math.sqrt(1.0 / n_features),
            "W_h": rng.standard_normal((hidden, 3 * hidden)) * math.sqrt(1.0 / hidden),
            "b_x": np.zeros(3 * hidden),
            "b_h": np.zeros(3 * hidden),
        }

    def forward(self, p: Mapping[str, Any], x_t: Any) -> tuple[Any, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        gx = ws.get(xp, "gx", (T * B, 3 * H), self.dtype)  # x W_x + b_x, then [r, z, n]
        gh = ws.get(xp, "gh", (T, B, 3 * H), self.dtype)  # h_{t-1} W_h + b_h
        hs = ws.get(xp, "h", (T + 1, B, H), self.dtype)  # hs[t + 1] = h_t
        be.matmul(x_t.reshape(T * B, F), p["W_x"], out=gx)
        gx += p["b_x"]
        gx = gx.reshape(T, B, 3 * H)
        hs[0] = 0
        for t in range(T):
            be.matmul(hs[t], p["W_h"], out=gh[t])
            be.gru_forward(gx[t], gh[t], p["b_h"], hs[t], hs[t + 1])
        return hs[T], (x_t, gx, gh, hs)

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        x_t, gx, gh, hs = cache
        T, B, F = x_t.shape
        H = hs.shape[2]
        da = ws.get(xp, "da", (T * B, 3 * H), self.dtype)
        dr = ws.get(xp, "dr", (T * B, 3 * H), self.dtype)
        da_t, dr_t = da.reshape(T, B, 3 * H), dr.reshape(T, B, 3 * H)
        dh_direct = ws.get(xp, "dh", (B, H), self.dtype)  # dh_t * z, the path around the gates
        dh_rec = ws.get(xp, "dh_rec", (B, H), self.dtype)  # dR_{t+1} W_h^T
        dh_direct[...] = 0
        dh_rec[...] = dh
        W_h_T = p["W_h"].T
        for t in range(T - 1, -1, -1):
            be.gru_backward(gx[t], gh[t], hs[t], dh_rec, dh_direct, da_t[t], dr_t[t])
            if t:
                be.matmul(dr_t[t], W_h_T, out=dh_rec)
        return {
            "W_x": be.matmul(x_t.reshape(T * B, F).T, da),
            "W_h": be.matmul(hs[:T].reshape(T * B, H).T, dr),
            "b_x": da.sum(axis=0),
            "b_h": dr.sum(axis=0),
        }
