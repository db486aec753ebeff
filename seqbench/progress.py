"""Progress events of a run: the CLI prints them, :class:`EventLog` writes them to the run
directory, the library default ignores them. :class:`Eta` estimates the time a run has left.

No heavy imports here: the CLI subclasses these at import time.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PairKey = tuple[str, str, int]


@dataclass(frozen=True)
class PlannedPair:
    """A pair of the run, with the hyperparameters it would use (None: its defaults fail)."""

    model: str
    dataset: str
    seed: int
    epochs: int | None = None
    done: bool = False
    params: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def key(self) -> PairKey:
        return (self.model, self.dataset, self.seed)


@dataclass(frozen=True)
class Unavailable:
    """A model or dataset left out of the run because it cannot run here, and why."""

    kind: str  # "model" or "dataset"
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


@dataclass
class EpochRecord:
    """What one epoch of training reports: its loss, validation accuracy and times."""

    epoch: int
    train_loss: float
    val_accuracy: float
    epoch_seconds: float
    val_seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: a non-finite loss becomes ``None`` (JSON has no NaN or infinity)."""
        d = dict(self.__dict__)
        if not math.isfinite(d["train_loss"]):
            d["train_loss"] = None
        return d


class Progress:
    """Per-epoch events of one pair's training."""

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None: ...

    def batch_done(self) -> None: ...

    def epoch_end(self, record: EpochRecord, best_epoch: int) -> None: ...


class RunObserver(Progress):
    """Events of a whole run: its plan, pairs starting and ending, warnings, and each pair's epochs."""

    def run_start(self, out_dir: Path, plan: Sequence[PlannedPair], unavailable: Sequence[Unavailable],
                  resume: bool) -> None:
        """The run starts: its pairs (``done`` ones are kept from before a resume) and what it leaves out."""

    def unavailable(self, item: Unavailable, pairs: int) -> None:
        """A dataset that cannot load is left out of the run, with its ``pairs``."""

    def pair_start(self, index: int, total: int, model: str, dataset: str, seed: int) -> None: ...

    def pair_end(self, record: Mapping[str, Any]) -> None: ...

    def warn(self, message: str) -> None: ...

    def interrupted(self, signal_name: str) -> None: ...

    def error(self, message: str) -> None: ...

    def run_end(self, results: Mapping[str, Any]) -> None: ...


class Observers(RunObserver):
    """Sends every event to each of ``observers`` in turn."""

    def __init__(self, *observers: RunObserver) -> None:
        self.observers = observers

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        for o in self.observers:
            o.epoch_start(epoch, epochs, n_batches)

    def batch_done(self) -> None:
        for o in self.observers:
            o.batch_done()

    def epoch_end(self, record: EpochRecord, best_epoch: int) -> None:
        for o in self.observers:
            o.epoch_end(record, best_epoch)

    def run_start(self, out_dir: Path, plan: Sequence[PlannedPair], unavailable: Sequence[Unavailable],
                  resume: bool) -> None:
        for o in self.observers:
            o.run_start(out_dir, plan, unavailable, resume)

    def unavailable(self, item: Unavailable, pairs: int) -> None:
        for o in self.observers:
            o.unavailable(item, pairs)

    def pair_start(self, index: int, total: int, model: str, dataset: str, seed: int) -> None:
        for o in self.observers:
            o.pair_start(index, total, model, dataset, seed)

    def pair_end(self, record: Mapping[str, Any]) -> None:
        for o in self.observers:
            o.pair_end(record)

    def warn(self, message: str) -> None:
        for o in self.observers:
            o.warn(message)

    def interrupted(self, signal_name: str) -> None:
        for o in self.observers:
            o.interrupted(signal_name)

    def error(self, message: str) -> None:
        for o in self.observers:
            o.error(message)

    def run_end(self, results: Mapping[str, Any]) -> None:
        for o in self.observers:
            o.run_end(results)


def accuracy_of(record: Mapping[str, Any]) -> float | None:
    """The test accuracy of a pair record, where it has one."""
    value = ((record.get("metrics") or {}).get("accuracy") or {}).get("accuracy")
    return value if isinstance(value, (int, float)) else None


