"""Tables: aggregation over seeds, non-ok pairs with their reasons, formats, files."""

import csv
import io
import json
import math
import re

import pytest
from results_factory import CIFAR10_CLASSES, make_pair, make_results, seeded, write_run

from seqbench.reporting.query import Stat, stat
from seqbench.reporting.table_files import write_tables
from seqbench.reporting.tables import (
    FORMATS,
    merged_summary_table,
    per_class_table,
    render,
    summary_table,
    summary_text,
    timing_table,
)
from seqbench.results import ResultsError, load_results


@pytest.fixture
def results():
    return make_results(
        [
            *seeded("rnn-cpu", "mnist", [0.95, 0.96, 0.97], [2.0, 2.2, 2.4]),
            make_pair("lstm-gpu", "mnist", status="skipped", reason="no CUDA device"),
            make_pair("gru-cpu", "cifar10", 0, accuracy=0.6, seconds=30.0),
            make_pair("gru-cpu", "cifar10", 1, status="diverged", reason="loss is nan"),
            make_pair("gru-cpu", "cifar10", 2, status="failed", reason="MemoryError"),
        ]
    )


def _rows(table):
    return {(row["model"], row["dataset"]): row for row in table.rows}


def test_stat_is_mean_and_sample_std():
    assert stat([1.0, 2.0, 3.0]) == Stat(2.0, 1.0, 3)
    assert stat([0.5, None], scale=100) == Stat(50.0, None, 1)
    assert stat([None]) is None


def test_summary_aggregates_seeds(results):
    row = _rows(summary_table(results))["rnn-cpu", "mnist"]
    assert row["seeds"] == "0,1,2" and row["status"] == "ok" and row["note"] is None
    assert row["accuracy_pct"].mean == pytest.approx(96.0)
    assert row["accuracy_pct"].std == pytest.approx(1.0)
    assert row["seconds_per_epoch"].mean == pytest.approx(2.2)
    assert row["epochs"] == Stat(6.0, 0.0, 3)


def test_summary_shows_non_ok_pairs_with_reasons(results):
    rows = _rows(summary_table(results))
    skipped, mixed = rows["lstm-gpu", "mnist"], rows["gru-cpu", "cifar10"]
    assert (skipped["status"], skipped["note"], skipped["accuracy_pct"]) == ("skipped", "no CUDA device", None)
    assert mixed["status"] == "ok 1/3, diverged 1/3, failed 1/3"
    assert mixed["note"] == "seed 1: diverged at epoch 3: loss is nan; seed 2: MemoryError"
    assert mixed["accuracy_pct"] == Stat(60.0, None, 1)  # only the ok seed counts


def test_same_reason_for_every_seed_is_said_once():
    results = make_results([make_pair("m", "d", s, status="skipped", reason="no GPU") for s in range(3)])
    assert summary_table(results).rows[0]["note"] == "no GPU"


def test_per_class_rows_use_the_class_names_and_macro():
    results = make_results(seeded("gru-cpu", "cifar10", [0.6, 0.7], [1.0, 1.0]))
    rows = per_class_table(results).rows
    assert [r["class"] for r in rows] == [*CIFAR10_CLASSES, "macro avg"]
    assert rows[0]["recall"].mean == pytest.approx(0.65)
    assert rows[-1]["support"] == 10_000


def test_timing_table_converts_memory_and_omits_pairs_without_timing(results):
    rows = _rows(timing_table(results))
    assert set(rows) == {("rnn-cpu", "mnist"), ("gru-cpu", "cifar10")}
    assert rows["rnn-cpu", "mnist"]["peak_host_rss_mib"].mean == pytest.approx(300.0)
    assert rows["rnn-cpu", "mnist"]["device"] == "cpu"


