"""The sequential executor: each pair in this process, one after another."""

from __future__ import annotations

from typing import Any

from seqbench.executors import Matrix


class SequentialExecutor:
    """Trains the pairs in order, in this process, on the run's loaded datasets."""

    def describe(self) -> dict[str, Any]:
        return {"kind": "sequential"}

    def run(self, matrix: Matrix) -> None:
        for job, dataset in matrix.jobs:
            matrix.observer.pair_start(job.index, job.total, *job.pair.key)
            record, predictions = matrix.run_here(job, dataset)
            matrix.received(job, record, predictions)
