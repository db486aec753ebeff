"""Plugins for the tune tests, loadable by name in a subprocess or on a Dask worker
(``PluginSource(extra="tune_helpers:plugins")``): the toy dataset, the untyped ``logreg``, the
typed ``typed`` (lr searched), and ``slow``, as ``typed`` but sleeping at each batch."""

from __future__ import annotations

import time
from typing import Any

from helpers import MeanLogReg, toy_plugin

from seqbench import ModelSpec, Param, hookimpl

#: The typed model's declaration: lr searched on a log scale.
PARAMS = (Param("lr", float, 0.5, "step size", gt=0, search=(1e-4, 3.0), log=True),
          Param("decay", float, 1.0, "not searched", gt=0, le=1))
DEFAULTS = {"epochs": 4, "batch_size": 32, "patience": 4}


class Slow(MeanLogReg):
    """``MeanLogReg`` that takes its time (a trial lasts long enough to be killed in)."""

    def train_batch(self, x: Any, y: Any) -> float:
        time.sleep(0.02)
        return super().train_batch(x, y)


def _build(cls: type) -> Any:
    return lambda info, p: cls(info.n_features, info.num_classes, p["lr"], p["seed"])


class Typed:
    @hookimpl
    def register_models(self, register):
        register(ModelSpec("typed", _build(MeanLogReg), lambda info: dict(DEFAULTS), params=PARAMS))
        register(ModelSpec("slow", _build(Slow), lambda info: dict(DEFAULTS), params=PARAMS))


def plugins() -> list[tuple[str, object]]:
    return [("toy", toy_plugin()), ("typed", Typed())]
