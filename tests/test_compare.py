"""Compare: matching, differences and their tests, thresholds, the gate's exit codes, warnings,
and a NEW pair that failed, was skipped or is missing."""

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
    ThresholdError,
    compare_runs,
    comparison_json,
    comparison_table,
    parse_threshold,
    verdict,
)
from seqbench.reporting.tables import render
from seqbench.results import ResultsError, load_results, write_predictions

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
    new = make_results(
        [*seeded("rnn-cpu", "mnist", [0.95], [2.0]), make_pair("gru-cpu", status="diverged", reason="loss is nan")]
    )
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
    assert (
        "rnn-cpu on mnist seed 0: the test labels differ between BASE and NEW: no paired test" in other_labels.warnings
    )


def test_no_paired_test_on_predictions_that_disagree_with_the_record(tmp_path):
    dirs = _paired_runs(tmp_path, 0.985, 0.975)
    write_predictions(dirs[1], make_pair(seed=2), predictions(balanced_labels(), correct_mask(10_000, 0.5, 0)))
    comparison = _compare_dirs(dirs)
    assert comparison.pairs[0].paired is not None  # seeds 0 and 1 still pair
    assert any("seed 2: the stored predictions in" in w and "recorded accuracy" in w for w in comparison.warnings)


def test_warns_on_different_data_hardware_configs_and_unmatched_pairs():
    base = make_results([*seeded("rnn-cpu", "mnist", [0.95], [2.0]), make_pair("mlp", "mnist")])
    new = make_results(
        [*seeded("rnn-cpu", "mnist", [0.95], [2.0], fingerprint="sha256:" + "b" * 64,
                 params={"epochs": 30, "batch_size": 128, "lr": 0.01, "hidden": 128},
                 device="cuda:0 (NVIDIA H100 80GB HBM3)"),
         make_pair("lstm", "cifar10")],
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
    (lambda r: r["pairs"][0].pop("metrics"), "NEW: rnn-cpu on mnist seed 0: status ok but no metrics"),
    (lambda r: r.pop("pairs"), "NEW: results file has no list of pairs"),
])
def test_malformed_runs_are_one_results_error_naming_the_run(change, message):
    new = run([0.95], [2.0])
    change(new)
    with pytest.raises(ResultsError) as error:
        compare_runs(run([0.95], [2.0]), new)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("change", [
    lambda r: r["environment"].update(machine=["box"]),
    lambda r: r.update(config="quick"),
    lambda r: r["environment"].update(packages=7),
    lambda r: r["pairs"][0].update(dataset_info={"fingerprint": 3}),
])
def test_a_section_of_the_wrong_type_is_left_out_by_the_loader_and_the_runs_compared(tmp_path, capsys, change):
    """compare reads typed records: what is not of its type never reaches it (the loader leaves it
    out, with a warning)."""
    new = run([0.95], [2.0])
    change(new)
    loaded = load_results(write_run(tmp_path / "new", new))
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert compare_runs(run([0.95], [2.0]), loaded).comparable


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


# --- a NEW pair failed, skipped or missing ----------------------------------------------------
# The compare gate when a NEW pair is failed, skipped or missing (not only diverged).


def _base():
    return make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]) + seeded("gru-cpu", "mnist", [0.97], [3.0]))


def _new(gru_pairs):
    return make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]) + gru_pairs)


@pytest.mark.parametrize("status, reason", [("failed", "MemoryError: out of memory"), ("diverged", "loss is nan")])
def test_a_new_pair_that_failed_or_diverged_fails_the_accuracy_gate(status, reason):
    new = _new([make_pair("gru-cpu", status=status, reason=reason)])
    strict = compare_runs(_base(), new, [ACCURACY])
    assert strict.exit_code == EXIT_MISSING and strict.failed
    assert [m.status for m in strict.missing] == [status]
    allowed = compare_runs(_base(), new, [ACCURACY], allow_missing=True)
    assert allowed.exit_code == EXIT_REGRESSION and allowed.failed
    assert len(allowed.regressions) == 1
    message = str(allowed.regressions[0])
    assert message.startswith("gru-cpu on mnist: no test accuracy in NEW (") and reason.split(":")[0] in message
    assert "REGRESSION past accuracy:-0.5pp" in verdict(allowed)


def test_a_failed_pair_without_an_accuracy_threshold_is_only_missing():
    new = _new([make_pair("gru-cpu", status="failed", reason="boom")])
    assert compare_runs(_base(), new, [parse_threshold("time:+10%")], allow_missing=True).exit_code == EXIT_OK
    assert compare_runs(_base(), new, []).exit_code == EXIT_MISSING


