"""The Elman RNN cell of the original notebook, with BPTT written out.

    h_t = tanh(x_t W_ax + h_{t-1} W_aa + b_a),   h_0 = 0

Forward: the input projection of all T steps is one matrix product; each step adds one
``(B, H) @ (H, H)`` product and one fused tanh. Backward keeps dz_t = dh_t * (1 - h_t^2) for
every step of a segment (all steps of a row task), so dW_aa and dW_ax are each one matrix
product a segment; a sequence too long for its buffers is done in chunks of steps
(:class:`~seqbench.models.recurrent.CellBase`).

The element-wise steps (:data:`FORWARD`, :data:`BACKWARD`) are below the cell, each in its three
forms (NumPy, numba, CUDA; see :mod:`seqbench.models.kernels`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from seqbench.models.kernels import Cuda, Kernel, jit, one, tanh
from seqbench.models.recurrent import CellBase


class RNN(CellBase):
    """tanh RNN cell; parameters ``W_ax (F, H)``, ``W_aa (H, H)``, ``b_a (H,)``."""

    widths = 2  # a step's forward buffers, in (B, H) arrays: zx, h
    grad_widths = 1  # and its gradient's: dz

    def __init__(self, backend: Any, dtype: np.dtype) -> None:
        super().__init__(backend, dtype)
        self._forward_step, self._backward_step = backend.kernel(FORWARD), backend.kernel(BACKWARD)

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        return {
            "W_ax": rng.standard_normal((n_features, hidden)) * math.sqrt(1.0 / n_features),
            "W_aa": rng.standard_normal((hidden, hidden)) * math.sqrt(1.0 / hidden),
            "b_a": np.zeros(hidden),
        }

    def forward(self, p: Mapping[str, Any], x_t: Any, readout: str) -> tuple[Any, Any]:
        T, B, _F = x_t.shape
        H = p["W_aa"].shape[0]
        K = self.chunk_len(T, B, H)
        zx, hs = self._buffers(K, B, H)
        h, starts = self._forward_chunks(x_t, K, (hs,), lambda x: self._steps(p, x, zx, hs), readout)
        return h, (x_t, K, starts, readout)

    def _buffers(self, K: int, B: int, H: int) -> tuple[Any, Any]:
        """A chunk's forward buffers: ``zx`` (x W_ax + b_a) and ``hs`` (hs[i + 1] = h after its step i)."""
        xp, ws = self.xp, self.ws
        return ws.get(xp, "zx", (K * B, H), self.dtype), ws.get(xp, "h", (K + 1, B, H), self.dtype)

    def _steps(self, p: Mapping[str, Any], x: Any, zx: Any, hs: Any) -> int:
        """The forward steps of a chunk ``x`` ``(n, B, F)`` from the state ``hs[0]``; returns n."""
        be = self.backend
        n, B, F = x.shape
        H = p["W_aa"].shape[0]
        rec = self.ws.get(self.xp, "rec", (B, H), self.dtype)
        zx = zx[: n * B]
        be.matmul(x.reshape(n * B, F), p["W_ax"], out=zx)
        zx += p["b_a"]
        zx = zx.reshape(n, B, H)
        for t in range(n):
            be.matmul(hs[t], p["W_aa"], out=rec)
            self._forward_step(rec, zx[t], hs[t + 1])
        return n

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        x_t, K, starts, readout = cache
        T, B, F = x_t.shape
        H = p["W_aa"].shape[0]
        zx, hs = self._buffers(K, B, H)
        S = self.grad_len(K, B, H)
        dz = ws.get(xp, "dz", (S * B, H), self.dtype)
        dh_t = ws.get(xp, "dh", (B, H), self.dtype)
        dh_last, dh_every = self._readout_grads(dh, T, readout)
        dh_t[...] = dh_last
        W_aa_T = p["W_aa"].T
        grads: dict[str, Any] = {}
        for i, c0, x, recompute in self._chunks_backward(x_t, K):
            n = x.shape[0]
            if recompute:
                hs[0] = starts[i, 0]
                self._steps(p, x, zx, hs)
            for s0, s1 in self._segments(n, S):
                dz_s = dz[: (s1 - s0) * B]
                dz_t = dz_s.reshape(s1 - s0, B, H)
                for t in range(s1 - 1, s0 - 1, -1):
                    self._backward_step(dh_t, hs[t + 1], dz_t[t - s0])
                    if c0 + t:
                        be.matmul(dz_t[t - s0], W_aa_T, out=dh_t)
                        if dh_every is not None:
                            dh_t += dh_every
                self._add(grads, "W_ax", x[s0:s1].reshape(-1, F).T, dz_s)
                self._add(grads, "W_aa", hs[s0:s1].reshape(-1, H).T, dz_s)
                self._add_sum(grads, "b_a", dz_s)
        return grads


# -- the element-wise steps -------------------------------------------------------------------------
# FORWARD(a, b, h): h = tanh(a + b), all (B, H) (``out`` may be an input).


def _forward_numpy(a: np.ndarray, b: np.ndarray, h: np.ndarray) -> None:
    np.add(a, b, out=h)
    np.tanh(h, out=h)


@jit
def _forward_fused(a, b, h):  # pragma: no cover - compiled by numba
    for i in range(h.shape[0]):
        ar, br, hr = a[i], b[i], h[i]
        for j in range(hr.shape[0]):
            hr[j] = tanh(ar[j] + br[j])


FORWARD = Kernel("seqbench_rnn_forward", _forward_numpy, _forward_fused, Cuda("T a, T b", "T h", "h = tanh(a + b)"))

# BACKWARD(dh, h, dz): dz = dh (1 - h^2), the gradient through h = tanh(z).


def _backward_numpy(dh: np.ndarray, h: np.ndarray, dz: np.ndarray) -> None:
    np.multiply(h, h, out=dz)
    np.subtract(1, dz, out=dz)
    np.multiply(dh, dz, out=dz)


@jit
def _backward_fused(dh, h, dz):  # pragma: no cover - compiled by numba
    u = one(h)
    for i in range(dz.shape[0]):
        dr, hr, zr = dh[i], h[i], dz[i]
        for j in range(zr.shape[0]):
            zr[j] = dr[j] * (u - hr[j] * hr[j])


BACKWARD = Kernel("seqbench_rnn_backward", _backward_numpy, _backward_fused,
                  Cuda("T dh, T h", "T dz", "dz = dh * (T(1) - h * h)"))
