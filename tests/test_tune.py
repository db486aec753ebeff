"""``seqbench tune`` (issue 23): validation only, reproducible, resumable after SIGKILL, pruning
recorded, --params-from exact, bad settings refused before anything runs, untyped plugins, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("optuna")

import itertools

import tune_helpers
from helpers import make_toy_dataset

from seqbench import Dataset, DatasetSpec, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=tune_helpers.plugins())


def invoke(registry, *args):
    return CliRunner().invoke(main, [*map(str, args)], obj={"registry": registry})


def tune(registry, out, *args, model="typed", trials=6):
    result = invoke(registry, "tune", "-m", model, "-d", "toy", "--trials", trials, "--out", out, *args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "tune.json").read_text())


def trials_of(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*/trial-*.json"))]


def outcome(record: dict) -> tuple:
    """What a trial was and learnt, without timings."""
    history = [(e["epoch"], e["val_accuracy"], e["train_loss"]) for e in record["history"]]
    return record["trial"], record["state"], record["params"], record["value"], history


# --- the test split is never read --------------------------------------------------------------


def _plain(obj):
    """``obj`` with every Spy inside it (lists and tuples too) a plain array."""
    if isinstance(obj, Spy):
        return obj.view(np.ndarray)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(o) for o in obj)
    return obj


class Spy(np.ndarray):
    """An array that notes every use of its values (ufuncs, array functions, indexing, copies)."""

    uses: ClassVar[list[str]] = []

    def _note(self, what: str) -> None:
        Spy.uses.append(what)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self._note(f"ufunc {ufunc.__name__}")
        return getattr(ufunc, method)(*_plain(inputs), **{k: _plain(v) for k, v in kwargs.items()})

    def __array_function__(self, func, types, args, kwargs):
        self._note(f"function {func.__name__}")
        return func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})

    def __getitem__(self, index):
        self._note("getitem")
        return self.view(np.ndarray)[index]

    def __iter__(self):
        self._note("iter")
        return iter(self.view(np.ndarray))

    def astype(self, *args, **kwargs):
        self._note("astype")
        return self.view(np.ndarray).astype(*args, **kwargs)

    def copy(self, *args, **kwargs):
        self._note("copy")
        return self.view(np.ndarray).copy(*args, **kwargs)

    def tobytes(self, *args, **kwargs):
        self._note("tobytes")
        return self.view(np.ndarray).tobytes(*args, **kwargs)


class SpyPlugin:
    @hookimpl
    def register_datasets(self, register):
        def load(ctx):
            toy = make_toy_dataset("spied")
            return Dataset("spied", toy.train_x, toy.train_y, toy.test_x.view(Spy), toy.test_y.view(Spy),
                           toy.class_names, toy.fingerprint)

        register(DatasetSpec("spied", load))


@pytest.mark.slow
def test_a_tune_never_reads_the_test_split_and_a_run_does(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    reg = load_plugins(extra=[*tune_helpers.plugins(), ("spy", SpyPlugin())])
    Spy.uses = []
    result = invoke(reg, "tune", "-m", "typed", "-d", "spied", "--trials", 4, "--out", tmp_path / "tune")
    assert result.exit_code == 0, result.output
    assert len(trials_of(tmp_path / "tune")) == 4
    assert Spy.uses == []
    result = invoke(reg, "run", "--params-from", tmp_path / "tune", "--out", tmp_path / "run", "--no-plots")
    assert result.exit_code == 0, result.output
    assert Spy.uses  # the spy sees a read: the run evaluates the test split, once


# --- reproducible, resumable, pruned -------------------------------------------------------------


@pytest.mark.slow
def test_the_same_seed_and_budget_give_the_same_trials(registry, tmp_path):
    first = tune(registry, tmp_path / "a", "--seed", 3)
    second = tune(registry, tmp_path / "b", "--seed", 3)
    assert [outcome(t) for t in trials_of(tmp_path / "a")] == [outcome(t) for t in trials_of(tmp_path / "b")]
    assert len({json.dumps(t["params"]) for t in trials_of(tmp_path / "a")}) == 6  # six different trials
    assert first["studies"][0]["best"] == second["studies"][0]["best"]
    assert first["tune"] != second["tune"] and first["studies"][0]["study"] != second["studies"][0]["study"]
    other = tune(registry, tmp_path / "c", "--seed", 4)
    assert [t["params"] for t in trials_of(tmp_path / "c")] != [t["params"] for t in trials_of(tmp_path / "a")]
    assert other["studies"][0]["trials"]["complete"] >= 1


@pytest.mark.slow
def test_the_first_trial_is_the_defaults_and_the_study_is_named_for_its_tune(registry, tmp_path):
    summary = tune(registry, tmp_path / "t")
    study = summary["studies"][0]
    assert study["defaults"]["trial"] == 0 and study["defaults"]["params"] == {"lr": 0.5}
    assert study["study"] == f"typed+toy+{summary['tune']}"
    assert study["budget"] == {"trials": 6, "timeout": None} and study["finished"] == 6
    first = trials_of(tmp_path / "t")[0]
    assert first["params"] == {"lr": 0.5, "decay": 1.0, "epochs": 4, "batch_size": 32, "patience": 4,
                               "val_fraction": 0.1, "seed": 0}
    assert first["environment"]["python"] and first["timing"]["trial_seconds"] > 0
    assert [e["epoch"] for e in first["history"]] == [1, 2, 3, 4]
    assert (tmp_path / "t" / "report.md").exists() and (tmp_path / "t" / "best_so_far.png").exists()
    from seqbench.tuning.report import curves

    points = curves(tmp_path / "t", summary)[study["study"]]
    assert [p[0] for p in points] == list(range(6)) and points[-1][2] == study["best"]["value"]
    assert all(a[1] < b[1] and a[2] <= b[2] for a, b in itertools.pairwise(points))  # time and best only grow


def test_a_second_tune_into_the_same_directory_is_refused(registry, tmp_path):
    tune(registry, tmp_path / "t", trials=2)
    result = invoke(registry, "tune", "-m", "typed", "-d", "toy", "--trials", 2, "--out", tmp_path / "t")
    assert result.exit_code == 1 and "already holds a tune; continue it with --resume" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_pruned_trials_are_recorded_as_pruned(registry, tmp_path, pruner):
    import optuna

    tune(registry, tmp_path / "t", "--pruner", pruner, trials=14)
    records = trials_of(tmp_path / "t")
    pruned = [r for r in records if r["state"] == "pruned"]
    assert pruned, [r["state"] for r in records]
    assert all(r["epochs_run"] < 4 for r in pruned)
    storage = f"sqlite:///{tmp_path / 't' / 'study.db'}"
    study = optuna.load_study(study_name=records[0]["study"], storage=storage)
    states = {t.number: t.state.name.lower() for t in study.trials}
    assert {r["trial"]: r["state"] for r in records} == states
    summary = json.loads((tmp_path / "t" / "tune.json").read_text())["studies"][0]
    assert summary["trials"]["pruned"] == len(pruned)


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import tune_helpers
from seqbench.cli import main
from seqbench.plugins import load_plugins
main.main(sys.argv[1:], obj={{"registry": load_plugins(extra=tune_helpers.plugins())}})
"""


