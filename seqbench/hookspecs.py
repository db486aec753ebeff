"""The hooks a seqbench plugin implements.

A plugin is a module (or object) with functions decorated by :data:`seqbench.hookimpl` whose
names are hooks below. Each hook receives a ``register`` callback; call it once per thing the
plugin provides. The harness owns the names: registering a name that another plugin already
registered is refused with an error that names both plugins.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from seqbench.types import DatasetSpec, MetricSpec, ModelSpec

hookspec = pluggy.HookspecMarker("seqbench")
hookimpl = pluggy.HookimplMarker("seqbench")


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets by calling ``register(DatasetSpec(...))`` for each.

    Keep this cheap: do not load data here. ``DatasetSpec.load`` is called only when a run
    uses the dataset; it returns a :class:`seqbench.Dataset` with ``(N, T, F)`` float32 arrays
    and ``(N,)`` int64 labels, or raises :class:`seqbench.DatasetUnavailable` with the reason
    (the pair is then recorded as skipped).
    """


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register models by calling ``register(ModelSpec(...))`` for each.

    Keep this cheap: import heavy libraries inside ``ModelSpec.build``. ``build(info, params)``
    returns a :class:`seqbench.Model`; ``defaults(info)`` gives the per-dataset hyperparameters
    the user can override with ``--set``; ``unavailable()`` says why the model cannot run here
    (no GPU, say), or ``None``.
    """


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register metrics by calling ``register(MetricSpec(...))`` for each.

    ``MetricSpec.compute`` is called once per trained pair, on the test split, after
    training; its JSON-serialisable result is stored under the metric's name.
    """
