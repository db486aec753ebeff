"""``--set MODEL.KEY=VALUE`` sets one model's parameter; ``--set KEY=VALUE`` every selected model
that has the key (issue 13). Models ``a`` and ``b`` share ``hidden``; ``c`` and ``d`` do not."""

from __future__ import annotations

import pytest
from helpers import MeanLogReg, toy_plugin

from seqbench import ModelSpec, hookimpl
from seqbench.plugins import load_plugins
from seqbench.progress import RunObserver
from seqbench.runner import RunError, RunRequest, plan_run, run_benchmark

DEFAULTS = {"a": {"hidden": 8, "lr": 0.5}, "b": {"hidden": 16, "lr": 0.5},
            "c": {"width": 2, "lr": 0.5}, "d": {"depth": 3, "lr": 0.5}}


class Models:
    @hookimpl
    def register_models(self, register):
        for name, defaults in DEFAULTS.items():
            register(ModelSpec(name, lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"]),
                               lambda info, _d=defaults: {**_d, "epochs": 2, "batch_size": 32}))


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets,models")
    return load_plugins(extra=[("toy", toy_plugin(models={})), ("four", Models())])


def _params(registry, tmp_path, overrides, models=("a", "b", "c", "d")):
    plan = plan_run(registry, RunRequest(list(models), ["toy"], [0], tmp_path / "run", tmp_path, overrides=overrides))
    return {p.model: p.params for p in plan.pairs}, plan.notes


def test_unscoped_key_applies_to_every_model_that_has_it(registry, tmp_path):
    params, notes = _params(registry, tmp_path, {"hidden": "64"})
    assert [params[m].get("hidden") for m in "abcd"] == [64, 64, None, None]
    assert "hidden" not in params["c"] and "hidden" not in params["d"]
    assert notes == ("--set hidden=64 applies to a, b only (c, d have no 'hidden'; MODEL.hidden=... sets one model's)",)
    params, notes = _params(registry, tmp_path, {"lr": "0.1"})  # every model has lr: nothing to say
    assert {params[m]["lr"] for m in "abcd"} == {0.1} and notes == ()


def test_scoped_key_applies_to_its_model_only_and_wins(registry, tmp_path):
    params, notes = _params(registry, tmp_path, {"a.hidden": "32"})
    assert [params[m].get("hidden") for m in "ab"] == [32, 16] and notes == ()
    params, _ = _params(registry, tmp_path, {"hidden": "64", "a.hidden": "32", "c.width": "5", "d.epochs": "1"})
    assert [params[m].get("hidden") for m in "ab"] == [32, 64]
    assert (params["c"]["width"], params["d"]["depth"], params["d"]["epochs"], params["c"]["epochs"]) == (5, 3, 1, 2)


def test_keys_no_selected_model_takes_are_refused(registry, tmp_path):
    with pytest.raises(RunError, match=r"--set: unknown parameter 'width'; known: batch_size, .*hidden"):
        _params(registry, tmp_path, {"width": "3"}, models=("a", "b"))
    with pytest.raises(RunError, match=r"--set c.hidden: model 'c' has no parameter 'hidden'; it has: .*width"):
        _params(registry, tmp_path, {"c.hidden": "1"})
    with pytest.raises(RunError, match=r"--set c.width: model 'c' is not selected \(selected: a, b\)"):
        _params(registry, tmp_path, {"c.width": "1"}, models=("a", "b"))
    with pytest.raises(RunError, match=r"--set a.hidden=wide: expected a finite int"):
        _params(registry, tmp_path, {"a.hidden": "wide"})
    with pytest.raises(RunError, match=r"--set b.epochs=0: must be an integer >= 1"):
        _params(registry, tmp_path, {"b.epochs": "0"})
    with pytest.raises(RunError, match=r"use --seeds"):
        _params(registry, tmp_path, {"a.seed": "1"})


class Notes(RunObserver):
    def __init__(self):
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


def test_each_pair_records_what_it_took_and_the_run_says_which_models(registry, tmp_path):
    notes = Notes()
    request = RunRequest(["a", "b", "c"], ["toy"], [0], tmp_path / "run", tmp_path, plots=False,
                         overrides={"hidden": "64", "b.hidden": "4"})
    results = run_benchmark(registry, request, notes)
    params = {p["model"]: p["params"] for p in results["pairs"]}
    assert [params[m].get("hidden") for m in "abc"] == [64, 4, None]
    assert all(p["hyperparameters"]["lr"] == 0.5 for p in results["pairs"])
    assert notes.warnings == [
        "--set hidden=64 applies to a, b only (c has no 'hidden'; MODEL.hidden=... sets one model's)"
    ]
    assert results["config"]["overrides"] == {"hidden": "64", "b.hidden": "4"}
