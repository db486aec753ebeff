"""A hostile plugin for the robustness tests.

Models and datasets that hand the harness what JSON cannot hold (NumPy scalars and arrays, NaN,
bytes), exit the interpreter, return NaN probabilities, diverge, or have names that used to collide in
``pairs/``; a model that is never available; a dataset whose fingerprint depends on the data
directory; and a slow model to interrupt. Tests register it in-process
(``load_plugins(extra=[("hostile", hostile_plugin)])``) or install it by path for a ``seqbench``
subprocess (a ``dist-info`` whose entry point names this module; ``tests/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
from helpers import MeanLogReg, make_toy_dataset

from seqbench import DatasetSpec, ModelSpec, hookimpl

BASE: dict[str, Any] = {"lr": 0.5, "epochs": 2, "batch_size": 32, "patience": 2}


class NumpyMemory(MeanLogReg):
    def peak_memory_bytes(self):
        return np.int64(4096)


class Exits(MeanLogReg):
    def train_batch(self, x, y):
        sys.exit(3)


class NanProba(MeanLogReg):
    def predict_proba(self, x):
        return np.full((len(x), self.W.shape[1]), np.nan)


class Diverges(MeanLogReg):
    def train_batch(self, x, y):
        return float("inf")


class Slow(MeanLogReg):
    """Sleeps ``sleep`` seconds per batch, so that a run lasts long enough to be interrupted."""

    def __init__(self, n_features: int, num_classes: int, lr: float, seed: int, sleep: float) -> None:
        super().__init__(n_features, num_classes, lr, seed)
        self.sleep = sleep

    def train_batch(self, x, y):
        time.sleep(self.sleep)
        return super().train_batch(x, y)


def _logreg(cls: type = MeanLogReg):
    return lambda info, p: cls(info.n_features, info.num_classes, float(p["lr"]), int(p["seed"]))


def _slow(info, p):
    return Slow(info.n_features, info.num_classes, float(p["lr"]), int(p["seed"]), float(p["sleep"]))


#: name: (build, defaults, unavailable reason)
MODELS: dict[str, tuple[Any, dict[str, Any], str | None]] = {
    "h-ok": (_logreg(), BASE, None),
    "h-ok__x": (_logreg(), BASE, None),
    "h-numpy-defaults": (
        _logreg(),
        {**BASE, "lr": np.float64(0.5), "epochs": np.int64(2), "extra": np.arange(2)},
        None,
    ),
    "h-nan-default": (_logreg(), {**BASE, "lr": float("nan")}, None),
    "h-none-default": (_logreg(), {**BASE, "extra": None}, None),
    "h-numpy-memory": (_logreg(NumpyMemory), BASE, None),
    "h-exits": (_logreg(Exits), BASE, None),
    "h-nan-proba": (_logreg(NanProba), BASE, None),
    "h-diverges": (_logreg(Diverges), BASE, None),
    "h-unavailable": (_logreg(), BASE, "needs a machine we do not have"),
    "h-slow": (_slow, {**BASE, "epochs": 3, "patience": 3, "sleep": 0.03}, None),
}


def _by_data_dir(ctx):
    """The toy data, fingerprinted by the name of the data directory it was read from."""
    ds = make_toy_dataset("by-dir")
    return ds.__class__(**{**ds.__dict__, "fingerprint": f"sha256:{ctx.data_dir.name}"})


def _bytes_fingerprint(ctx):
    ds = make_toy_dataset("bytes-fp")
    return ds.__class__(**{**ds.__dict__, "fingerprint": b"sha256:toy0"})


DATASETS = {
    "y": lambda ctx: make_toy_dataset("y"),
    "x__y": lambda ctx: make_toy_dataset("x__y", seed=1),
    "bytes-fp": _bytes_fingerprint,
    "by-dir": _by_data_dir,
}


@hookimpl
def register_models(register):
    for name, (build, defaults, reason) in MODELS.items():
        register(ModelSpec(name, build, lambda info, _d=defaults: dict(_d), lambda _r=reason: _r))


@hookimpl
def register_datasets(register):
    for name, load in DATASETS.items():
        register(DatasetSpec(name, load, f"hostile {name}"))
