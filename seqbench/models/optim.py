"""Optimizers and gradient clipping that update parameter arrays in place (NumPy or CuPy).

An optimizer step is split in two so that a CUDA graph can replay its device part:
:meth:`prepare` does the host work (step count, learning rate) and writes the step size into a
one-element device array; :meth:`apply` does array work only, reading the step size from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Params = Mapping[str, Any]


class Optimizer:
    """Base: ``lr`` may change between steps (learning-rate decay); ``rate`` holds this step's size."""

    def __init__(self, params: Params, lr: float, backend: Any) -> None:
        self.lr, self.backend = lr, backend
        self.rate = backend.scalar(lr, next(iter(params.values())).dtype)

    def step_size(self) -> float:
        return self.lr

    def prepare(self) -> None:
        """Host side of the next step: write its step size to the device."""
        self.rate.fill(self.step_size())

    def apply(self, params: Params, grads: Params) -> None:
        """Device side of the step: update ``params`` in place from ``grads``."""
        raise NotImplementedError


class SGD(Optimizer):
    """p <- p - lr * g (the original notebook's update)."""

    def apply(self, params: Params, grads: Params) -> None:
        for k, p in params.items():
            p -= self.rate * grads[k]


class Momentum(Optimizer):
    """Heavy-ball momentum: v <- mu v + g; p <- p - lr v."""

    def __init__(self, params: Params, lr: float, backend: Any, momentum: float = 0.9) -> None:
        super().__init__(params, lr, backend)
        self.mu = momentum
        self.v = {k: p * 0 for k, p in params.items()}

    def apply(self, params: Params, grads: Params) -> None:
        for k, p in params.items():
            v = self.v[k]
            v *= self.mu
            v += grads[k]
            p -= self.rate * v


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction; one fused kernel per parameter on CuPy."""

    def __init__(
        self, params: Params, lr: float, backend: Any, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(params, lr, backend)
        self.b1, self.b2, self.eps = beta1, beta2, eps
        self.m = {k: p * 0 for k, p in params.items()}
        self.v = {k: p * 0 for k, p in params.items()}
        self.t = 0

    def prepare(self) -> None:
        self.t += 1
        super().prepare()

    def step_size(self) -> float:
        return self.lr * (1 - self.b2**self.t) ** 0.5 / (1 - self.b1**self.t)

    def apply(self, params: Params, grads: Params) -> None:
        for k, p in params.items():
            self.backend.adam_update(p, grads[k], self.m[k], self.v[k], self.rate, self.b1, self.b2, self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, params: Params, lr: float, backend: Any, momentum: float = 0.9) -> Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (expected one of {', '.join(OPTIMIZERS)})")
    if name == "momentum":
        return Momentum(params, lr, backend, momentum)
    return OPTIMIZERS[name](params, lr, backend)


def clip_grad_norm(xp: Any, grads: Params, max_norm: float) -> Any:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping as a 0-d array (no host synchronisation on a GPU).
    """
    norm = xp.sqrt(sum((g * g).sum() for g in grads.values()))
    scale = xp.minimum(1.0, max_norm / (norm + 1e-6)).astype(next(iter(grads.values())).dtype)
    for g in grads.values():
        g *= scale
    return norm
