"""Statistics: answers that can be worked out by hand."""

import math

import numpy as np
import pytest

from seqbench.reporting.stats import (
    RESAMPLES,
    Estimate,
    mcnemar_exact,
    paired_accuracy_test,
    paired_bootstrap,
    permutation_min_p,
    permutation_test,
)


@pytest.mark.parametrize("b, c, p", [
    (0, 5, 2 / 32),                      # 2 · P(X ≤ 0), X ~ Bin(5, ½)
    (2, 8, 2 * (1 + 10 + 45) / 1024),    # 2 · (C(10,0) + C(10,1) + C(10,2)) / 2¹⁰
    (8, 2, 2 * (1 + 10 + 45) / 1024),    # symmetric
    (3, 3, 1.0),                         # capped at 1
    (0, 0, 1.0),                         # no discordant pair: no evidence
    (0, 1, 1.0),
])
def test_mcnemar_exact_by_hand(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p)


def test_mcnemar_exact_on_many_pairs_matches_exact_integers():
    exact = 2 * sum(math.comb(250, k) for k in range(101)) / 2**250
    assert mcnemar_exact(100, 150) == pytest.approx(exact, rel=1e-9)
    assert mcnemar_exact(0, 1000) == pytest.approx(2 * 0.5**1000, rel=1e-9)


def test_permutation_test_enumerates_every_split():
    # pooled {0, 0, 1, 2}, NEW = {1, 2}: T = 1.5; the six splits give T = ±1.5, ±0.5, ±0.5,
    # so |T| ≥ 1.5 in 2 of 6.
    test = permutation_test([0, 0], [1, 2])
    assert test.diff == pytest.approx(1.5)
    assert test.p == pytest.approx(2 / 6) and test.p_min == pytest.approx(2 / 6)


def test_permutation_test_unequal_groups():
    # NEW = {10} against {1, 2, 3}: the four splits give T = 8, -4, -8/3, -4/3: only 8 is as extreme.
    test = permutation_test([1, 2, 3], [10])
    assert test.diff == pytest.approx(8.0) and test.p == pytest.approx(1 / 4)
    assert permutation_min_p(3, 1) == pytest.approx(1 / 4)


def test_three_seeds_against_three_cannot_be_significant():
    test = permutation_test([95.0, 95.1, 95.2], [90.0, 90.1, 90.2])
    assert test.p == pytest.approx(2 / 20) == test.p_min  # C(6, 3) = 20 splits, two as extreme
    assert test.significant(0.05) is None and test.significant(0.2) is True
    assert (test.low, test.high) == (-math.inf, math.inf)  # no shift is rejected at 5 %


def test_four_seeds_each_are_enough_and_the_interval_inverts_the_test():
    base, new = np.array([95.0, 95.2, 95.4, 95.6]), np.array([94.0, 94.1, 94.3, 94.4])
    test = permutation_test(base, new)
    assert test.p == pytest.approx(2 / 70) and test.significant(0.05) is True
    assert test.low < test.diff < test.high < 0
    for end, outward in ((test.low, -1e-6), (test.high, 1e-6)):
        assert permutation_test(base, new - (end - outward)).p > 0.05     # just inside: kept
        assert permutation_test(base, new - (end + outward)).p <= 0.05    # just outside: rejected


def test_overlapping_seeds_are_not_significant():
    test = permutation_test([95.0, 96.0, 97.0, 98.0], [94.5, 95.5, 96.5, 97.5])
    assert test.p > 0.5 and test.significant(0.05) is False and test.low < 0 < test.high


def test_many_seeds_use_seeded_random_splits():
    rng = np.random.default_rng(3)
    base, new = rng.normal(0, 1, 12), rng.normal(1.5, 1, 12)  # C(24, 12) splits: too many
    first, again = permutation_test(base, new), permutation_test(base, new)
    assert first == again and first.p_min == pytest.approx(1 / (RESAMPLES + 1))
    assert first.p < 0.01 and first.low < first.diff < first.high


def test_empty_side_has_no_test():
    assert permutation_test([], [1.0]) is None


def test_paired_test_finds_a_large_real_difference():
    rng = np.random.default_rng(0)
    base = rng.random((3, 10_000)) < 0.985
    new = base & (rng.random((3, 10_000)) > 0.01)  # NEW loses about 1 % of what BASE got right
    test = paired_accuracy_test(base, new)
    assert test.diff == pytest.approx(new.mean() - base.mean())
    assert test.p < 1e-10 and test.significant(0.05) is True
    assert test.low < test.diff < test.high < 0


def test_paired_test_on_few_samples_is_not_significant():
    base = np.ones((1, 20), bool)
    base[0, 0] = False                        # 19 of 20 right
    new = base.copy()
    new[0, 1] = False                         # 18 of 20: -5 points, one discordant pair
    test = paired_accuracy_test(base, new)
    assert test.diff == pytest.approx(-0.05) and test.p == 1.0
    assert test.significant(0.05) is False and test.low < 0 <= test.high


def test_paired_bootstrap_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    base = rng.random((2, 5000)) < 0.9
    new = rng.random((2, 5000)) < 0.92
    d = (new.astype(float) - base).mean(axis=0)
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    low, high = paired_bootstrap(base, new)
    assert low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.15 * half)


def test_estimate_in_other_units():
    est = Estimate(0.01, -0.02, 0.04, 0.3, 0.0, "m").affine(100)
    assert (est.diff, est.low, est.high, est.p) == pytest.approx((1.0, -2.0, 4.0, 0.3))
    ratio = Estimate(0.5, -math.inf, 1.0, 0.3, 0.5, "m").affine(1 / 2, 1.0)
    assert (ratio.diff, ratio.low, ratio.high) == (1.25, -math.inf, 1.5)
