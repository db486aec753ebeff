"""One trial: a model trained with one set of hyperparameters on the validation split only.

The harness protocol trains it (:func:`seqbench.protocol.train_and_evaluate`: the seeded
validation split, the dataset's preprocessing, per-epoch validation, early stopping) with
``evaluate_test=False``, on a dataset whose test split was taken away before training: the test
split is never read while tuning. After each epoch the best validation accuracy so far is
reported to a pruner, which decides from the study's finished trials as they were when the trial
started (so a trial can run on a Dask worker, far from the study's database).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqbench.executors.worker import PluginSource
from seqbench.progress import RunObserver
from seqbench.types import Dataset, LoadContext

if TYPE_CHECKING:  # pragma: no cover
    from seqbench.plugins import Registry

#: Trial states, as Optuna names them (lower case).
COMPLETE, PRUNED, FAILED = "complete", "pruned", "fail"


@dataclass(frozen=True)
class PrunerSpec:
    """Which Optuna pruner decides (``median``, ``halving`` or ``none``) and its settings."""

    kind: str = "median"
    startup_trials: int = 5
    warmup_epochs: int = 1

    def make(self) -> Any:
        import optuna

        if self.kind == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs)
        if self.kind == "halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, self.warmup_epochs))
        return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class TrialTask:
    """A trial as sent to whoever trains it. ``params`` are the model's full hyperparameters
    (``seed`` included); ``searched`` the Optuna distributions of the searched ones;
    ``finished`` the study's finished trials when the trial was asked (for the pruner)."""

    study: str
    number: int
    model: str
    dataset: str
    params: Mapping[str, Any]
    searched: Mapping[str, Any]
    finished: tuple[Any, ...]
    pruner: PrunerSpec
    data_dir: str | None
    download: bool
    max_train: int | None
    fingerprint: str
    overrides: Mapping[str, str]
    standardize: bool = True
    augment: bool = True
    plugins: PluginSource = field(default_factory=PluginSource)


class TrialPruned(Exception):
    """Raised from the epoch hook when the pruner stops the trial."""


class PruningObserver(RunObserver):
    """Keeps each epoch's record and asks the pruner, after each, whether to go on."""

    def __init__(self, task: TrialTask) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.history: list[dict[str, Any]] = []
        self.best = -1.0
        self._study = optuna.create_study(direction="maximize", pruner=task.pruner.make())
        self._study.add_trials(task.finished)
        self._trial = self._study.ask(dict(task.searched))

    def epoch_end(self, record: Any, best_epoch: int) -> None:
        self.history.append(record.as_dict())
        self.best = max(self.best, record.val_accuracy)
        self._trial.report(self.best, record.epoch)
        if self._trial.should_prune():
            raise TrialPruned()


_lock = threading.Lock()
_cache: dict[tuple[Any, ...], tuple[Any, Dataset | None, str, str | None]] = {}


def _loaded(task: TrialTask, registry: Registry | None) -> tuple[Any, Dataset | None, str, str | None]:
    """This process's plugins (``registry``, else ``task.plugins`` loaded) and the task's dataset
    (its test split taken away), loaded once."""
    from seqbench.datasets import resolve_data_dir
    from seqbench.runner import load_dataset

    key = (id(registry) if registry is not None else task.plugins, task.dataset, task.data_dir, task.download,
           tuple(sorted(task.overrides.items())))
    with _lock:
        if key not in _cache:
            registry = registry or task.plugins.load()
            data_dir = Path(task.data_dir) if task.data_dir is not None else resolve_data_dir(None)
            ctx = LoadContext(data_dir=data_dir, download=task.download, datasets=registry.datasets)
            _cache[key] = (registry, *load_dataset(registry, task.dataset, ctx, task.overrides, test=False))
        return _cache[key]


def run_trial(task: TrialTask, registry: Registry | None = None) -> dict[str, Any]:
    """Train ``task``'s trial (with ``registry``, else the plugins ``task`` names) and return its
    record: ``state`` (complete, pruned or fail), ``value`` (the best validation accuracy),
    ``history``, ``timing`` and the rest of a pair record's fields that apply (no test metrics:
    there are none)."""
    from seqbench import preprocess, provenance
    from seqbench.plugins import one_line, plugin_versions
    from seqbench.protocol import train_and_evaluate
    from seqbench.results import json_ready, now_iso

    started, t0 = now_iso(), time.perf_counter()
    record: dict[str, Any] = {"study": task.study, "trial": task.number, "model": task.model, "dataset": task.dataset,
                              "seed": int(task.params["seed"]), "params": dict(task.params), "started": started}
    try:
        registry, dataset, status, reason = _loaded(task, registry)
        record["environment"] = provenance.environment(plugin_versions(registry))
        if dataset is None:
            return {**record, "state": FAILED, "reason": f"dataset {task.dataset!r} {status}: {reason}"}
        if str(dataset.fingerprint) != task.fingerprint:
            return {**record, "state": FAILED, "reason": f"dataset {task.dataset!r} here is {dataset.fingerprint}, "
                                                          f"the tune's is {task.fingerprint}: give the same data"}
        spec = registry.models[task.model]
        record["model_plugin"] = registry.plugin_of("model", task.model)
        model = spec.build(dataset.info, dict(task.params))
        observer = PruningObserver(task)
        declared = registry.datasets[task.dataset].preprocessing
        preprocessing = preprocess.plan(declared, standardize=task.standardize, augment=task.augment)
        out: dict[str, Any] | None = None
        try:
            out = train_and_evaluate(model, dataset, task.params, {}, seed=int(task.params["seed"]),
                                     model_plugin=record["model_plugin"], max_train=task.max_train,
                                     preprocessing=preprocessing, progress=observer, evaluate_test=False)
            state = COMPLETE if out["status"] == "ok" else FAILED
        except TrialPruned:
            state = PRUNED
        record.update(
            state=state,
            history=observer.history,
            value=observer.best if observer.history else None,
            epochs_run=len(observer.history),
            best_epoch=max(observer.history, key=lambda h: h["val_accuracy"])["epoch"] if observer.history else 0,
        )
        if out is not None:
            record.update(split=out["split"], preprocessing=out["preprocessing"], reason=out["reason"])
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin must not end the tune: the trial fails, naming why
        record.update(state=FAILED, reason=f"model plugin {record.get('model_plugin', '?')!r}: {one_line(exc)}",
                      traceback=traceback.format_exc())
    record["timing"] = {"trial_seconds": time.perf_counter() - t0,
                        "train_seconds": sum(h["epoch_seconds"] for h in record.get("history", []))}
    record["finished"] = now_iso()
    return json_ready(record)
