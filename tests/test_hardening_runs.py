"""Issue 26, part B: hostile plugins, datasets and results that used to give silent wrong
results, tracebacks or hangs (each test failed on the code before its fix)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import make_toy_dataset, toy_plugin

from seqbench import DatasetSpec, MetricSpec, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins


def invoke(registry, *args):
    return CliRunner().invoke(main, ["run", *args], obj={"registry": registry})


def registry_with(monkeypatch, *extra):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=[("toy", toy_plugin()), *extra])


def metric_plugin(name, compute):
    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register(MetricSpec(name, compute))

    return Plugin()


def dataset_plugin(datasets):
    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            for name, ds in datasets.items():
                register(DatasetSpec(name, lambda ctx, _ds=ds: _ds))

    return Plugin()


def pairs_of(out):
    return json.loads((out / "results.json").read_text())["pairs"]


# --- item 8: a dataset's splits are checked when it loads -------------------------------------


@pytest.mark.parametrize("spoil, expected", [
    (lambda ds: replace(ds, test_x=ds.test_x[:0], test_y=ds.test_y[:0]), "test split is empty"),
    (lambda ds: replace(ds, train_x=np.where(np.arange(6)[None, :, None] == 2, np.nan, ds.train_x).astype(np.float32)),
     "train_x has 1200 non-finite value(s)"),
    (lambda ds: replace(ds, test_x=np.full_like(ds.test_x, np.inf)), "test_x has 2160 non-finite value(s)"),
])
def test_a_dataset_with_an_empty_or_non_finite_split_fails_naming_its_plugin(monkeypatch, tmp_path, spoil, expected):
    registry = registry_with(monkeypatch, ("baddata", dataset_plugin({"bad": spoil(make_toy_dataset("bad"))})))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "logreg", "-d", "bad", "--out", str(out), "--no-plots")
    assert result.exit_code == 1, result.output
    (pair,) = pairs_of(out)
    assert pair["status"] == "failed"
    assert "dataset 'bad' from plugin 'baddata'" in pair["reason"] and expected in pair["reason"], pair["reason"]
    assert "model plugin" not in pair["reason"]


# --- item 15: metric values of NumPy types ---------------------------------------------------


def test_numpy_metric_values_are_converted(monkeypatch, tmp_path):
    def compute(y, pred, proba, names):
        return {"f32": np.float32(0.5), "i64": np.int64(3), "flag": np.bool_(True), "zero_d": np.array(0.25),
                "small": np.array([1, 2]), "nested": {"v": np.float64(0.75)}}

    registry = registry_with(monkeypatch, ("npmetric", metric_plugin("npm", compute)))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "logreg", "-d", "toy", "--out", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    (pair,) = pairs_of(out)
    assert pair["metrics"]["npm"] == {"f32": 0.5, "i64": 3, "flag": True, "zero_d": 0.25, "small": [1, 2],
                                      "nested": {"v": 0.75}}
    assert "npm" not in (pair.get("metric_errors") or {})
    assert "warning" not in result.stderr


@pytest.mark.parametrize("returned, expected", [
    (0.5, "compute must return a mapping of name to value, got float"),
    (np.float32(0.5), "compute must return a mapping of name to value, got float32"),
    ({"good": 1.0, "bad": np.float32("nan")}, "bad is NaN"),
    ({"good": 1.0, "obj": object()}, "obj is object"),
])
def test_a_broken_metric_is_named_with_its_key(monkeypatch, tmp_path, returned, expected):
    registry = registry_with(monkeypatch, ("badmetric", metric_plugin("bm", lambda *a: returned)))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "logreg", "-d", "toy", "--out", str(out), "--no-plots")
    (pair,) = pairs_of(out)
    assert pair["status"] == "ok" and "bm" not in pair["metrics"]
    assert expected in pair["metric_errors"]["bm"], pair["metric_errors"]
    assert "metric 'bm' from plugin 'badmetric' failed" in result.stderr and expected in result.stderr


def test_a_metric_of_strings_only_is_kept_with_a_warning(monkeypatch, tmp_path):
    registry = registry_with(monkeypatch, ("strmetric", metric_plugin("words", lambda *a: {"verdict": "fine"})))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "logreg", "-d", "toy", "--out", str(out), "--no-plots")
    (pair,) = pairs_of(out)
    assert pair["metrics"]["words"] == {"verdict": "fine"}
    assert "metric 'words' from plugin 'strmetric' returned no number, only text" in result.stderr, result.stderr


# --- item 16: plugin names that clash with the built-ins' ------------------------------------


def _use_entry_points(monkeypatch, *eps):
    from seqbench import plugins as plugins_mod

    monkeypatch.setattr(plugins_mod, "_entry_points", lambda: list(eps))
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS", raising=False)


def _models_module(*names):
    import types

    from helpers import MeanLogReg

    from seqbench import ModelSpec

    def register_models(register):
        for n in names:
            register(ModelSpec(n, lambda info, p: MeanLogReg(info.n_features, info.num_classes)))

    module = types.ModuleType("clash")
    module.register_models = hookimpl(register_models)
    return module


@pytest.mark.parametrize("name", ["models", "datasets", "metrics"])
def test_an_entry_point_named_like_a_builtin_is_refused_in_one_line(monkeypatch, capsys, name):
    from helpers import fake_entry_point

    _use_entry_points(monkeypatch, fake_entry_point(name, "seqbench-clash", "1.0", lambda: _models_module("mine")))
    registry = load_plugins()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Plugin name already registered" not in err, err
    assert (f"plugin {name!r} (distribution 'seqbench-clash') has the name of the built-in plugin {name!r}; "
            "rename its entry point") in err
    builtin, clash = [p for p in registry.plugins if p.name == name or p.distribution == "seqbench-clash"]
    assert builtin.builtin and builtin.hooks and not builtin.error
    assert clash.distribution == "seqbench-clash" and clash.error and clash.hooks == [] and clash.registered == []
    assert clash.name != builtin.name  # names are unambiguous
    result = CliRunner().invoke(main, ["plugins", "--json", "--all"])
    shown = {p["distribution"]: p for p in json.loads(result.stdout) if not p["builtin"]}
    assert shown["seqbench-clash"]["hooks"] == [] and shown["seqbench-clash"]["error"]


def test_strict_plugin_errors_do_not_say_ignored(monkeypatch):
    from helpers import fake_entry_point

    from seqbench.plugins import PluginError

    _use_entry_points(monkeypatch,
                      fake_entry_point("first", "seqbench-first", "1.0", lambda: _models_module("dup")),
                      fake_entry_point("second", "seqbench-second", "1.0", lambda: _models_module("dup")))
    with pytest.raises(PluginError) as err:
        load_plugins(strict=True)
    assert "already registered by plugin 'first'" in str(err.value) and not str(err.value).endswith("ignored")
    _use_entry_points(monkeypatch, fake_entry_point("models", "seqbench-clash", "1.0", lambda: _models_module("x")))
    with pytest.raises(PluginError) as err:
        load_plugins(strict=True)
    assert "rename its entry point" in str(err.value) and "ignored" not in str(err.value)


# --- item 9: compare ---------------------------------------------------------------------------


def compare(tmp_path, base_pairs, new_pairs, *args):
    from results_factory import make_results, write_run

    dirs = []
    for label, pairs in (("base", base_pairs), ("new", new_pairs)):
        (tmp_path / label).mkdir(exist_ok=True)
        dirs.append(str(write_run(tmp_path / label, make_results(pairs))))
    return CliRunner().invoke(main, ["compare", *dirs, *args])


def test_allow_missing_compares_only_the_seeds_both_runs_have(tmp_path):
    from results_factory import make_pair, seeded

    base = seeded("m", "mnist", [0.90, 0.80], [2.0, 2.0])
    new = [make_pair("m", "mnist", 0, accuracy=0.90, seconds=2.0)]  # seed 0 bit-identical, seed 1 not run
    result = compare(tmp_path, base, new, "--allow-missing", "--fail-on", "accuracy:-1", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["pairs"][0]
    assert row["base_accuracy_pct_mean"] == pytest.approx(90.0) and row["base_n"] == 1
    assert row["accuracy_diff_pp"] == 0
    warning = "m on mnist: compared on the seeds both runs have (0); BASE's seed 1 left out"
    assert warning in json.loads(result.stdout)["warnings"]
    assert warning in compare(tmp_path, base, new, "--allow-missing").stderr


def test_the_seeds_left_out_are_named_on_both_sides(tmp_path):
    from results_factory import make_pair, seeded

    base = seeded("m", "mnist", [0.90, 0.80, 0.85, 0.86], [2.0] * 4)
    new = [make_pair("m", "mnist", seed, accuracy=0.9, seconds=2.0) for seed in (0, 1, 4)]
    result = compare(tmp_path, base, new, "--allow-missing", "--format", "json")
    assert json.loads(result.stdout)["warnings"][-1] == (
        "m on mnist: compared on the seeds both runs have (0, 1); BASE's seeds 2, 3 left out, NEW's seed 4 left out"
    )


@pytest.mark.parametrize("side", ["base", "new"])
def test_a_time_gate_names_the_run_without_times(tmp_path, side):
    from results_factory import seeded

    runs = {"base": seeded("m", "mnist", [0.9] * 3, [2.0] * 3), "new": seeded("m", "mnist", [0.9] * 3, [2.0] * 3)}
    for pair in runs[side]:
        pair["timing"] = {}
    result = compare(tmp_path, runs["base"], runs["new"], "--fail-on", "time:+10%")
    assert f"m on mnist: time cannot be gated: {side.upper()} has no seconds per epoch" in result.stderr, result.stderr


@pytest.mark.parametrize("field", ["packages", "plugins"])
def test_an_environment_without_packages_or_plugins_compares(tmp_path, field):
    """Both are optional in the schema (a hand-made or foreign run may lack them)."""
    from results_factory import make_results, seeded, write_run

    dirs = []
    for label, seconds in (("base", 2.0), ("new", 2.0)):
        results = make_results(seeded("m", "mnist", [0.9] * 3, [seconds] * 3))
        if label == "new":
            del results["environment"][field]
        (tmp_path / label).mkdir()
        dirs.append(str(write_run(tmp_path / label, results)))
    result = CliRunner().invoke(main, ["compare", *dirs])
    assert result.exit_code == 0, result.output
    assert "different software" in result.stderr


def test_a_time_gate_with_base_at_zero_seconds_is_not_ok(tmp_path):
    from results_factory import seeded

    base = seeded("m", "mnist", [0.9, 0.9, 0.9], [0.0, 0.0, 0.0])
    new = seeded("m", "mnist", [0.9, 0.9, 0.9], [5.0, 5.0, 5.0])
    result = compare(tmp_path, base, new, "--fail-on", "time:+10%")
    assert result.exit_code == 1, result.output
    assert "OK: no regression" not in result.stderr
    assert "m on mnist: time cannot be gated: BASE has 0 seconds per epoch" in result.stderr


@pytest.mark.parametrize("spoil, expected", [
    (lambda p: p["metrics"]["accuracy"].update(accuracy=1.5),
     "metrics.accuracy.accuracy is 1.5, not a fraction in [0, 1]"),
    (lambda p: p["timing"].update(epoch_seconds_median=-2.0), "timing.epoch_seconds_median is negative (-2.0)"),
    (lambda p: p["timing"].update(train_seconds=-1), "timing.train_seconds is negative (-1)"),
])
def test_compare_refuses_impossible_records(tmp_path, spoil, expected):
    from results_factory import seeded

    base = seeded("m", "mnist", [0.9, 0.9], [2.0, 2.0])
    spoil(base[1])
    result = compare(tmp_path, base, seeded("m", "mnist", [0.9, 0.9], [2.0, 2.0]))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "BASE" in result.stderr and "m on mnist seed 1" in result.stderr and expected in result.stderr, result.stderr


def test_compare_refuses_duplicate_seeds(tmp_path):
    from results_factory import make_pair, seeded

    new = [*seeded("m", "mnist", [0.9, 0.9], [2.0, 2.0]), make_pair("m", "mnist", 1, accuracy=0.5)]
    result = compare(tmp_path, seeded("m", "mnist", [0.9, 0.9], [2.0, 2.0]), new)
    assert result.exit_code == 1
    assert "NEW" in result.stderr and "m on mnist seed 1 is there twice" in result.stderr, result.stderr


# --- item 10: overflow -------------------------------------------------------------------------


@pytest.mark.slow
def test_huge_metric_values_and_parameter_counts_never_crash_a_run(monkeypatch, tmp_path):
    from helpers import MeanLogReg

    class Huge(MeanLogReg):
        def num_parameters(self):
            return 10**400

    huge = toy_plugin(
        datasets={}, models={"huge": lambda info, p: Huge(info.n_features, info.num_classes, 0.5, p["seed"])}
    )
    registry = registry_with(monkeypatch, ("hugemodel", huge),
                             ("bigmetric", metric_plugin("big", lambda *a: {"big": 1e308, "small": -1e308})))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "huge", "-d", "toy", "--seeds", "0,1", "--out", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    assert "OverflowError" not in result.output and "could not write" not in result.stderr, result.stderr
    for name in ("summary.md", "summary.csv", "report.html", "records.csv", "timing.md"):
        assert (out / name).stat().st_size > 0
    assert "1e+308" in (out / "summary.md").read_text()
    report = CliRunner().invoke(main, ["report", str(out)])
    assert report.exit_code == 0 and "OverflowError" not in report.output, report.output


@pytest.mark.slow
def test_a_huge_time_beside_ordinary_ones_leaves_its_figures_undrawn_not_the_report(tmp_path):
    """Axis limits of a log-scale time axis spanning 1 s to 1e308 s overflow while the figure is
    laid out (not only when it is saved): the page says which figures were not drawn."""
    from results_factory import make_results, seeded, write_run

    huge = seeded("m", "mnist", [0.9, 0.9], [1e308, 1e308])
    for p in huge:
        p["timing"].update(train_seconds=1e308, time_to_best_seconds=1e308)
    write_run(tmp_path, make_results(huge + seeded("k", "mnist", [0.8, 0.8], [1.0, 1.0])))
    report = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert report.exit_code == 0 and "OverflowError" not in report.output, report.output
    page = (tmp_path / "report.html").read_text()
    assert "not drawn (OverflowError" in page
    assert (tmp_path / "plots" / "confusion__k+mnist.png").exists()  # the drawable figures still are


def test_huge_times_never_crash_report_or_compare(tmp_path):
    from results_factory import make_results, seeded, write_run

    pairs = seeded("m", "mnist", [0.9, 0.9], [1e308, 1e308])
    for p in pairs:
        p["timing"].update(train_seconds=1e308, time_to_best_seconds=1e308)
        p["num_parameters"] = 10**400
    for label in ("base", "new"):
        (tmp_path / label).mkdir()
        write_run(tmp_path / label, make_results(pairs))
    report = CliRunner().invoke(main, ["report", str(tmp_path / "base")])
    assert report.exit_code == 0 and "OverflowError" not in report.output, report.output
    assert (tmp_path / "base" / "summary.md").exists() and (tmp_path / "base" / "report.html").exists()
    result = CliRunner().invoke(
        main, ["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--fail-on", "time:+10%"]
    )
    assert result.exit_code in (0, 1) and "OverflowError" not in result.output, result.output
    assert "Traceback" not in result.output


# --- item 13: every selected dataset is located before the first pair trains ------------------


def test_missing_datasets_are_all_reported_before_the_first_pair(monkeypatch, tmp_path):
    from seqbench import DatasetUnavailable

    loaded = []

    def gone(name):
        def check(ctx):
            raise DatasetUnavailable(f"dataset {name!r} is not available: files missing")

        def load(ctx):
            loaded.append(name)
            check(ctx)

        return DatasetSpec(name, load, check=check)

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(gone("gone1"))
            register(gone("gone2"))

    registry = registry_with(monkeypatch, ("gone", Plugin()))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "logreg", "--out", str(out), "--no-plots")  # every dataset, none named
    assert result.exit_code == 0, result.output
    before = result.stderr.split("[1/")[0]
    assert "1 pair(s) to run" in before, result.stderr
    assert "dataset 'gone1' is not available" in before and "dataset 'gone2' is not available" in before
    assert "[1/1] logreg x toy" in result.stderr and "[2/" not in result.stderr
    assert loaded == []  # located cheaply, never loaded
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["datasets"] == ["toy"] and {u["name"] for u in config["unavailable"]} == {"gone1", "gone2"}


def test_named_missing_datasets_are_announced_before_the_first_pair(monkeypatch, tmp_path):
    from seqbench import DatasetUnavailable

    def check(ctx):
        raise DatasetUnavailable("files missing")

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("zzz", lambda ctx: check(ctx), check=check))

    registry = registry_with(monkeypatch, ("gone", Plugin()))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "logreg", "-d", "toy", "-d", "zzz", "--out", str(out), "--no-plots")
    before = result.stderr.split("[1/")[0]
    assert "dataset zzz cannot load here: files missing; its 1 pair(s) will be recorded as skipped" in before, (
        result.stderr
    )
    assert {p["dataset"]: p["status"] for p in pairs_of(out)} == {"toy": "ok", "zzz": "skipped"}


def test_builtin_datasets_are_located_without_reading(tmp_path):
    from seqbench import DatasetUnavailable
    from seqbench.types import LoadContext

    registry = load_plugins()
    ctx = LoadContext(tmp_path, download=False, datasets=registry.datasets)
    for name in ("mnist", "cifar10", "smnist", "scifar10"):
        with pytest.raises(DatasetUnavailable, match="missing from"):
            registry.datasets[name].check(ctx)
    registry.datasets["mnist"].check(LoadContext(tmp_path, download=True, datasets=registry.datasets))  # fetchable


# --- item 7: a resume under other code says so, and the reports show every commit --------------


def _finished_run(registry, tmp_path):
    """A run of seeds 0 and 1 whose seed 1 is to be run again, seed 0 edited by ``spoil``."""
    out = tmp_path / "run"
    result = invoke(registry, "-m", "logreg", "-d", "toy", "--seeds", "0,1", "--out", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    (out / "pairs" / "logreg+toy+seed1.json").unlink()
    return out, out / "pairs" / "logreg+toy+seed0.json"


def test_a_resume_under_another_commit_warns_and_the_reports_show_both(toy_registry, tmp_path):
    out, seed0 = _finished_run(toy_registry, tmp_path)
    record = json.loads(seed0.read_text())
    record["environment"]["git"] = {"commit": "f" * 40, "dirty": True, "diff_sha256": "ab" * 32}
    record["environment"]["git_commit"] = "f" * 40 + "-dirty"
    seed0.write_text(json.dumps(record))
    result = CliRunner().invoke(main, ["run", "--resume", str(out), "--no-plots"], obj={"registry": toy_registry})
    assert result.exit_code == 0, result.output
    warning = result.stderr.split("[2/2]")[0]
    assert "the finished pairs ran under other code: commit ffffffffffff (dirty, diff abababababab)" in warning, \
        result.stderr
    assert "their seeds will be averaged with this code's" in warning
    summary, page = (out / "summary.md").read_text(), (out / "report.html").read_text()
    for text in (summary, page):
        assert "(dirty, diff abababababab; 1 pair)" in text and "ffffffffffff" in text, text[:800]
    current = json.loads((out / "pairs" / "logreg+toy+seed1.json").read_text())["environment"]["git_commit"]
    if current:
        assert current[:12] in summary and current[:12] in page


def test_a_resume_with_changed_plugin_defaults_warns(toy_registry, tmp_path):
    out, seed0 = _finished_run(toy_registry, tmp_path)
    record = json.loads(seed0.read_text())
    record["params"]["lr"] = 0.1
    record["environment"]["plugins"] = {"toy": "0.9"}
    seed0.write_text(json.dumps(record))
    result = CliRunner().invoke(main, ["run", "--resume", str(out), "--no-plots"], obj={"registry": toy_registry})
    assert result.exit_code == 0, result.output
    warning = result.stderr.split("[2/2]")[0]
    assert "logreg on toy: the finished pairs ran with other hyperparameters (lr 0.1 → 0.5)" in warning, result.stderr
    assert "plugin versions differ from the finished pairs': toy 0.9 → None" in warning, result.stderr


# --- item 12: a pair that never returns, a plugin that raises KeyboardInterrupt ---------------


@pytest.fixture
def dask_registry(monkeypatch):
    import dask_helpers

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=dask_helpers.toy_plugins())


def test_a_pair_past_the_pair_timeout_fails_and_the_run_goes_on(dask_registry, tmp_path):
    import time

    out = tmp_path / "run"
    started = time.monotonic()
    result = invoke(dask_registry, "-m", "hangs", "-m", "logreg", "-d", "toy", "--pair-timeout", "1",
                    "--out", str(out), "--no-plots")
    assert time.monotonic() - started < 60
    assert result.exit_code == 1, result.output
    status = {p["model"]: p for p in pairs_of(out)}
    assert status["logreg"]["status"] == "ok"
    assert status["hangs"]["status"] == "failed"
    assert status["hangs"]["reason"] == "model plugin 'toy': the pair ran past --pair-timeout 1 s: stopped", status


def test_pair_timeout_is_a_config_file_key(dask_registry, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('model = ["hangs"]\ndataset = ["toy"]\npair-timeout = 1\n')
    out = tmp_path / "run"
    result = invoke(dask_registry, "--config", str(config), "--out", str(out), "--no-plots")
    assert result.exit_code == 1, result.output
    (pair,) = pairs_of(out)
    assert "--pair-timeout 1 s" in pair["reason"]


def test_a_plugin_raising_keyboard_interrupt_fails_its_pair_only(dask_registry, tmp_path):
    out = tmp_path / "run"
    result = invoke(dask_registry, "-m", "interrupts", "-m", "logreg", "-d", "toy", "--out", str(out), "--no-plots")
    assert result.exit_code == 1, result.output  # not 130: the user did not press Ctrl-C
    assert "interrupted" not in result.stderr
    status = {p["model"]: p for p in pairs_of(out)}
    assert status["logreg"]["status"] == "ok"
    assert status["interrupts"]["status"] == "failed"
    assert status["interrupts"]["reason"].startswith("model plugin 'toy': KeyboardInterrupt raised by the plugin")


def test_a_user_interrupt_still_stops_the_run(dask_registry, tmp_path):
    import os
    import signal
    import threading

    out = tmp_path / "run"
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    result = invoke(dask_registry, "-m", "hangs", "-m", "logreg", "-d", "toy", "--out", str(out), "--no-plots")
    timer.join()
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.stderr
    assert not list(out.glob("pairs/*.json"))  # the hung pair was stopped by the Ctrl-C, not recorded


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # and no "Exception ignored" report
def test_a_ctrl_c_that_python_ignored_inside_a_del_still_stops_the_run(dask_registry, tmp_path, monkeypatch):
    """The handler's exception is lost where Python ignores exceptions (a ``__del__``, a weakref
    callback: what tests/test_robustness.py's random signals hit now and then); the stop it asked
    for is raised again at the pair's next batch. Before: the run trained on to exit 0."""
    import os

    monkeypatch.setenv("SEQBENCH_TEST_SAFE_PID", str(os.getpid()))
    out = tmp_path / "run"
    result = invoke(dask_registry, "-m", "ctrl-c-in-del", "-m", "logreg", "-d", "toy", "--out", str(out), "--no-plots")
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.stderr
    assert not list(out.glob("pairs/*.json"))


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_lost_where_no_pair_trains_is_raised_where_the_run_ends(monkeypatch):
    """No batch follows (a resume with nothing left, the report): the block that asked for the
    stop raises it as it ends; the signal handler and Python's unraisable hook are put back."""
    import signal
    import sys

    import dask_helpers

    from seqbench import timeouts

    hook = sys.unraisablehook
    steps = []
    with pytest.raises(timeouts.UserInterrupt), timeouts.user_interrupts():
        dask_helpers._Collected()  # Ctrl-C inside a __del__: Python ignores the handler's exception
        steps.append("went on")
    assert steps == ["went on"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and sys.unraisablehook is hook
    with timeouts.user_interrupts():  # forgotten once raised: the next run is not stopped by it
        steps.append("next run")
    assert steps == ["went on", "next run"]


@pytest.mark.slow
def test_on_dask_a_hung_pair_is_cancelled_and_a_keyboard_interrupt_is_the_plugins(dask_registry, tmp_path):
    pytest.importorskip("distributed")
    from seqbench.executors.dask_executor import DaskExecutor
    from seqbench.executors.worker import PluginSource
    from seqbench.runner import RunRequest, run_benchmark

    executor = DaskExecutor(PluginSource(extra="dask_helpers:toy_plugins"), workers=1, data_dir=tmp_path, cores=1)
    request = RunRequest(["hangs", "interrupts", "logreg"], ["toy"], [0], tmp_path / "run", tmp_path, plots=False,
                         pair_timeout=3.0)
    results = run_benchmark(dask_registry, request, executor=executor)
    status = {p["model"]: p for p in results["pairs"]}
    assert status["logreg"]["status"] == "ok"
    assert "ran past --pair-timeout 3 s" in status["hangs"]["reason"]
    assert "KeyboardInterrupt raised by the plugin" in status["interrupts"]["reason"]
    assert "died" not in status["interrupts"]["reason"]


# --- item 17: what a model is told; PluginTester; seqbench show ---------------------------------


def test_a_model_is_told_the_training_plan_and_each_epochs_validation_accuracy(monkeypatch, tmp_path):
    from helpers import MeanLogReg

    seen = {}

    class Told(MeanLogReg):
        def fit_start(self, context):
            seen["context"] = context

        def epoch_validated(self, epoch, val_accuracy):
            seen.setdefault("val", []).append((epoch, val_accuracy))

    plugin = toy_plugin(
        datasets={}, models={"told": lambda info, p: Told(info.n_features, info.num_classes, 0.5, p["seed"])}
    )
    registry = registry_with(monkeypatch, ("told", plugin))
    out = tmp_path / "run"
    result = invoke(registry, "-m", "told", "-d", "toy", "--quick", "--out", str(out), "--no-plots")
    assert result.exit_code == 0, result.output
    (pair,) = pairs_of(out)
    context = seen["context"]
    assert context.n_train == pair["dataset_info"]["n_train"] == 270 and context.n_val == 30
    assert context.steps_per_epoch == 9 and context.batch_size == 32  # ceil(270 / 32)
    assert context.epochs == 2 and context.quick is True
    assert seen["val"] == [(h["epoch"], h["val_accuracy"]) for h in pair["history"]]


def test_a_model_written_for_the_old_api_still_runs(toy_registry, tmp_path):
    result = invoke(toy_registry, "-m", "logreg", "-d", "toy", "--out", str(tmp_path / "run"), "--no-plots")
    assert result.exit_code == 0, result.output  # MeanLogReg has no fit_start nor epoch_validated


def test_the_plugin_guide_documents_the_threads_convention():
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    section = guide.split("### Threads", 1)[1].split("\n#", 1)[0]
    assert "`threads`" in section and "--workers" in section and "fit_start" in guide and "epoch_validated" in guide


@pytest.mark.slow
def test_plugin_tester_runs_on_real_data_from_a_data_directory(tmp_path):
    from helpers import MeanLogReg

    from seqbench.testing import PluginTester

    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    import gzip
    import struct

    for prefix, n in (("train", 60_000), ("t10k", 10_000)):  # MNIST's sizes, the reader checks them
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 5, :] = rng.integers(0, 256, (n, 1), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        with gzip.open(data / "mnist" / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with gzip.open(data / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())
    tester = PluginTester(("mine", toy_plugin(datasets={}, models={
        "mine": lambda info, p: MeanLogReg(info.n_features, info.num_classes, 0.5, p["seed"])})),
        data_dir=data, tmp_path=tmp_path / "t")
    assert tester.load("mnist").train_x.shape[1:] == (28, 28)


def test_plugin_tester_name_clash_shows_the_fix():
    import types

    from seqbench.plugins import PluginError
    from seqbench.testing import PluginTester

    module = types.ModuleType("models")  # named like the built-in plugin
    with pytest.raises(PluginError) as err:
        PluginTester(module)
    assert '("another-name", plugin)' in str(err.value), str(err.value)


def test_show_prints_a_failed_pairs_traceback_and_record(monkeypatch, tmp_path):
    import dask_helpers

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=dask_helpers.toy_plugins())
    out = tmp_path / "run"
    result = invoke(registry, "-m", "interrupts", "-d", "toy", "--out", str(out), "--no-plots")
    assert f"seqbench show {out} interrupts+toy+seed0" in result.stderr, result.stderr
    shown = CliRunner().invoke(main, ["show", str(out), "interrupts+toy+seed0"])
    assert shown.exit_code == 0, shown.output
    assert "Traceback (most recent call last)" in shown.stdout and "train_batch" in shown.stdout
    assert '"status": "failed"' in shown.stdout
    missing = CliRunner().invoke(main, ["show", str(out), "nope+toy+seed0"])
    assert (
        missing.exit_code == 1
        and "no pair 'nope+toy+seed0'" in missing.output
        and "interrupts+toy+seed0" in missing.output
    )
