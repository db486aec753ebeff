"""The small defects of the plugin API (issue 13): each found by a plugin author, each fixed."""

from __future__ import annotations

import json
import re
import types

import pytest
from click.testing import CliRunner
from helpers import MeanLogReg, fake_entry_point, make_toy_dataset, toy_plugin

import seqbench.plugins as plugins_mod
from seqbench import DatasetSpec, Model, ModelSpec, hookimpl
from seqbench.cli import main
from seqbench.plugins import PluginError, load_plugins
from seqbench.runner import RunRequest, run_benchmark


def _models(*names: str) -> types.ModuleType:
    mod = types.ModuleType("installed_copy")

    @hookimpl
    def register_models(register):
        for name in names:
            register(ModelSpec(name, lambda info, p: None))

    mod.register_models = register_models
    return mod


def test_extra_plugin_named_like_an_installed_one_is_a_clean_error_naming_both(monkeypatch):
    installed = _models("mlp")
    monkeypatch.setattr(plugins_mod, "_entry_points",
                        lambda: [fake_entry_point("mine", "seqbench-mine", "1.0", lambda: installed)])
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    with pytest.raises(PluginError, match=r"plugin 'mine' given in extra= .*installed distribution 'seqbench-mine'"):
        load_plugins(extra=[("mine", _models("mlp"))])
    with pytest.raises(PluginError, match=r"'other' given in extra= is already loaded as plugin 'mine' "
                                          r"\(distribution 'seqbench-mine'\)"):
        load_plugins(extra=[("other", installed)])
    # without the installed distributions the same plugin loads
    assert "mlp" in load_plugins(extra=[("mine", _models("mlp"))], installed=False).models


def test_a_plugin_with_no_hook_implementations_is_warned_about(capsys):
    mod = types.ModuleType("forgot_hookimpl")
    mod.register_models = lambda register: register(ModelSpec("never", lambda info, p: None))  # no @hookimpl
    reg = load_plugins(extra=[("forgot", mod)])
    assert "never" not in reg.models
    warning = ("plugin 'forgot' implements no seqbench hook: decorate register_datasets, register_models or "
               "register_metrics with @seqbench.hookimpl")
    assert capsys.readouterr().err.strip() == f"seqbench: warning: {warning}"
    assert reg.warnings == [warning]
    with pytest.raises(PluginError, match="implements no seqbench hook"):
        load_plugins(strict=True, extra=[("forgot", mod)])


def test_blocked_plugins_are_listed_as_blocked(monkeypatch):
    monkeypatch.setattr(plugins_mod, "_entry_points",
                        lambda: [fake_entry_point("x", "seqbench-x", "1.0", lambda: _models("x-model"))])
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "seqbench-x,datasets")
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "no third-party plugins installed" not in result.output
    (x,) = [ln for ln in lines if ln.startswith("x ")]
    assert "seqbench-x" in x and "blocked" in x.split()
    (ds,) = [ln for ln in lines if ln.startswith("datasets ")]  # a blocked built-in shows without --all
    assert "blocked" in ds.split()
    shown = json.loads(CliRunner().invoke(main, ["plugins", "--json"]).output)
    assert {p["name"]: p["blocked"] for p in shown} == {"datasets": True, "x": True}
    assert [p.name for p in load_plugins().plugins if not p.blocked] == ["models", "metrics"]


def _blobs_without_fetcher():
    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(
                DatasetSpec(
                    "blobs",
                    lambda ctx: make_toy_dataset("blobs"),
                    locate=lambda ctx: {"status": "missing", "directory": "/nowhere", "missing": ["b.npz"]},
                )
            )

    return Plugin()


def test_data_fetch_and_data_info_agree_for_a_plugin_dataset_without_a_fetcher(monkeypatch, tmp_path):
    monkeypatch.setattr(plugins_mod, "_entry_points",
                        lambda: [fake_entry_point("blobs", "seqbench-blobs", "1.0", _blobs_without_fetcher)])
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    info = CliRunner().invoke(main, ["data", "info", "--data-dir", str(tmp_path)])
    assert info.exit_code == 0, info.output
    (line,) = [ln for ln in info.output.splitlines() if ln.startswith("blobs: missing")]
    assert "seqbench data fetch" not in line and "has no fetcher" in line
    fetch = CliRunner().invoke(main, ["data", "fetch", "blobs", "--data-dir", str(tmp_path)])
    assert fetch.exit_code == 1
    assert fetch.output.strip() == ("Error: dataset 'blobs' (plugin 'blobs') has no fetcher: seqbench cannot "
                                    "download it; `seqbench data info` says where its files go")
    assert "unknown dataset" not in fetch.output


class _Reporting(MeanLogReg):
    def hyperparameters(self):
        return {"lr": self.lr, "width": 7}

    def num_parameters(self):
        return int(self.W.size + self.b.size)


def test_hyperparameters_and_dataset_meta_are_recorded_and_parameters_shown(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    ds = make_toy_dataset()
    ds = type(ds)(**{**ds.__dict__, "meta": {"source": "synthetic", "version": 2}})
    plugin = toy_plugin(
        {"toy": ds}, {"rep": lambda info, p: _Reporting(info.n_features, info.num_classes, p["lr"], p["seed"])}
    )
    registry = load_plugins(extra=[("toy", plugin)])
    out = tmp_path / "run"
    (pair,) = run_benchmark(registry, RunRequest(["rep"], ["toy"], [0], out, tmp_path, plots=False))["pairs"]
    assert pair["status"] == "ok", pair["reason"]
    assert pair["hyperparameters"] == {**pair["params"], "width": 7}
    assert pair["dataset_info"]["meta"] == {"source": "synthetic", "version": 2}
    assert pair["num_parameters"] == 15
    summary = (out / "summary.md").read_text()
    assert "parameters" in summary and re.search(r"\|\s+15 \|", summary)
    assert "num_parameters" in (out / "summary.csv").read_text().splitlines()[0]


def test_dataset_meta_that_json_cannot_hold_fails_the_dataset_naming_its_plugin(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    ds = make_toy_dataset()
    ds = type(ds)(**{**ds.__dict__, "meta": {"opened": object()}})
    registry = load_plugins(extra=[("toy", toy_plugin({"toy": ds}))])
    (pair,) = run_benchmark(registry, RunRequest(["logreg"], ["toy"], [0], tmp_path / "r", tmp_path, plots=False))[
        "pairs"
    ]
    assert pair["status"] == "failed" and "plugin 'toy'" in pair["reason"] and "meta" in pair["reason"]


def test_model_without_num_parameters_is_unknown():
    class Bare(Model):
        def train_batch(self, x, y): return 0.0
        def predict_proba(self, x): return None
        def state_dict(self): return {}
        def load_state_dict(self, state): pass

    assert Bare().num_parameters() is None


def test_defaults_of_a_builtin_model_is_public_and_used_by_the_torch_plugin():
    from pathlib import Path

    from seqbench import DatasetInfo, defaults_of

    registry = load_plugins()
    for model in ("rnn-cpu", "gru-gpu"):
        for dataset in ("mnist", "cifar10"):
            assert defaults_of(model, dataset) == registry.models[model].defaults(DatasetInfo(dataset, 1, 1, ("a",)))
    with pytest.raises(ValueError, match="'mlp' is not a built-in model; built-in: rnn-cpu, rnn-gpu"):
        defaults_of("mlp", "mnist")
    torch_plugin = Path(__file__).resolve().parents[1] / "plugins" / "seqbench-torch" / "seqbench_torch"
    assert "default_plugins" not in "".join(p.read_text() for p in torch_plugin.glob("*.py"))
