"""Is one model better than another, and how do models rank over datasets? The tests behind
the leaderboard, on plain arrays (no results files here).

- Two models on one dataset: :func:`prediction_test` when both stored their test predictions
  on the same samples and seeds (McNemar's exact test for one seed, the Wilcoxon signed-rank
  test over samples for several), else :func:`seed_test` (a permutation test of
  the per-seed accuracies). Every difference is A − B.
- A family of such tests: :func:`holm` adjusts their p-values.
- Several models over several datasets: :func:`rank_test`, mean ranks, the Friedman test and
  the Nemenyi critical difference (Demšar, JMLR 7, 2006).

scipy.stats does the tests it provides (binomial, Wilcoxon, Friedman, studentized range);
Holm's step-down adjustment and the Nemenyi critical difference are written here because
scipy has neither. scipy is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqbench.reporting.stats import paired_bootstrap, permutation_test

ALPHA = 0.05


@dataclass(frozen=True)
class Difference:
    """accuracy(A) − accuracy(B) as a fraction, its ``1 − alpha`` interval, the two-sided p-value
    of "no difference", the smallest p-value the test could give here, the test's name and
    what it was computed over (``n`` samples or seeds)."""

    diff: float
    low: float
    high: float
    p: float
    p_min: float
    method: str
    over: str

    def can_reject(self, alpha: float = ALPHA) -> bool:
        """Whether this test could find a difference at ``alpha`` at all (else "tied" means nothing)."""
        return self.p_min <= alpha


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    Sorted ascending p₍₁₎ ≤ … ≤ p₍ₘ₎: adj₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1) · p₍ⱼ₎).
    (Written here: scipy has no multiple-comparison adjustment but Benjamini-Hochberg.)
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (m - step) * p_values[i]))
        adjusted[i] = running
    return adjusted


def prediction_test(correct_a: np.ndarray, correct_b: np.ndarray, alpha: float = ALPHA) -> Difference:
    """A − B on the same test samples and seeds; both arrays ``(seeds, n_test)`` booleans.

    One seed: McNemar's exact test (the discordant samples go either way with probability ½).
    Several: per sample d_i = mean over seeds of (right_A − right_B), and the Wilcoxon
    signed-rank test of the d_i (a sample's two models exchangeable under "no difference"; the
    samples on which both agree, d_i = 0, dropped; ties handled by scipy's normal approximation).
    A sample's seeds stay together: pooling them into one McNemar test would count one test
    image seen three times as three independent observations. The interval is the paired
    bootstrap over samples.
    """
    from scipy import stats

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    seeds, n = a.shape
    d = (a.astype(float) - b.astype(float)).mean(axis=0)
    low, high = paired_bootstrap(b, a, alpha)
    over = f"{n:,} test samples × {seeds} seed{'s' * (seeds > 1)}"
    if seeds == 1:
        wins, losses = int(np.sum(a & ~b)), int(np.sum(~a & b))
        p = stats.binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
        return Difference(float(d.mean()), low, high, float(p), float(0.5 ** (n - 1)), "McNemar's exact test", over)
    method = "Wilcoxon signed-rank test over samples"
    p_min = 0.5 ** (n - 1)  # every sample discordant, all one way
    discordant = d[d != 0]
    if len(discordant) == 0:
        return Difference(0.0, low, high, 1.0, p_min, method, over)
    p = stats.wilcoxon(discordant).pvalue
    return Difference(float(d.mean()), low, high, float(p), p_min, method, over)


def seed_test(acc_a: Sequence[float], acc_b: Sequence[float], alpha: float = ALPHA) -> Difference:
    """A − B from the per-seed accuracies (fractions): the exact two-sided permutation test of
    "the seeds are exchangeable" and the interval of shifts it does not reject (shared with
    ``seqbench compare``, :func:`seqbench.reporting.stats.permutation_test`)."""
    estimate = permutation_test(acc_b, acc_a, alpha)
    if estimate is None:
        raise ValueError("a seed test needs at least one seed on each side")
    over = f"{len(acc_a)} against {len(acc_b)} seed{'s' * (len(acc_b) > 1)}"
    return Difference(estimate.diff, estimate.low, estimate.high, estimate.p, estimate.p_min,
                      "permutation test over seeds", over)


# --- over datasets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RankTest:
    """Models ranked on each of ``n_datasets`` datasets (1 = best, ties share the mean rank).

    ``friedman_p`` tests "all models rank alike" (χ²_F with k − 1 degrees of freedom; None below
    3 models, where scipy's test is undefined); ``iman_davenport_p`` is its less conservative F
    form (Demšar §3.2.2). ``cd`` is the Nemenyi critical difference of mean ranks at ``alpha``;
    ``groups`` are the maximal runs of models, in mean-rank order, within ``cd`` of each other
    (the bars of a critical-difference diagram).
    """

    names: list[str]
    mean_ranks: list[float]
    n_datasets: int
    friedman_chi2: float | None
    friedman_p: float | None
    iman_davenport_f: float | None
    iman_davenport_p: float | None
    cd: float
    alpha: float
    groups: list[list[str]]

    def order(self) -> list[str]:
        """Names from the best mean rank to the worst."""
        return [n for _, n in sorted(zip(self.mean_ranks, self.names, strict=True))]


def ranks(scores: np.ndarray) -> np.ndarray:
    """Per row (dataset), rank 1 for the highest score, ties sharing their mean rank."""
    from scipy.stats import rankdata

    return np.vstack([rankdata(-row) for row in np.asarray(scores, float)])


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """The Nemenyi critical difference of mean ranks, k models over n datasets:
    q_α · √(k(k + 1) / 6n) with q_α the studentized range quantile over √2 (Demšar, eq. in §3.2.2).
    (scipy gives the studentized range; the formula is written here.)"""
    from scipy.stats import studentized_range

    q = studentized_range.ppf(1 - alpha, k, math.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def _groups(names: list[str], mean_ranks: list[float], cd: float) -> list[list[str]]:
    """Maximal runs of consecutive models (by mean rank) whose ranks span less than ``cd``,
    those of more than one model only, none contained in another."""
    ordered = sorted(zip(mean_ranks, names, strict=True))
    runs: list[tuple[int, int]] = []
    for start in range(len(ordered)):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1][0] - ordered[start][0] < cd:
            end += 1
        if end > start and not any(s <= start and end <= e for s, e in runs):
            runs.append((start, end))
    return [[name for _, name in ordered[s:e + 1]] for s, e in runs]


def rank_test(scores: np.ndarray, names: Sequence[str], alpha: float = ALPHA) -> RankTest:
    """Mean ranks, Friedman and Nemenyi over a ``(datasets, models)`` array of scores (higher better)."""
    from scipy import stats

    scores = np.asarray(scores, float)
    n, k = scores.shape
    if n < 2 or k < 2:
        raise ValueError(f"a rank test needs at least 2 datasets and 2 models, not {n} and {k}")
    mean_ranks = ranks(scores).mean(axis=0)
    chi2 = p = f = p_f = None
    if k >= 3:
        result = stats.friedmanchisquare(*scores.T)
        chi2, p = float(result.statistic), float(result.pvalue)
        if n * (k - 1) - chi2 > 0:
            f = (n - 1) * chi2 / (n * (k - 1) - chi2)
            p_f = float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))
    cd = nemenyi_cd(k, n, alpha)
    listed = [float(r) for r in mean_ranks]
    return RankTest(list(names), listed, n, chi2, p, f, p_f, cd, alpha, _groups(list(names), listed, cd))