def test_a_skipped_new_pair_is_missing_not_a_regression():
    new = _new([make_pair("gru-cpu", status="skipped", reason="no CUDA device")])
    strict = compare_runs(_base(), new, [ACCURACY])
    assert strict.exit_code == EXIT_MISSING
    assert [str(m) for m in strict.missing] == ["gru-cpu on mnist seed 0: skipped in NEW (no CUDA device)"]
    allowed = compare_runs(_base(), new, [ACCURACY], allow_missing=True)
    assert allowed.exit_code == EXIT_OK and not allowed.regressions and not allowed.failed


def test_a_pair_absent_from_new_is_missing():
    new = _new([])
    strict = compare_runs(_base(), new, [ACCURACY])
    assert strict.exit_code == EXIT_MISSING
    assert [str(m) for m in strict.missing] == ["gru-cpu on mnist seed 0: missing in NEW"]
    assert strict.only_base == [("gru-cpu", "mnist")] and strict.only_new == []
    assert compare_runs(_base(), new, [ACCURACY], allow_missing=True).exit_code == EXIT_OK


def test_one_failed_seed_among_ok_ones_is_missing_and_its_reason_is_kept():
    base = make_results(seeded("gru-cpu", "mnist", [0.97, 0.97], [3.0, 3.0]))
    new = make_results(
        [*seeded("gru-cpu", "mnist", [0.97], [3.0]), make_pair("gru-cpu", seed=1, status="failed", reason="Killed")]
    )
    comparison = compare_runs(base, new, [ACCURACY])
    assert [str(m) for m in comparison.missing] == ["gru-cpu on mnist seed 1: failed in NEW (Killed)"]
    assert comparison.exit_code == EXIT_MISSING
    # the ok seed carries the accuracy: no regression once missing seeds are allowed
    assert compare_runs(base, new, [ACCURACY], allow_missing=True).exit_code == EXIT_OK


# --- the statistics behind compare (found by mutation testing) ------------------------------------


def test_significance_at_exactly_alpha():
    from seqbench.reporting.stats import Estimate

    at = Estimate(1.0, 0.5, 1.5, p=0.05, p_min=0.05, method="m")
    assert at.significant(0.05) is True  # p <= alpha, and a test whose p_min is alpha can reach it
    assert Estimate(1.0, 0.5, 1.5, p=0.06, p_min=0.05, method="m").significant(0.05) is False
    assert Estimate(1.0, 0.5, 1.5, p=0.1, p_min=0.1, method="m").significant(0.05) is None


def test_interval_ends_are_found_far_away_or_are_infinite():
    from seqbench.reporting.stats import _boundary

    far = _boundary(lambda d: d >= 1e20, 0.0, 1.0)
    assert far == pytest.approx(1e20, rel=1e-9)
    assert _boundary(lambda d: d <= -3.25, 0.0, -1.0) == pytest.approx(-3.25, abs=1e-9)
    assert _boundary(lambda d: False, 0.0, 1.0) == float("inf")
    assert _boundary(lambda d: False, 0.0, -1.0) == float("-inf")


def test_paired_bootstrap_is_seeded_symmetric_and_follows_alpha():
    import numpy as np

    from seqbench.reporting.stats import paired_accuracy_test, paired_bootstrap

    base = np.zeros((1, 200), bool)
    new = base.copy()
    base[0, :50] = True  # 50 samples only BASE gets right,
    new[0, 50:100] = True  # 50 only NEW: no difference, a symmetric interval
    low, high = paired_bootstrap(base, new)
    assert (low, high) == paired_bootstrap(base, new)  # seeded
    assert low < 0 < high and abs(low + high) < 0.004  # means lie on a grid of 1/200
    wide, narrow = paired_accuracy_test(base, new, 0.05), paired_accuracy_test(base, new, 0.5)
    assert narrow.high - narrow.low < 0.6 * (wide.high - wide.low)
    assert (wide.low, wide.high) == (low, high) and wide.method == "McNemar's exact test"
    assert wide.diff == 0.0 and wide.p == 1.0


def test_a_permutation_test_whose_smallest_p_is_alpha_still_has_an_interval():
    """Three seeds against three at alpha 0.1: p_min = 2 / C(6, 3) = 0.1 can reject, so the interval
    is finite (and holds the difference)."""
    from seqbench.reporting.stats import permutation_test

    est = permutation_test([90.0, 90.5, 91.0], [95.0, 95.5, 96.0], alpha=0.1)
    assert est.p_min == pytest.approx(0.1) and est.p == pytest.approx(0.1) and est.significant(0.1)
    assert est.diff == pytest.approx(5.0) and -float("inf") < est.low < est.diff < est.high < float("inf")
    assert permutation_test([90.0, 90.5, 91.0], [95.0, 95.5, 96.0], alpha=0.05).low == -float("inf")


