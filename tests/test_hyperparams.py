"""Typed hyperparameters (issue 23): declared once, checked before a run, listed, passed to
datasets and metrics; plugins without declarations keep working."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import MeanLogReg, make_toy_dataset, toy_plugin

from seqbench import DatasetSpec, MetricSpec, ModelSpec, Param, hookimpl
from seqbench.cli import main
from seqbench.hyperparams import ParamValueError
from seqbench.plugins import load_plugins


def invoke(registry, *args):
    return CliRunner().invoke(main, [*map(str, args)], obj={"registry": registry})


# --- the declaration ------------------------------------------------------------------------------


def test_a_param_checks_type_bounds_and_choices():
    hidden = Param("hidden", int, 64, ge=1)
    assert hidden.parse("32") == 32 and hidden.check(8.0) == 8
    for bad in ("-3", "0", "1.5", "wide", "nan"):
        with pytest.raises(ParamValueError, match=r"must be an integer >= 1"):
            hidden.parse(bad)
    with pytest.raises(ParamValueError):
        hidden.check(True)  # a bool is not a count
    fraction = Param("f", float, 0.1, gt=0, lt=1)
    assert fraction.parse("0.5") == 0.5
    with pytest.raises(ParamValueError, match=r"a number > 0 and < 1"):
        fraction.parse("1")
    readout = Param("readout", str, "last", choices=("last", "mean"))
    with pytest.raises(ParamValueError, match="one of last, mean"):
        readout.parse("first")
    flag = Param("flag", bool, False)
    assert flag.parse("yes") is True and flag.parse("off") is False
    with pytest.raises(ParamValueError, match="true or false"):
        flag.parse("2")


@pytest.mark.parametrize("kwargs, message", [
    ({"type": int, "default": 0, "ge": 1}, "its default 0"),
    ({"type": float, "default": 0.1, "gt": 0, "search": (0.0, 1.0), "log": True}, "log-scale search needs low > 0"),
    ({"type": float, "default": 0.1, "search": (1.0, 0.1)}, "low < high"),
    ({"type": str, "default": "a", "choices": ("a", "b"), "search": ("a", "c")}, "its search space 'c'"),
    ({"type": list, "default": None}, "type must be one of"),
])
def test_a_declaration_that_contradicts_itself_is_refused(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Param("x", **kwargs)


def test_a_name_declared_twice_is_refused():
    with pytest.raises(ValueError, match="model 'm': hyperparameter 'lr' is declared twice"):
        ModelSpec("m", MeanLogReg, params=(Param("lr", float, 0.1), Param("lr", float, 0.2)))


def test_built_in_choices_are_the_models_own():
    from seqbench.builtin_models import model_params
    from seqbench.models.optim import OPTIMIZERS
    from seqbench.models.recurrent import LR_SCHEDULES, READOUTS

    declared = {p.name: p for p in model_params(gpu=False)}
    assert declared["optimizer"].choices == tuple(OPTIMIZERS)
    assert declared["lr_schedule"].choices == LR_SCHEDULES and declared["readout"].choices == READOUTS


# --- checked before anything runs: exit 2, one line --------------------------------------------


class TypedPlugin:
    """A third-party model with declarations, and an untyped one as today's plugins are."""

    @hookimpl
    def register_models(self, register):
        build = lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"])  # noqa: E731
        register(ModelSpec("typed", build, lambda info: {"epochs": 3, "batch_size": 32},
                           params=(Param("lr", float, 0.5, "step size", gt=0, search=(0.01, 1.0), log=True),
                                   Param("heads", int, 2, "heads", choices=(1, 2, 4)))))
        register(ModelSpec("untyped", build, lambda info: {"lr": 0.5, "epochs": 3, "batch_size": 32, "heads": 2}))


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=[("toy", toy_plugin()), ("typed", TypedPlugin())])


