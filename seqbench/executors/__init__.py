"""Where a run's pairs train: one after another in this process (:mod:`.local`), or on the
workers of a Dask cluster (:mod:`.dask_executor`, needs ``pip install 'seqbench[dask]'``).

The runner hands an executor a :class:`Matrix`: the pairs to train and what to do with each
record. Executors never write results themselves; the runner writes each record atomically
the moment the executor hands it back. Nothing here imports Dask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from seqbench.planning import RunRequest
    from seqbench.progress import PlannedPair, RunObserver
    from seqbench.types import Dataset


@dataclass(frozen=True)
class PairJob:
    """A pair to train: its place in the run (for progress) and the fingerprint of the data
    the run loaded for its dataset (a worker must train on the same)."""

    pair: PlannedPair
    index: int
    total: int
    fingerprint: str


@dataclass
class Matrix:
    """The pairs of a run to train, and the runner's side of it.

    ``jobs`` yields each pair with the run's loaded copy of its dataset (lazily: a dataset is
    loaded when its first pair is asked for). ``run_here`` trains a pair in this process,
    ``failed`` makes the record of a pair that could not train (with the reason), and
    ``received`` writes a finished pair's record and predictions.
    """

    request: RunRequest
    jobs: Iterable[tuple[PairJob, Dataset]]
    run_here: Callable[[PairJob, Dataset], tuple[dict[str, Any], Any]]
    failed: Callable[[PairJob, str], dict[str, Any]]
    received: Callable[[PairJob, dict[str, Any], Any], None]
    observer: RunObserver


class Executor(Protocol):
    """Trains the pairs of a :class:`Matrix`, handing each record to ``matrix.received``."""

    def describe(self) -> dict[str, Any]:
        """What ran the pairs, for the run's session (``kind`` and settings)."""

    def run(self, matrix: Matrix) -> None: ...