# --- thresholds on metric scalars, and the paired test's seeds (found by mutation testing) ---------


def _with_ece(pair, ece):
    pair["metrics"]["calibration"]["ece"] = ece
    return pair


def _one_seed(ece_base, ece_new, macro_f1=None):
    base, new = make_pair(accuracy=0.95), make_pair(accuracy=0.95)
    _with_ece(base, ece_base), _with_ece(new, ece_new)
    if macro_f1 is not None:
        new["metrics"]["per_class"]["macro"]["f1"] = macro_f1
    return make_results([base]), make_results([new])


LOWER = {"calibration.ece": False}.get


@pytest.mark.parametrize("limit, failed", [("+0.005", False), ("+0.004", True)])
def test_a_lower_is_better_metric_exactly_at_its_limit_passes(limit, failed):
    base, new = _one_seed(0.5, 0.505)  # +0.005 exactly (in floats: 0.505 - 0.5 = 0.0050000000000000044)
    comparison = compare_runs(base, new, [parse_threshold(f"calibration.ece:{limit}")], directions=LOWER)
    assert comparison.failed is failed


@pytest.mark.parametrize("limit, failed", [("-0.01", False), ("-0.009", True)])
def test_a_higher_is_better_metric_exactly_at_its_limit_passes(limit, failed):
    base, new = _one_seed(0.01, 0.01)
    f1 = base["pairs"][0]["metrics"]["per_class"]["macro"]["f1"]
    base, new = _one_seed(0.01, 0.01, macro_f1=f1 - 0.01)
    comparison = compare_runs(base, new, [parse_threshold(f"per_class.macro.f1:{limit}")], directions=lambda n: True)
    assert comparison.failed is failed


def test_a_relative_limit_is_in_percent_of_base():
    base, new = _one_seed(0.01, 0.0105)  # +5 %
    comparison = compare_runs(base, new, [parse_threshold("calibration.ece:+4%")], directions=LOWER)
    assert [str(r) for r in comparison.regressions] == [
        "rnn-cpu on mnist: calibration.ece +5 %, past the limit +4 %; significance unknown "
        "(no test can reach p ≤ 0.05 with these seeds)"]
    assert not compare_runs(base, new, [parse_threshold("calibration.ece:+6%")], directions=LOWER).failed
    zero, new = _one_seed(0.0, 0.5)  # no relative change from a BASE mean of 0
    assert not compare_runs(zero, new, [parse_threshold("calibration.ece:+6%")], directions=LOWER).failed


def test_a_metric_missing_in_new_is_not_gated():
    base, new = _one_seed(0.01, 0.5)
    del new["pairs"][0]["metrics"]["calibration"]
    comparison = compare_runs(base, new, [parse_threshold("calibration.ece:+0.01")], directions=LOWER)
    assert not comparison.regressions and comparison.pairs[0].metrics["calibration.ece"].test is None


def test_thresholds_resolve_to_one_scalar_with_its_direction():
    base, new = _one_seed(0.01, 0.01)
    comparison = compare_runs(base, new, [parse_threshold("calibration:+0.01"),
                                          parse_threshold("per_class.macro.f1:-0.01")],
                              directions=lambda n: n != "calibration.ece")
    assert [(t.metric, t.higher_is_better) for t in comparison.thresholds] == [
        ("calibration.ece", False), ("per_class.macro.f1", True)]


@pytest.mark.parametrize("threshold, directions, message", [
    ("top5:-0.01", LOWER, "--fail-on top5:-0.01: no metric scalar 'top5' in BASE or NEW (metric scalars: "
                          "per_class.macro.precision, per_class.macro.recall, per_class.macro.f1, calibration.ece)"),
    ("calibration.ece:+0.01", lambda n: None, "--fail-on calibration.ece:+0.01: the metric does not say whether "
                                              "a higher calibration.ece is better (MetricSpec.higher_is_better)"),
    ("calibration.ece:+0.01", None, "the metric does not say whether a higher calibration.ece is better"),
    ("calibration.ece:-0.01", LOWER, "--fail-on calibration.ece:-0.01: a lower calibration.ece is better, "
                                     "so its limit is a rise, e.g. +0.01"),
    ("calibration.ece:+0.01", lambda n: True, "--fail-on calibration.ece:+0.01: a higher calibration.ece is "
                                              "better, so its limit is a drop, e.g. -0.01"),
])
def test_threshold_errors_say_what_to_do(threshold, directions, message):
    base, new = _one_seed(0.01, 0.01)
    with pytest.raises(ThresholdError) as exc:
        compare_runs(base, new, [parse_threshold(threshold)], directions=directions)
    assert message in str(exc.value)


