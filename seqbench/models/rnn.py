"""The Elman RNN cell of the original notebook, with BPTT written out.

    h_t = tanh(x_t W_ax + h_{t-1} W_aa + b_a),   h_0 = 0

Forward: the input projection of all T steps is one matrix product; each step adds one
``(B, H) @ (H, H)`` product and one fused tanh. Backward keeps dz_t = dh_t * (1 - h_t^2) for
every step, so dW_aa and dW_ax are each one matrix product over all steps.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from seqbench.models.recurrent import CellBase


class RNN(CellBase):
    """tanh RNN cell; parameters ``W_ax (F, H)``, ``W_aa (H, H)``, ``b_a (H,)``."""

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        return {
            "W_ax": rng.standard_normal((n_features, hidden)) * math.sqrt(1.0 / n_features),
            "W_aa": rng.standard_normal((hidden, hidden)) * math.sqrt(1.0 / hidden),
            "b_a": np.zeros(hidden),
        }

    def forward(self, p: Mapping[str, Any], x_t: Any) -> tuple[Any, Any]:
        xp, be = self.xp, self.backend
        T, B, F = x_t.shape
        H = p["W_aa"].shape[0]
        hs = self.ws.get(xp, "h", (T + 1, B, H), self.dtype)  # hs[t + 1] = h_t
        zx = self.ws.get(xp, "zx", (T * B, H), self.dtype)
        rec = self.ws.get(xp, "rec", (B, H), self.dtype)
        be.matmul(x_t.reshape(T * B, F), p["W_ax"], out=zx)
        zx += p["b_a"]
        zx = zx.reshape(T, B, H)
        hs[0] = 0
        for t in range(T):
            be.matmul(hs[t], p["W_aa"], out=rec)
            be.tanh_add(rec, zx[t], out=hs[t + 1])
        return hs[T], (x_t, hs)

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be = self.xp, self.backend
        x_t, hs = cache
        T, B, F = x_t.shape
        H = hs.shape[2]
        dz = self.ws.get(xp, "dz", (T, B, H), self.dtype)
        dh = dh.copy()
        W_aa_T = p["W_aa"].T
        for t in range(T - 1, -1, -1):
            be.tanh_backward(dh, hs[t + 1], out=dz[t])
            if t:
                be.matmul(dz[t], W_aa_T, out=dh)
        dz2 = dz.reshape(T * B, H)
        return {
            "W_ax": be.matmul(x_t.reshape(T * B, F).T, dz2),
            "W_aa": be.matmul(hs[:T].reshape(T * B, H).T, dz2),
            "b_a": dz2.sum(axis=0),
        }
