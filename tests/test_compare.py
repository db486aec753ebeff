"""Compare: matching, differences and their tests, thresholds, the gate's exit codes, warnings."""

import json
import math

import numpy as np
import pytest
from results_factory import (
    balanced_labels,
    correct_mask,
    make_pair,
    make_results,
    predictions,
    seeded,
    write_run,
)

from seqbench.reporting.compare import (
    EXIT_MISSING,
    EXIT_NOTHING_COMPARABLE,
    EXIT_OK,
    EXIT_REGRESSION,
    Threshold,
    compare_runs,
    comparison_json,
    comparison_table,
    parse_threshold,
    verdict,
)
from seqbench.results import ResultsError, write_predictions
from seqbench.reporting.tables import render

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
    ("speed:+10pp", "in its own units"),
    ("top 2:-1", "not METRIC:LIMIT"),
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
    new = run([0.92, 0.93, 0.94], [3.0, 3.0, 3.0])
    pair = compare_runs(base, new).pairs[0]
    assert pair.accuracy.diff == pytest.approx(-3.0)
    assert pair.accuracy.p == pytest.approx(0.1)  # 3 seeds against 3: the smallest p there is
    assert (pair.accuracy.low, pair.accuracy.high) == (-math.inf, math.inf)
    assert pair.time.diff == pytest.approx(1.5)
    assert pair.paired is None  # no predictions stored


def test_four_seeds_each_decide_by_permutation():
    base = run([0.950, 0.952, 0.954, 0.956], [2.0] * 4)
    new = run([0.940, 0.941, 0.943, 0.944], [2.0] * 4)
    comparison = compare_runs(base, new, [ACCURACY])
    pair = comparison.pairs[0]
    assert pair.accuracy.p == pytest.approx(2 / 70) and pair.accuracy.high < 0
    assert comparison.exit_code == EXIT_REGRESSION
    assert "significant (p = 0.029, permutation test over seeds)" in str(comparison.regressions[0])


def test_four_overlapping_seeds_past_the_threshold_are_not_a_regression():
    base = run([0.94, 0.95, 0.96, 0.97], [2.0] * 4)
    new = run([0.935, 0.945, 0.95, 0.96], [2.0] * 4)  # -0.625 pp, past -0.5, well within the seeds' spread
    comparison = compare_runs(base, new, [ACCURACY])
    assert comparison.exit_code == EXIT_OK and not comparison.regressions
    assert "but not significant" in comparison.notes[0] and "note: rnn-cpu on mnist" in verdict(comparison)


@pytest.mark.parametrize("new_accuracy, new_seconds, failed", [
    (0.94, 2.0, True),    # -1 pp
    (0.946, 2.0, False),  # -0.4 pp
    (0.945, 2.0, False),  # exactly at the limit
    (0.99, 2.4, True),    # +20 %
    (0.95, 2.2, False),   # exactly +10 %
    (0.95, 2.1, False),   # +5 %
])
def test_thresholds_alone_decide_when_no_test_can(new_accuracy, new_seconds, failed):
    comparison = compare_runs(run([0.95], [2.0]), run([new_accuracy], [new_seconds]), [ACCURACY, TIME])
    assert comparison.failed is failed
    assert comparison.exit_code == (EXIT_REGRESSION if failed else EXIT_OK)
    assert verdict(comparison).startswith("REGRESSION" if failed else "OK")


def test_regression_messages_and_gate_column():
    comparison = compare_runs(run([0.95], [2.0]), run([0.93], [2.5]), [ACCURACY, TIME])
    unknown = "; significance unknown (no test can reach p ≤ 0.05 with these seeds"
    assert [str(r) for r in comparison.regressions] == [
        "rnn-cpu on mnist: accuracy -2.00 pp, past the limit -0.5 pp" + unknown + " and no paired predictions)",
        "rnn-cpu on mnist: 1.25× seconds per epoch (+25.0 %), past the limit +10 %" + unknown + ")",
    ]
    assert comparison_table(comparison).rows[0]["gate"] == "FAIL"


@pytest.mark.parametrize("new_mean, new_median, failed", [
    (4.0, 2.1, False),  # one slow epoch: the mean doubles, the median does not move
    (2.0, 2.5, True),   # every steady epoch slower, hidden in the mean by a fast first one
])
def test_time_gate_uses_the_median(new_mean, new_median, failed):
    base = run([0.95], [2.0])
    new = make_results([make_pair(seconds=new_mean, median=new_median)])
    comparison = compare_runs(base, new, [TIME])
    assert comparison.pairs[0].time.diff == pytest.approx(new_median / 2.0)
    assert comparison.failed is failed


def test_time_gate_on_old_records_uses_the_mean():
    base = make_results([make_pair(seconds=2.0, legacy_timing=True)])
    new = make_results([make_pair(seconds=2.5, legacy_timing=True)])
    assert compare_runs(base, new, [TIME]).pairs[0].time.diff == pytest.approx(1.25)


