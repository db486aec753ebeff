"""seqbench.testing: plugins loaded in isolation, a few training steps, one pair end to end;
and seqbench-example's own tests, which use it."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers import MeanLogReg, fake_entry_point

import seqbench.plugins as plugins_mod
from seqbench import ModelSpec, hookimpl
from seqbench.plugins import PluginError
from seqbench.testing import TINY, PluginTester, tiny_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "seqbench-example"


def _plugin(name: str = "mean") -> types.ModuleType:
    mod = types.ModuleType("seqbench_mean")

    @hookimpl
    def register_models(register):
        register(ModelSpec(name, lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"]),
                           lambda info: {"lr": 0.5, "epochs": 4, "batch_size": 32}))

    mod.register_models = register_models
    return mod


def test_the_plugin_loads_alone_whatever_is_installed_or_set(monkeypatch, tmp_path):
    installed = fake_entry_point("seqbench_mean", "seqbench-mean", "0.9", lambda: _plugin())
    monkeypatch.setattr(plugins_mod, "_entry_points", lambda: [installed])
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "models,seqbench_mean")
    tester = PluginTester(_plugin(), tmp_path=tmp_path)
    assert tester.registry.plugin_of("model", "mean") == "seqbench_mean"
    assert "rnn-cpu" in tester.registry.models and TINY in tester.registry.datasets
    assert not [p for p in tester.registry.plugins if p.distribution == "seqbench-mean"]
    assert set(PluginTester(_plugin(), builtins=False, tmp_path=tmp_path).registry.models) == {"mean"}


def test_a_plugin_that_fails_to_register_raises():
    with pytest.raises(PluginError, match="'a/b' from plugin 'broken' is not a valid name"):
        PluginTester(("broken", _plugin("a/b")))


def test_train_takes_a_few_steps_and_checks_the_outputs(tmp_path):
    tester = PluginTester(_plugin(), tmp_path=tmp_path)
    trained = tester.train("mean", steps=30, overrides={"lr": 1.0})
    assert trained.params["lr"] == 1.0 and len(trained.losses) == 30
    assert trained.losses[-1] < trained.losses[0]
    assert trained.proba.shape == (60, 3)
    wide = tiny_dataset("wide", n_features=7, num_classes=5)
    assert tester.train("mean", wide, steps=1).proba.shape == (60, 5)


def test_run_pair_runs_the_protocol_into_tmp_path(tmp_path):
    tester = PluginTester(_plugin(), tmp_path=tmp_path)
    pair = tester.run_pair("mean", overrides={"epochs": 2})
    assert pair["status"] == "ok", pair["reason"]
    assert pair["params"]["epochs"] == 2 and pair["metrics"]["accuracy"]["accuracy"] > 0.8
    assert tester.run_dir.parent == tmp_path and (tester.run_dir / "results.json").exists()


@pytest.mark.slow
def test_the_example_plugin_tests_itself_with_the_helper():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                          capture_output=True, text=True, timeout=300, cwd=EXAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
