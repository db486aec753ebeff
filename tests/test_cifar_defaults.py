"""CIFAR-10's defaults are what a run records; the original notebook's recipe runs under the protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from seqbench import Dataset, DatasetSpec, hookimpl
from seqbench.builtin_models import defaults_for
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.types import DatasetInfo

#: The notebook's CIFAR-10 recipe (SGD lr 0.01, hidden 256, no clipping, no decay, raw pixels, the
#: head on the last step), as docs/protocol.md gives it.
NOTEBOOK = ["--no-standardize", "--no-augment", "--set", "optimizer=sgd", "--set", "lr=0.01", "--set", "hidden=256",
            "--set", "clip=0", "--set", "lr_decay=1", "--set", "lr_schedule=exp", "--set", "readout=last",
            "--set", "batch_size=128"]


def tiny_cifar() -> Dataset:
    """A stand-in registered as ``cifar10``: 4 rows of 2 pixels x 3 colours, 3 classes."""
    rng = np.random.default_rng(0)
    x = lambda n: rng.random((n, 4, 6), dtype=np.float32)  # noqa: E731
    y = lambda n: rng.integers(0, 3, n).astype(np.int64)  # noqa: E731
    return Dataset("cifar10", x(60), y(60), x(20), y(20), ("a", "b", "c"), "sha256:tiny", channels=3)


@pytest.fixture
def cifar_registry(monkeypatch):
    """The built-in models, with the real CIFAR-10 registration's preprocessing, on tiny data."""
    declared = load_plugins().datasets["cifar10"].preprocessing
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("cifar10", lambda ctx: tiny_cifar(), "tiny", preprocessing=declared))

    return load_plugins(extra=[("tiny-cifar", Plugin())])


def _run(registry, out, *args):
    result = CliRunner().invoke(main, ["run", "-d", "cifar10", "--out", str(out), "--no-plots", *args],
                                obj={"registry": registry})
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_cifar_run_records_the_cifar_defaults(cifar_registry, tmp_path, cell):
    results = _run(cifar_registry, tmp_path / "run", "-m", f"{cell}-cpu", "--set", "epochs=1", "--set", "hidden=8")
    (pair,) = results["pairs"]
    expected = {**defaults_for(cell, "cifar10"), "epochs": 1, "hidden": 8, "seed": 0, "val_fraction": 0.1}
    assert pair["params"] == expected
    assert pair["preprocessing"]["standardize"] and pair["preprocessing"]["hflip"]
    # the model was built with them: its own record of its hyperparameters agrees
    assert pair["params"]["lr_schedule"] == "cosine"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cifar_defaults_differ_from_mnist_where_chosen(cell):
    cifar, mnist = defaults_for(cell, "cifar10"), defaults_for(cell, "mnist")
    assert cifar["lr_schedule"] == "cosine" and mnist["lr_schedule"] == "exp"
    assert cifar != mnist
    assert load_plugins().models[f"{cell}-cpu"].defaults(DatasetInfo("cifar10", 32, 96, tuple("0123456789"))) == cifar


def test_the_notebook_recipe_is_accepted_and_recorded(cifar_registry, tmp_path):
    results = _run(cifar_registry, tmp_path / "run", "-m", "rnn-cpu", "--set", "epochs=2", *NOTEBOOK)
    (pair,) = results["pairs"]
    assert pair["status"] == "ok"
    p = pair["params"]
    assert (p["optimizer"], p["lr"], p["hidden"], p["clip"], p["lr_decay"], p["lr_schedule"], p["readout"]) == (
        "sgd", 0.01, 256, 0.0, 1.0, "exp", "last")
    assert pair["preprocessing"] == {"standardize": False, "hflip": False, "shift": 0}
    assert results["config"]["preprocessing"]["cifar10"] == {"standardize": False, "hflip": False, "shift": 0}
