"""seqbench-tensorboard: a seqbench run as TensorBoard event files, through seqbench's logger hooks.

Each model x dataset x seed gets its own directory, ``<logdir>/<model>+<dataset>+seed<k>/``, with
the scalars ``train/loss``, ``val/accuracy`` and ``train/epoch_seconds`` per epoch (step =
epoch) and, when the pair ends, every scalar test metric under ``test/`` (step = its best
epoch). ``<logdir>`` is ``$SEQBENCH_TENSORBOARD_DIR/<run directory's name>`` when that is set,
else ``<run directory>/tensorboard``: ``tensorboard --logdir results/<run>/tensorboard``.

Written with tensorboardX, which writes TensorBoard's event format with protobuf and NumPy
only: no TensorFlow and no torch to install (``torch.utils.tensorboard`` needs both torch and
tensorboard; tensorboard's own writer API needs TensorFlow). tensorboardX is imported when a
pair's first epoch is logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import hookimpl
from seqbench.metrics import scalars

#: The directory under the run directory that holds the event files, unless the variable says.
SUBDIR = "tensorboard"
DIR_VARIABLE = "SEQBENCH_TENSORBOARD_DIR"


def log_dir(run_dir: Path) -> Path:
    """Where a run's event files go (see the module's documentation)."""
    root = os.environ.get(DIR_VARIABLE)
    return Path(root) / Path(run_dir).resolve().name if root else Path(run_dir) / SUBDIR


class TensorBoardLogger:
    """The logger; its state is the event-file writers of the pairs in progress."""

    def __init__(self) -> None:
        self.root = Path(SUBDIR)
        self.writers: dict[str, Any] = {}

    @hookimpl
    def log_run_start(self, run_dir: Path) -> None:
        self.root = log_dir(run_dir)

    def _writer(self, model: str, dataset: str, seed: int) -> Any:
        """The pair's writer, opened at its first event."""
        pair = f"{model}+{dataset}+seed{seed}"
        if pair not in self.writers:
            from tensorboardX import SummaryWriter

            self.writers[pair] = SummaryWriter(str(self.root / pair))
        return self.writers[pair]

    @hookimpl
    def log_epoch_end(self, model: str, dataset: str, seed: int, epoch: int, train_loss: float | None,
                      val_accuracy: float, epoch_seconds: float) -> None:
        writer = self._writer(model, dataset, seed)
        if train_loss is not None:
            writer.add_scalar("train/loss", train_loss, epoch)
        writer.add_scalar("val/accuracy", val_accuracy, epoch)
        writer.add_scalar("train/epoch_seconds", epoch_seconds, epoch)

    @hookimpl
    def log_pair_end(self, record: Mapping[str, Any]) -> None:
        model, dataset, seed = record["model"], record["dataset"], record["seed"]
        if record["status"] == "ok":
            writer = self._writer(model, dataset, seed)
            for name, result in (record.get("metrics") or {}).items():
                for scalar in scalars(name, result):
                    writer.add_scalar(f"test/{scalar.name}", scalar.value, record.get("best_epoch") or 0)
        writer = self.writers.pop(f"{model}+{dataset}+seed{seed}", None)
        if writer is not None:
            writer.close()

    @hookimpl
    def log_run_end(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


#: The plugin object the entry point names.
logger = TensorBoardLogger()
