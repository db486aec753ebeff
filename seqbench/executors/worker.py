"""What a worker runs: one pair, with the worker's own plugins and its own copy of the data.

A worker process keeps its loaded plugins, environment and datasets for the next pair. Nothing
here imports Dask: :mod:`seqbench.executors.dask_executor` calls :func:`run_task` on a worker.
"""

from __future__ import annotations

import importlib
import os
import platform
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from seqbench.planning import RunRequest
    from seqbench.plugins import Registry
    from seqbench.types import Dataset


@dataclass(frozen=True)
class PluginSource:
    """How a worker loads its plugins: the installed ones, as ``seqbench run`` does there (its
    environment decides: ``SEQBENCH_LOAD_PLUGINS``, ...), and ``extra``, ``"module:function"``
    returning ``(name, plugin)`` pairs for :func:`seqbench.plugins.load_plugins`."""

    strict: bool | None = None
    extra: str | None = None

    def load(self) -> Registry:
        from seqbench.plugins import load_plugins

        extra: Any = ()
        if self.extra:
            module, _, function = self.extra.partition(":")
            extra = getattr(importlib.import_module(module), function)()
        return load_plugins(strict=self.strict, extra=extra)


@dataclass(frozen=True)
class PairTask:
    """A pair as sent to a worker. ``request.data_dir`` is where the worker finds its data
    (None: the worker's default); ``fingerprint`` is the data the run loaded for the dataset."""

    model: str
    dataset: str
    seed: int
    fingerprint: str
    request: RunRequest
    plugins: PluginSource


@dataclass(frozen=True)
class WorkerInfo:
    """Which worker ran a pair: its address on the cluster, host and process."""

    address: str
    host: str = platform.node()
    pid: int = os.getpid()

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "host": self.host, "pid": self.pid}

    def __str__(self) -> str:
        return f"worker {self.address} (host {self.host})"


_lock = threading.Lock()
_registries: dict[PluginSource, Registry] = {}
_environments: dict[PluginSource, dict[str, Any]] = {}
_datasets: dict[tuple[PluginSource, str, str, bool, tuple[tuple[str, str], ...]], Dataset] = {}


def run_task(task: PairTask, where: WorkerInfo) -> tuple[dict[str, Any], Any]:
    """Train ``task``'s pair here: its record (saying which worker ran it) and test predictions.

    Whatever goes wrong is the pair's failed record with the reason and the worker named: a
    plugin missing here, data that cannot load here or differs from the run's.
    """
    from seqbench import runner
    from seqbench.plugins import PluginError

    try:
        registry, env = _plugins(task.plugins)
    except PluginError as exc:
        return _bare(task, "failed", f"{where}: {exc}", where), None
    for kind, name, table in (("model", task.model, registry.models), ("dataset", task.dataset, registry.datasets)):
        if name not in table:
            return _bare(task, "failed", f"{kind} {name!r} is not registered on {where}: install its plugin there",
                         where), None
    dataset, status, reason = _dataset(task, registry)
    if dataset is None:
        record = runner.pair_record(task.model, task.dataset, task.seed, registry, status, f"on {where}: {reason}", env)
        return {**record, "worker": where.as_dict()}, None
    if str(dataset.fingerprint) != task.fingerprint:
        reason = (f"dataset {task.dataset!r} on {where} is {dataset.fingerprint}, but the run loaded "
                  f"{task.fingerprint}: refused; give the workers the same data (--data-dir)")
        record = runner.pair_record(task.model, task.dataset, task.seed, registry, "failed", reason, env)
        return {**record, "worker": where.as_dict()}, None
    from seqbench.progress import RunObserver

    record, predictions = runner.run_pair(registry, task.model, task.dataset, dataset, task.seed, task.request,
                                          RunObserver(), env)
    return {**record, "worker": where.as_dict()}, predictions


def _plugins(source: PluginSource) -> tuple[Registry, dict[str, Any]]:
    """This process's plugins from ``source`` and its environment, loaded once."""
    from seqbench import provenance
    from seqbench.plugins import plugin_versions

    with _lock:
        if source not in _registries:
            registry = source.load()
            _environments[source] = provenance.environment(plugin_versions(registry))
            _registries[source] = registry
        return _registries[source], _environments[source]


def _dataset(task: PairTask, registry: Registry) -> tuple[Dataset | None, str, str | None]:
    """The task's dataset from this worker's data directory, loaded once per process."""
    from seqbench.datasets import resolve_data_dir
    from seqbench.runner import load_dataset
    from seqbench.types import LoadContext

    request = task.request
    data_dir = Path(request.data_dir) if request.data_dir is not None else resolve_data_dir(None)
    key = (task.plugins, task.dataset, str(data_dir), request.download, tuple(sorted(request.overrides.items())))
    with _lock:
        if key in _datasets:
            return _datasets[key], "ok", None
        ctx = LoadContext(data_dir=data_dir, download=request.download, datasets=registry.datasets)
        dataset, status, reason = load_dataset(registry, task.dataset, ctx, request.overrides)
        if dataset is not None:
            _datasets[key] = dataset
        return dataset, status, reason


def _bare(task: PairTask, status: str, reason: str, where: WorkerInfo) -> dict[str, Any]:
    """The record of a pair that a worker cannot even look up (its plugin is not there)."""
    from seqbench import results as res

    return {"schema_version": res.SCHEMA_VERSION, "model": task.model, "dataset": task.dataset, "seed": task.seed,
            "status": status, "reason": reason, "started": res.now_iso(), "worker": where.as_dict()}
