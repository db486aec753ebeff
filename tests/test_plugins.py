"""Plugin loading: registration, duplicate names, broken and misspelled plugins, env controls."""

from __future__ import annotations

import types

import pytest
from click.testing import CliRunner
from helpers import fake_entry_point, make_toy_dataset, toy_plugin

import seqbench.plugins as plugins_mod
from seqbench import DatasetSpec, ModelSpec, hookimpl
from seqbench.cli import main
from seqbench.plugins import PluginError, load_plugins


def _module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(mod, hook, hookimpl(fn))
    return mod


def _model_plugin(*names: str) -> types.ModuleType:
    def register_models(register):
        for n in names:
            register(ModelSpec(n, lambda info, p: None))

    return _module("m", register_models=register_models)


def _use_entry_points(monkeypatch, *eps) -> None:
    monkeypatch.setattr(plugins_mod, "_entry_points", lambda: list(eps))
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")


def test_builtins_register_through_the_hooks():
    reg = load_plugins()
    assert {"rnn-cpu", "rnn-gpu"} <= set(reg.models)
    assert {"accuracy", "per_class", "confusion"} <= set(reg.metrics)
    assert reg.plugin_of("model", "rnn-cpu") == "models"
    assert [p.name for p in reg.plugins if p.builtin] == ["datasets", "models", "metrics"]


def test_extra_plugin_registers_models_and_datasets(toy_registry):
    assert "toy" in toy_registry.datasets and "logreg" in toy_registry.models
    assert toy_registry.plugin_of("dataset", "toy") == "toy"


def test_duplicate_name_is_refused_naming_both_plugins(monkeypatch, capsys):
    _use_entry_points(
        monkeypatch,
        fake_entry_point("first", "seqbench-first", "1.0", lambda: _model_plugin("dup")),
        fake_entry_point("second", "seqbench-second", "2.0", lambda: _model_plugin("dup", "other")),
    )
    reg = load_plugins()
    assert reg.plugin_of("model", "dup") == "first"
    assert reg.plugin_of("model", "other") == "second"  # the rest of the plugin still registers
    err = capsys.readouterr().err
    assert (
        err.strip()
        == "seqbench: warning: model name 'dup' from plugin 'second' is already registered by plugin 'first'; ignored"
    )
    with pytest.raises(PluginError, match=r"'dup' from plugin 'second' is already registered by plugin 'first'"):
        load_plugins(strict=True)


def test_duplicate_of_a_builtin_name_is_refused(monkeypatch):
    _use_entry_points(monkeypatch, fake_entry_point("x", "seqbench-x", "1", lambda: _model_plugin("rnn-cpu")))
    with pytest.raises(PluginError, match="already registered by plugin 'models'"):
        load_plugins(strict=True)


def test_broken_entry_point_warns_and_the_rest_loads(monkeypatch, capsys):
    def boom():
        raise ImportError("No module named 'torch'")

    _use_entry_points(
        monkeypatch,
        fake_entry_point("broken", "seqbench-broken", "0.1", boom),
        fake_entry_point("good", "seqbench-good", "1.0", lambda: _model_plugin("good-model")),
    )
    reg = load_plugins()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["seqbench: warning: plugin 'seqbench-broken' failed to load: ImportError: No module named 'torch'; "
                   "to skip it, block its entry point: SEQBENCH_BLOCK_PLUGINS=broken"]
    assert "good-model" in reg.models and "rnn-cpu" in reg.models
    broken = next(p for p in reg.plugins if p.name == "broken")
    assert broken.error and broken.version == "0.1"