@pytest.mark.parametrize("model, setting, message", [
    ("rnn-cpu", "hidden=-3", "--set hidden=-3 (hidden of rnn-cpu): must be an integer >= 1"),
    ("rnn-cpu", "rnn-cpu.readout=first", "--set rnn-cpu.readout=first: must be one of last, mean"),
    ("rnn-cpu", "epochs=0", "--set epochs=0 (epochs of rnn-cpu): must be an integer >= 1"),
    ("typed", "heads=3", "--set heads=3 (heads of typed): must be one of 1, 2, 4"),
    ("typed", "typed.lr=0", "--set typed.lr=0: must be a number > 0"),
    ("typed", "typed.lr=fast", "--set typed.lr=fast: must be a number > 0"),
    ("untyped", "lr=fast", "--set lr=fast: expected a finite float"),
    ("typed", "nothing=1", "--set: unknown parameter 'nothing'"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_bad_set_is_one_line_and_exit_2_before_anything_runs(registry, tmp_path, model, setting, message, dry_run):
    out = tmp_path / "run"
    result = invoke(registry, "run", "-m", model, "-d", "toy", "--set", setting, "--out", out,
                    *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: {message}" or result.output.strip().startswith(f"Error: {message}")
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_a_bad_value_in_a_config_file_is_refused_likewise(registry, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('model = ["typed"]\ndataset = ["toy"]\n[set]\nheads = 3\n')
    result = invoke(registry, "run", "--config", config, "--out", tmp_path / "run", "--dry-run")
    assert result.exit_code == 2 and "--set heads=3 (heads of typed): must be one of 1, 2, 4" in result.output


def test_an_untyped_plugin_still_runs_with_its_set_converted_as_before(registry, tmp_path):
    out = tmp_path / "run"
    result = invoke(registry, "run", "-m", "untyped", "-d", "toy", "--set", "lr=0.25", "--out", out, "--no-plots")
    assert result.exit_code == 0, result.output
    pair = json.loads((out / "results.json").read_text())["pairs"][0]
    assert pair["status"] == "ok" and pair["params"]["lr"] == 0.25 and pair["params"]["heads"] == 2


def test_a_typed_plugin_runs_with_its_declared_defaults(registry, tmp_path):
    out = tmp_path / "run"
    assert invoke(registry, "run", "-m", "typed", "-d", "toy", "--out", out, "--no-plots").exit_code == 0
    pair = json.loads((out / "results.json").read_text())["pairs"][0]
    assert pair["params"]["lr"] == 0.5 and pair["params"]["heads"] == 2 and pair["params"]["epochs"] == 3


def test_defaults_that_break_their_own_declaration_fail_the_pair_naming_the_plugin(monkeypatch, tmp_path):
    class Liar:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("liar", lambda info, p: MeanLogReg(info.n_features, info.num_classes),
                               lambda info: {"lr": -1.0}, params=(Param("lr", float, 0.5, gt=0),)))

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[("toy", toy_plugin()), ("liar", Liar())])
    out = tmp_path / "run"
    assert invoke(reg, "run", "-m", "liar", "-d", "toy", "--out", out, "--no-plots").exit_code == 1
    pair = json.loads((out / "results.json").read_text())["pairs"][0]
    assert pair["status"] == "failed" and pair["reason"] == "model plugin 'liar': lr=-1.0: must be a number > 0"


def test_list_models_params_shows_the_declarations(registry):
    result = invoke(registry, "list", "models", "--params")
    assert result.exit_code == 0, result.output
    lines = {tuple(line.split()[:2]) for line in result.output.splitlines()}
    assert ("rnn-cpu", "hidden") in lines and ("typed", "heads") in lines
    assert "declares none" in next(line for line in result.output.splitlines() if line.startswith("untyped"))
    entries = {e["name"]: e for e in json.loads(invoke(registry, "list", "models", "--params", "--json").output)}
    lr = next(p for p in entries["typed"]["params"] if p["name"] == "lr")
    assert lr == {"name": "lr", "type": "float", "default": 0.5, "help": "step size", "allowed": "a number > 0",
                  "choices": None, "ge": None, "gt": 0, "le": None, "lt": None, "search": [0.01, 1.0], "log": True}
    assert entries["untyped"]["params"] == []


# --- datasets and metrics take parameters too ----------------------------------------------------


class NoisyPlugin:
    """A dataset with a noise level and a metric with a bin count, both declared."""

    @hookimpl
    def register_datasets(self, register):
        def load(ctx):
            base = make_toy_dataset("noisy")
            rng = np.random.default_rng(0)
            noisy = base.train_x + rng.normal(0, ctx.params["noise"], base.train_x.shape).astype(np.float32)
            return base.__class__(**{**base.__dict__, "train_x": noisy, "meta": {"noise": ctx.params["noise"]}})

        register(DatasetSpec("noisy", load, params=(Param("noise", float, 0.0, "std of added noise", ge=0),)))

    @hookimpl
    def register_metrics(self, register):
        def histogram(y_true, y_pred, proba, class_names, *, bins):
            return {"bins": bins, "counts": np.histogram(proba.max(axis=1), bins=bins, range=(0, 1))[0].tolist()}

        register(MetricSpec("confidence", histogram, params=(Param("bins", int, 10, "histogram bins", ge=1),)))


@pytest.fixture
def noisy(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=[("toy", toy_plugin()), ("noisy", NoisyPlugin())])


def _pair(registry, out, *sets):
    args = [a for s in sets for a in ("--set", s)]
    result = invoke(registry, "run", "-m", "logreg", "-d", "noisy", *args, "--out", out, "--no-plots")
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())["pairs"][0]


def test_set_reaches_a_datasets_loader_and_a_metric(noisy, tmp_path):
    plain = _pair(noisy, tmp_path / "plain")
    assert plain["dataset_info"]["meta"] == {"noise": 0.0} and plain["metrics"]["confidence"]["bins"] == 10
    tuned = _pair(noisy, tmp_path / "tuned", "noisy.noise=0.5", "confidence.bins=4")
    assert tuned["dataset_info"]["meta"] == {"noise": 0.5}
    assert tuned["metrics"]["confidence"]["bins"] == 4 and len(tuned["metrics"]["confidence"]["counts"]) == 4
    # data made with another noise level is another dataset: never averaged or resumed together
    assert tuned["dataset_info"]["fingerprint"] != plain["dataset_info"]["fingerprint"]
    assert _pair(noisy, tmp_path / "unscoped", "bins=4")["metrics"]["confidence"]["bins"] == 4


@pytest.mark.parametrize("setting, message", [
    ("noisy.noise=-1", "--set noisy.noise=-1: must be a number >= 0"),
    ("confidence.bins=0", "--set confidence.bins=0: must be an integer >= 1"),
    ("noisy.level=1", "--set noisy.level: dataset 'noisy' has no parameter 'level'; it has: noise"),
])
def test_bad_dataset_and_metric_settings_are_refused_before_the_run(noisy, tmp_path, setting, message):
    result = invoke(noisy, "run", "-m", "logreg", "-d", "noisy", "--set", setting, "--dry-run")
    assert result.exit_code == 2 and f"Error: {message}" in result.output, result.output


def test_params_of_gives_a_built_in_models_declarations_and_the_torch_models_share_them():
    from seqbench import params_of
    from seqbench.plugins import load_plugins as load

    assert {p.name for p in params_of("gru-gpu")} - {p.name for p in params_of("gru-cpu")} == {"cuda_graph"}
    with pytest.raises(ValueError, match="'mlp' is not a built-in model"):
        params_of("mlp")
    import seqbench_torch

    registry = load(extra=[("torch", seqbench_torch)], installed=False)
    declared = {p.name: p for p in registry.models["torch-lstm"].params}
    assert (
        set(declared) == set(seqbench_torch.OPTIONS)
        and declared["hidden"] == {p.name: p for p in params_of("lstm-cpu")}["hidden"]
    )
