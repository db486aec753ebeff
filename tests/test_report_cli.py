"""``seqbench report`` and ``seqbench compare`` from the command line."""

import csv
import io
import json
import math

import pytest
from click.testing import CliRunner
from results_factory import balanced_labels, correct_mask, make_pair, make_results, predictions, seeded, write_run

from seqbench.cli import main
from seqbench.reporting.compare import EXIT_MISSING, EXIT_NOTHING_COMPARABLE, EXIT_REGRESSION


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
    return write_run(tmp_path / "base", make_results([*pairs, skipped]))


def new_dir(tmp_path, accuracy=0.96, seconds=2.0, **kwargs):
    pairs = seeded("rnn-cpu", "mnist", [accuracy - 0.01, accuracy, accuracy + 0.01], [seconds] * 3, **kwargs)
    return write_run(tmp_path / "new", make_results(pairs))


@pytest.mark.slow
def test_report_regenerates_tables_and_plots(tmp_path):
    run_dir = write_run(tmp_path / "run", make_results(seeded("gru-cpu", "cifar10", [0.6], [30.0])))
    result = invoke("report", run_dir)
    assert result.exit_code == 0, result.output
    assert "| gru-cpu" in result.stdout and "60.00" in result.stdout
    for name in ("summary.md", "summary.csv", "per_class.md", "per_class.csv", "timing.md", "timing.csv",
                 "plots/summary.png", "plots/gru-cpu+cifar10+seed0__confusion.png",
                 "plots/gru-cpu+cifar10+seed0__curves.png"):
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
    lines = result.stdout.split("\n\n")[1].splitlines()  # after what the partial run misses
    assert lines[0].startswith("| run ") and sum("test accuracy" in line for line in lines) == 1
    assert len(lines) == 2 + 3


def test_report_json(base_dir):
    result = invoke("report", base_dir, "--no-plots", "--format", "json")
    assert json.loads(result.stdout)["summary"][1]["note"] == "no CUDA device"


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
    assert "-0.30" in result.stdout and "1.05" in result.stdout and "[-∞, ∞]" in result.stdout


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


def test_report_shows_n_and_the_median(tmp_path):
    pairs = [make_pair(seed=0, seconds=2.0), make_pair(seed=1, seconds=20.0, median=2.2)]
    result = invoke("report", write_run(tmp_path / "run", make_results(pairs)), "--no-plots")
    assert result.exit_code == 0, result.output
    header, _, row = result.stdout.splitlines()[:3]
    cells = dict(zip((c.strip() for c in header.split("|")), (c.strip() for c in row.split("|")), strict=True))
    assert cells["n"] == "2" and cells["s/epoch (median)"] == "2.10 ± 0.14"


def test_report_reads_committed_old_records(tmp_path):
    pairs = [make_pair(seed=s, seconds=3.0, legacy_timing=True) for s in range(2)]
    result = invoke("report", write_run(tmp_path / "run", make_results(pairs)), "--no-plots")
    assert result.exit_code == 0, result.output
    assert "3.00 ± 0.00" in result.stdout


@pytest.mark.parametrize("new_pairs", [
    [],
    [make_pair(seed=s, status="skipped", reason="no CUDA device") for s in range(3)],
    seeded("rnn-cpu", "fashion-mnist", [0.9], [2.0]),
])
def test_compare_exits_3_when_nothing_is_comparable(tmp_path, base_dir, new_pairs):
    new = write_run(tmp_path / "new", make_results(new_pairs))
    result = invoke("compare", base_dir, new, "--fail-on", "accuracy:-0.5", "--allow-missing")
    assert result.exit_code == EXIT_NOTHING_COMPARABLE == 3
    assert "NOTHING COMPARABLE" in result.stderr and "OK" not in result.stderr


def test_compare_exits_4_when_base_seeds_are_missing_or_not_ok_in_new(tmp_path, base_dir):
    pairs = [make_pair(seed=0, accuracy=0.95), make_pair(seed=1, status="failed", reason="MemoryError")]
    new = write_run(tmp_path / "new", make_results(pairs))
    result = invoke("compare", base_dir, new)
    assert result.exit_code == EXIT_MISSING == 4
    assert "rnn-cpu on mnist seed 1: failed in NEW (MemoryError)" in result.stderr
    assert "rnn-cpu on mnist seed 2: missing in NEW" in result.stderr
    allowed = invoke("compare", base_dir, new, "--allow-missing")
    assert allowed.exit_code == 0 and "allowed by --allow-missing" in allowed.stderr


def test_compare_help_documents_the_exit_codes():
    text = invoke("compare", "--help").output
    for code, meaning in ((EXIT_NOTHING_COMPARABLE, "nothing comparable"), (EXIT_MISSING, "missing or not ok"),
                          (EXIT_REGRESSION, "significant regression"), (2, "usage error")):
        assert any(line.strip().startswith(f"{code}  ") and meaning in line for line in text.splitlines())
    assert "--allow-missing" in text and "--alpha" in text


