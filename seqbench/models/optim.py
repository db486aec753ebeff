"""Optimizers and gradient clipping that update parameter arrays in place (NumPy or CuPy)."""

from __future__ import annotations

from typing import Any, Mapping

Params = Mapping[str, Any]


class SGD:
    """p <- p - lr * g (the original notebook's update)."""

    def __init__(self, params: Params, lr: float) -> None:
        self.lr = lr

    def step(self, params: Params, grads: Params) -> None:
        for k, p in params.items():
            p -= self.lr * grads[k]


class Momentum:
    """Heavy-ball momentum: v <- mu v + g; p <- p - lr v."""

    def __init__(self, params: Params, lr: float, momentum: float = 0.9) -> None:
        self.lr, self.mu = lr, momentum
        self.v = {k: p * 0 for k, p in params.items()}

    def step(self, params: Params, grads: Params) -> None:
        for k, p in params.items():
            v = self.v[k]
            v *= self.mu
            v += grads[k]
            p -= self.lr * v


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction."""

    def __init__(
        self, params: Params, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.m = {k: p * 0 for k, p in params.items()}
        self.v = {k: p * 0 for k, p in params.items()}
        self.t = 0

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        step = self.lr * (1 - self.b2**self.t) ** 0.5 / (1 - self.b1**self.t)
        for k, p in params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * (g * g)
            p -= step * m / (v**0.5 + self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, params: Params, lr: float, momentum: float = 0.9) -> Any:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (expected one of {', '.join(OPTIMIZERS)})")
    if name == "momentum":
        return Momentum(params, lr, momentum)
    return OPTIMIZERS[name](params, lr)


def clip_grad_norm(xp: Any, grads: Params, max_norm: float) -> Any:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping as a 0-d array (no host synchronisation on a GPU).
    """
    norm = xp.sqrt(sum((g * g).sum() for g in grads.values()))
    scale = xp.minimum(1.0, max_norm / (norm + 1e-6)).astype(next(iter(grads.values())).dtype)
    for g in grads.values():
        g *= scale
    return norm