def test_no_metric_scalars_are_listed_as_none():
    base, new = _one_seed(0.01, 0.01)
    for run in (base, new):
        del run["pairs"][0]["metrics"]["calibration"], run["pairs"][0]["metrics"]["per_class"]
    with pytest.raises(ThresholdError, match=r"\(metric scalars: none\)$"):
        compare_runs(base, new, [parse_threshold("top5:-0.01")], directions=LOWER)


@pytest.mark.parametrize("text, threshold", [
    ("accuracy:0", ("accuracy", 0.0)), ("time:0%", ("time", 0.0)), ("time:+0.5%", ("time", 0.5)),
])
def test_zero_and_small_limits_are_accepted(text, threshold):
    parsed = parse_threshold(text)
    assert (parsed.metric, parsed.limit, parsed.relative) == (*threshold, False)


def test_a_significant_slowdown_is_decided_by_the_time_test():
    base = make_results(seeded("rnn-cpu", "mnist", [0.95] * 4, [2.0, 2.01, 2.02, 2.03]))
    new = make_results(seeded("rnn-cpu", "mnist", [0.95] * 4, [3.0, 3.01, 3.02, 3.03]))
    (regression,) = compare_runs(base, new, [parse_threshold("time:+10%")]).regressions
    assert ", significant (p = 0.029, permutation test over seeds)" in str(regression)


def test_alpha_reaches_every_interval():
    base = make_results(seeded("rnn-cpu", "mnist", [0.950, 0.952, 0.954, 0.956], [2.0, 2.1, 2.2, 2.3]))
    new = make_results(seeded("rnn-cpu", "mnist", [0.940, 0.941, 0.946, 0.948], [2.5, 2.4, 2.6, 2.9]))
    wide, narrow = (compare_runs(base, new, alpha=a).pairs[0] for a in (0.05, 0.3))
    assert narrow.accuracy.high - narrow.accuracy.low < wide.accuracy.high - wide.accuracy.low
    assert narrow.time.high - narrow.time.low < wide.time.high - wide.time.low


def test_pairs_without_timing_have_no_time_test():
    pairs = [make_results([make_pair(seed=s)]) for s in (0, 0)]
    for run in pairs:
        run["pairs"][0]["timing"] = None
    assert compare_runs(*pairs).pairs[0].time is None


def _paired_alpha(tmp_path, alpha):
    from test_compare import _paired_runs

    from seqbench.results import load_results

    dirs = _paired_runs(tmp_path, 0.95, 0.94, n=2000)
    return compare_runs(load_results(dirs[0]), load_results(dirs[1]), dirs=tuple(dirs), alpha=alpha).pairs[0].paired


def test_the_paired_interval_follows_alpha(tmp_path):
    wide, narrow = _paired_alpha(tmp_path / "a", 0.05), _paired_alpha(tmp_path / "b", 0.5)
    assert narrow.high - narrow.low < 0.6 * (wide.high - wide.low)


@pytest.mark.parametrize("spoil", ["no record", "no predictions", "other labels", "no fingerprints"])
def test_a_seed_that_cannot_be_paired_leaves_the_others_paired(tmp_path, spoil):
    """Seed 0 of NEW cannot be paired; seeds 1 and 2 still are (or, without fingerprints, none)."""
    import numpy as np
    from test_compare import _paired_runs

    from seqbench.results import load_results, pair_path, read_predictions, write_predictions

    dirs = _paired_runs(tmp_path, 0.95, 0.94, n=2000)
    base, new = load_results(dirs[0]), load_results(dirs[1])
    if spoil == "no fingerprints":  # the data cannot be told the same: no pairing at all
        for p in base["pairs"] + new["pairs"]:
            p["dataset_info"]["fingerprint"] = None
    seed0 = next(p for p in new["pairs"] if p["seed"] == 0)
    if spoil == "no record":
        new["pairs"] = [p for p in new["pairs"] if p["seed"] != 0]
    elif spoil == "no predictions":
        pair_path(dirs[1], seed0, ".pred.npy").unlink()
    elif spoil == "other labels":  # the same right/wrong pattern, on other test samples
        rows = read_predictions(dirs[1], seed0)
        write_predictions(dirs[1], seed0, np.roll(rows, 1, axis=1))
    comparison = compare_runs(base, new, dirs=tuple(dirs), allow_missing=True)
    paired = comparison.pairs[0].paired
    if spoil == "no fingerprints":
        assert paired is None
    else:
        from seqbench.reporting.stats import mcnemar_exact

        assert paired is not None and paired.p_min == mcnemar_exact(2 * 2000, 0)  # two seeds of 2000
    if spoil == "other labels":
        assert any("test labels differ" in w for w in comparison.warnings)