def test_render_formats(results):
    table = summary_table(results)
    github = render(table, "github")
    assert "test accuracy (%)" in github and "96.00 ± 1.00" in github and "no CUDA device" in github
    assert "+===" in render(table, "grid")
    csv_rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert float(csv_rows[0]["accuracy_pct_mean"]) == 96.0 and csv_rows[1]["accuracy_pct_mean"] == ""
    json_rows = json.loads(render(table, "json"))
    assert json_rows[0]["accuracy_pct_std"] == 1.0 and json_rows[1]["note"] == "no CUDA device"
    with pytest.raises(ValueError, match="unknown table format"):
        render(table, "html")
    assert set(FORMATS) == {"github", "grid", "csv", "json"}


def test_summary_text_is_the_summary_table(results):
    text = summary_text(results)
    assert text == render(summary_table(results), "github")
    assert summary_text(results, fmt="csv").startswith("model,dataset,seeds,status,n,accuracy_pct_mean,")


def test_merged_summary_has_one_row_per_model_dataset_run(results):
    other = make_results(seeded("rnn-cpu", "mnist", [0.9], [1.0]))
    table = merged_summary_table([("a", results), ("b", other)])
    assert [(r["run"], r["model"]) for r in table.rows] == [
        ("a", "rnn-cpu"), ("a", "lstm-gpu"), ("a", "gru-cpu"), ("b", "rnn-cpu")
    ]
    assert table.columns[0].key == "run"


def test_write_tables_writes_markdown_and_csv_twins(tmp_path, results):
    paths = write_tables(tmp_path, results)
    names = sorted(p.name for p in paths)
    assert names == ["per_class.csv", "per_class.md", "summary.csv", "summary.md", "timing.csv", "timing.md"]
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("**PARTIAL RUN: ") and "\n# Summary\n" in summary and "`seqbench run --all`" in summary
    assert "| rnn-cpu" in summary and "Mean ± sample standard deviation" in summary
    per_class = list(csv.DictReader((tmp_path / "per_class.csv").open()))
    assert {r["class"] for r in per_class} >= set(CIFAR10_CLASSES)
    assert not list(tmp_path.glob(".*.tmp"))


def test_malformed_pairs_are_a_results_error():
    with pytest.raises(ResultsError, match="no list of pairs"):
        summary_table({"pairs": "nope"})
    with pytest.raises(ResultsError, match="pair #0"):
        summary_table({"pairs": [{"model": "m"}]})


def test_long_reasons_are_cut_for_people_and_whole_in_csv():
    reason = "dataset 'mnist' is not available: " + "x" * 200
    results = make_results([make_pair(status="skipped", reason=reason)])
    github = render(summary_table(results), "github")
    assert reason not in github and reason[:99] + "…" in github
    assert next(csv.DictReader(io.StringIO(render(summary_table(results), "csv"))))["note"] == reason


def test_summary_shows_n_and_the_median_seconds_per_epoch():
    # seed 1 had one slow epoch: its mean is 9 s, its median 2 s
    results = make_results([make_pair(seed=0, seconds=2.0), make_pair(seed=1, seconds=9.0, median=2.0),
                            make_pair(seed=2, status="failed", reason="MemoryError")])
    row = summary_table(results).rows[0]
    assert row["n"] == 2 and row["seconds_per_epoch"] == Stat(2.0, 0.0, 2)
    text = render(summary_table(results), "github")
    headers = [cell.strip() for cell in text.splitlines()[0].split("|")]
    assert headers[headers.index("status") + 1] == "n" and "s/epoch (median)" in headers
    assert "2.00 ± 0.00" in text and "5.50" not in text


def test_timing_table_shows_median_min_and_mean():
    results = make_results([make_pair(seed=0, seconds=3.0, median=2.0), make_pair(seed=1, seconds=5.0, median=2.0)])
    row = timing_table(results).rows[0]
    assert row["n"] == 2
    assert row["seconds_per_epoch"] == Stat(2.0, 0.0, 2)
    assert row["epoch_seconds_min"].mean == pytest.approx(1.8)
    assert row["epoch_seconds_mean"].mean == pytest.approx(4.0)
    headers = render(timing_table(results), "github").splitlines()[0]
    assert "s/epoch (median)" in headers and "s/epoch (min)" in headers and "s/epoch (mean)" in headers