def test_no_thresholds_no_verdict():
    comparison = compare_runs(run([0.95], [2.0]), run([0.5], [9.0]))
    assert comparison.exit_code == EXIT_OK and "nothing gated" in verdict(comparison)


@pytest.mark.parametrize("new", [
    make_results([]),                                                              # NEW empty
    make_results([make_pair(seed=s, status="skipped", reason="no GPU") for s in range(3)]),  # all skipped
    run([0.95], [2.0], dataset="fashion-mnist"),                                   # another dataset
    run([0.95], [2.0], model="lstm-cpu"),                                          # another model
])
def test_nothing_comparable_is_its_own_failure(new):
    comparison = compare_runs(run([0.95, 0.96, 0.97], [2.0] * 3), new, [ACCURACY], allow_missing=True)
    assert not comparison.comparable and comparison.exit_code == EXIT_NOTHING_COMPARABLE
    assert verdict(comparison).startswith("NOTHING COMPARABLE") and "OK" not in verdict(comparison)


def test_base_without_ok_pairs_is_nothing_comparable():
    base = make_results([make_pair(status="failed", reason="MemoryError")])
    assert compare_runs(base, run([0.95], [2.0])).exit_code == EXIT_NOTHING_COMPARABLE


def test_missing_and_not_ok_seeds_of_base_fail_unless_allowed():
    base = make_results(seeded("rnn-cpu", "mnist", [0.95, 0.96, 0.97], [2.0] * 3)
                        + seeded("gru-cpu", "mnist", [0.97], [3.0])
                        + [make_pair("lstm-gpu", "mnist", status="skipped", reason="no CUDA device")])
    new = make_results([make_pair(seed=0, accuracy=0.96),
                        make_pair(seed=1, status="diverged", reason="loss is nan"),
                        make_pair(seed=2, status="skipped", reason="no data")])
    comparison = compare_runs(base, new, [ACCURACY])
    assert [str(m) for m in comparison.missing] == [
        "rnn-cpu on mnist seed 1: diverged in NEW (diverged at epoch 3: loss is nan)",
        "rnn-cpu on mnist seed 2: skipped in NEW (no data)",
        "gru-cpu on mnist seed 0: missing in NEW",
    ]  # a pair BASE skipped is not missing
    assert comparison.exit_code == EXIT_MISSING
    assert "MISSING OR NOT OK IN NEW" in verdict(comparison)
    allowed = compare_runs(base, new, [ACCURACY], allow_missing=True)
    assert allowed.exit_code == EXIT_OK and "allowed by --allow-missing" in verdict(allowed)


def test_missing_comes_before_a_regression():
    base = run([0.95, 0.96], [2.0, 2.0])
    new = run([0.90], [2.0])
    assert compare_runs(base, new, [ACCURACY]).exit_code == EXIT_MISSING
    assert compare_runs(base, new, [ACCURACY], allow_missing=True).exit_code == EXIT_REGRESSION


def test_a_pair_diverged_in_new_is_an_accuracy_regression_when_missing_pairs_are_allowed():
    base = make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]) + seeded("gru-cpu", "mnist", [0.97], [3.0]))
    new = make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0])
                       + [make_pair("gru-cpu", status="diverged", reason="loss is nan")])
    assert compare_runs(base, new, [ACCURACY]).exit_code == EXIT_MISSING
    comparison = compare_runs(base, new, [ACCURACY], allow_missing=True)
    assert comparison.exit_code == EXIT_REGRESSION
    assert [str(r) for r in comparison.regressions] == [
        "gru-cpu on mnist: no test accuracy in NEW (diverged at epoch 3: loss is nan)"
    ]
    assert comparison_table(comparison).rows[1]["status"] == "ok → diverged"


def _paired_runs(tmp_path, base_accuracy, new_accuracy, n=10_000, seeds=(0, 1, 2), new_labels=None, **new_kwargs):
    """BASE and NEW run directories with stored predictions of exactly these accuracies."""
    labels = balanced_labels(n)
    dirs = []
    for name, accuracy, offset, kwargs in (("base", base_accuracy, 0, {}), ("new", new_accuracy, 100, new_kwargs)):
        masks = {s: correct_mask(n, accuracy, s + offset) for s in seeds}
        pairs = [make_pair(seed=s, accuracy=masks[s].mean(), **kwargs) for s in seeds]
        rows = {s: predictions(labels if name == "base" or new_labels is None else new_labels, masks[s]) for s in seeds}
        dirs.append(write_run(tmp_path / name, make_results(pairs), rows))
    return dirs


def _compare_dirs(dirs, thresholds=(ACCURACY,)):
    from seqbench.results import load_results

    return compare_runs(load_results(dirs[0]), load_results(dirs[1]), thresholds, dirs=tuple(dirs))