def test_base_predictions_that_disagree_with_the_record_are_warned_about(tmp_path):
    from test_compare import _paired_runs

    from seqbench.results import load_results

    dirs = _paired_runs(tmp_path, 0.95, 0.94, n=2000, seeds=(0,))
    base = load_results(dirs[0])
    base["pairs"][0]["metrics"]["accuracy"]["accuracy"] = 0.5
    comparison = compare_runs(base, load_results(dirs[1]), dirs=tuple(dirs))
    assert comparison.pairs[0].paired is None
    assert any("do not give the recorded accuracy" in w and str(dirs[0]) in w for w in comparison.warnings)


def test_time_ratios_below_one_second_and_one_side_without_timing():
    def run(seconds):
        return make_results(seeded("rnn-cpu", "mnist", [0.95], [seconds]))

    fast = compare_runs(run(0.5), run(0.6)).pairs[0]
    assert fast.time.diff == pytest.approx(1.2)
    base, new = run(2.0), run(2.0)
    new["pairs"][0]["timing"] = None
    assert compare_runs(base, new).pairs[0].time is None


# --- the output format: the comparison table and the JSON document, pinned (golden) -----------------


def _golden_runs():
    """BASE and NEW: rnn-cpu on mnist with 5 seeds each (seed 4 without timing or calibration, so
    s/epoch and calibration.ece have n=4), gru-cpu ok in BASE but diverged in NEW, lstm-cpu on
    mnist only in BASE and on fashion-mnist only in NEW, and NEW on other software."""
    base = seeded("rnn-cpu", "mnist", [0.950, 0.952, 0.954, 0.956, 0.958], [2.0, 2.1, 2.2, 2.3, 2.4])
    new = seeded("rnn-cpu", "mnist", [0.940, 0.941, 0.946, 0.948, 0.949], [2.5, 2.4, 2.6, 2.9, 2.8])
    for side, eces in ((base, [0.010, 0.012, 0.014, 0.016]), (new, [0.020, 0.021, 0.022, 0.023])):
        for pair, ece in zip(side, eces, strict=False):  # seed 4 has none
            pair["metrics"]["calibration"]["ece"] = ece
        del side[4]["metrics"]["calibration"]
        side[4]["timing"] = None
    base += [make_pair("gru-cpu", accuracy=0.97, seconds=3.0), make_pair("lstm-cpu")]
    new += [make_pair("gru-cpu", status="diverged", reason="loss is nan"), make_pair("lstm-cpu", "fashion-mnist")]
    base, new = make_results(base), make_results(new)
    new["environment"]["python"] = "3.12.1"
    new["environment"]["packages"]["numpy"] = "2.0.0"
    new["environment"]["plugins"]["models"] = "0.2.0"
    return base, new


GOLDEN_LIMITS = ("accuracy:-0.5", "time:+10%", "per_class.macro.f1:-0.05")


def _golden(**kwargs):
    kwargs.setdefault("allow_missing", True)
    return compare_runs(*_golden_runs(), [parse_threshold(t) for t in GOLDEN_LIMITS],
                        directions=lambda name: True, **kwargs)


# Each row as (header, cell) as people read it; "—" where there is no value.
GOLDEN_RNN = [
    ("model", "rnn-cpu"), ("dataset", "mnist"), ("status", "ok"),
    ("BASE n", "5"), ("NEW n", "5"),  # ok seeds on each side
    ("BASE acc (%)", "95.40 ± 0.32"), ("NEW acc (%)", "94.48 ± 0.41"),  # mean ± std over seeds
    ("Δ acc (pp)", "-0.92"), ("95% CI", "[-1.50, -0.35]"), ("p (seeds)", "0.0079"),  # permutation test
    ("Δ acc paired (pp)", "—"), ("95% CI", "—"), ("p (McNemar)", "—"),  # no stored predictions
    ("BASE s/epoch", "2.15 ± 0.13 (n=4)"), ("NEW s/epoch", "2.60 ± 0.22 (n=4)"),  # seed 4 has no timing
    ("time ×", "1.21"), ("95% CI", "[1.05, 1.42]"), ("p (seeds)", "0.029"),  # NEW / BASE
    # a metric plugin's scalar: BASE, NEW, NEW − BASE and its p-value (seed 4 has none)
    ("BASE calibration.ece", "0.013 ± 0.002582 (n=4)"), ("NEW calibration.ece", "0.0215 ± 0.001291 (n=4)"),
    ("Δ calibration.ece", "+0.0085"), ("p (seeds)", "0.029"),
    # a built-in scalar, shown because a limit names it
    ("BASE per_class.macro.f1", "0.954 ± 0.003162"), ("NEW per_class.macro.f1", "0.9448 ± 0.004087"),
    ("Δ per_class.macro.f1", "-0.0092"), ("p (seeds)", "0.0079"),
    ("gate", "FAIL"),  # past accuracy:-0.5 and time:+10%, significant
]
GOLDEN_GRU = [
    ("model", "gru-cpu"), ("dataset", "mnist"), ("status", "ok → diverged"), ("BASE n", "1"), ("NEW n", "0"),
    ("BASE acc (%)", "97.00"), *[(h, "—") for h, _ in GOLDEN_RNN[6:13]],
    ("BASE s/epoch", "3.00"), *[(h, "—") for h, _ in GOLDEN_RNN[14:18]],
    ("BASE calibration.ece", "0.01"), *[(h, "—") for h, _ in GOLDEN_RNN[19:22]],
    ("BASE per_class.macro.f1", "0.97"), *[(h, "—") for h, _ in GOLDEN_RNN[23:26]],
    ("gate", "FAIL"),  # an accuracy limit fails a NEW that lost its accuracy
]


