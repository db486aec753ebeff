"""Softmax (multinomial logistic) regression on the flattened ``(T * F)`` sequence, in NumPy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from seqbench import Model


class SoftmaxRegression(Model):
    """``p = softmax(x.reshape(B, T * F) @ W + b)``, trained by SGD with momentum and L2 decay.

    The loss is convex, so the weights start at zero and the result does not depend on the seed
    (the harness's seeded shuffling still does).
    """

    device = "cpu"

    def __init__(self, n_inputs: int, num_classes: int, *, lr: float, momentum: float, weight_decay: float) -> None:
        self.W = np.zeros((n_inputs, num_classes), np.float32)
        self.b = np.zeros(num_classes, np.float32)
        self._velocity = [np.zeros_like(self.W), np.zeros_like(self.b)]
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self._hparams = {"n_inputs": n_inputs, "num_classes": num_classes, "lr": lr,
                         "momentum": momentum, "weight_decay": weight_decay}

    def _proba(self, x: np.ndarray) -> np.ndarray:
        z = x.reshape(len(x), -1) @ self.W + self.b
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def train_batch(self, x: Any, y: Any) -> float:
        flat = x.reshape(len(x), -1)
        p = self._proba(x)
        rows = np.arange(len(y))
        loss = -np.log(np.maximum(p[rows, y], 1e-12)).mean()
        p[rows, y] -= 1  # dL/dz of the mean cross-entropy, times the batch size
        p /= len(y)
        grads = (flat.T @ p + self.weight_decay * self.W, p.sum(axis=0))
        for param, v, g in zip((self.W, self.b), self._velocity, grads, strict=True):
            v *= self.momentum
            v += g
            param -= self.lr * v
        return float(loss)

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._proba(x)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"W": self.W.copy(), "b": self.b.copy()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for name in ("W", "b"):
            current = getattr(self, name)
            if state[name].shape != current.shape:
                raise ValueError(f"parameter {name}: shape {state[name].shape}, expected {current.shape}")
            current[...] = state[name]

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self._hparams)

    def num_parameters(self) -> int:
        return int(self.W.size + self.b.size)
