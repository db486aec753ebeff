"""``seqbench report`` and ``seqbench compare`` from the command line."""

import csv
import io
import json

import pytest
from click.testing import CliRunner
from results_factory import make_pair, make_results, seeded, write_run

from seqbench.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result, code, message):
    assert result.exit_code == code
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0]


@pytest.fixture
def base_dir(tmp_path):
    pairs = seeded("rnn-cpu", "mnist", [0.95, 0.96, 0.97], [2.0, 2.0, 2.0])
    skipped = make_pair("lstm-gpu", "mnist", status="skipped", reason="no CUDA device")
    return write_run(tmp_path / "base", make_results(pairs + [skipped]))


def new_dir(tmp_path, accuracy=0.96, seconds=2.0, **kwargs):
    pairs = seeded("rnn-cpu", "mnist", [accuracy - 0.01, accuracy, accuracy + 0.01], [seconds] * 3, **kwargs)
    return write_run(tmp_path / "new", make_results(pairs))


def test_report_regenerates_tables_and_plots(tmp_path):
    run_dir = write_run(tmp_path / "run", make_results(seeded("gru-cpu", "cifar10", [0.6], [30.0])))
    result = invoke("report", run_dir)
    assert result.exit_code == 0, result.output
    assert "| gru-cpu" in result.stdout and "60.00" in result.stdout
    for name in ("summary.md", "summary.csv", "per_class.md", "per_class.csv", "timing.md", "timing.csv",
                 "plots/summary.png", "plots/gru-cpu__cifar10__seed0__confusion.png",
                 "plots/gru-cpu__cifar10__seed0__curves.png"):
        assert (run_dir / name).stat().st_size > 0, name


def test_report_on_two_directories_gives_one_merged_table(tmp_path, base_dir):
    result = invoke("report", base_dir, new_dir(tmp_path), "--no-plots", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["run"], r["model"], r["status"]) for r in rows] == [
        ("base", "rnn-cpu", "ok"), ("base", "lstm-gpu", "skipped"), ("new", "rnn-cpu", "ok")
    ]
    assert not (base_dir / "plots").exists() and (base_dir / "summary.md").exists()


def test_report_github_table_has_one_header(tmp_path, base_dir):
    result = invoke("report", base_dir, new_dir(tmp_path), "--no-plots")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| run ") and sum("test accuracy" in line for line in lines) == 1
    assert len(lines) == 2 + 3


def test_report_json(base_dir):
    result = invoke("report", base_dir, "--no-plots", "--format", "json")
    assert json.loads(result.stdout)[1]["note"] == "no CUDA device"


def test_report_user_errors(tmp_path):
    assert_user_error(invoke("report", tmp_path / "missing"), 2, "does not exist")
    assert_user_error(invoke("report", tmp_path), 1, "no such results file")
    (tmp_path / "results.json").write_text("{not json")
    assert_user_error(invoke("report", tmp_path), 1, "not a readable results file")
    (tmp_path / "results.json").write_text('{"schema_version": 1, "pairs": [{"model": "m"}]}')
    assert_user_error(invoke("report", tmp_path), 1, "lacks model, dataset or seed")


def test_compare_exits_1_on_an_accuracy_drop(tmp_path, base_dir):
    result = invoke("compare", base_dir, new_dir(tmp_path, accuracy=0.95), "--fail-on", "accuracy:-0.5")
    assert result.exit_code == 1
    assert "REGRESSION" in result.stderr and "accuracy -1.00 pp" in result.stderr
    assert "FAIL" in result.stdout


def test_compare_exits_1_on_a_slowdown(tmp_path, base_dir):
    new = new_dir(tmp_path, seconds=2.5)
    result = invoke("compare", base_dir, new, "--fail-on", "accuracy:-0.5", "--fail-on", "time:+10%")
    assert result.exit_code == 1
    assert "1.25× seconds per epoch" in result.stderr


def test_compare_exits_0_within_the_thresholds(tmp_path, base_dir):
    new = new_dir(tmp_path, accuracy=0.957, seconds=2.1)
    result = invoke("compare", base_dir, new, "--fail-on", "accuracy:-0.5", "--fail-on", "time:+10%")
    assert result.exit_code == 0, result.output
    assert "OK: no regression" in result.stderr
    assert "-0.30 ± 1.41" in result.stdout and "1.05" in result.stdout


def test_compare_warns_on_different_fingerprints(tmp_path, base_dir):
    new = new_dir(tmp_path, fingerprint="sha256:" + "f" * 64)
    result = invoke("compare", base_dir, new)
    assert result.exit_code == 0
    assert "warning: mnist: different data (fingerprint)" in result.stderr
    assert "warning: only in BASE: lstm-gpu on mnist" in result.stderr


def test_compare_json(tmp_path, base_dir):
    result = invoke("compare", base_dir, new_dir(tmp_path, accuracy=0.95), "--fail-on", "accuracy:-0.5",
                    "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["failed"] is True and doc["only_in_base"] == [["lstm-gpu", "mnist"]]


def test_compare_user_errors(tmp_path, base_dir):
    assert_user_error(invoke("compare", base_dir, base_dir, "--fail-on", "accuracy=-1"), 2, "METRIC:LIMIT")
    assert_user_error(invoke("compare", base_dir, tmp_path / "nope"), 2, "does not exist")
    (tmp_path / "empty").mkdir()
    assert_user_error(invoke("compare", base_dir, tmp_path / "empty"), 1, "no such results file")
