"""How a local cluster shares this machine: CPU threads per worker, one GPU per GPU worker,
and which workers a pair may run on. Pure logic, without Dask, so that it can be tested
without GPUs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from seqbench.planning import RunRequest
    from seqbench.plugins import Registry
    from seqbench.progress import PlannedPair

#: The environment variables that size a process's BLAS and OpenMP thread pools.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class WorkerSpec:
    """One worker process of a local cluster: its name, Dask resources and environment."""

    name: str
    resources: Mapping[str, float]
    env: Mapping[str, str] = field(default_factory=dict)


def threads_per_worker(workers: int, cores: int) -> int:
    """CPU threads each of ``workers`` workers may use so that together they use at most ``cores``."""
    return max(1, cores // max(1, workers))


def local_workers(cpu_workers: int, cores: int, gpus: Sequence[str]) -> list[WorkerSpec]:
    """``cpu_workers`` CPU workers sharing ``cores`` (GPUs hidden from them), and one worker per
    GPU id in ``gpus`` that sees that GPU alone (``CUDA_VISIBLE_DEVICES``). Each runs one pair
    at a time; GPU pairs go to GPU workers, so CPU pairs never queue behind them."""
    threads = str(threads_per_worker(cpu_workers, cores))
    cpu_env = {"CUDA_VISIBLE_DEVICES": "", **dict.fromkeys(THREAD_VARIABLES, threads)}
    specs = [WorkerSpec(f"cpu-{i}", {"cpu": 1}, cpu_env) for i in range(cpu_workers)]
    specs += [WorkerSpec(f"gpu-{gpu}", {"gpu": 1},
                         {"CUDA_VISIBLE_DEVICES": gpu, **dict.fromkeys(THREAD_VARIABLES, "1")})
              for gpu in gpus]
    return specs


def is_gpu_pair(pair: PlannedPair) -> bool:
    """Whether a pair trains on a GPU: a model named ``*-gpu`` (the built-ins) or one whose
    hyperparameters say ``device=cuda...``."""
    device = str((pair.params or {}).get("device") or "")
    return pair.model.endswith("-gpu") or device.startswith("cuda")


def pair_resources(gpu_pair: bool, declared: set[str]) -> dict[str, float] | None:
    """The Dask resources a pair asks for, given those the cluster's workers declare. Where some
    workers declare ``gpu``, a GPU pair asks for one and any other pair for a ``cpu`` (where
    workers declare it), so that neither queues behind the other; elsewhere None: any worker,
    and the scheduler hands each worker a pair only when it is free."""
    if "gpu" not in declared:
        return None
    if gpu_pair:
        return {"gpu": 1}
    return {"cpu": 1} if "cpu" in declared else None


def visible_gpus(environ: Mapping[str, str] = os.environ,
                 query: Callable[[], list[str]] | None = None) -> list[str]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` where set, else nvidia-smi's."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        ids = [g.strip() for g in environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
        return [] if ids[:1] == ["-1"] else ids
    return (query or _nvidia_smi_ids)()


def _nvidia_smi_ids() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def split_threads(registry: Registry, request: RunRequest, threads: int) -> RunRequest:
    """``request`` with ``--set threads=THREADS`` for the models that take ``threads`` (the
    built-ins), unless the request sets it already; unchanged when no selected model takes it."""
    from seqbench.planning import RunError, plan_run

    if any(key == "threads" or key.endswith(".threads") for key in request.overrides):
        return request
    split = replace(request, overrides={**request.overrides, "threads": str(threads)})
    try:
        plan_run(registry, split)
    except RunError:
        return request
    return split


def declared_resources(workers: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The resource names any of a scheduler's workers declare (``scheduler_info()["workers"]``)."""
    return {name for info in workers.values() for name in (info.get("resources") or {})}


def pair_class(gpu_pair: bool, declared: set[str]) -> str:
    """``"gpu"`` for a GPU pair where workers declare GPUs; ``"cpu"`` for every other pair."""
    return "gpu" if gpu_pair and "gpu" in declared else "cpu"


def capacity(workers: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many pairs of each class (:func:`pair_class`) the workers train at once: one per
    declared ``gpu``; one per declared ``cpu``, or per thread of the workers without a GPU when
    none declares ``cpu`` (of all workers when none declares a GPU). At least 1 each, so that
    pairs wait on the scheduler for workers yet to come (a batch system's)."""
    declared = declared_resources(workers)

    def total(key: str) -> float:
        return sum((info.get("resources") or {}).get(key, 0) for info in workers.values())

    if "cpu" in declared and "gpu" in declared:
        cpu = total("cpu")
    else:
        cpu = sum(info.get("nthreads", 1) for info in workers.values()
                  if "gpu" not in declared or not (info.get("resources") or {}).get("gpu"))
    return {"cpu": max(1, int(cpu)), "gpu": max(1, int(total("gpu")))}
