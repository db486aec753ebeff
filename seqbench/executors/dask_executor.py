"""Pairs on the workers of a Dask cluster: a local one (``--workers N``) or an existing one
(``--scheduler ADDRESS``). Imported only when one of those options is given.

Each pair is one Dask task (:func:`run_on_worker`) that returns the pair's record; the run's
process writes each record the moment it arrives. Workers load their own plugins and data.
A worker that dies while training a pair (killed, out of memory) makes the scheduler run
the pair again elsewhere: once on a local cluster (``allowed-failures`` 1), as the scheduler's
``distributed.scheduler.allowed-failures`` says on an existing one (Dask's default 3); after
that the pair is recorded as failed with the reason.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import platform
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    import dask
    import distributed
except ImportError as exc:  # pragma: no cover - the [dask] extra
    raise ImportError("--workers and --scheduler need Dask: pip install 'seqbench[dask]'") from exc

from seqbench.executors import Matrix, PairJob
from seqbench.executors.resources import (
    capacity,
    declared_resources,
    is_gpu_pair,
    local_workers,
    pair_class,
    pair_resources,
    threads_per_worker,
)
from seqbench.executors.worker import PairTask, PluginSource, WorkerInfo, run_task
from seqbench.plugins import one_line

#: Seconds to wait for a scheduler given with ``--scheduler`` before giving up.
CONNECT_TIMEOUT = 10.0
#: Deaths of the worker running a pair after which a local cluster gives the pair up.
LOCAL_ALLOWED_FAILURES = 1
#: Seconds between looks for finished pairs, and between looks for workers that joined.
POLL_SECONDS, JOIN_SECONDS = 0.2, 5.0
#: Seconds past ``--pair-timeout`` the worker has to stop the pair itself (at a batch's end, with
#: its record) before the run cancels its task.
CANCEL_GRACE = 2.0


def run_on_worker(task: PairTask) -> tuple[dict[str, Any], Any]:
    """The Dask task of a pair: train it on this worker, returning its record and predictions."""
    worker = distributed.get_worker()
    return run_task(task, WorkerInfo(worker.address, platform.node(), os.getpid()))


def check_address(address: str) -> None:
    """Refuse a scheduler address that Dask cannot parse (a RunError naming it)."""
    from distributed.comm import parse_address, parse_host_port

    from seqbench.planning import RunError

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location, 8786)
    except ValueError as exc:
        raise RunError(f"--scheduler {address}: not a Dask scheduler address ({exc}); "
                       "give one such as tcp://host:8786") from None


class SchedulerLost(Exception):
    """The scheduler went away while the run lived (killed, its machine down)."""


def probe_scheduler(address: str, timeout: float) -> str | None:
    """None when a Dask scheduler answers at ``address`` within ``timeout`` seconds, else why not,
    in one line. ``distributed.Client`` waits for good on a server that accepts and never
    answers, and fails deep in its decoder on one that answers something else: so ask first."""
    import asyncio
    import socket

    from distributed.comm import connect, parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme == "tcp":  # Dask retries a refused connection until its timeout: a plain connect says it at once
        try:
            socket.create_connection(parse_host_port(location, 8786), timeout=timeout).close()
        except OSError as exc:
            return f"cannot reach the Dask scheduler at {address}: {exc.strerror or one_line(exc)}"

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout))
    except (asyncio.TimeoutError, TimeoutError):
        return f"cannot reach the Dask scheduler at {address}: no answer in {timeout:g} s"
    except OSError as exc:
        return f"cannot reach the Dask scheduler at {address}: {one_line(exc)}"
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # garbage decoded: MemoryError of absurd sizes, ValueError, ...
        return f"{address} does not answer as a Dask scheduler ({one_line(exc)})"
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        return f"{address} does not answer as a Dask scheduler (it answered {type(reply).__name__})"
    return None


def _workers(client: Any, address: str) -> dict[str, Any]:
    """The scheduler's workers; :class:`SchedulerLost` when the scheduler is gone."""
    info = client.scheduler_info() if client.status == "running" else {}
    if "workers" not in info:
        raise SchedulerLost(f"lost the Dask scheduler at {address} (client {client.status})")
    return info["workers"]


