"""The logger hooks: a plugin receives a run's events; one that raises or exits breaks nothing."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner
from helpers import toy_plugin

from seqbench import hookimpl
from seqbench.cli import main
from seqbench.loggers import LoggerObserver
from seqbench.plugins import load_plugins
from seqbench.progress import Observers, RunObserver


class Recorder:
    """Keeps every event it receives, taking only some of the arguments (as pluggy allows)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    @hookimpl
    def log_run_start(self, run_dir, config, pairs, resume):
        self.events.append(("run_start", {"run_dir": run_dir, "config": config, "pairs": pairs, "resume": resume}))

    @hookimpl
    def log_epoch_end(self, model, dataset, seed, epoch, train_loss, val_accuracy, epoch_seconds, best_epoch):
        self.events.append(("epoch_end", dict(model=model, dataset=dataset, seed=seed, epoch=epoch,
                                              train_loss=train_loss, val_accuracy=val_accuracy,
                                              epoch_seconds=epoch_seconds)))

    @hookimpl
    def log_pair_end(self, record):
        self.events.append(("pair_end", record))

    @hookimpl
    def log_run_end(self, run_dir, results):
        self.events.append(("run_end", {"report": (run_dir / "report.html").exists(), "results": results}))


class Raises:
    @hookimpl
    def log_epoch_end(self, epoch):
        raise RuntimeError(f"tracker down at epoch {epoch}")


class Exits:
    @hookimpl
    def log_run_start(self):
        sys.exit(2)

    @hookimpl
    def log_pair_end(self):
        raise AssertionError("never called after its failure")


def run(monkeypatch, tmp_path, *loggers):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin()), *loggers])
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "-m", "logreg", "-d", "toy", "--seeds", "0,1", "--set", "epochs=3",
                                       "--out", str(out), "--no-plots"], obj={"registry": registry})
    return result, out


def test_a_logger_receives_the_runs_events_with_the_recorded_values(monkeypatch, tmp_path):
    recorder = Recorder()
    result, out = run(monkeypatch, tmp_path, ("recorder", recorder))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == ["run_start", *(["epoch_end"] * 3 + ["pair_end"]) * 2, "run_end"]
    start = recorder.events[0][1]
    assert start["run_dir"] == out and start["config"]["seeds"] == [0, 1] and start["resume"] is False
    pairs = [(p["model"], p["seed"], p["params"]["epochs"]) for p in start["pairs"]]
    assert pairs == [("logreg", 0, 3), ("logreg", 1, 3)]
    epochs = [e for kind, e in recorder.events if kind == "epoch_end"]
    recorded = [{"model": p["model"], "dataset": p["dataset"], "seed": p["seed"], "epoch": h["epoch"],
                 "train_loss": h["train_loss"], "val_accuracy": h["val_accuracy"], "epoch_seconds": h["epoch_seconds"]}
                for p in results["pairs"] for h in p["history"]]
    assert epochs == recorded
    assert [e for kind, e in recorder.events if kind == "pair_end"] == results["pairs"]
    end = recorder.events[-1][1]
    assert end["report"] and end["results"]["pairs"] == results["pairs"]


@pytest.mark.parametrize("bad", [Raises, Exits])
def test_a_logger_that_raises_or_exits_leaves_the_run_and_its_results_intact(monkeypatch, tmp_path, bad):
    clean, clean_out = run(monkeypatch, tmp_path / "clean")
    recorder = Recorder()
    result, out = run(monkeypatch, tmp_path, ("bad", bad()), ("recorder", recorder))
    assert result.exit_code == clean.exit_code == 0, result.output
    hook, error = (
        ("log_epoch_end", "RuntimeError: tracker down at epoch 1")
        if bad is Raises
        else ("log_run_start", "SystemExit: 2")
    )
    warning = f"logger plugin 'bad' failed in {hook}: {error}; it gets no more events of this run"
    assert result.stderr.count(warning) == 1
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["message"] for e in events if e["event"] == "warning"] == [warning]
    results = json.loads((out / "results.json").read_text())
    expected = json.loads((clean_out / "results.json").read_text())
    assert [(p["status"], p["metrics"], [h["val_accuracy"] for h in p["history"]]) for p in results["pairs"]] == \
           [(p["status"], p["metrics"], [h["val_accuracy"] for h in p["history"]]) for p in expected["pairs"]]
    assert (out / "summary.md").exists() and (out / "report.html").exists()
    assert [kind for kind, _ in recorder.events].count("epoch_end") == 6  # the other logger missed nothing


def test_the_epochs_of_a_pair_trained_elsewhere_come_from_its_record():
    """A Dask worker sends no epochs: the logger gets them from the record, before the pair's end."""
    recorder = Recorder()
    registry = load_plugins(extra=[("recorder", recorder)], installed=False)
    observer = LoggerObserver(registry.loggers, "seqbench run", {}, pytest.fail)
    history = [{"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5, "epoch_seconds": 0.1, "val_seconds": 0.0},
               {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.7, "epoch_seconds": 0.1, "val_seconds": 0.0}]
    observer.pair_start(1, 1, "m", "d", 0)
    observer.pair_end({"model": "m", "history": history, "params": {"epochs": 5}})
    assert [e["epoch"] for kind, e in recorder.events if kind == "epoch_end"] == [1, 2]
    assert recorder.events[-1][0] == "pair_end"


def test_a_run_warning_reaches_the_console_once_when_loggers_are_installed():
    """The run's warnings go to every observer; the loggers' observer is not the console's echo."""

    class Console(RunObserver):
        def __init__(self) -> None:
            self.warned: list[str] = []

        def warn(self, message: str) -> None:
            self.warned.append(message)

    console = Console()
    registry = load_plugins(extra=[("recorder", Recorder())], installed=False)
    observer = Observers(console, LoggerObserver(registry.loggers, "seqbench run", {}, console.warn))  # as runner.py
    observer.warn("rnn-cpu diverged")
    assert console.warned == ["rnn-cpu diverged"]


def test_loggers_are_listed_with_their_hooks(monkeypatch):
    registry = load_plugins(extra=[("recorder", Recorder())], installed=False)
    info = next(p for p in registry.plugins if p.name == "recorder")
    assert info.hooks == ["log_run_start", "log_epoch_end", "log_pair_end", "log_run_end"] and info.error is None
