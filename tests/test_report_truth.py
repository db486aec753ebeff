"""Reports that tell the whole truth: the leaderboard in every output, partial runs said at the
top, each pair's own protocol, the data copy's label and fingerprint, records.csv with the
quick flag, hyperparameters and fingerprint, and the comparison figures in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from results_factory import balanced_labels, make_pair, make_results, predictions, write_run

from seqbench.cli import main
from seqbench.datasets.catalog import CIFAR10_DEV_FINGERPRINT
from seqbench.records import COLUMNS, records_text
from seqbench.reporting.disclosure import missing_lines, protocol_lines
from seqbench.reporting.html_report import REPORT_FILE, render_report, write_report
from seqbench.reporting.table_files import write_tables

REPO = Path(__file__).resolve().parent.parent
N = 1000


def _three_models_two_datasets(tmp_path: Path) -> Path:
    """A run of three models on two datasets, seeds 0 and 1, with stored predictions."""
    rng = np.random.default_rng(5)
    labels = balanced_labels(N)
    pairs, preds = [], {}
    for dataset, base_acc in (("mnist", 0.97), ("fashion-mnist", 0.88)):
        for model, extra in (("rnn-cpu", 0.0), ("lstm-cpu", 0.5), ("gru-cpu", 0.45)):
            for seed in (0, 1):
                mask = rng.random(N) < base_acc
                mask |= rng.random(N) < extra * (1 - base_acc)
                pair = make_pair(model, dataset, seed, accuracy=float(mask.mean()), seconds=1.0 + len(model),
                                 params={"epochs": 30, "batch_size": 64, "patience": 8, "lr_schedule": "cosine",
                                         "lr": 1e-3, "hidden": 128})
                pair["metrics"]["accuracy"]["accuracy"] = float(mask.mean())
                pair["num_parameters"] = 1000 * len(model)
                pairs.append(pair)
                preds[(model, dataset, seed)] = predictions(labels, mask)
    run = tmp_path / "run"
    write_run(run, make_results(pairs))
    from seqbench.results import write_predictions

    for pair in pairs:
        write_predictions(run, pair, preds[pair["model"], pair["dataset"], pair["seed"]])
    return run


def test_report_cli_prints_the_leaderboard_and_writes_it_everywhere(tmp_path):
    run = _three_models_two_datasets(tmp_path)
    result = CliRunner().invoke(main, ["report", str(run), "--no-plots"])
    assert result.exit_code == 0, result.output
    for text in ("Leaderboard", "All pairs of models", "Across datasets", "Friedman test", "Holm",
                 "no pair of models can be found different"):
        assert text in result.stdout, text
    summary = (run / "summary.md").read_text()
    assert "## Leaderboard" in summary and "| best" in summary and "Wilcoxon signed-rank test over samples" in summary
    page = (run / REPORT_FILE).read_text()
    assert '<section id="leaderboard">' in page and '<tr class="best">' in page and 'id="across-datasets"' in page
    doc = json.loads(CliRunner().invoke(main, ["report", str(run), "--no-plots", "--format", "json"]).stdout)
    assert {row["mark"] for row in doc["leaderboard"]} >= {"best"}
    assert len(doc["pairs"]) == 6 and sorted(doc["across_datasets"]["models"]) == ["gru-cpu", "lstm-cpu", "rnn-cpu"]
    assert doc["summary"][0]["model"] == "rnn-cpu"


def test_latex_is_booktabs_with_the_best_bold_and_ties_marked(tmp_path):
    run = _three_models_two_datasets(tmp_path)
    text = CliRunner().invoke(main, ["report", str(run), "--no-plots", "--format", "latex"]).stdout
    assert text.count(r"\toprule") == 3 and r"\bottomrule" in text and r"\midrule" in text
    assert re.search(r"\\textbf\{(lstm|gru)-cpu\}", text)
    assert r"$\pm$" in text and "($n=2$)" in text
    assert r"fashion-mnist" in text and "%" not in text.replace(r"\%", "")  # percent signs escaped


def test_a_partial_run_says_what_is_missing_at_the_top_of_every_page(tmp_path):
    pairs = [make_pair("rnn-cpu", "mnist", 0, accuracy=0.97),
             make_pair("lstm-gpu", "mnist", 0, status="skipped", reason="no CUDA device"),
             make_pair("gru-cpu", "mnist", 0, status="failed", reason="MemoryError")]
    results = make_results(pairs, seeds=[0, 1])
    results["config"]["unavailable"] = [{"kind": "dataset", "name": "cifar10", "reason": "not found in /data"}]
    lines = missing_lines(results)
    assert lines[0] == "dataset cifar10: not run here (not found in /data)"
    assert "lstm-gpu on mnist, seed 0: skipped (no CUDA device)" in lines
    assert "gru-cpu on mnist, seed 0: failed (MemoryError)" in lines
    assert lines[-1].startswith("3 planned pair(s) never ran") and "rnn-cpu on mnist seed 1" in lines[-1]
    run = write_run(tmp_path / "run", results)
    write_tables(run, results)
    summary = (run / "summary.md").read_text()
    assert summary.startswith("**PARTIAL RUN: 4 item(s) missing")
    assert "- dataset cifar10: not run here (not found in /data)" in summary.split("# Summary")[0]
    page = render_report([("run", results)])
    assert page.index('class="banner partial"') < page.index("<h2>Summary</h2>")
    assert "not found in /data" in page and "PARTIAL RUN" in page.split("<body>")[1][:2000]
    console = CliRunner().invoke(main, ["report", str(run), "--no-plots"]).stdout
    assert console.startswith("PARTIAL RUN: 4 item(s) missing") and "  - gru-cpu on mnist, seed 0: failed" in console
    complete = make_results([make_pair("rnn-cpu", "mnist", 0)])
    assert missing_lines(complete) == [] and "PARTIAL" not in render_report([("run", complete)])


def test_the_protocol_shown_is_each_pairs_own():
    pairs = [make_pair("rnn-cpu", "cifar10", 0, params={"epochs": 30, "patience": 8, "lr_schedule": "cosine",
                                                        "batch_size": 128}),
             make_pair("gru-cpu", "cifar10", 0, params={"epochs": 15, "patience": 6, "lr_schedule": "cosine",
                                                        "batch_size": 128})]
    results = make_results(pairs)
    results["config"]["protocol"] = {"epochs": 20, "patience": 5, "batch_size": 128, "val_fraction": 0.1}
    assert protocol_lines(results) == [
        "rnn-cpu on cifar10: at most 30 epochs, patience 8, cosine schedule, batch 128",
        "gru-cpu on cifar10: at most 15 epochs, patience 6, cosine schedule, batch 128"]
    page = render_report([("run", results)])
    assert "at most 30 epochs, patience 8" in page and "at most 20 epochs" not in page and "patience 5" not in page


def test_the_dev_copy_is_labelled_by_its_fingerprint(tmp_path):
    results = make_results([make_pair("gru-cpu", "cifar10", 0, fingerprint=CIFAR10_DEV_FINGERPRINT),
                            make_pair("rnn-cpu", "cifar10", 0, fingerprint=CIFAR10_DEV_FINGERPRINT, accuracy=0.5)])
    page = write_report(tmp_path, [("run", results)], None).read_text()
    assert "CIFAR-10 dev split" in page and CIFAR10_DEV_FINGERPRINT in page
    official = make_results([make_pair("gru-cpu", "cifar10", 0, fingerprint="sha256:" + "e" * 64)])
    assert "dev split" not in render_report([("run", official)])


@pytest.mark.skipif(not (REPO / "results" / "cifar10-dev-gru-cpu" / "results.json").exists(),
                    reason="the committed CIFAR-10 runs are not in this checkout")
def test_a_report_of_the_committed_cifar10_runs_says_dev_split(tmp_path):
    runs = [REPO / "results" / name for name in ("cifar10-dev-gru-cpu", "cifar10-dev-lstm-cpu-mean")]
    result = CliRunner().invoke(main, ["report", *map(str, runs), "--out", str(tmp_path / "out"), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "cifar10 (CIFAR-10 dev split)" in result.stdout
    for name in ("report.html", "summary.md", "records.csv"):
        assert "CIFAR-10 dev split" in (tmp_path / "out" / name).read_text(), name


def test_records_csv_round_trips_with_quick_hyperparameters_and_fingerprint(tmp_path):
    quick = make_results([make_pair("rnn-cpu", "mnist", 0, params={"epochs": 2, "lr": 0.001, "hidden": 64,
                                                                    "readout": "last", "nesterov": True})])
    quick["config"]["quick"] = True
    full = make_results([make_pair("gru-cpu", "cifar10", 1, fingerprint=CIFAR10_DEV_FINGERPRINT,
                                   params={"epochs": 15, "lr": 0.002, "batch_size": 128})])
    rows = list(csv.DictReader(io.StringIO(records_text([("smoke", quick), ("real", full)]))))
    header = list(rows[0])
    assert tuple(header[:len(COLUMNS)]) == COLUMNS
    assert header[len(COLUMNS):] == ["param.batch_size", "param.epochs", "param.hidden", "param.lr",
                                     "param.nesterov", "param.readout"]
    smoke = [r for r in rows if r["run"] == "smoke"]
    real = [r for r in rows if r["run"] == "real"]
    assert {r["quick"] for r in smoke} == {"true"} and {r["quick"] for r in real} == {"false"}
    accuracy = next(r for r in real if r["metric"] == "accuracy")
    assert accuracy["fingerprint"] == CIFAR10_DEV_FINGERPRINT and accuracy["provenance"] == "CIFAR-10 dev split"
    assert (accuracy["param.epochs"], accuracy["param.lr"], accuracy["param.hidden"]) == ("15", "0.002", "")
    assert float(accuracy["value"]) == full["pairs"][0]["metrics"]["accuracy"]["accuracy"]
    first = smoke[0]
    assert (first["param.readout"], first["param.nesterov"], first["seed"]) == ("last", "true", "0")


def test_report_writes_records_csv_beside_its_pages(tmp_path):
    run = write_run(tmp_path / "run", make_results([make_pair("rnn-cpu", "mnist", 0)]))
    assert CliRunner().invoke(main, ["report", str(run), "--no-plots"]).exit_code == 0
    assert "param.epochs" in (run / "records.csv").read_text().splitlines()[0]
    other = write_run(tmp_path / "other", make_results([make_pair("gru-cpu", "mnist", 0)]))
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["report", str(run), str(other), "--out", str(out), "--no-plots"]).exit_code == 0
    assert {r["run"] for r in csv.DictReader((out / "records.csv").open())} == {"run", "other"}


def test_report_refuses_runs_of_different_data_in_one_line(tmp_path):
    one = write_run(tmp_path / "jan", make_results([make_pair("a", "mnist", 0, fingerprint="sha256:" + "1" * 64)]))
    two = write_run(tmp_path / "feb", make_results([make_pair("b", "mnist", 0, fingerprint="sha256:" + "2" * 64)]))
    result = CliRunner().invoke(main, ["report", str(one), str(two), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert "\n" not in message and "jan" in message and "feb" in message and "not the same data" in message


@pytest.mark.slow
def test_the_leaderboard_heatmap_and_cd_diagram_render_in_headless_chromium(tmp_path):
    from test_html_report import CHROMIUM, PROBE, _chromium

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    run = _three_models_two_datasets(tmp_path)
    page = write_report(run, [("run", json.loads((run / "results.json").read_text()))], "png", [run]).read_text()
    for anchor in ('id="leaderboard"', 'id="fig-pairs_heatmap__mnist"', 'id="fig-pairs_heatmap__fashion-mnist"',
                   'id="fig-critical_difference"', 'id="fig-accuracy_vs_cost"'):
        assert anchor in page, anchor
    probe = PROBE.replace(
        "const images = [...document.images];",
        "const images = [...document.querySelectorAll('#leaderboard img, #fig-accuracy_vs_cost img')];"
        "const rows = document.querySelectorAll('#leaderboard tbody tr').length;",
    )
    probe = probe.replace("errors: window.__errors,", "errors: window.__errors, rows,")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + probe, 1))
    out = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="seqbench-probe">(.*?)</pre>', out.stdout)
    assert found, out.stderr[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    # 2 heatmaps and the CD diagram in the leaderboard, and accuracy against cost; rows: 6 leaderboard
    # lines, 6 pairs and 3 mean ranks
    assert (result["images"], result["broken"], result["errors"], result["rows"]) == (4, [], [], 6 + 6 + 3)
    plain = _chromium("--virtual-time-budget=5000", "--dump-dom", (run / REPORT_FILE).as_uri())
    assert not [line for line in plain.stderr.splitlines() if ":CONSOLE" in line]