def test_paired_predictions_make_a_real_drop_significant(tmp_path):
    comparison = _compare_dirs(_paired_runs(tmp_path, 0.985, 0.975))
    pair = comparison.pairs[0]
    assert pair.paired.diff == pytest.approx(-1.0) and pair.paired.p < 1e-6
    assert pair.paired.low < -1.0 < pair.paired.high < 0
    assert comparison.exit_code == EXIT_REGRESSION
    assert "significant (p = " in str(comparison.regressions[0]) and "McNemar" in str(comparison.regressions[0])


def test_paired_predictions_on_few_samples_keep_a_drop_past_the_threshold_from_failing(tmp_path):
    comparison = _compare_dirs(_paired_runs(tmp_path, 0.95, 0.90, n=20, seeds=(0,)))  # 19 → 18 right of 20
    pair = comparison.pairs[0]
    assert pair.accuracy.diff == pytest.approx(-5.0) and pair.paired.p > 0.05
    assert comparison.exit_code == EXIT_OK and "but not significant" in comparison.notes[0]


def test_no_paired_test_on_other_data_or_other_labels(tmp_path):
    other_data = _compare_dirs(_paired_runs(tmp_path / "a", 0.985, 0.975, fingerprint="sha256:" + "b" * 64))
    assert other_data.pairs[0].paired is None
    shuffled = np.roll(balanced_labels(), 1)
    other_labels = _compare_dirs(_paired_runs(tmp_path / "b", 0.985, 0.975, new_labels=shuffled))
    assert other_labels.pairs[0].paired is None
    assert "rnn-cpu on mnist seed 0: the test labels differ between BASE and NEW: no paired test" in other_labels.warnings


def test_no_paired_test_on_predictions_that_disagree_with_the_record(tmp_path):
    dirs = _paired_runs(tmp_path, 0.985, 0.975)
    write_predictions(dirs[1], make_pair(seed=2), predictions(balanced_labels(), correct_mask(10_000, 0.5, 0)))
    comparison = _compare_dirs(dirs)
    assert comparison.pairs[0].paired is not None  # seeds 0 and 1 still pair
    assert any("seed 2: the stored predictions in" in w and "recorded accuracy" in w for w in comparison.warnings)


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


@pytest.mark.parametrize("change, message", [
    (lambda r: r["pairs"][0]["metrics"]["accuracy"].update(accuracy=math.nan),
     "NEW: rnn-cpu on mnist seed 0: metrics.accuracy.accuracy is nan, not a finite number"),
    (lambda r: r["environment"].update(machine=["box"]), "NEW: results file: environment.machine is list"),
    (lambda r: r.update(config="quick"), "NEW: results file: config is str 'quick', expected an object"),
    (lambda r: r["environment"].update(packages=7), "NEW: results file: environment.packages is int 7"),
    (lambda r: r["pairs"][0].pop("metrics"), "NEW: rnn-cpu on mnist seed 0: status ok but no metrics"),
    (lambda r: r.pop("pairs"), "NEW: results file has no list of pairs"),
])
def test_malformed_runs_are_one_results_error_naming_the_run(change, message):
    new = run([0.95], [2.0])
    change(new)
    with pytest.raises(ResultsError) as error:
        compare_runs(run([0.95], [2.0]), new)
    assert str(error.value).startswith(message)


def test_table_and_json():
    comparison = compare_runs(run([0.95, 0.97], [2.0, 2.2]), run([0.93, 0.95], [2.2, 2.4]), [ACCURACY],
                              allow_missing=True)
    text = render(comparison_table(comparison), "github")
    headers = [cell.strip() for cell in text.splitlines()[0].split("|")]
    assert headers[4:10] == ["BASE n", "NEW n", "BASE acc (%)", "NEW acc (%)", "Δ acc (pp)", "95% CI"]
    assert "p (McNemar)" in headers and "96.00 ± 1.41" in text and "-2.00" in text and "[-∞, ∞]" in text
    doc = json.loads(comparison_json(comparison))
    assert doc["failed"] is True and doc["exit_code"] == EXIT_REGRESSION and doc["thresholds"] == ["accuracy:-0.5pp"]
    row = doc["pairs"][0]
    # pooled {93, 95, 95, 97}: 4 of the 6 splits give |T| ≥ 2 (the two 95s tie)
    assert row["accuracy_diff_pp"] == pytest.approx(-2.0) and row["accuracy_p"] == pytest.approx(4 / 6)
    assert row["base_n"] == 2 and row["base_accuracy_pct_n"] == 2
    assert row["accuracy_ci_pp_low"] is None and row["paired_p"] is None  # unbounded; no predictions
    assert doc["regressions"][0].startswith("rnn-cpu on mnist: accuracy -2.00 pp, past the limit -0.5 pp")


def test_ci_level_follows_alpha():
    comparison = compare_runs(run([0.95] * 2, [2.0] * 2), run([0.95] * 2, [2.0] * 2), alpha=0.2)
    assert "80% CI" in render(comparison_table(comparison), "github")
