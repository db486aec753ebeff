"""Test helpers: small synthetic datasets and models, registered as plugins by the tests."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from seqbench import Dataset, DatasetSpec, Model, ModelSpec, hookimpl


def make_toy_dataset(name: str = "toy", n_train: int = 300, n_test: int = 90, seed: int = 0) -> Dataset:
    """3 classes of (T=6, F=4) sequences; the class shifts the mean of feature ``class``."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = rng.normal(0.0, 0.5, (n, 6, 4)).astype(np.float32)
        x[np.arange(n), :, y] += 1.5
        return x, y.astype(np.int64)

    (tx, ty), (sx, sy) = split(n_train), split(n_test)
    return Dataset(name, tx, ty, sx, sy, ("a", "b", "c"), f"sha256:toy{seed}")


class MeanLogReg(Model):
    """Softmax regression on the time-averaged features: tiny, fast, deterministic."""

    device = "cpu"

    def __init__(self, n_features: int, num_classes: int, lr: float = 0.5, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.W = rng.normal(0, 0.01, (n_features, num_classes))
        self.b = np.zeros(num_classes)
        self.lr = lr

    def _proba(self, x: np.ndarray) -> np.ndarray:
        z = x.mean(axis=1) @ self.W + self.b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def train_batch(self, x: Any, y: Any) -> float:
        p = self._proba(x)
        loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
        p[np.arange(len(y)), y] -= 1
        self.W -= self.lr * x.mean(axis=1).T @ p / len(y)
        self.b -= self.lr * p.mean(axis=0)
        return float(loss)

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._proba(x)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"W": self.W.copy(), "b": self.b.copy()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.W, self.b = state["W"].copy(), state["b"].copy()


def toy_plugin(datasets: dict[str, Dataset] | None = None, models: dict[str, Any] | None = None) -> Any:
    """A plugin object registering the given datasets (default: ``toy``) and model builders."""
    datasets = datasets if datasets is not None else {"toy": make_toy_dataset()}
    models = models if models is not None else {
        "logreg": lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"])
    }

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            for name, ds in datasets.items():
                register(DatasetSpec(name, lambda ctx, _ds=ds: _ds, f"synthetic {name}"))

        @hookimpl
        def register_models(self, register):
            for name, build in models.items():
                register(ModelSpec(name, build, lambda info: {"lr": 0.5, "epochs": 6, "batch_size": 32, "patience": 3}))

    return Plugin()


def fake_entry_point(name: str, dist: str, version: str, load: Any) -> Any:
    """An object with the interface of importlib.metadata.EntryPoint that seqbench uses."""
    return types.SimpleNamespace(name=name, dist=types.SimpleNamespace(name=dist, version=version), load=load)
