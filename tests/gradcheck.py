"""Finite-difference checking of a RecurrentClassifier's analytic gradients (float64)."""

from __future__ import annotations

import numpy as np


def max_relative_error(model, x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> dict[str, float]:
    """Per parameter: max |numeric - analytic| / max(|numeric|, |analytic|) over its entries."""
    _, grads = model.loss_and_grads(x, y)
    grads = {k: np.array(v, copy=True) for k, v in grads.items()}
    errors = {}
    for name, p in model.params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            plus = float(model.loss_and_grads(x, y)[0])
            p[i] = old - eps
            minus = float(model.loss_and_grads(x, y)[0])
            p[i] = old
            numeric[i] = (plus - minus) / (2 * eps)
        scale = max(np.abs(numeric).max(), np.abs(grads[name]).max(), 1e-12)
        errors[name] = float(np.abs(numeric - grads[name]).max() / scale)
    return errors