def test_the_comparison_table_as_people_read_it():
    from seqbench.reporting.compare import comparison_table
    from seqbench.reporting.tables import human_cells

    table = comparison_table(_golden())
    headers = [c.header for c in table.columns]
    assert table.title == "Comparison"
    assert [list(zip(headers, row, strict=True)) for row in human_cells(table)] == [GOLDEN_RNN, GOLDEN_GRU]


def test_the_interval_columns_are_at_the_level_of_alpha():
    from seqbench.reporting.compare import compare_columns

    assert [c.header for c in compare_columns(0.1) if c.interval] == ["90% CI"] * 3
    assert [c.header for c in compare_columns() if c.interval] == ["95% CI"] * 3
    assert [c.key for c in compare_columns(metrics=["m"])][-5:] == ["base_m", "new_m", "m_diff", "m_p", "gate"]


def _machine(prefix, n, mean, std):
    return {f"{prefix}_mean": mean, f"{prefix}_std": std, f"{prefix}_n": n}


GOLDEN_JSON_RNN = {
    "model": "rnn-cpu", "dataset": "mnist", "status": "ok", "base_n": 5, "new_n": 5,
    **_machine("base_accuracy_pct", 5, 95.4, 0.316228), **_machine("new_accuracy_pct", 5, 94.48, 0.408656),
    "accuracy_diff_pp": -0.92, "accuracy_ci_pp_low": -1.5, "accuracy_ci_pp_high": -0.35,
    "accuracy_p": 2 / 252,  # the smallest p of 5 seeds against 5: 2 / C(10, 5)
    "paired_diff_pp": None, "paired_ci_pp_low": None, "paired_ci_pp_high": None, "paired_p": None,
    **_machine("base_seconds_per_epoch", 4, 2.15, 0.129099), **_machine("new_seconds_per_epoch", 4, 2.6, 0.216025),
    "time_ratio": 1.209302, "time_ci_low": 1.046512, "time_ci_high": 1.418605,
    "time_p": 2 / 70,  # 4 seeds against 4: 2 / C(8, 4)
    **_machine("base_calibration.ece", 4, 0.013, 0.002582), **_machine("new_calibration.ece", 4, 0.0215, 0.001291),
    "calibration.ece_diff": 0.0085, "calibration.ece_p": 2 / 70,
    **_machine("base_per_class.macro.f1", 5, 0.954, 0.003162),
    **_machine("new_per_class.macro.f1", 5, 0.9448, 0.004087),
    "per_class.macro.f1_diff": -0.0092, "per_class.macro.f1_p": 2 / 252,
    "gate": "FAIL",
}
GOLDEN_JSON_GRU = {
    **dict.fromkeys(GOLDEN_JSON_RNN), "model": "gru-cpu", "dataset": "mnist", "status": "ok → diverged",
    "base_n": 1, "new_n": 0, **_machine("base_accuracy_pct", 1, 97.0, None),
    **_machine("base_seconds_per_epoch", 1, 3.0, None), **_machine("base_calibration.ece", 1, 0.01, None),
    **_machine("base_per_class.macro.f1", 1, 0.97, None), "gate": "FAIL",
}
GOLDEN_REGRESSIONS = [
    "rnn-cpu on mnist: accuracy -0.92 pp, past the limit -0.5 pp, significant (p = 0.0079, "
    "permutation test over seeds)",
    "rnn-cpu on mnist: 1.21× seconds per epoch (+20.9 %), past the limit +10 %, significant (p = 0.029, "
    "permutation test over seeds)",
    "gru-cpu on mnist: no test accuracy in NEW (diverged at epoch 3: loss is nan)",
]
GOLDEN_MISSING = ["gru-cpu on mnist seed 0: diverged in NEW (diverged at epoch 3: loss is nan)",
                  "lstm-cpu on mnist seed 0: missing in NEW"]


