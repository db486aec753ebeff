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