class DaskExecutor:
    """Trains each pair as a Dask task: on a local cluster of ``workers`` CPU worker processes
    (plus one per GPU in ``gpus``), or on the cluster of ``scheduler``.

    ``data_dir`` is where workers find the data (None: each worker's default); ``cores`` are
    the CPU cores the local workers share.
    """

    def __init__(self, plugins: PluginSource, *, workers: int | None = None, scheduler: str | None = None,
                 data_dir: Path | None = None, cores: int = 1, gpus: tuple[str, ...] = ()) -> None:
        if (workers is None) == (scheduler is None):
            raise ValueError("give workers or scheduler")
        if scheduler is not None:
            check_address(scheduler)
        self.plugins, self.workers, self.scheduler = plugins, workers, scheduler
        self.data_dir, self.cores, self.gpus = data_dir, cores, gpus

    def describe(self) -> dict[str, Any]:
        if self.scheduler is not None:
            return {"kind": "dask", "scheduler": self.scheduler}
        return {"kind": "dask-local", "workers": self.workers, "cores": self.cores,
                "threads_per_worker": threads_per_worker(self.workers or 1, self.cores), "gpu_workers": list(self.gpus)}

    def run(self, matrix: Matrix) -> None:
        """Submit pairs as workers free up or join (never more than the workers train at once,
        so a worker that dies takes no waiting pair with it), and hand back each record as it comes."""
        with self._client() as client:
            waiting: dict[str, collections.deque[PairJob]] = {"cpu": collections.deque(), "gpu": collections.deque()}
            running: dict[Any, tuple[str, PairJob]] = {}
            started: dict[Any, float] = {}
            told_empty: list[bool] = []
            finished = distributed.as_completed(loop=client.loop)

            def fill() -> None:
                workers = _workers(client, self._address(client))
                if not workers and any(waiting.values()) and not told_empty:
                    told_empty.append(True)
                    matrix.observer.warn(f"the Dask cluster at {self._address(client)} has no worker yet: "
                                         "waiting for one to join")
                slots, declared = capacity(workers), declared_resources(workers)
                for kind, queue in waiting.items():
                    while queue and sum(k == kind for k, _ in running.values()) < slots[kind]:
                        job = queue.popleft()
                        future = self._submit(client, matrix, job, declared)
                        running[future] = (kind, job)
                        started[future] = time.monotonic()
                        finished.add(future)

            try:
                declared = declared_resources(_workers(client, self._address(client)))
                for job, _ in matrix.jobs:  # workers start on the first dataset while the next loads
                    waiting[pair_class(is_gpu_pair(job.pair), declared)].append(job)
                    fill()
                asked = time.monotonic()
                while running:
                    for future in self._overdue(started, matrix.request.pair_timeout):
                        _, job = running.pop(future)
                        self._cancel(client, future)
                        reason = (f"the pair ran past --pair-timeout {matrix.request.pair_timeout:g} s on the Dask "
                                  "cluster: its task was cancelled")
                        matrix.observer.pair_start(job.index, job.total, *job.pair.key)
                        matrix.received(job, matrix.failed(job, reason), None)
                        fill()
                    if client.status != "running":
                        raise SchedulerLost(f"lost the Dask scheduler at {self._address(client)}")
                    if not finished.has_ready():
                        time.sleep(POLL_SECONDS)
                        if any(waiting.values()) and time.monotonic() - asked > JOIN_SECONDS:
                            fill()  # workers may have joined (a batch system's jobs starting)
                            asked = time.monotonic()
                        continue
                    for future in finished.next_batch(block=False):
                        if future not in running:  # cancelled past its time limit
                            continue
                        _, job = running.pop(future)
                        record, predictions = self._outcome(future, job, matrix)
                        # Workers send no progress: a pair is announced with its record.
                        matrix.observer.pair_start(job.index, job.total, *job.pair.key)
                        matrix.received(job, record, predictions)
                    fill()
            except SchedulerLost as exc:
                from seqbench.planning import RunError

                out = matrix.request.out_dir
                raise RunError(f"{exc}; the finished pairs are kept: when the cluster is back, continue with "
                               f"--resume {out}") from None
            finally:
                if running:  # interrupted: no pair is left training
                    with contextlib.suppress(Exception):
                        client.cancel(list(running), force=True)

    @staticmethod
    def _overdue(started: dict[Any, float], limit: float | None) -> list[Any]:
        """The futures running past ``limit`` (and the grace the worker has to stop them itself)."""
        if limit is None:
            return []
        now = time.monotonic()
        overdue = [f for f, t in started.items() if now - t > limit + CANCEL_GRACE]
        for future in overdue:
            del started[future]
        return overdue

    def _cancel(self, client: Any, future: Any) -> None:
        """Cancel a pair's task; on a local cluster, also restart the worker whose thread it holds
        (a plugin stuck in one call keeps its thread however the task is cancelled)."""
        holders = [w for w, keys in client.processing().items() if future.key in keys] if self.scheduler is None else []
        with contextlib.suppress(Exception):
            client.cancel([future], force=True)
        if holders:
            with contextlib.suppress(Exception):
                client.restart_workers(holders, timeout=30)

    def _address(self, client: Any) -> str:
        return self.scheduler or str(client.scheduler.address)

    def _submit(self, client: Any, matrix: Matrix, job: PairJob, declared: set[str]) -> Any:
        request = matrix.request
        task = PairTask(*job.pair.key, fingerprint=job.fingerprint, plugins=self.plugins,
                        # None: each worker takes its own default data directory (worker.py)
                        request=replace(request, data_dir=self.data_dir))  # type: ignore[arg-type]
        model, dataset, seed = job.pair.key
        return client.submit(run_on_worker, task, key=f"seqbench-{model}+{dataset}+seed{seed}-{uuid.uuid4().hex[:8]}",
                             pure=False, resources=pair_resources(is_gpu_pair(job.pair), declared))

    def _outcome(self, future: Any, job: PairJob, matrix: Matrix) -> tuple[dict[str, Any], Any]:
        """The pair's record and predictions from its finished task; a failed record when the task failed."""
        try:
            return future.result()
        except distributed.KilledWorker as exc:
            attempts = exc.allowed_failures + 1
            reason = (f"the worker running it died (killed, or out of memory) on each of {attempts} attempt(s); "
                      f"the last was {exc.last_worker.address}")
        except Exception as exc:  # the task itself broke: seqbench missing or different on the worker, ...
            reason = f"could not run on the Dask cluster: {one_line(exc)}"
        return matrix.failed(job, reason), None

    def client(self) -> contextlib.AbstractContextManager[Any]:
        """A Dask client of the executor's cluster, for work other than a run's pairs (``seqbench tune``)."""
        return self._client()

    @contextlib.contextmanager
    def _client(self) -> Iterator[Any]:
        """A client of the scheduler, or of a new local cluster that is shut down afterwards."""
        from seqbench.planning import RunError

        if self.scheduler is not None:
            problem = probe_scheduler(self.scheduler, CONNECT_TIMEOUT)
            if problem is not None:
                raise RunError(problem)
            try:
                client = distributed.Client(self.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise RunError(f"cannot reach the Dask scheduler at {self.scheduler} "
                               f"(waited {CONNECT_TIMEOUT:g} s): {one_line(exc)}") from None
            client_log = logging.getLogger("distributed.client")
            level = client_log.level
            # its reconnect tracebacks when the scheduler dies: we say it in one line
            client_log.setLevel(logging.CRITICAL)
            try:
                with contextlib.closing(client):
                    yield client
            finally:
                client_log.setLevel(level)
            return
        cluster = self._local_cluster()
        try:
            with contextlib.closing(distributed.Client(cluster, set_as_default=False)) as client:
                yield client
        finally:
            cluster.close(timeout=30)

    def _local_cluster(self) -> Any:
        """A scheduler on 127.0.0.1 and one nanny-watched process per worker, dividing memory evenly."""
        from distributed import Nanny, Scheduler, SpecCluster
        from distributed.system import MEMORY_LIMIT

        specs = local_workers(self.workers or 1, self.cores, self.gpus)
        memory = MEMORY_LIMIT // len(specs)
        workers = {spec.name: {"cls": Nanny, "options": {"nthreads": 1, "resources": dict(spec.resources),
                                                          "env": dict(spec.env), "memory_limit": memory,
                                                          "host": "127.0.0.1", "name": spec.name,
                                                          "silence_logs": logging.CRITICAL}}
                   for spec in specs}
        scheduler = {"cls": Scheduler, "options": {"allowed_failures": LOCAL_ALLOWED_FAILURES, "host": "127.0.0.1",
                                                    "port": 0, "dashboard": False, "dashboard_address": "127.0.0.1:0"}}
        # No dashboard, so no use for the workers' stack sampling (every 10 ms, holding the GIL).
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)
