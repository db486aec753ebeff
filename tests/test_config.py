"""Selecting and configuring a run: shell patterns for -m/-d, ``--config run.toml``, completion."""

from __future__ import annotations

import json

from click.shell_completion import BashComplete
from click.testing import CliRunner
from test_run import _one_line_error

from seqbench.cli import main
from seqbench.cli.run import run


def invoke(registry, *args):
    return CliRunner().invoke(main, ["run", *map(str, args)], obj={"registry": registry})


def planned(registry, *args):
    result = invoke(registry, *args, "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_shell_patterns_select_models_and_datasets(toy_registry):
    plan = planned(toy_registry, "-m", "*-cpu", "-m", "logreg", "-d", "t?y")
    assert sorted({p["model"] for p in plan["pairs"]}) == ["gru-cpu", "logreg", "lstm-cpu", "rnn-cpu"]
    assert {p["dataset"] for p in plan["pairs"]} == {"toy"}
    plan = planned(toy_registry, "-m", "rnn-*", "-m", "rnn-cpu", "-d", "toy", "--include-unavailable")
    assert [p["model"] for p in plan["pairs"]] == ["rnn-cpu", "rnn-gpu"]  # each name once


def test_a_pattern_that_matches_nothing_is_an_error_naming_the_known_names(toy_registry):
    _one_line_error(invoke(toy_registry, "-m", "cnn-*", "-d", "toy", "--dry-run"),
                    "model pattern 'cnn-*' matches nothing", "known: gru-cpu, gru-gpu, logreg")
    _one_line_error(invoke(toy_registry, "-m", "logreg", "-d", "[xy]*", "--dry-run"),
                    "dataset pattern '[xy]*' matches nothing", "known: toy")


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


CONFIG = """
model = ["logreg", "rnn-*"]
dataset = "toy"
seeds = [0, 1]
quick = true
no-plots = true
out = "{out}"

[set]
hidden = 8
lr = 0.25
"""


def test_config_file_holds_run_options_and_the_command_line_wins(toy_registry, tmp_path):
    out = tmp_path / "run"
    config = write(tmp_path, CONFIG.format(out=out))
    plan = planned(toy_registry, "--config", config)
    assert [(p["model"], p["seed"]) for p in plan["pairs"]] == [
        ("logreg", 0),
        ("logreg", 1),
        ("rnn-cpu", 0),
        ("rnn-cpu", 1),
    ]
    rnn = plan["pairs"][2]["params"]
    assert rnn["hidden"] == 8 and rnn["lr"] == 0.25 and rnn["epochs"] == 2  # --set, and quick
    plan = planned(toy_registry, "--config", config, "--seeds", "3", "-m", "rnn-cpu", "--set", "lr=0.125")
    assert [(p["model"], p["seed"]) for p in plan["pairs"]] == [("rnn-cpu", 3)]
    assert plan["pairs"][0]["params"]["lr"] == 0.125 and plan["pairs"][0]["params"]["hidden"] == 8
    result = invoke(toy_registry, "--config", config, "-m", "rnn-cpu", "--seeds", "0")
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "results.json").read_text())["config"]
    assert stored["quick"] is True and stored["overrides"] == {"hidden": "8", "lr": "0.25"}
    assert not (out / "plots").exists()


def test_command_line_selection_wins_over_the_configs_all(toy_registry, tmp_path):
    config = write(tmp_path, "all = true\n")
    plan = planned(toy_registry, "--config", config, "-m", "logreg")
    assert {p["model"] for p in plan["pairs"]} == {"logreg"}
    config = write(tmp_path, 'model = "logreg"\n')
    plan = planned(toy_registry, "--config", config, "--all")
    assert "rnn-cpu" in {p["model"] for p in plan["pairs"]}


def test_config_errors_are_one_line_naming_the_key(toy_registry, tmp_path):
    _one_line_error(invoke(toy_registry, "--config", write(tmp_path, "modles = ['x']\n"), "--dry-run"),
                    "unknown key 'modles'", "known:", "model")
    _one_line_error(invoke(toy_registry, "--config", write(tmp_path, "quick = 'yes'\n"), "--dry-run"),
                    "'quick'", "true or false")
    _one_line_error(invoke(toy_registry, "--config", write(tmp_path, "model = [1]\n"), "--dry-run"), "'model'")
    _one_line_error(invoke(toy_registry, "--config", write(tmp_path, "model = [\n"), "--dry-run"), "run.toml")
    _one_line_error(invoke(toy_registry, "--config", tmp_path / "none.toml", "--dry-run"), "none.toml")


def test_completion_of_model_and_dataset_names(toy_registry):
    import click

    ctx = click.Context(run, obj={"registry": toy_registry})
    options = {p.name: p for p in run.params}
    assert [c.value for c in options["models"].shell_complete(ctx, "rnn")] == ["rnn-cpu", "rnn-gpu"]
    assert [c.value for c in options["datasets"].shell_complete(ctx, "t")] == ["toy"]
    assert options["models"].shell_complete(ctx, "zzz") == []


def test_completion_through_the_shell_protocol():
    complete = BashComplete(main, {}, "seqbench", "_SEQBENCH_COMPLETE")
    assert [c.value for c in complete.get_completions(["run", "-m"], "lstm-")] == ["lstm-cpu", "lstm-gpu"]
    assert [c.value for c in complete.get_completions(["run", "--dataset"], "fash")] == [
        "fashion-mnist",
        "fashion-smnist",
    ]
