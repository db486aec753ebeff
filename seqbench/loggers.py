"""A run's events for the plugins that implement the ``log_*`` hooks (:mod:`seqbench.hookspecs`).

:class:`LoggerObserver` is one more observer of the run: it turns the runner's events into hook
calls, each plugin's implementation called on its own so that one logger's failure (an
exception, ``sys.exit()``) is reported once with its plugin's name, ends that plugin's logging,
and touches nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqbench.plugins import one_line
from seqbench.progress import EpochRecord, PlannedPair, RunObserver, Unavailable

if TYPE_CHECKING:  # pragma: no cover
    import pluggy


class LoggerObserver(RunObserver):
    """Calls the loggers' hooks (``impls``: hook name to implementations) with a run's events;
    ``warn`` reports a logger that failed."""

    def __init__(self, impls: Mapping[str, Sequence[pluggy.HookImpl]], command: str, config: Mapping[str, Any],
                 warn: Callable[[str], None]) -> None:
        # Not named warn: that is RunObserver's event, which the console observer already shows.
        self.impls, self.command, self.config, self._report_failure = impls, command, config, warn
        self.failed: set[str] = set()
        self.run_dir = Path()
        self._pair: tuple[str, str, int] | None = None
        self._epochs = 0
        self._epochs_seen = 0

    def _call(self, hook: str, **kwargs: Any) -> None:
        for impl in self.impls.get(hook, ()):
            if impl.plugin_name in self.failed:
                continue
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a logger must not end the run: SystemExit too
                self.failed.add(impl.plugin_name)
                self._report_failure(f"logger plugin {impl.plugin_name!r} failed in {hook}: {one_line(exc)}; "
                          "it gets no more events of this run")

    def run_start(self, out_dir: Path, plan: Sequence[PlannedPair], unavailable: Sequence[Unavailable],
                  resume: bool) -> None:
        self.run_dir = out_dir
        pairs = [{"model": p.model, "dataset": p.dataset, "seed": p.seed, "params": p.params, "done": p.done}
                 for p in plan]
        self._call("log_run_start", run_dir=out_dir, command=self.command, config=self.config, pairs=pairs,
                   resume=resume)

    def pair_start(self, index: int, total: int, model: str, dataset: str, seed: int) -> None:
        self._pair, self._epochs_seen = (model, dataset, seed), 0

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        self._epochs = epochs

    def epoch_end(self, record: EpochRecord, best_epoch: int) -> None:
        self._epochs_seen += 1
        self._epoch(record.as_dict(), self._epochs, best_epoch)

    def _epoch(self, epoch: Mapping[str, Any], epochs: int, best_epoch: int) -> None:
        if self._pair is None:
            return
        model, dataset, seed = self._pair
        self._call("log_epoch_end", model=model, dataset=dataset, seed=seed, epoch=epoch["epoch"], epochs=epochs,
                   train_loss=epoch["train_loss"], val_accuracy=epoch["val_accuracy"],
                   epoch_seconds=epoch["epoch_seconds"], val_seconds=epoch["val_seconds"], best_epoch=best_epoch)

    def pair_end(self, record: Mapping[str, Any]) -> None:
        if not self._epochs_seen:  # trained on a Dask worker, which sends no epochs: they are in the record
            self._replay(record)
        self._call("log_pair_end", run_dir=self.run_dir, record=record)
        self._pair = None

    def _replay(self, record: Mapping[str, Any]) -> None:
        history = record.get("history") or []
        epochs = int((record.get("params") or {}).get("epochs") or len(history))
        best, best_accuracy = 0, -1.0
        for epoch in history:
            if epoch["train_loss"] is not None and epoch["val_accuracy"] > best_accuracy:
                best, best_accuracy = epoch["epoch"], epoch["val_accuracy"]
            self._epoch(epoch, epochs, best)

    def run_end(self, results: Mapping[str, Any]) -> None:
        self._call("log_run_end", run_dir=self.run_dir, results=results)
