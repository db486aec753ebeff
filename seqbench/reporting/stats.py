"""Is NEW different from BASE? Permutation tests over seeds, McNemar's test and a paired
bootstrap over test predictions, in pure NumPy.

Every difference is NEW − BASE. A test gives a two-sided p-value for "no difference"; its
interval is the ``1 − alpha`` confidence interval of the difference. ``p_min`` is the smallest
p-value the test could give with this many observations, whatever the data: a test whose
``p_min`` exceeds ``alpha`` cannot find anything significant (three seeds against three:
``p_min`` = 2 / C(6, 3) = 0.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

MAX_EXACT = 50_000  # up to this many splits, a permutation test enumerates them all
RESAMPLES = 10_000  # random splits or bootstrap resamples beyond that
SEED = 0  # random splits and resamples are seeded: the same data give the same answer
_DOUBLINGS, _BISECTIONS = 100, 60  # searching an interval's ends


@dataclass(frozen=True)
class Estimate:
    """A difference NEW − BASE, its confidence interval, p-value and the test's smallest p-value.

    ``low``/``high`` are infinite where the test cannot reject any difference at the level.
    """

    diff: float
    low: float
    high: float
    p: float
    p_min: float
    method: str

    def significant(self, alpha: float) -> bool | None:
        """p ≤ alpha; None when the test cannot reach ``alpha`` at all (p_min > alpha)."""
        return None if self.p_min > alpha else self.p <= alpha

    def affine(self, scale: float, offset: float = 0.0) -> Estimate:
        """The same estimate in other units: ``offset + scale · x`` (``scale`` > 0)."""
        def f(x: float) -> float:
            return offset + scale * x
        return Estimate(f(self.diff), f(self.low), f(self.high), self.p, self.p_min, self.method)


# --- permutation test over seeds --------------------------------------------------------------


def _split_weights(n_base: int, n_new: int) -> np.ndarray:
    """One row per split of the pooled values into a BASE group and a NEW group; ``w · z`` is
    mean(NEW group) − mean(BASE group). The first row is the observed split.

    All C(n_base + n_new, n_new) splits when at most :data:`MAX_EXACT`, else the observed one
    and :data:`RESAMPLES` random ones.
    """
    total = n_base + n_new
    observed = np.r_[np.zeros(n_base, bool), np.ones(n_new, bool)]
    if math.comb(total, n_new) <= MAX_EXACT:
        masks = np.zeros((math.comb(total, n_new), total), bool)
        for row, chosen in enumerate(combinations(range(total), n_new)):
            masks[row, list(chosen)] = True
        masks = np.vstack([observed, masks[~(masks == observed).all(axis=1)]])
    else:
        rng = np.random.default_rng(SEED)
        shuffled = np.array([rng.permutation(observed) for _ in range(RESAMPLES)])
        masks = np.vstack([observed, shuffled])
    return np.where(masks, 1.0 / n_new, -1.0 / n_base)


def _permutation_p(weights: np.ndarray, pooled: np.ndarray) -> float:
    """p = #{splits s : |T_s| ≥ |T_observed|} / #splits, with T_s = w_s · pooled."""
    t = weights @ pooled
    tolerance = 1e-9 * (1.0 + float(np.abs(pooled).max()))
    return float(np.mean(np.abs(t) >= abs(t[0]) - tolerance))


def permutation_min_p(n_base: int, n_new: int) -> float:
    """The smallest p-value :func:`permutation_test` can give: 1 / #splits (2 / #splits when the
    groups have the same size, as a split and its mirror image are then equally extreme)."""
    splits = math.comb(n_base + n_new, n_new)
    if splits > MAX_EXACT:
        return 1.0 / (RESAMPLES + 1)
    return (2.0 if n_base == n_new else 1.0) / splits