def is_event_log(path: Path) -> bool:
    """Whether ``path`` is a plain file of seqbench events (each line an object with ``time`` and
    ``event``; empty too): what a run killed before it wrote ``results.json`` leaves."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8") as f:
            return all(isinstance(e := json.loads(line), dict) and {"time", "event"} <= e.keys() for line in f)
    except (OSError, ValueError):
        return False


class EventLog(RunObserver):
    """The run's events as JSON lines (``time``, ``event``, fields), appended to ``path`` and
    flushed line by line, so that ``tail -f`` follows a run and a killed run keeps its log.

    A write that fails (full disk) is reported once through ``on_error`` and logging stops: the
    log must never cost the run.
    """

    def __init__(self, path: Path, command: str, on_error: Callable[[str], None]) -> None:
        self.path, self.command, self.on_error = path, command, on_error
        self._file: IO[str] | None = None
        self._pair: dict[str, Any] = {}
        self._epochs = 0
        from seqbench.fileio import ResultsError, open_own

        try:
            self._file = os.fdopen(open_own(path, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8")
        except OSError as exc:
            self._fail(exc)
        except ResultsError as exc:
            self.on_error(f"no event log: {exc}")

    def _fail(self, exc: OSError) -> None:
        self._file = None
        self.on_error(f"could not write the event log {self.path} ({exc.strerror or exc}); continuing without it")

    def emit(self, event: str, **fields: Any) -> None:
        """Append one event, stamped with the local time."""
        if self._file is None:
            return
        stamp = _dt.datetime.now().astimezone().isoformat(timespec="milliseconds")
        try:
            self._file.write(json.dumps({"time": stamp, "event": event, **fields}, default=str) + "\n")
            self._file.flush()
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def run_start(self, out_dir: Path, plan: Sequence[PlannedPair], unavailable: Sequence[Unavailable],
                  resume: bool) -> None:
        to_run = sum(not p.done for p in plan)
        self.emit("run_start", out_dir=str(out_dir), command=self.command, resume=resume, pairs=len(plan),
                  to_run=to_run)
        for item in unavailable:
            self.emit("unavailable", **item.as_dict())

    def unavailable(self, item: Unavailable, pairs: int) -> None:
        self.emit("unavailable", **item.as_dict(), pairs=pairs)

    def pair_start(self, index: int, total: int, model: str, dataset: str, seed: int) -> None:
        self._pair = {"model": model, "dataset": dataset, "seed": seed}
        self.emit("pair_start", index=index, total=total, **self._pair)

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        self._epochs = epochs

    def epoch_end(self, record: EpochRecord, best_epoch: int) -> None:
        self.emit("epoch_end", **self._pair, epochs=self._epochs, best_epoch=best_epoch, **record.as_dict())

    def pair_end(self, record: Mapping[str, Any]) -> None:
        self.emit("pair_end", **self._pair, status=record.get("status"), reason=record.get("reason"),
                  accuracy=accuracy_of(record), epochs_run=record.get("epochs_run"),
                  best_epoch=record.get("best_epoch"))

    def warn(self, message: str) -> None:
        self.emit("warning", message=message)

    def interrupted(self, signal_name: str) -> None:
        self.emit("interrupted", signal=signal_name)

    def error(self, message: str) -> None:
        self.emit("error", message=message)

    def run_end(self, results: Mapping[str, Any]) -> None:
        statuses: dict[str, int] = {}
        for pair in results.get("pairs", []):
            statuses[pair["status"]] = statuses.get(pair["status"], 0) + 1
        self.emit("run_end", statuses=statuses)


class Eta:
    """The time a run has left, from the epoch times seen so far.

    Each pair still to run needs its planned epochs, times the share of planned epochs that the
    finished pairs actually ran (early stopping), times the mean epoch time (training and
    validation) of its model x dataset so far, else of every epoch so far.
    """

    def __init__(self, plan: Sequence[PlannedPair]) -> None:
        self._todo = {p.key: p.epochs or 0 for p in plan if not p.done}
        self._current: PairKey | None = None
        self._epochs_done = 0
        self._seconds: dict[tuple[str, str], list[float]] = {}
        self._planned = self._ran = 0

    def drop_dataset(self, name: str) -> None:
        """The dataset's pairs will not run."""
        self._todo = {k: e for k, e in self._todo.items() if k[1] != name}

    def pair_start(self, key: PairKey, epochs: int | None = None) -> None:
        self._current, self._epochs_done = key, 0
        if epochs is not None:
            self._todo[key] = epochs

    def epoch_end(self, seconds: float, epochs: int | None = None) -> None:
        """The current pair finished an epoch in ``seconds`` (of ``epochs`` planned, when given)."""
        if self._current is None:
            return
        if epochs is not None:
            self._todo[self._current] = epochs
        self._epochs_done += 1
        self._seconds.setdefault(self._current[:2], []).append(seconds)

    def pair_end(self, epochs_run: int) -> None:
        """The current pair ended after ``epochs_run`` epochs (0: skipped or failed before training)."""
        if self._current is None:
            return
        planned = self._todo.pop(self._current, 0)
        if epochs_run and planned:
            self._planned += planned
            self._ran += min(epochs_run, planned)
        self._current = None

    def left(self) -> float | None:
        """Seconds left, or None before any epoch was timed."""
        every = [s for times in self._seconds.values() for s in times]
        if not every:
            return None
        overall = statistics.fmean(every)
        share = self._ran / self._planned if self._planned else 1.0
        total = 0.0
        for key, epochs in self._todo.items():
            done = self._epochs_done if key == self._current else 0
            times = self._seconds.get(key[:2])
            total += max(epochs * share - done, 0.0) * (statistics.fmean(times) if times else overall)
        return total


def duration(seconds: float) -> str:
    """``45s``, ``12m03s`` or ``2h05m``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
