"""A run you can follow: progress on stderr, the table on stdout, an ETA, the event log, dry runs,
``--all`` leaving out what cannot run here, and ``seqbench list``."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from helpers import MeanLogReg, toy_plugin

from seqbench import DatasetSpec, DatasetUnavailable, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.progress import Eta, PlannedPair


def invoke(registry, *args):
    return CliRunner().invoke(main, ["run", *map(str, args)], obj={"registry": registry})


def cupy_missing() -> bool:
    from seqbench.models.backend import cupy_unavailable

    return cupy_unavailable() is not None and "not importable" in cupy_unavailable()


def test_stdout_carries_only_the_table_and_stderr_the_progress(toy_registry, tmp_path):
    result = invoke(toy_registry, "-m", "logreg", "-d", "toy", "--seeds", "0,1", "--set", "epochs=3",
                    "--out", tmp_path / "run", "--no-plots")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines and all(line.startswith("|") for line in lines), result.stdout
    assert "logreg" in result.stdout
    err = result.stderr
    assert "[1/2] logreg x toy (seed 0)" in err and "[2/2] logreg x toy (seed 1)" in err
    assert "epoch 1/3" in err and "elapsed" in err
    assert "left" in err.split("[2/2]")[1]  # an ETA once epochs were timed
    assert f"results: {tmp_path / 'run'}" in err


def test_format_json_prints_only_json(toy_registry, tmp_path):
    result = invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "epochs=2", "--format", "json",
                    "--out", tmp_path / "run", "--no-plots")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["model"] == "logreg" and rows[0]["dataset"] == "toy"


def test_eta_comes_from_observed_epoch_times_and_learns_early_stopping():
    plan = [PlannedPair("a", "d", 0, 4), PlannedPair("a", "d", 1, 4), PlannedPair("b", "d", 0, 4)]
    eta = Eta(plan)
    assert eta.left() is None  # nothing timed yet
    eta.pair_start(("a", "d", 0))
    eta.epoch_end(10.0)
    eta.epoch_end(10.0)
    assert eta.left() == pytest.approx((2 + 4 + 4) * 10.0)
    eta.pair_end(2)  # stopped early after 2 of 4 epochs: expect half of the planned epochs
    assert eta.left() == pytest.approx((4 + 4) * 0.5 * 10.0)
    eta.pair_start(("a", "d", 1))
    eta.pair_end(0)  # skipped or failed: no epochs, no time
    eta.pair_start(("b", "d", 0))
    eta.epoch_end(30.0)  # another model: its own epoch time
    assert eta.left() == pytest.approx((4 * 0.5 - 1) * 30.0)
    eta.pair_end(1)
    assert eta.left() == 0


def test_eta_skips_finished_and_dropped_pairs():
    plan = [PlannedPair("a", "d", 0, 4, done=True), PlannedPair("a", "d", 1, 4), PlannedPair("a", "e", 0, 4)]
    eta = Eta(plan)
    eta.pair_start(("a", "d", 1))
    eta.epoch_end(5.0)
    eta.drop_dataset("e")
    assert eta.left() == pytest.approx(3 * 5.0)


def events(out):
    lines = (out / "events.jsonl").read_text().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(e["time"] and e["event"] for e in parsed)
    return parsed


def test_the_event_log_records_the_run_and_a_resume_appends(toy_registry, tmp_path):
    out = tmp_path / "run"
    assert (
        invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "epochs=2", "--out", out, "--no-plots").exit_code
        == 0
    )
    first = events(out)
    kinds = [e["event"] for e in first]
    assert kinds == ["run_start", "pair_start", "epoch_end", "epoch_end", "pair_end", "run_end"], kinds
    assert first[0]["pairs"] == 1 and first[0]["command"].startswith("seqbench")
    assert first[2]["epoch"] == 1 and first[2]["epochs"] == 2 and first[2]["model"] == "logreg"
    assert first[4]["status"] == "ok" and 0 <= first[4]["accuracy"] <= 1
    assert invoke(toy_registry, "--resume", out, "--no-plots").exit_code == 0
    second = events(out)
    assert second[: len(first)] == first
    assert [e["event"] for e in second[len(first):]] == ["run_start", "run_end"]
    assert second[len(first)]["resume"] is True


class Interrupting(MeanLogReg):
    def train_batch(self, x, y):  # the user's Ctrl-C: a KeyboardInterrupt a plugin raises is its own failure
        import signal
        import time

        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


def test_the_event_log_records_an_interrupt(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[("toy", toy_plugin(models={"logreg": lambda info, p: Interrupting(4, 3)}))])
    out = tmp_path / "run"
    assert invoke(reg, "-m", "logreg", "-d", "toy", "--out", out, "--no-plots").exit_code == 130
    assert [e["event"] for e in events(out)][-1] == "interrupted"


def test_dry_run_lists_pairs_with_their_hyperparameters_and_writes_nothing(toy_registry, tmp_path):
    out = tmp_path / "run"
    args = ("-m", "logreg", "-m", "rnn-cpu", "-d", "toy", "--seeds", "0,1", "--set", "hidden=8", "--quick",
            "--out", out)
    result = invoke(toy_registry, *args, "--dry-run")
    assert result.exit_code == 0, result.output
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines()[2:]}
    assert set(rows) == {"logreg", "rnn-cpu"}
    assert "hidden=8" in rows["rnn-cpu"] and "epochs=2" in rows["rnn-cpu"] and "0,1" in rows["rnn-cpu"]
    assert "lr=0.5" in rows["logreg"]
    assert not out.exists()
    pairs = json.loads(invoke(toy_registry, *args, "--dry-run", "--format", "json").stdout)["pairs"]
    assert [(p["model"], p["seed"]) for p in pairs] == [("logreg", 0), ("logreg", 1), ("rnn-cpu", 0), ("rnn-cpu", 1)]
    assert pairs[3]["params"]["hidden"] == 8 and pairs[3]["params"]["seed"] == 1
    assert not out.exists()
    bad = invoke(toy_registry, "-m", "logreg", "-d", "toy", "--set", "bogus=1", "--dry-run")
    assert bad.exit_code == 2 and "unknown parameter 'bogus'" in bad.output


class Missing:
    @hookimpl
    def register_datasets(self, register):
        def load(ctx):
            raise DatasetUnavailable("files missing: put them in /nowhere")

        register(DatasetSpec("missing", load))


@pytest.mark.skipif(not cupy_missing(), reason="CuPy is importable here")
def test_all_without_cupy_lists_the_gpu_models_once_and_runs_the_rest(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[("toy", toy_plugin()), ("missing", Missing())])
    out = tmp_path / "run"
    result = invoke(reg, "--all", "--set", "epochs=1", "--set", "hidden=4", "--out", out, "--no-plots")
    assert result.exit_code == 4, result.output  # a dataset --all names could not be loaded
    assert "--all: dataset(s) missing could not be loaded (exit 4; --allow-missing-data accepts that)" in result.stderr
    assert (
        result.stdout.startswith("PARTIAL RUN: ")
        and "  - dataset missing: not run here (files missing" in result.stdout
    )
    gpu = ("gru-gpu", "lstm-gpu", "rnn-gpu")
    for name in gpu:
        assert result.stderr.count(name) == 1, result.stderr
    assert result.stderr.count("CuPy is not importable") == 1
    assert result.stderr.count("files missing") == 1
    assert "[4/4]" in result.stderr and "[5/" not in result.stderr
    results = json.loads((out / "results.json").read_text())
    unavailable = {(u["kind"], u["name"]): u["reason"] for u in results["config"]["unavailable"]}
    assert set(unavailable) == {("model", m) for m in gpu} | {("dataset", "missing")}
    assert "CuPy is not importable" in unavailable[("model", "rnn-gpu")]
    assert results["config"]["models"] == ["gru-cpu", "logreg", "lstm-cpu", "rnn-cpu"]
    assert results["config"]["datasets"] == ["toy"]
    assert {p["model"] for p in results["pairs"]} == {"gru-cpu", "logreg", "lstm-cpu", "rnn-cpu"}
    assert all(p["status"] == "ok" for p in results["pairs"])
    assert [e["event"] for e in events(out)].count("unavailable") == 4
    allowed = invoke(reg, "--all", "--allow-missing-data", "--set", "epochs=1", "--set", "hidden=4",
                     "--out", tmp_path / "allowed", "--no-plots")
    assert allowed.exit_code == 0, allowed.output


@pytest.mark.skipif(not cupy_missing(), reason="CuPy is importable here")
def test_a_model_named_on_the_command_line_keeps_its_skipped_record(toy_registry, tmp_path):
    result = invoke(toy_registry, "-m", "rnn-gpu", "-m", "logreg", "-d", "toy", "--set", "epochs=1",
                    "--out", tmp_path / "run", "--no-plots")
    assert result.exit_code == 0, result.output
    pairs = json.loads((tmp_path / "run" / "results.json").read_text())["pairs"]
    assert [p["status"] for p in pairs] == ["skipped", "ok"]


def listing(registry, *args):
    return CliRunner().invoke(main, ["list", *args], obj={"registry": registry})


@pytest.mark.skipif(not cupy_missing(), reason="CuPy is importable here")
def test_list_models_is_short_with_one_footnote_per_reason(toy_registry):
    result = listing(toy_registry, "models")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines[:12])) < 120, result.output
    gpu = [line for line in lines if line.startswith("rnn-gpu")]
    assert "no (CuPy is not importable) [1]" in gpu[0]
    assert result.output.count("CuPy is not importable (") == 1
    assert any(line.startswith("[1] ") and "pip install" in line for line in lines)


def test_list_json_like_plugins_and_data_info(toy_registry):
    models = json.loads(listing(toy_registry, "models", "--json").output)
    by_name = {m["name"]: m for m in models}
    assert by_name["logreg"] == {"name": "logreg", "plugin": "toy", "available": True, "reason": None,
                                 "description": ""}
    assert set(by_name["rnn-gpu"]) == {"name", "plugin", "available", "reason", "description"}
    datasets = json.loads(listing(toy_registry, "datasets", "--json").output)
    assert datasets == [{"name": "toy", "plugin": "toy", "in_all": True, "description": "synthetic toy"}]


def test_the_run_summary_ends_with_the_leaderboard(toy_registry, tmp_path):
    result = invoke(toy_registry, "-m", "logreg", "-m", "rnn-cpu", "-d", "toy", "--set", "epochs=1",
                    "--set", "hidden=4", "--out", tmp_path / "run", "--no-plots")
    assert result.exit_code == 0, result.output
    board = result.stdout.split("\nLeaderboard\n", 1)[1]
    assert "| best" in board and "McNemar's exact test" in board  # one seed: the paired test on predictions
