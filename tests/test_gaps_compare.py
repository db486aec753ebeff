"""The compare gate when a NEW pair is failed, skipped or missing (not only diverged)."""

from __future__ import annotations

import pytest
from results_factory import make_pair, make_results, seeded

from seqbench.reporting.compare import (
    EXIT_MISSING,
    EXIT_OK,
    EXIT_REGRESSION,
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