def test_strict_mode_makes_a_broken_plugin_fatal(monkeypatch):
    def boom():
        raise RuntimeError("bad plugin")

    _use_entry_points(monkeypatch, fake_entry_point("broken", "seqbench-broken", "0.1", boom))
    with pytest.raises(PluginError, match="seqbench-broken"):
        load_plugins(strict=True)
    monkeypatch.setenv("SEQBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        load_plugins()
    result = CliRunner().invoke(main, ["--strict-plugins", "list", "models"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: plugin 'seqbench-broken' failed to load: RuntimeError: bad plugin; "
        "to skip it, block its entry point: SEQBENCH_BLOCK_PLUGINS=broken"
    ]


def test_a_name_that_cannot_be_a_file_name_is_refused(capsys):
    load_plugins(extra=[("slash", _model_plugin("a/b"))])
    assert "model name 'a/b' from plugin 'slash' is not a valid name" in capsys.readouterr().err


def test_plugin_raising_in_register_is_reported_by_name(monkeypatch, capsys):
    def register_models(register):
        raise ValueError("cannot register")

    _use_entry_points(
        monkeypatch, fake_entry_point("bad", "seqbench-bad", "1", lambda: _module("b", register_models=register_models))
    )
    reg = load_plugins()
    assert "rnn-cpu" in reg.models
    assert "plugin 'seqbench-bad' failed in register_models: ValueError: cannot register" in capsys.readouterr().err


def test_misspelled_hook_is_an_error(capsys):
    def register_modles(register):  # misspelled on purpose
        pass

    typo = ("typo", _module("typo", register_modles=register_modles))
    with pytest.raises(PluginError, match="register_modles"):
        load_plugins(strict=True, extra=[typo])
    reg = load_plugins(extra=[typo])
    assert "rnn-cpu" in reg.models
    assert "plugin 'typo' has a hook that seqbench does not define" in capsys.readouterr().err
    assert "register_modles" in next(p for p in reg.plugins if p.name == "typo").error


def test_load_plugins_env_selects_distributions(monkeypatch):
    _use_entry_points(
        monkeypatch,
        fake_entry_point("a", "seqbench-a", "1", lambda: _model_plugin("model-a")),
        fake_entry_point("b", "seqbench-b", "1", lambda: _model_plugin("model-b")),
    )
    monkeypatch.setenv("SEQBENCH_LOAD_PLUGINS", "seqbench-b")
    reg = load_plugins()
    assert "model-b" in reg.models and "model-a" not in reg.models
    monkeypatch.setenv("SEQBENCH_LOAD_PLUGINS", "")
    reg = load_plugins()
    assert not {"model-a", "model-b"} & set(reg.models)
    assert "rnn-cpu" in reg.models  # built-ins are not entry points


def test_builtins_can_be_blocked(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "models,datasets")
    reg = load_plugins(extra=[("toy", toy_plugin())])
    assert set(reg.models) == {"logreg"}
    assert [p.name for p in reg.plugins if p.builtin and not p.blocked] == ["metrics"]
    assert [p.name for p in reg.plugins if p.blocked] == ["datasets", "models"]


def test_wrong_spec_type_is_a_plugin_error(capsys):
    def register_datasets(register):
        register(ModelSpec("not-a-dataset", lambda i, p: None))

    load_plugins(extra=[("odd", _module("odd", register_datasets=register_datasets))])
    assert "expects DatasetSpec, got ModelSpec" in capsys.readouterr().err


def test_plugins_command_lists_versions_and_hooks(monkeypatch):
    _use_entry_points(monkeypatch, fake_entry_point("ext", "seqbench-ext", "3.1", lambda: _model_plugin("ext-model")))
    runner = CliRunner()
    out = runner.invoke(main, ["plugins"])
    assert out.exit_code == 0, out.output
    assert "seqbench-ext" in out.output and "3.1" in out.output and "register_models" in out.output
    assert "metrics" not in out.output
    out = runner.invoke(main, ["plugins", "--all", "--json"])
    import json

    names = {p["name"]: p for p in json.loads(out.output)}
    assert names["ext"]["registered"] == ["model:ext-model"] and names["metrics"]["builtin"]


def test_list_datasets_and_models(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[("toy", toy_plugin({"toy": make_toy_dataset()}))])
    runner = CliRunner()
    out = runner.invoke(main, ["list", "datasets"], obj={"registry": reg})
    assert out.exit_code == 0 and "toy" in out.output
    out = runner.invoke(main, ["list", "models"], obj={"registry": reg})
    assert "rnn-cpu" in out.output and "logreg" in out.output


def test_dataset_spec_is_the_registered_object():
    seen = DatasetSpec("x", lambda ctx: None)
    mod = _module("d", register_datasets=lambda register: register(seen))
    reg = load_plugins(extra=[("d", mod)])
    assert reg.datasets["x"] is seen
