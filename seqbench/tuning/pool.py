"""Where trials train: one at a time in this process, or several at once on the workers of a
Dask cluster (:class:`seqbench.executors.dask_executor.DaskExecutor`, as ``seqbench run`` uses).

A pool takes trials (:meth:`submit`) while it has free ``slots`` and hands back each finished
trial's record (:meth:`wait`). A worker that dies while training a trial makes the scheduler run
it again elsewhere, as for a run's pairs; after that the trial's record says it failed and why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from seqbench.tuning.trial import FAILED, TrialTask, run_trial


class TrialPool(Protocol):
    """Trains trials; ``slots`` is how many at once."""

    slots: int

    def describe(self) -> dict[str, Any]: ...

    def data_dir(self, tune_data_dir: Path) -> str | None:
        """Where the trials find their data (None: each worker's default)."""

    def submit(self, task: TrialTask) -> None: ...

    def wait(self) -> list[tuple[TrialTask, dict[str, Any]]]:
        """At least one finished trial (blocking), with its record."""


def failed_record(task: TrialTask, reason: str) -> dict[str, Any]:
    """The record of a trial that could not train (its worker died, the cluster failed it)."""
    from seqbench.results import now_iso

    return {"study": task.study, "trial": task.number, "model": task.model, "dataset": task.dataset,
            "seed": int(task.params["seed"]), "params": dict(task.params), "state": FAILED, "reason": reason,
            "finished": now_iso(), "timing": {"trial_seconds": 0.0, "train_seconds": 0.0}}


class InProcess:
    """One trial at a time, here, with this process's ``registry``."""

    slots = 1

    def __init__(self, registry: Any) -> None:
        self._train: Callable[[TrialTask], dict[str, Any]] = lambda task: run_trial(task, registry)
        self._done: list[tuple[TrialTask, dict[str, Any]]] = []

    def describe(self) -> dict[str, Any]:
        return {"kind": "local"}

    def data_dir(self, tune_data_dir: Path) -> str | None:
        return str(tune_data_dir)

    def submit(self, task: TrialTask) -> None:
        self._done.append((task, self._train(task)))

    def wait(self) -> list[tuple[TrialTask, dict[str, Any]]]:
        done, self._done = self._done, []
        return done


def run_trial_on_worker(task: TrialTask) -> dict[str, Any]:
    """The Dask task of a trial: train it on this worker, saying which worker did."""
    import os
    import platform

    import distributed

    return {**run_trial(task), "worker": {"address": distributed.get_worker().address, "host": platform.node(),
                                          "pid": os.getpid()}}


class DaskPool:
    """Trials as Dask tasks on ``executor``'s cluster, as many at once as it has CPU slots."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.slots = 1
        self._client: Any = None
        self._running: dict[Any, TrialTask] = {}
        self._finished: Any = None

    def describe(self) -> dict[str, Any]:
        return self.executor.describe()

    def data_dir(self, tune_data_dir: Path) -> str | None:
        """The executor's: the tune's on a local cluster; ``--data-dir`` or the workers' own on a scheduler's."""
        return str(self.executor.data_dir) if self.executor.data_dir is not None else None

    @contextlib.contextmanager
    def open(self) -> Iterator[DaskPool]:
        """Connect (or start the local cluster) for the pool's lifetime; cancel what is left on exit."""
        import distributed

        from seqbench.executors.resources import capacity

        with self.executor.client() as client:
            self._client = client
            self._finished = distributed.as_completed(loop=client.loop)
            self.slots = capacity(client.scheduler_info()["workers"])["cpu"]
            try:
                yield self
            finally:
                if self._running:
                    with contextlib.suppress(Exception):
                        client.cancel(list(self._running), force=True)

    def submit(self, task: TrialTask) -> None:
        import uuid

        key = f"seqbench-trial-{task.model}+{task.dataset}-{task.number}-{uuid.uuid4().hex[:8]}"
        future = self._client.submit(run_trial_on_worker, task, key=key, pure=False)
        self._running[future] = task
        self._finished.add(future)

    def wait(self) -> list[tuple[TrialTask, dict[str, Any]]]:
        import distributed

        from seqbench.plugins import one_line

        done = [next(self._finished)]
        if self._finished.has_ready():
            done += self._finished.next_batch(block=False)
        out = []
        for future in done:
            task = self._running.pop(future)
            try:
                out.append((task, future.result()))
            except distributed.KilledWorker as exc:
                out.append((task, failed_record(task, f"the worker running it died (killed, or out of memory) on each "
                                                      f"of {exc.allowed_failures + 1} attempt(s)")))
            except Exception as exc:
                out.append((task, failed_record(task, f"could not run on the Dask cluster: {one_line(exc)}")))
        return out
