"""The compare gate when a NEW pair is failed, skipped or missing (not only diverged)."""

from __future__ import annotations

import pytest
from results_factory import make_pair, make_results, seeded

_pair = make_pair

from seqbench.reporting.compare import (
    EXIT_MISSING,
    EXIT_OK,
    EXIT_REGRESSION,
    ThresholdError,
    compare_runs,
    parse_threshold,
    verdict,
)

ACCURACY = parse_threshold("accuracy:-0.5")


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
    new = make_results(seeded("gru-cpu", "mnist", [0.97], [3.0])
                       + [make_pair("gru-cpu", seed=1, status="failed", reason="Killed")])
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
    base, new = _pair(accuracy=0.95), _pair(accuracy=0.95)
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
    pairs = [make_results([_pair(seed=s)]) for s in (0, 0)]
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
        for pair, ece in zip(side, eces):
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
    assert [list(zip(headers, row)) for row in human_cells(table)] == [GOLDEN_RNN, GOLDEN_GRU]


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
    **{k: None for k in GOLDEN_JSON_RNN}, "model": "gru-cpu", "dataset": "mnist", "status": "ok → diverged",
    "base_n": 1, "new_n": 0, **_machine("base_accuracy_pct", 1, 97.0, None),
    **_machine("base_seconds_per_epoch", 1, 3.0, None), **_machine("base_calibration.ece", 1, 0.01, None),
    **_machine("base_per_class.macro.f1", 1, 0.97, None), "gate": "FAIL",
}
GOLDEN_REGRESSIONS = [
    "rnn-cpu on mnist: accuracy -0.92 pp, past the limit -0.5 pp, significant (p = 0.0079, permutation test over seeds)",
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
        "pairs": [GOLDEN_JSON_RNN, GOLDEN_JSON_GRU],  # the table's cells; a stat as _mean/_std/_n, an interval _low/_high
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
    assert verdict(compare_runs(base, base, [ACCURACY], alpha=0.1)) == "OK: no regression past accuracy:-0.5pp (alpha 0.1)"
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
    cells = dict(zip([c.key for c in table.columns], human_cells(table)[0]))
    assert [cells[k] for k in ("paired_diff_pp", "paired_ci_pp", "paired_p")] == ["-1.00", "[-2.40, +0.40]", "0.19"]  # McNemar, bootstrap
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
    base, new = (make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0], params=p)) for p in ({1: "a", "b": 2}, {1: "a", "b": 3}))
    assert compare_runs(base, new).warnings == ["rnn-cpu on mnist: different params: b 2 → 3"]


def test_a_missing_seed_without_a_reason_has_no_parentheses():
    from seqbench.reporting.compare import Missing

    assert str(Missing(("gru-cpu", "mnist"), 2, "failed")) == "gru-cpu on mnist seed 2: failed in NEW"
    assert str(Missing(("gru-cpu", "mnist"), 2, "failed", "Killed")) == "gru-cpu on mnist seed 2: failed in NEW (Killed)"


def test_params_that_are_not_an_object_are_shown_whole():
    base, new = (make_results(seeded("rnn-cpu", "mnist", [0.95], [2.0])) for _ in range(2))
    new["pairs"][0]["params"] = [128]  # not checked by the lenient load that compare uses
    (warning,) = compare_runs(base, new).warnings
    assert warning == ('rnn-cpu on mnist: different params: {"epochs": 30, "batch_size": 128, "lr": 0.002, '
                       '"hidden": 128} → [128]')
