"""Plugins that Dask workers load by name (``PluginSource(extra="dask_helpers:...")``, or the
entry points of :func:`installed_env`), and models that kill their worker."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from helpers import MeanLogReg, make_toy_dataset, toy_plugin

TESTS = Path(__file__).resolve().parent
#: A directory where the killing models count their deaths (one line per death, per model and seed).
CRASH_DIR = "SEQBENCH_TEST_CRASH_DIR"
#: The process that must never be killed (the test's own).
SAFE_PID = "SEQBENCH_TEST_SAFE_PID"


class Killer(MeanLogReg):
    """Kills its own process at its first batch (as the kernel's OOM killer would), as long as
    its deaths, counted in the crash directory, are fewer than the number in the file ``budget``
    there (no file: always)."""

    def __init__(self, n_features: int, num_classes: int, lr: float, seed: int) -> None:
        super().__init__(n_features, num_classes, lr, seed)
        self.seed = seed

    def train_batch(self, x: Any, y: Any) -> float:
        crash_dir = Path(os.environ[CRASH_DIR])
        deaths = crash_dir / f"killer-{self.seed}"
        budget = crash_dir / "budget"
        died = len(deaths.read_text().split()) if deaths.exists() else 0
        if (not budget.exists() or died < int(budget.read_text())) and str(os.getpid()) != os.environ.get(SAFE_PID):
            with deaths.open("a") as f:
                f.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().train_batch(x, y)


class Sleeper(MeanLogReg):
    """Waits at its first batch until a file ``heal`` appears in the crash directory (at most a minute)."""

    def train_batch(self, x: Any, y: Any) -> float:
        heal = Path(os.environ[CRASH_DIR]) / "heal"
        deadline = time.monotonic() + 60
        while not heal.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return super().train_batch(x, y)


class Hangs(MeanLogReg):
    """Never returns from its first batch: a busy Python loop (an hour at most)."""

    def train_batch(self, x: Any, y: Any) -> float:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            pass
        return super().train_batch(x, y)


class RaisesInterrupt(MeanLogReg):
    """Raises KeyboardInterrupt at its first batch, as a plugin's own bug (or a caught Ctrl-C re-raised) would."""

    def train_batch(self, x: Any, y: Any) -> float:
        raise KeyboardInterrupt


class CtrlCInDel(MeanLogReg):
    """At each batch, Ctrl-C reaches its process while Python runs a ``__del__`` (as it can during
    garbage collection): Python prints the handler's exception and ignores it; the batch goes on.
    Sends it only in the process named by ``SAFE_PID`` (the test's own)."""

    def train_batch(self, x: Any, y: Any) -> float:
        if os.environ.get(SAFE_PID) == str(os.getpid()):
            _Collected()
        return super().train_batch(x, y)


class _Collected:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # the handler runs here, inside __del__
            pass


def toy_plugins() -> list[tuple[str, object]]:
    """Dataset ``toy``; models ``logreg``, ``killer``, ``sleeper``, ``hangs``, ``interrupts`` and
    ``ctrl-c-in-del``."""
    models = {"logreg": lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"]),
              "killer": lambda info, p: Killer(info.n_features, info.num_classes, p["lr"], p["seed"]),
              "sleeper": lambda info, p: Sleeper(info.n_features, info.num_classes, p["lr"], p["seed"]),
              "hangs": lambda info, p: Hangs(info.n_features, info.num_classes, p["lr"], p["seed"]),
              "interrupts": lambda info, p: RaisesInterrupt(info.n_features, info.num_classes, p["lr"], p["seed"]),
              "ctrl-c-in-del": lambda info, p: CtrlCInDel(info.n_features, info.num_classes, p["lr"], p["seed"])}
    return [("toy", toy_plugin(models=models))]


def other_data_plugins() -> list[tuple[str, object]]:
    """Dataset ``toy`` with other content (another fingerprint) than :func:`toy_plugins`'s."""
    return [("toy", toy_plugin(datasets={"toy": make_toy_dataset(seed=1)}))]


#: Installed as the entry point of a fake distribution by :func:`installed_env`.
PLUGIN = toy_plugin(models={"logreg": lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"]),
                            "sleeper": lambda info, p: Sleeper(info.n_features, info.num_classes, p["lr"], p["seed"])})
#: A plugin that :func:`installed_env` installs for the run's process only (not its workers).
GHOST = toy_plugin(datasets={}, models={"ghost": lambda info, p: MeanLogReg(info.n_features, info.num_classes)})


def installed_env(site: Path, ghost: bool = True) -> dict[str, str]:
    """The environment of a process that finds :data:`PLUGIN` installed (distribution
    ``seqbench-daskdemo``: dataset ``toy``, models ``logreg`` and ``sleeper``) and, with
    ``ghost``, :data:`GHOST`."""
    dists = {"seqbench_daskdemo": "daskdemo = dask_helpers:PLUGIN"}
    if ghost:
        dists["seqbench_ghost"] = "ghost = dask_helpers:GHOST"
    site = site / ("client" if ghost else "worker")
    for dist, entry in dists.items():
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[seqbench]\n{entry}\n")
    path = [str(site), str(TESTS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "SEQBENCH_BLOCK_PLUGINS": "datasets",
            "SEQBENCH_LOAD_PLUGINS": ",".join(d.replace("_", "-") for d in dists)}


def seqbench_command(*args: str) -> list[str]:
    """``seqbench ARGS`` as a subprocess command line with this interpreter."""
    return [sys.executable, "-c", "from seqbench.cli import main; main()", *args]