def test_the_comparison_as_json():
    import json

    from seqbench.reporting.compare import comparison_json

    document = comparison_json(_golden())
    assert document.endswith("}\n") and document.startswith('{\n  "pairs": [\n')  # indented, one final newline
    assert json.loads(document) == {
        # the table's cells; a stat as _mean/_std/_n, an interval _low/_high
        "pairs": [GOLDEN_JSON_RNN, GOLDEN_JSON_GRU],
        "only_in_base": [["lstm-cpu", "mnist"]],
        "only_in_new": [["lstm-cpu", "fashion-mnist"]],
        "missing_in_new": GOLDEN_MISSING,
        "warnings": ["different software: models 0.1.0 → 0.2.0, numpy 1.26.4 → 2.0.0, python 3.11.7 → 3.12.1",
                     "only in BASE: lstm-cpu on mnist", "only in NEW: lstm-cpu on fashion-mnist"],
        "alpha": 0.05,
        "thresholds": ["accuracy:-0.5pp", "time:+10%", "per_class.macro.f1:-0.05"],
        "regressions": GOLDEN_REGRESSIONS,
        "not_significant": [],
        "comparable": True,
        "failed": True,
        "exit_code": EXIT_REGRESSION,  # missing seeds allowed: the regressions decide
    }


def test_the_verdict_lists_missing_seeds_then_regressions():
    limits = "accuracy:-0.5pp, time:+10%, per_class.macro.f1:-0.05"
    assert verdict(_golden()).splitlines() == [
        "missing or not ok in NEW, allowed by --allow-missing:", *[f"  {m}" for m in GOLDEN_MISSING],
        f"REGRESSION past {limits} (alpha 0.05):", *[f"  {r}" for r in GOLDEN_REGRESSIONS]]
    strict = _golden(allow_missing=False)
    assert strict.exit_code == EXIT_MISSING
    assert verdict(strict).splitlines()[0] == "MISSING OR NOT OK IN NEW (--allow-missing accepts this):"


def test_the_verdict_without_regressions_or_thresholds():
    base = make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]))
    assert (
        verdict(compare_runs(base, base, [ACCURACY], alpha=0.1)) == "OK: no regression past accuracy:-0.5pp (alpha 0.1)"
    )
    assert verdict(compare_runs(base, base)) == "no --fail-on thresholds given: nothing gated"
    other = make_results(seeded("gru-cpu", "mnist", [0.95], [2.0]))
    assert verdict(compare_runs(base, other, [ACCURACY], allow_missing=True)).splitlines() == [
        "NOTHING COMPARABLE: no model × dataset has an ok seed in both BASE and NEW",
        "missing or not ok in NEW, allowed by --allow-missing:", "  rnn-cpu on mnist seed 0: missing in NEW"]


def test_the_paired_columns_of_runs_with_stored_predictions(tmp_path):
    from test_compare import _paired_runs

    from seqbench.reporting.compare import comparison_table
    from seqbench.reporting.tables import human_cells, machine_rows
    from seqbench.results import load_results

    dirs = _paired_runs(tmp_path, 0.95, 0.94, n=2000, seeds=(0,))
    table = comparison_table(compare_runs(load_results(dirs[0]), load_results(dirs[1]), dirs=tuple(dirs)))
    cells = dict(zip([c.key for c in table.columns], human_cells(table)[0], strict=True))
    # McNemar, bootstrap
    assert [cells[k] for k in ("paired_diff_pp", "paired_ci_pp", "paired_p")] == ["-1.00", "[-2.40, +0.40]", "0.19"]
    row = machine_rows(table)[0]
    assert [row[k] for k in ("paired_diff_pp", "paired_ci_pp_low", "paired_ci_pp_high")] == [-1.0, -2.4, 0.4]


def test_the_rendered_table_aligns_numbers_right_and_names_left():
    from seqbench.reporting.compare import comparison_table
    from seqbench.reporting.tables import render

    line = render(comparison_table(_golden())).splitlines()[2]
    assert line.startswith("| rnn-cpu | mnist     | ok            |        5 |       5 |   95.40 ± 0.32 |")


