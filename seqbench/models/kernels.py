"""What a cell's element-wise step is made of on each backend, and the tools to write one.

A cell's per-step element-wise work (its gate activations, state update and their gradients) is
a :class:`Kernel`, declared in the cell's own module in three forms side by side:

- ``numpy``: plain NumPy ufuncs with ``out=``, the reference and the fallback;
- ``fused``: the same loop compiled by numba (:func:`jit`), one pass over each row, with the
  activations written so that LLVM vectorises them (:func:`tanh`, :func:`sigmoid`); ``None``
  when numba is not importable;
- ``cuda``: the body of one CuPy ``ElementwiseKernel`` (:class:`Cuda`).

All three are called the same way: the CUDA kernel's inputs then its outputs, in order (the
backend picks one: :meth:`~seqbench.models.backend.NumpyBackend.kernel`). numba, not a
hand-written C extension, because it compiles these loops for the host's vector width at first
use and caches them, and a pure-NumPy path stays for hosts without it.

**Writing a fused kernel** (what keeps it vectorised; a loop LLVM cannot vectorise runs 4-10x
slower than NumPy): loop over the batch rows; in each row take 1-D views of the gate blocks
(``g[b, H:2 * H]``) and loop ``for j in range(H)`` over them (a loop ``range(H, 2 * H)`` or an
index ``g[b, H + j]`` into a row that the loop also writes is not vectorised); keep each inner
loop to a few arrays (every written array is checked at run time against the others); use
:func:`one` for the constant 1 (an integer literal would promote float32 to float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

try:  # numba is a dependency; without it (an unsupported platform) the NumPy kernels run
    import numba
    from numba.extending import overload
except ImportError:  # pragma: no cover - exercised by hosts without numba only
    numba = None  # type: ignore[assignment]  # no numba: callers test for None and take the NumPy kernels

#: numba's float options: fused multiply-add and reciprocals allowed; no "no NaN" assumption, so
#: a diverging model still shows NaN.
FASTMATH = {"contract", "arcp"}


@dataclass(frozen=True)
class Cuda:
    """One CuPy ``ElementwiseKernel``: its parameters, body and the helper functions it uses."""

    in_params: str
    out_params: str
    body: str
    preamble: str = ""


@dataclass(frozen=True)
class Kernel:
    """A cell's element-wise step in its three forms (see the module docstring); ``cuda`` is
    ``None`` for a step the GPU path does not take."""

    name: str
    numpy: Callable[..., None]
    fused: Callable[..., None] | None
    cuda: Cuda | None = None


def numba_unavailable() -> str | None:
    """Why the fused CPU kernels cannot run here, or ``None`` when they can."""
    return None if numba is not None else "numba is not importable; the NumPy kernels run instead"


def jit(fn: Callable[..., None]) -> Callable[..., None] | None:
    """``fn`` compiled by numba for this CPU at its first call (cached on disk), releasing the
    GIL so that batch shards run at once; ``None`` without numba."""
    if numba is None:
        return None
    return numba.njit(nogil=True, fastmath=FASTMATH, error_model="numpy", cache=True)(fn)


# -- activations inside fused kernels -------------------------------------------------------------
# float32: tanh as Eigen's rational approximation on [-7.9053, 7.9053] (a 13/6-degree odd
# polynomial ratio, within 3e-7 of NumPy's tanh; its value at +-7.9053 beyond), which
# vectorises where libm's tanhf does not. float64 (the gradient checks): math.tanh itself.
_LIMIT = 7.90531110763549805
_ALPHA = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
          1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)  # x^13 ... x^1
_BETA = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)  # x^6 ... x^0


def tanh(x: Any) -> Any:
    """tanh inside a fused kernel (numba only): see above."""
    raise NotImplementedError("tanh is for numba-compiled kernels")


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) inside a fused kernel (numba only), as tanh(x / 2) / 2 + 1/2."""
    raise NotImplementedError("sigmoid is for numba-compiled kernels")


def one(a: Any) -> Any:
    """The constant 1 in the dtype of array ``a`` (inside a fused kernel)."""
    raise NotImplementedError("one is for numba-compiled kernels")


if numba is not None:
    _f = np.float32
    _LO, _HI = _f(-_LIMIT), _f(_LIMIT)
    _A13, _A11, _A9, _A7, _A5, _A3, _A1 = (_f(c) for c in _ALPHA)
    _B6, _B4, _B2, _B0 = (_f(c) for c in _BETA)
    _HALF = _f(0.5)

    @numba.njit(fastmath=FASTMATH, error_model="numpy")
    def _tanh32(x):  # pragma: no cover - compiled by numba
        x = _HI if x > _HI else x  # NaN stays NaN
        x = _LO if x < _LO else x
        x2 = x * x
        p = x2 * _A13 + _A11
        p = x2 * p + _A9
        p = x2 * p + _A7
        p = x2 * p + _A5
        p = x2 * p + _A3
        p = x2 * p + _A1
        q = x2 * _B6 + _B4
        q = x2 * q + _B2
        q = x2 * q + _B0
        return x * p / q

    # numba takes fastmath as a target option of the overload; its stub's signature omits it.
    @overload(tanh, fastmath=FASTMATH)  # type: ignore[call-arg]
    def _tanh_for(x):
        if x == numba.types.float32:
            return lambda x: _tanh32(x)
        return lambda x: math.tanh(x)

    # numba takes fastmath as a target option of the overload; its stub's signature omits it.
    @overload(sigmoid, fastmath=FASTMATH)  # type: ignore[call-arg]
    def _sigmoid_for(x):
        if x == numba.types.float32:
            return lambda x: _HALF * _tanh32(_HALF * x) + _HALF
        return lambda x: 0.5 * math.tanh(0.5 * x) + 0.5

    @overload(one)
    def _one_for(a):
        one_ = numba.np.numpy_support.as_dtype(a.dtype).type(1)
        return lambda a: one_


def sigmoid_numpy(a: np.ndarray, out: np.ndarray) -> None:
    """out = 1 / (1 + exp(-a)) with NumPy, written through tanh so that it cannot overflow."""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    np.multiply(out, 0.5, out=out)
    np.add(out, 0.5, out=out)


#: CUDA helpers for :class:`Cuda` preambles.
CUDA_SIGMOID = "__device__ inline T sigm(T a) { return T(0.5) * tanh(T(0.5) * a) + T(0.5); }\n"
#: The start of a gated kernel's body: it runs one thread per (batch row, hidden unit) of its
#: (B, H) arrays and reaches the gate blocks of its (B, kH) ``raw`` arrays at flat C-order
#: index ``k`` (block 0), ``k + H`` (block 1), ...
CUDA_BLOCK_INDEX = "const ptrdiff_t j = i % H, k = (i / H) * {blocks} * H + j;\n"