def permutation_test(base: Sequence[float], new: Sequence[float], alpha: float = 0.05) -> Estimate | None:
    """mean(NEW) − mean(BASE) and the two-sided permutation test of "the seeds are exchangeable".

    p = #{splits s of the pooled values : |T_s| ≥ |T|} / #splits, T = mean(NEW) − mean(BASE),
    exact over all splits when there are few. The interval holds the shifts δ that the same
    test does not reject at ``alpha`` when applied to BASE and NEW − δ. None with no value on
    either side.
    """
    a, b = np.asarray(base, float), np.asarray(new, float)
    if len(a) == 0 or len(b) == 0:
        return None
    weights = _split_weights(len(a), len(b))
    diff = float(b.mean() - a.mean())
    p_min = permutation_min_p(len(a), len(b))
    low, high = -math.inf, math.inf
    if p_min <= alpha:
        def rejects(delta: float) -> bool:
            return _permutation_p(weights, np.r_[a, b - delta]) <= alpha

        spread = float(np.ptp(np.r_[a, b])) or 1.0
        low, high = (_boundary(rejects, diff, direction * spread) for direction in (-1, 1))
    p = _permutation_p(weights, np.r_[a, b])
    return Estimate(diff, low, high, p, p_min, "permutation test over seeds")


def _boundary(rejects: Callable[[float], bool], start: float, step: float) -> float:
    """Where ``rejects`` turns true going from ``start`` (not rejected) by doubling ``step``s,
    to bisection precision; infinite if it never does."""
    inside, outside = start, start + step
    for _ in range(_DOUBLINGS):
        if rejects(outside):
            break
        inside, outside, step = outside, outside + 2 * step, 2 * step
    else:
        return math.copysign(math.inf, step)
    for _ in range(_BISECTIONS):
        middle = (inside + outside) / 2
        inside, outside = (inside, middle) if rejects(middle) else (middle, outside)
    return (inside + outside) / 2


# --- paired tests on per-sample predictions -----------------------------------------------------


def mcnemar_exact(b: int, c: int) -> float:
    """McNemar's exact test: two-sided p-value of "discordant pairs go either way with
    probability ½".

    b = #(BASE right, NEW wrong), c = #(BASE wrong, NEW right), n = b + c;
    p = min(1, 2 · Σ_{k ≤ min(b, c)} C(n, k) / 2ⁿ); p = 1 when n = 0.
    """
    n, low = b + c, min(b, c)
    if n == 0:
        return 1.0
    k = np.arange(1, low + 1)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log((n - k + 1) / k))]) - n * math.log(2)
    top = log_terms.max()
    return min(1.0, 2.0 * float(np.exp(top) * np.exp(log_terms - top).sum()))


def paired_bootstrap(base_correct: np.ndarray, new_correct: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The ``1 − alpha`` percentile bootstrap interval of accuracy(NEW) − accuracy(BASE).

    Both arrays are ``(seeds, n_test)`` booleans (prediction right or wrong), seed by seed
    on the same test samples. Test samples are resampled with replacement, each carrying its
    d_i = mean over seeds of (new_correct − base_correct); the difference is mean(d).
    """
    d = (new_correct.astype(float) - base_correct.astype(float)).mean(axis=0)
    values, counts = np.unique(d, return_counts=True)
    n = len(d)
    rng = np.random.default_rng(SEED)
    means = rng.multinomial(n, counts / n, size=RESAMPLES) @ values / n
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_accuracy_test(base_correct: np.ndarray, new_correct: np.ndarray, alpha: float = 0.05) -> Estimate:
    """accuracy(NEW) − accuracy(BASE) on the same test samples and seeds: McNemar's exact test
    on the discordant pairs of all seeds, and the paired bootstrap interval."""
    b = int(np.sum(base_correct & ~new_correct))
    c = int(np.sum(~base_correct & new_correct))
    diff = (c - b) / base_correct.size
    low, high = paired_bootstrap(base_correct, new_correct, alpha)
    p_min = mcnemar_exact(base_correct.size, 0)
    return Estimate(diff, low, high, mcnemar_exact(b, c), p_min, "McNemar's exact test")
