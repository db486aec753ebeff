"""The hooks a seqbench plugin implements.

A plugin is a module (or object) with functions decorated by :data:`seqbench.hookimpl` whose
names are hooks below. Each hook receives a ``register`` callback; call it once per thing the
plugin provides. The harness owns the names: registering a name that another plugin already
registered is refused with an error that names both plugins.

The ``log_*`` hooks receive a run's events as they happen (run start, each epoch, each pair,
run end), for loggers such as experiment trackers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

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


# --- loggers: a run's events, for experiment trackers ---------------------------------------
#
# Called in the run's own process, in the order below, for every plugin that implements them;
# a plugin implements only the hooks it needs and may take only the arguments it needs. A hook
# that raises (``sys.exit()`` included) is reported once, naming its plugin, and that plugin gets
# no further events of the run; the run, its results and the other loggers go on. Values are
# the run's own, already written: do not change them.


@hookspec
def log_run_start(run_dir: Path, command: str, config: Mapping[str, Any], pairs: Sequence[Mapping[str, Any]],
                  resume: bool) -> None:
    """A run starts (or a ``--resume`` continues one).

    :param run_dir: The run directory (``results.json``, ``pairs/``, ... are written there).
    :param command: The command line that started this session.
    :param config: The run's configuration, as ``results.json`` holds it (``models``,
        ``datasets``, ``seeds``, ``overrides``, ``quick``, ...).
    :param pairs: Every pair of the run in order, as ``{"model", "dataset", "seed", "params",
        "done"}``: ``params`` the hyperparameters planned for it (``None`` when its model's
        defaults fail), ``done`` whether it finished before this session (it will not run again).
    :param resume: Whether this session continues a run.
    """


@hookspec
def log_epoch_end(model: str, dataset: str, seed: int, epoch: int, epochs: int, train_loss: float | None,
                  val_accuracy: float, epoch_seconds: float, val_seconds: float, best_epoch: int) -> None:
    """A pair finished a training epoch and its validation.

    :param model, dataset, seed: The pair.
    :param epoch: The epoch, from 1; ``epochs`` the most it may run.
    :param train_loss: Mean training loss of the epoch's minibatches (``None`` when it diverged:
        NaN or infinite).
    :param val_accuracy: Accuracy on the validation split, in [0, 1].
    :param epoch_seconds: Training time of the epoch; ``val_seconds`` that of its validation.
    :param best_epoch: The epoch of the best validation accuracy so far.

    In a run on Dask workers (``--workers``, ``--scheduler``) the epochs of a pair arrive at
    once, just before its :func:`log_pair_end`, from its record's ``history``.
    """


@hookspec
def log_pair_end(run_dir: Path, record: Mapping[str, Any]) -> None:
    """A pair ended and its record was written to ``pairs/``.

    :param run_dir: The run directory.
    :param record: The pair's record as written: ``model``, ``dataset``, ``seed``, ``status``
        (``ok``, ``diverged``, ``skipped``, ``failed``) and ``reason``; for a trained pair also
        ``params``, ``history``, ``best_epoch``, ``metrics`` (``accuracy``, ``per_class``,
        ``confusion`` and every metric plugin's result), ``timing`` and, with ``--save-models``,
        ``checkpoint`` (its directory in ``pairs/``).
    """


@hookspec
def log_run_end(run_dir: Path, results: Mapping[str, Any]) -> None:
    """The run ended: ``results.json``, the tables (``summary.md``, ...) and ``report.html`` are
    written in ``run_dir``. ``results`` is what ``results.json`` holds. Not called when the run
    is interrupted or stopped by an error."""