def test_old_records_without_medians_fall_back_to_the_mean():
    results = make_results([make_pair(seed=s, seconds=x, legacy_timing=True) for s, x in ((0, 2.0), (1, 4.0))])
    assert summary_table(results).rows[0]["seconds_per_epoch"].mean == pytest.approx(3.0)
    timing = timing_table(results).rows[0]
    assert timing["seconds_per_epoch"].mean == pytest.approx(3.0) and timing["epoch_seconds_min"] is None


def test_a_cell_over_fewer_seeds_than_its_row_says_its_n():
    pairs = seeded("rnn-cpu", "mnist", [0.95, 0.96, 0.97], [2.0, 2.0, 2.0])
    del pairs[0]["timing"]["train_seconds"]
    text = render(summary_table(make_results(pairs)), "github")
    assert "96.00 ± 1.00 |" in text  # over the row's n = 3 seeds: no (n=…)
    assert "(n=2)" in text
    csv_row = next(csv.DictReader(io.StringIO(render(summary_table(make_results(pairs)), "csv"))))
    assert (csv_row["n"], csv_row["accuracy_pct_n"], csv_row["train_seconds_n"]) == ("3", "3", "2")


def test_per_class_rows_have_n():
    rows = per_class_table(make_results(seeded("gru-cpu", "cifar10", [0.6, 0.7], [1.0, 1.0]))).rows
    assert {r["n"] for r in rows} == {2}


def _malformed(change):
    results = make_results(seeded("rnn-cpu", "mnist", [0.95, 0.96], [2.0, 2.0]))
    change(results)
    return results


@pytest.mark.parametrize("change, message", [
    (lambda r: r["pairs"][0]["metrics"]["accuracy"].update(accuracy=math.nan),
     "rnn-cpu on mnist seed 0: metrics.accuracy.accuracy is nan, not a finite number"),
    (lambda r: r["pairs"][0]["metrics"]["accuracy"].update(accuracy="high"), "is 'high', not a finite number"),
    (lambda r: r["pairs"][1].update(metrics=None), "seed 1: status ok but no metrics.accuracy.accuracy"),
    (lambda r: r["pairs"][0]["timing"].update(epoch_seconds_median=True), "timing.epoch_seconds_median is True"),
    (lambda r: r["pairs"][0].update(seed="0"), "seed an integer"),
    (lambda r: r["pairs"][0]["metrics"]["per_class"].update(classes=[5]), "per_class.classes is not a list of objects"),
])
def test_malformed_values_are_a_results_error_naming_the_field(tmp_path, change, message):
    with pytest.raises(ResultsError, match=re.escape(message)):
        write_tables(tmp_path, _malformed(change))


@pytest.mark.parametrize("change", [
    lambda r: r["environment"].update(machine="box"),
    lambda r: r.update(config=[1]),
    lambda r: r["config"].update(protocol="fast"),
    lambda r: r["pairs"][0]["metrics"]["per_class"].update(classes=5),
    lambda r: r["pairs"][1]["metrics"].update(confusion={"matrix": 7}),
])
def test_a_section_of_the_wrong_type_is_left_out_by_the_loader_and_the_tables_are_made(tmp_path, capsys, change):
    """The tables read typed records: what is not of its type never reaches them (the loader leaves
    it out, with a warning), so they are made from the rest."""
    run = write_run(tmp_path / "run", _malformed(change))
    results = load_results(run)
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert {p.name for p in write_tables(run, results)} >= {"summary.md", "per_class.md", "timing.md"}
    assert "| rnn-cpu" in (run / "summary.md").read_text()
