"""The GRU cell exactly as PyTorch's ``nn.GRU`` (two biases, reset gate inside the candidate),
BPTT written out; gate blocks in PyTorch's order [r, z, n].

    r = sigma(x_t W_xr + b_xr + h_{t-1} W_hr + b_hr)
    z = sigma(x_t W_xz + b_xz + h_{t-1} W_hz + b_hz)
    n = tanh(x_t W_xn + b_xn + r * (h_{t-1} W_hn + b_hn))
    h_t = (1 - z) * n + z * h_{t-1},   h_0 = 0

Forward: the input projection of all three gates and all T steps is one ``(T*B, F) @ (F, 3H)``
product; each step adds one ``(B, H) @ (H, 3H)`` product and one fused element-wise step.
Backward keeps, for every step of a segment (all steps of a row task), the pre-activation
gradients dA_t = [da_r, da_z, da_n] and their recurrent counterparts dR_t = [da_r, da_z, r * da_n]
(the n block reaches h_{t-1} W_hn + b_hn through r), so dW_x = X^T dA and dW_h = H_{t-1}^T dR
are one product each a segment; per step one ``(B, 3H) @ (3H, H)`` product carries dh back, plus
the direct path dh_t z. A sequence too long for its buffers is done in chunks of steps
(:class:`~seqbench.models.recurrent.CellBase`).

The element-wise steps (:data:`FORWARD`, :data:`BACKWARD`) are below the cell, each in its three
forms (NumPy, numba, CUDA; see :mod:`seqbench.models.kernels`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from seqbench.models.kernels import CUDA_BLOCK_INDEX, CUDA_SIGMOID, Cuda, Kernel, jit, one, sigmoid, sigmoid_numpy, tanh
from seqbench.models.recurrent import CellBase


class GRU(CellBase):
    """GRU cell; parameters ``W_x (F, 3H)``, ``W_h (H, 3H)``, ``b_x (3H,)``, ``b_h (3H,)``.

    Weights start as randn * sqrt(1 / fan_in) (as the RNN's), biases at 0.
    """

    widths = 7  # a step's forward buffers, in (B, H) arrays: gx, gh (3 each), h
    grad_widths = 6  # and its gradient's: da, dr (3 each)

    def __init__(self, backend: Any, dtype: np.dtype) -> None:
        super().__init__(backend, dtype)
        self._forward_step, self._backward_step = backend.kernel(FORWARD), backend.kernel(BACKWARD)

    def init(self, rng: np.random.Generator, n_features: int, hidden: int) -> dict[str, np.ndarray]:
        return {
            "W_x": rng.standard_normal((n_features, 3 * hidden)) * math.sqrt(1.0 / n_features),
            "W_h": rng.standard_normal((hidden, 3 * hidden)) * math.sqrt(1.0 / hidden),
            "b_x": np.zeros(3 * hidden),
            "b_h": np.zeros(3 * hidden),
        }

    def forward(self, p: Mapping[str, Any], x_t: Any, readout: str) -> tuple[Any, Any]:
        T, B, _F = x_t.shape
        H = p["W_h"].shape[0]
        K = self.chunk_len(T, B, H)
        bufs = self._buffers(K, B, H)
        h, starts = self._forward_chunks(x_t, K, (bufs[2],), lambda x: self._steps(p, x, *bufs), readout)
        return h, (x_t, K, starts, readout)

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
            self._forward_step(p["b_h"], hs[t], H, gx[t], gh[t], hs[t + 1])
        return n

    def backward(self, p: Mapping[str, Any], cache: Any, dh: Any) -> dict[str, Any]:
        xp, be, ws = self.xp, self.backend, self.ws
        x_t, K, starts, readout = cache
        T, B, F = x_t.shape
        H = p["W_h"].shape[0]
        gx, gh, hs = self._buffers(K, B, H)
        S = self.grad_len(K, B, H)
        da = ws.get(xp, "da", (S * B, 3 * H), self.dtype)
        dr = ws.get(xp, "dr", (S * B, 3 * H), self.dtype)
        dh_direct = ws.get(xp, "dh", (B, H), self.dtype)  # dh_t * z, the path around the gates
        dh_rec = ws.get(xp, "dh_rec", (B, H), self.dtype)  # dR_{t+1} W_h^T
        dh_last, dh_every = self._readout_grads(dh, T, readout)
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
            for s0, s1 in self._segments(n, S):
                m = s1 - s0
                da_s, dr_s = da[: m * B], dr[: m * B]
                da_t, dr_t = da_s.reshape(m, B, 3 * H), dr_s.reshape(m, B, 3 * H)
                for t in range(s1 - 1, s0 - 1, -1):
                    self._backward_step(gx_t[t], gh[t], hs[t], dh_rec, H, dh_direct, da_t[t - s0], dr_t[t - s0])
                    if c0 + t:
                        be.matmul(dr_t[t - s0], W_h_T, out=dh_rec)
                        if dh_every is not None:
                            dh_rec += dh_every
                self._add(grads, "W_x", x[s0:s1].reshape(-1, F).T, da_s)
                self._add(grads, "W_h", hs[s0:s1].reshape(-1, H).T, dr_s)
                self._add_sum(grads, "b_x", da_s)
                self._add_sum(grads, "b_h", dr_s)
        return grads


# -- the element-wise steps -------------------------------------------------------------------------
# FORWARD(b_h, h_prev, H, gx, gh, h): ``gx``, ``gh`` (B, 3H), blocks [r, z, n]; ``h_prev``, ``h``
# (B, H). In: ``gx`` = x_t W_x + b_x, ``gh`` = h_{t-1} W_h. Out: ``gh`` += b_h; ``gx`` = [r, z, n]
# with r, z = sigma(gx + gh), n = tanh(gx_n + r gh_n); h = n + z (h_prev - n).


def _forward_numpy(b_h: np.ndarray, h_prev: np.ndarray, H: int, gx: np.ndarray, gh: np.ndarray,
                   h: np.ndarray) -> None:
    rz, n, r, z = gx[:, : 2 * H], gx[:, 2 * H :], gx[:, :H], gx[:, H : 2 * H]
    np.add(gh, b_h, out=gh)
    np.add(rz, gh[:, : 2 * H], out=rz)
    sigmoid_numpy(rz, out=rz)
    np.multiply(r, gh[:, 2 * H :], out=h)  # h is scratch until the last two lines
    np.add(n, h, out=n)
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    np.multiply(h, z, out=h)
    np.add(h, n, out=h)


@jit
def _forward_fused(b_h, h_prev, H, gx, gh, h):  # pragma: no cover - compiled by numba
    for b in range(h.shape[0]):
        xr, hr = gx[b], gh[b]
        for j in range(3 * H):
            hr[j] += b_h[j]
        for j in range(2 * H):  # r and z
            xr[j] = sigmoid(xr[j] + hr[j])
        n, hn = xr[2 * H :], hr[2 * H :]
        for j in range(H):
            n[j] = tanh(n[j] + xr[j] * hn[j])
        hp, ho = h_prev[b], h[b]
        for j in range(H):
            ho[j] = (hp[j] - n[j]) * xr[H + j] + n[j]


_CUDA_FORWARD = CUDA_BLOCK_INDEX.format(blocks=3) + """
const T hr = gh[k] + b_h[j], hz = gh[k + H] + b_h[j + H], hn = gh[k + 2 * H] + b_h[j + 2 * H];
gh[k] = hr; gh[k + H] = hz; gh[k + 2 * H] = hn;
const T r = sigm(gx[k] + hr);
const T z = sigm(gx[k + H] + hz);
const T n = tanh(gx[k + 2 * H] + r * hn);
gx[k] = r; gx[k + H] = z; gx[k + 2 * H] = n;
h = (h_prev - n) * z + n;
"""

FORWARD = Kernel("seqbench_gru_forward", _forward_numpy, _forward_fused,
                 Cuda("raw T b_h, T h_prev, int32 H", "raw T gx, raw T gh, T h", _CUDA_FORWARD, CUDA_SIGMOID))

# BACKWARD(gx, gh, h_prev, rec, H, dh, dgx, dgh): backward of FORWARD given its outputs ``gx`` =
# [r, z, n] and ``gh``. dL/dh_t is d = ``dh + rec`` (the direct part plus the part through the
# gates of step t+1). In/out ``dh`` becomes the direct part of dL/dh_{t-1}, d z. Out, the
# pre-activation gradients ``dgx`` = [da_r, da_z, da_n] (for W_x, b_x) and ``dgh`` = [da_r, da_z,
# r da_n] (for W_h, b_h): da_n = d (1-z)(1-n^2), da_r = da_n gh_n r(1-r), da_z = d (h_prev - n) z(1-z).


def _backward_numpy(gx: np.ndarray, gh: np.ndarray, h_prev: np.ndarray, rec: np.ndarray, H: int,
                    dh: np.ndarray, dgx: np.ndarray, dgh: np.ndarray) -> None:
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


@jit
def _backward_fused(gx, gh, h_prev, rec, H, dh, dgx, dgh):  # pragma: no cover - compiled by numba
    u = one(gx)
    for b in range(dh.shape[0]):
        xr = gx[b]
        r, z, n, hn = xr[:H], xr[H : 2 * H], xr[2 * H :], gh[b, 2 * H :]
        d, rc, hp = dh[b], rec[b], h_prev[b]
        dxr, dhr = dgx[b], dgh[b]
        dar, daz, dan = dxr[:H], dxr[H : 2 * H], dxr[2 * H :]
        for j in range(H):
            d[j] += rc[j]
        for j in range(H):
            dan[j] = (u - z[j]) * d[j] * (u - n[j] * n[j])
        for j in range(H):
            dar[j] = (u - r[j]) * r[j] * hn[j] * dan[j]
        for j in range(H):
            daz[j] = (hp[j] - n[j]) * d[j] * ((u - z[j]) * z[j])
        for j in range(2 * H):
            dhr[j] = dxr[j]
        dhn = dhr[2 * H :]
        for j in range(H):
            dhn[j] = dan[j] * r[j]
        for j in range(H):
            d[j] *= z[j]


_CUDA_BACKWARD = CUDA_BLOCK_INDEX.format(blocks=3) + """
const T r = gx[k], z = gx[k + H], n = gx[k + 2 * H], hn = gh[k + 2 * H];
const T d = dh + rec;
const T dan = (T(1) - z) * d * (T(1) - n * n);
const T dar = (T(1) - r) * r * hn * dan;
const T daz = (h_prev - n) * d * ((T(1) - z) * z);
dgx[k] = dar; dgx[k + H] = daz; dgx[k + 2 * H] = dan;
dgh[k] = dar; dgh[k + H] = daz; dgh[k + 2 * H] = dan * r;
dh = d * z;
"""

BACKWARD = Kernel("seqbench_gru_backward", _backward_numpy, _backward_fused,
                  Cuda("raw T gx, raw T gh, T h_prev, T rec, int32 H", "T dh, raw T dgx, raw T dgh", _CUDA_BACKWARD))