def test_a_pair_only_ok_in_new_has_no_base_seeds_and_no_gate():
    base = make_results([make_pair(status="failed", reason="Killed")])
    new = make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0]))
    for run, ece in ((base, 0.0100001), (new, 0.0200003)):
        run["pairs"][0]["metrics"] = run["pairs"][0]["metrics"] or make_pair()["metrics"]
        run["pairs"][0]["metrics"]["calibration"]["ece"] = ece
    base["pairs"][0]["status"] = "ok"  # one ok seed each, for the metric's difference
    one_each = compare_runs(base, new, [ACCURACY])
    from seqbench.reporting.compare import comparison_table
    from seqbench.reporting.tables import machine_rows

    (row,) = machine_rows(comparison_table(one_each))
    assert row["calibration.ece_diff"] == 0.01 and row["gate"] is None  # 0.0100002 to six decimals; not past
    base["pairs"][0]["status"] = "failed"
    (row,) = machine_rows(comparison_table(compare_runs(base, new, [ACCURACY])))
    assert (row["status"], row["base_n"], row["new_n"], row["gate"]) == ("failed → ok", 0, 1, None)


@pytest.mark.parametrize("side", [0, 1])
def test_a_malformed_run_is_named_base_or_new(side):
    from seqbench.results import ResultsError

    runs = [make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0])) for _ in range(2)]
    runs[side]["pairs"][0]["timing"]["epoch_seconds_median"] = "slow"
    with pytest.raises(ResultsError, match=f"^{('BASE', 'NEW')[side]}: rnn-cpu .*epoch_seconds_median"):
        compare_runs(*runs)
    with pytest.raises(ResultsError, match=f"^{('old', 'new')[side]}: "):
        compare_runs(*runs, labels=("old", "new"))


def test_the_interval_of_a_metric_scalar_follows_alpha():
    base, new = _golden_runs()
    wide, narrow = (compare_runs(base, new, alpha=a).pairs[0].metrics["calibration.ece"].test for a in (0.05, 0.3))
    assert narrow.high - narrow.low < wide.high - wide.low


def test_warnings_name_each_difference_between_the_runs():
    """Other data, hardware, configs, devices and params; long fingerprints are shortened."""
    base = make_results(seeded("rnn-cpu", "mnist", [0.95, 0.95], [2.0, 2.0],
                               params={"epochs": 3, "tag": "sha256:" + "a" * 13, "x": 1}))
    new = make_results(seeded("rnn-cpu", "mnist", [0.95, 0.95], [2.0, 2.0],
                              params={"epochs": 3, "tag": "sha256:" + "b" * 14, "y": 1j}, fingerprint="md5:c"))
    new["pairs"][1]["device"] = "cuda:0"
    new["pairs"][1]["dataset_info"]["fingerprint"] = "md5:d"
    new["environment"]["machine"].update(cpu_count=4, gpu_name="H100", hostname="other", memory_bytes=1)
    new["config"].update(seeds=[0, 1, 2], quick=False, protocol={"val_fraction": 0.2})
    assert compare_runs(base, new).warnings == [
        "mnist: different data (fingerprint): sha256:aaaaaaaaaaaa… → md5:c, md5:d",
        'different hardware: cpu_count 2 → 4, gpu_name null → H100',
        'different configs: protocol {"val_fraction": 0.1} → {"val_fraction": 0.2}, seeds [0, 1] → [0, 1, 2]',
        "rnn-cpu on mnist: different device: cpu → cpu / cuda:0",
        # a text of 20 characters is shown whole, of 21 shortened; other values as JSON (repr where not JSON)
        'rnn-cpu on mnist: different params: tag sha256:aaaaaaaaaaaaa → sha256:bbbbbbbbbbbb…, x 1 → null, '
        'y null → "1j"',
    ]


def test_no_warning_where_one_run_lacks_fingerprints_or_params():
    base, new = (make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0])) for _ in range(2))
    new["pairs"][0]["dataset_info"]["fingerprint"] = None
    new["pairs"][0]["params"] = None
    assert compare_runs(base, new).warnings == []
    assert compare_runs(new, base).warnings == []


def test_params_with_keys_of_mixed_types_are_compared():
    base, new = (
        make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0], params=p)) for p in ({1: "a", "b": 2}, {1: "a", "b": 3})
    )
    assert compare_runs(base, new).warnings == ["rnn-cpu on mnist: different params: b 2 → 3"]


def test_a_missing_seed_without_a_reason_has_no_parentheses():
    from seqbench.reporting.compare import Missing

    assert str(Missing(("gru-cpu", "mnist"), 2, "failed")) == "gru-cpu on mnist seed 2: failed in NEW"
    assert (
        str(Missing(("gru-cpu", "mnist"), 2, "failed", "Killed")) == "gru-cpu on mnist seed 2: failed in NEW (Killed)"
    )


def test_params_that_are_not_an_object_are_shown_whole():
    base, new = (make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0])) for _ in range(2))
    new["pairs"][0]["params"] = [128]  # not checked by the lenient load that compare uses
    (warning,) = compare_runs(base, new).warnings
    assert warning == ('rnn-cpu on mnist: different params: {"epochs": 30, "batch_size": 128, "lr": 0.002, '
                       '"hidden": 128} → [128]')
