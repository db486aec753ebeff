"""Progress events of a run; the CLI prints them, the library default ignores them.

No heavy imports here: the CLI subclasses these at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from seqbench.protocol import EpochRecord


class Progress:
    """Per-epoch events of one pair's training."""

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None: ...

    def batch_done(self) -> None: ...

    def epoch_end(self, record: "EpochRecord", best_epoch: int) -> None: ...


class RunObserver(Progress):
    """Events of a whole run: pairs starting and ending, warnings, and each pair's epochs."""

    def run_start(self, out_dir: Path, total: int) -> None: ...

    def pair_start(self, index: int, total: int, model: str, dataset: str, seed: int) -> None: ...

    def pair_end(self, record: Mapping[str, Any]) -> None: ...

    def warn(self, message: str) -> None: ...