def test_compare_rejects_an_alpha_outside_0_1(base_dir):
    assert_user_error(invoke("compare", base_dir, base_dir, "--alpha", "1.5"), 2, "--alpha")


def _run_with_predictions(path, accuracy, seed_offset, n=10_000):
    masks = {s: correct_mask(n, accuracy, s + seed_offset) for s in range(3)}
    pairs = [make_pair(seed=s, accuracy=masks[s].mean()) for s in range(3)]
    return write_run(path, make_results(pairs), {s: predictions(balanced_labels(n), masks[s]) for s in range(3)})


def test_compare_tests_stored_predictions(tmp_path):
    base = _run_with_predictions(tmp_path / "base", 0.985, 0)
    new = _run_with_predictions(tmp_path / "new", 0.975, 10)
    result = invoke("compare", base / "results.json", new, "--fail-on", "accuracy:-0.5", "--format", "json")
    assert result.exit_code == EXIT_REGRESSION
    row = json.loads(result.stdout)["pairs"][0]
    assert row["paired_diff_pp"] == pytest.approx(-1.0) and row["paired_p"] < 1e-6
    assert row["paired_ci_pp_low"] < -1.0 < row["paired_ci_pp_high"] < 0


def test_compare_passes_a_drop_that_is_not_significant(tmp_path):
    base = _run_with_predictions(tmp_path / "base", 0.95, 0, n=40)
    new = _run_with_predictions(tmp_path / "new", 0.925, 10, n=40)  # -2.5 pp on 40 samples a seed
    result = invoke("compare", base, new, "--fail-on", "accuracy:-0.5")
    assert result.exit_code == 0, result.output
    assert "but not significant" in result.stderr and "McNemar" in result.stderr


def _malformed_run(tmp_path, change):
    results = make_results(seeded("rnn-cpu", "mnist", [0.95, 0.96, 0.97], [2.0] * 3))
    change(results)
    path = tmp_path / "bad"
    path.mkdir()
    (path / "results.json").write_text(json.dumps(results))  # NaN as JSON's NaN, like Python writes it
    return path


@pytest.mark.parametrize("change, field", [
    (lambda r: r["environment"].update(machine="box"), "environment.machine must be an object, not str"),
    (lambda r: r.update(config=["seeds"]), "config must be an object, not list"),
    (lambda r: r["config"].update(protocol="fast"), "config.protocol must be an object, not str"),
    (lambda r: r["pairs"][1]["dataset_info"].update(n_test="many"),
     "pair #1: rnn-cpu x mnist seed 1: dataset_info.n_test must be an integer, not str"),
    (lambda r: r["pairs"][2]["metrics"].update(confusion={"labels": ["0", "1"], "matrix": 4}),
     "pair #2: rnn-cpu x mnist seed 2: metrics.confusion.matrix must be a list, not int"),
    (lambda r: r["pairs"][0]["metrics"].update(per_class={"classes": {"0": 1}}),
     "pair #0: rnn-cpu x mnist seed 0: metrics.per_class.classes must be a list, not dict"),
])
@pytest.mark.slow
def test_a_field_of_the_wrong_type_is_one_warning_in_report_and_compare(tmp_path, base_dir, change, field):
    """A hand-edited field of the wrong type is left out of what report and compare read, with one
    warning naming the file and the field; the report is made from the rest."""
    bad = _malformed_run(tmp_path, change)
    warning = f"seqbench: warning: {bad / 'results.json'}: {field}: ignored"
    for result in (invoke("report", bad), invoke("compare", base_dir, bad)):
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output and result.stderr.splitlines().count(warning) == 1
        assert [line for line in result.stderr.splitlines() if "seqbench: warning:" in line] == [warning]
    assert "rnn-cpu" in (bad / "summary.md").read_text() and (bad / "report.html").exists()


@pytest.mark.parametrize("change, message", [
    (lambda r: r["pairs"][0]["metrics"]["accuracy"].update(accuracy=math.nan), "accuracy is nan, not a finite number"),
    (lambda r: r["pairs"][1].pop("metrics"), "rnn-cpu on mnist seed 1: status ok but no metrics.accuracy.accuracy"),
    (lambda r: r["pairs"][2]["timing"].update(epoch_seconds_median="fast"), "timing.epoch_seconds_median is 'fast'"),
])
@pytest.mark.slow
def test_malformed_results_are_one_line_in_report_and_compare(tmp_path, base_dir, change, message):
    bad = _malformed_run(tmp_path, change)
    assert_user_error(invoke("compare", base_dir, bad), 1, f"NEW {bad}: ")
    assert_user_error(invoke("compare", bad, base_dir), 1, message)
    assert_user_error(invoke("report", bad), 1, message)