@pytest.mark.slow
def test_a_trial_written_but_not_told_before_a_kill_is_told_on_resume(registry, monkeypatch, tmp_path):
    """The window between a trial's record and the study's tell: the resume finishes that trial
    from its record, so it is neither lost nor run twice."""
    from seqbench.tuning import study as study_module

    finish, told = study_module._finish, []

    def killed_after_the_third_record(study, trial, record):
        if len(told) == 2:
            raise KeyboardInterrupt  # as a SIGKILL would stop it: the record is on disk, the study not told
        told.append(record["trial"])
        finish(study, trial, record)

    monkeypatch.setattr(study_module, "_finish", killed_after_the_third_record)
    out = tmp_path / "t"
    invoke(registry, "tune", "-m", "typed", "-d", "toy", "--trials", 5, "--out", out)
    written = {r["trial"]: outcome(r) for r in trials_of(out)}
    assert sorted(written) == [0, 1, 2] and told == [0, 1]
    monkeypatch.setattr(study_module, "_finish", finish)
    result = invoke(registry, "tune", "--resume", out)
    assert result.exit_code == 0, result.output
    after = trials_of(out)
    assert [r["trial"] for r in after] == [0, 1, 2, 3, 4]
    assert {r["trial"]: outcome(r) for r in after if r["trial"] in written} == written
    import optuna

    summary = json.loads((out / "tune.json").read_text())
    study = optuna.load_study(study_name=summary["studies"][0]["study"], storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5 and summary["studies"][0]["finished"] == 5


@pytest.mark.slow
def test_a_tune_killed_with_sigkill_resumes_without_losing_or_repeating_trials(tmp_path):
    out = tmp_path / "t"
    script = [sys.executable, "-c", SCRIPT.format(tests=str(TESTS))]
    env = {**os.environ, "SEQBENCH_BLOCK_PLUGINS": "datasets", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([*script, "tune", "-m", "slow", "-d", "toy", "--trials", "8", "--out", str(out)],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("trials/*/trial-*.json"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {r["trial"]: outcome(r) for r in trials_of(out)}
    assert 3 <= len(before) < 8, proc.stderr.read()

    again = subprocess.run(
        [*script, "tune", "--resume", str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    after = trials_of(out)
    counted = [r for r in after if r["state"] != "fail"]
    assert len(counted) == 8
    assert {r["trial"]: outcome(r) for r in after if r["trial"] in before} == before  # nothing lost or redone
    assert len({r["trial"] for r in after}) == len(after)
    summary = json.loads((out / "tune.json").read_text())
    assert summary["studies"][0]["finished"] == 8 and len(summary["sessions"]) == 2
    import optuna

    study = optuna.load_study(study_name=summary["studies"][0]["study"], storage=f"sqlite:///{out / 'study.db'}")
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert all(t.state == optuna.trial.TrialState.FAIL for t in interrupted)
    assert len(study.trials) == 8 + len(interrupted)  # the trial cut off by the kill was asked again
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in study.trials)


# --- from tune to result ------------------------------------------------------------------------


@pytest.mark.slow
def test_params_from_trains_the_best_trials_hyperparameters_exactly(registry, tmp_path):
    summary = tune(registry, tmp_path / "t", trials=5)
    best = summary["studies"][0]["best"]
    result = invoke(registry, "run", "--params-from", tmp_path / "t", "--seeds", "0,1", "--out", tmp_path / "run",
                    "--no-plots")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [p["params"]["lr"] for p in results["pairs"]] == [best["params"]["lr"]] * 2  # the float, exactly
    source = results["config"]["tuned"]["models"]["typed"]
    assert source["study"] == summary["studies"][0]["study"] and source["trial"] == best["trial"]
    assert source["budget"] == {"trials": 5, "timeout": None} and source["finished"] == 5
    assert "Hyperparameters: tuned: 5 trials each on validation" in (tmp_path / "run" / "summary.md").read_text()
    assert "tuned: 5 trials each on validation" in (tmp_path / "run" / "report.html").read_text()
    plain = invoke(registry, "run", "-m", "typed", "-d", "toy", "--out", tmp_path / "plain", "--no-plots")
    assert (
        plain.exit_code == 0 and "Hyperparameters: defaults, untuned" in (tmp_path / "plain" / "summary.md").read_text()
    )


@pytest.mark.slow
def test_params_from_refuses_a_model_the_tune_did_not_tune(registry, tmp_path):
    tune(registry, tmp_path / "t", trials=2)
    result = invoke(registry, "run", "--params-from", tmp_path / "t", "-m", "logreg", "--out", tmp_path / "run")
    assert result.exit_code == 1 and "'logreg' was not tuned on toy (tuned: typed on toy)" in result.output


# --- refused before anything runs ----------------------------------------------------------------


@pytest.mark.parametrize("model, args, message", [
    ("rnn-cpu", ("--space", "hidden=-3:8"), "--space hidden=-3:8: hidden of rnn-cpu must be an integer >= 1"),
    ("rnn-cpu", ("--space", "readout=first"), "--space readout=first: readout of rnn-cpu must be one of last, mean"),
    ("rnn-cpu", ("--space", "lr=0.1:0.01"), "--space lr=0.1:0.01: lr of rnn-cpu needs LOW < HIGH"),
    ("rnn-cpu", ("--set", "hidden=0"), "--set hidden=0 (hidden of rnn-cpu): must be an integer >= 1"),
    ("typed", ("--space", "typed.lr=0:1:log"), "--space typed.lr=0:1:log: lr of typed must be a number > 0"),
    ("typed", ("--space", "nothing=1:2"), "--space nothing: no selected model has a parameter 'nothing'"),
    ("typed", ("--space", "decay=0.5"), None),  # fixing a value is fine
    ("logreg", (), "model 'logreg' has nothing to search"),
])
def test_bad_space_or_set_is_one_line_and_exit_2_before_anything_runs(registry, tmp_path, model, args, message):
    out = tmp_path / "t"
    result = invoke(registry, "tune", "-m", model, "-d", "toy", "--trials", 1, "--out", out, "--dry-run", *args)
    if message is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: {message}" or result.output.startswith(f"Error: {message}")
    assert len(result.output.strip().splitlines()) == 1
    result = invoke(registry, "tune", "-m", model, "-d", "toy", "--trials", 1, "--out", out, *args)
    assert result.exit_code == 2 and not out.exists()


def test_a_bad_space_in_a_config_file_is_refused_likewise(registry, tmp_path):
    config = tmp_path / "tune.toml"
    config.write_text('model = ["rnn-cpu"]\ndataset = ["toy"]\ntrials = 2\n[space]\nhidden = "0:8"\n')
    result = invoke(registry, "tune", "--config", config, "--out", tmp_path / "t")
    assert result.exit_code == 2 and "--space hidden=0:8: hidden of rnn-cpu must be an integer >= 1" in result.output
    config.write_text(
        'model = ["typed"]\ndataset = ["toy"]\ntrials = 2\nseed = 1\n[space]\nlr = "0.1:1"\n[set]\nepochs = 2\n'
    )
    result = invoke(registry, "tune", "--config", config, "--out", tmp_path / "ok")
    assert result.exit_code == 0, result.output
    assert [r["params"]["epochs"] for r in trials_of(tmp_path / "ok")] == [2, 2]
    assert json.loads((tmp_path / "ok" / "tune.json").read_text())["config"]["space"] == {"lr": "0.1:1"}


@pytest.mark.slow
def test_an_untyped_plugin_is_tuned_on_the_space_the_user_gives(registry, tmp_path):
    summary = tune(registry, tmp_path / "t", "--space", "lr=0.05:1:log", model="logreg", trials=3)
    assert summary["studies"][0]["space"] == {"lr": "0.05:1.0:log"}
    assert all(0.05 <= t["params"]["lr"] <= 1 for t in trials_of(tmp_path / "t")[1:])


# --- Dask ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_dask_tune_on_two_local_workers_finishes_the_same_trials(registry, tmp_path):
    pytest.importorskip("distributed")
    from seqbench.executors.dask_executor import DaskExecutor
    from seqbench.executors.worker import PluginSource
    from seqbench.tuning.pool import DaskPool
    from seqbench.tuning.study import TuneRequest, run_tune

    plugins = PluginSource(extra="tune_helpers:plugins")
    request = TuneRequest(
        ["typed", "logreg"], ["toy"], tmp_path / "t", tmp_path, trials=5, space={"logreg.lr": "0.05:1"}
    )
    pool = DaskPool(DaskExecutor(plugins, workers=2, data_dir=tmp_path, cores=2))
    with pool.open() as opened:
        assert opened.slots == 2
        summary = run_tune(registry, request, opened, plugins)
    assert [s["finished"] for s in summary["studies"]] == [5, 5]
    records = trials_of(tmp_path / "t")
    assert len(records) == 10 and all(r["state"] in ("complete", "pruned") for r in records)
    assert {r["worker"]["pid"] for r in records} - {os.getpid()}  # trained on the workers
    assert summary["sessions"][0]["executor"]["kind"] == "dask-local"


@pytest.mark.slow
def test_a_worker_killed_mid_trial_fails_or_retries_the_trial_and_the_study_goes_on(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    import dask_helpers

    from seqbench.executors.dask_executor import DaskExecutor
    from seqbench.executors.worker import PluginSource
    from seqbench.tuning.pool import DaskPool
    from seqbench.tuning.study import TuneRequest, run_tune

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "budget").write_text("3")  # three deaths in all: one trial dies twice (fails), the rest train
    monkeypatch.setenv(dask_helpers.CRASH_DIR, str(crash))
    monkeypatch.setenv(dask_helpers.SAFE_PID, str(os.getpid()))
    plugins = PluginSource(extra="dask_helpers:toy_plugins")
    request = TuneRequest(["killer"], ["toy"], tmp_path / "t", tmp_path, trials=3, space={"lr": "0.1:1"})
    with DaskPool(DaskExecutor(plugins, workers=2, data_dir=tmp_path, cores=2)).open() as pool:
        summary = run_tune(load_plugins(extra=dask_helpers.toy_plugins()), request, pool, plugins)
    assert summary["studies"][0]["finished"] == 3
    records = trials_of(tmp_path / "t")
    failed = [r for r in records if r["state"] == "fail"]
    assert failed and all("the worker running it died" in r["reason"] for r in failed)
    assert any(r["state"] == "complete" for r in records)
    assert len((crash / "killer-0").read_text().split()) == 3


@pytest.mark.slow
def test_a_tuned_runs_results_follow_the_schema(registry, tmp_path):
    pytest.importorskip("jsonschema")
    from test_schema import validators

    tune(registry, tmp_path / "t", trials=2)
    assert (
        invoke(registry, "run", "--params-from", tmp_path / "t", "--out", tmp_path / "r", "--no-plots").exit_code == 0
    )
    results_validator, _ = validators()
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    results_validator.validate(results)
    broken = {**results, "config": {**results["config"], "tuned": {"from": 3, "models": {}}}}
    assert not results_validator.is_valid(broken)


@pytest.mark.slow
def test_a_time_budget_stops_each_study_once_its_trials_took_that_long(registry, tmp_path):
    result = invoke(
        registry, "tune", "-m", "slow", "-m", "typed", "-d", "toy", "--timeout", 1.5, "--out", tmp_path / "t"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "t" / "tune.json").read_text())
    for study in summary["studies"]:
        assert study["budget"] == {"trials": None, "timeout": 1.5}
        records = [r for r in trials_of(tmp_path / "t") if r["model"] == study["model"]]
        spent = [r["timing"]["trial_seconds"] for r in records]
        assert sum(spent[:-1]) < 1.5 <= sum(spent)  # the last trial started under budget and spent it
    slow, typed = (s["finished"] for s in summary["studies"])
    assert typed > slow  # the same time buys the fast model more trials
