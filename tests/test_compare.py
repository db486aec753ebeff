"""Compare: matching, differences, spread, thresholds and warnings."""

import json

import pytest
from results_factory import make_pair, make_results, seeded

from seqbench.compare import (
    Threshold,
    beyond_spread,
    compare_runs,
    comparison_json,
    comparison_table,
    parse_threshold,
    verdict,
)
from seqbench.tables import Stat, render

ACCURACY = parse_threshold("accuracy:-0.5")
TIME = parse_threshold("time:+10%")


def run(accuracies, seconds, model="rnn-cpu", dataset="mnist", **kwargs):
    return make_results(seeded(model, dataset, accuracies, seconds, **kwargs))


@pytest.mark.parametrize("text, expected", [
    ("accuracy:-0.5", Threshold("accuracy", -0.5)),
    ("accuracy:-1pp", Threshold("accuracy", -1.0)),
    ("time:+10%", Threshold("time", 10.0)),
    (" time:5.5% ", Threshold("time", 5.5)),
])
def test_parse_threshold(text, expected):
    assert parse_threshold(text) == expected


@pytest.mark.parametrize("text, message", [
    ("accuracy", "not METRIC:LIMIT"),
    ("speed:+10%", "not METRIC:LIMIT"),
    ("accuracy:+0.5", "drop in percentage points"),
    ("accuracy:-5%", "drop in percentage points"),
    ("time:+10", "slowdown in percent"),
    ("time:-10%", "slowdown in percent"),
])
def test_parse_threshold_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_threshold(text)


def test_difference_and_ratio_with_seeds():
    base = run([0.95, 0.96, 0.97], [2.0, 2.0, 2.0])
    new = run([0.93, 0.94, 0.95], [3.0, 3.0, 3.0])
    pair = compare_runs(base, new).pairs[0]
    assert pair.accuracy_diff.mean == pytest.approx(-2.0)
    assert pair.accuracy_diff.std == pytest.approx(2**0.5)  # sqrt(1² + 1²)
    assert pair.time_ratio == Stat(pytest.approx(1.5), 0.0, 3)
    assert beyond_spread(pair.accuracy_diff) == "yes"
    assert beyond_spread(pair.time_ratio, center=1.0) == "yes"


def test_difference_within_the_spread():
    pair = compare_runs(run([0.95, 0.97], [2.0, 2.0]), run([0.955, 0.965], [2.0, 2.0])).pairs[0]
    assert beyond_spread(pair.accuracy_diff) == "no"


def test_single_seed_borrows_the_other_sides_spread_or_has_none():
    pair = compare_runs(run([0.95, 0.97], [2.0, 2.0]), run([0.9], [2.0])).pairs[0]
    assert pair.accuracy_diff.std == pytest.approx(2 ** 0.5 * 2 ** 0.5)
    single = compare_runs(run([0.95], [2.0]), run([0.9], [2.0])).pairs[0]
    assert single.accuracy_diff.std is None and beyond_spread(single.accuracy_diff) is None


@pytest.mark.parametrize("new_accuracy, new_seconds, failed", [
    (0.94, 2.0, True),    # -1 pp
    (0.946, 2.0, False),  # -0.4 pp
    (0.945, 2.0, False),  # exactly at the limit
    (0.99, 2.4, True),    # +20 %
    (0.95, 2.2, False),   # exactly +10 %
    (0.95, 2.1, False),   # +5 %
])
def test_thresholds(new_accuracy, new_seconds, failed):
    comparison = compare_runs(run([0.95], [2.0]), run([new_accuracy], [new_seconds]), [ACCURACY, TIME])
    assert comparison.failed is failed
    assert verdict(comparison).startswith("REGRESSION" if failed else "OK")


def test_regression_messages_and_gate_column():
    comparison = compare_runs(run([0.95], [2.0]), run([0.93], [2.5]), [ACCURACY, TIME])
    assert [str(r) for r in comparison.regressions] == [
        "rnn-cpu on mnist: accuracy -2.00 pp, past the limit -0.5 pp",
        "rnn-cpu on mnist: 1.25× seconds per epoch (+25.0 %), past the limit +10 %",
    ]
    assert comparison_table(comparison).rows[0]["gate"] == "FAIL"


def test_no_thresholds_no_verdict():
    comparison = compare_runs(run([0.95], [2.0]), run([0.5], [9.0]))
    assert not comparison.failed and "nothing gated" in verdict(comparison)


def test_diverged_in_new_is_an_accuracy_regression():
    new = make_results([make_pair(status="diverged", reason="loss is nan")])
    comparison = compare_runs(run([0.95], [2.0]), new, [ACCURACY])
    assert [str(r) for r in comparison.regressions] == [
        "rnn-cpu on mnist: no test accuracy in NEW (diverged at epoch 3: loss is nan)"
    ]
    assert comparison_table(comparison).rows[0]["status"] == "ok → diverged"


def test_warns_on_different_data_hardware_configs_and_unmatched_pairs():
    base = make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]) + [make_pair("mlp", "mnist")])
    new = make_results(
        seeded("rnn-cpu", "mnist", [0.95], [2.0], fingerprint="sha256:" + "b" * 64,
               params={"epochs": 30, "batch_size": 128, "lr": 0.01, "hidden": 128},
               device="cuda:0 (NVIDIA H100 80GB HBM3)")
        + [make_pair("lstm", "cifar10")],
        cpu="Intel Xeon",
    )
    warnings = compare_runs(base, new).warnings
    assert "mnist: different data (fingerprint): sha256:aaaaaaaaaaaa… → sha256:bbbbbbbbbbbb…" in warnings
    assert "different hardware: cpu AMD EPYC 7763 64-Core Processor → Intel Xeon" in warnings
    assert "rnn-cpu on mnist: different device: cpu → cuda:0 (NVIDIA H100 80GB HBM3)" in warnings
    assert "rnn-cpu on mnist: different params: lr 0.002 → 0.01" in warnings
    assert "only in BASE: mlp on mnist" in warnings
    assert "only in NEW: lstm on cifar10" in warnings


def test_same_setup_has_no_warnings():
    assert compare_runs(run([0.95], [2.0]), run([0.9], [2.5])).warnings == []


def test_config_difference_warns():
    quick = run([0.95], [2.0])
    quick["config"]["quick"] = True
    assert "different configs: quick false → true" in compare_runs(run([0.95], [2.0]), quick).warnings


def test_table_and_json():
    comparison = compare_runs(run([0.95, 0.97], [2.0, 2.2]), run([0.93, 0.95], [2.2, 2.4]), [ACCURACY])
    text = render(comparison_table(comparison), "github")
    assert "Δ acc (pp)" in text and "-2.00 ± 2.00" in text and "96.00 ± 1.41" in text
    doc = json.loads(comparison_json(comparison))
    assert doc["failed"] is True and doc["thresholds"] == ["accuracy:-0.5pp"]
    assert doc["pairs"][0]["accuracy_diff_pp_mean"] == pytest.approx(-2.0)
    assert doc["regressions"] == ["rnn-cpu on mnist: accuracy -2.00 pp, past the limit -0.5 pp"]
