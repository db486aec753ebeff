"""The gate: which thresholds a compared model × dataset is past, and whether significantly;
the seeds NEW lacks; metric thresholds resolved against the runs."""

from __future__ import annotations

from seqbench.reporting.compare.model import (
    Directions,
    Key,
    Missing,
    PairComparison,
    Threshold,
    ThresholdError,
    key_name,
)
from seqbench.reporting.compare.render import p_text
from seqbench.reporting.query import ok_pairs, pair_reason
from seqbench.schema.types import PairRecord

_EPS = 1e-9  # a difference exactly at a threshold is not past it


def _past_metric(pc: PairComparison, threshold: Threshold) -> str | None:
    """How a metric scalar of ``pc`` is past ``threshold`` (whose sign is the worse way), or None."""
    mc = pc.metrics.get(threshold.metric)
    if mc is None or mc.test is None:
        return None
    change = mc.test.diff
    if threshold.relative:
        if not mc.base or mc.base.mean == 0:
            return None
        change = 100 * change / abs(mc.base.mean)
    worse = change < threshold.limit - _EPS if threshold.higher_is_better else change > threshold.limit + _EPS
    if not worse:
        return None
    unit = " %" if threshold.relative else ""
    return f"{threshold.metric} {change:+.4g}{unit}, past the limit {threshold.limit:+g}{unit}"


def _past(pc: PairComparison, threshold: Threshold) -> str | None:
    """How ``pc`` is past ``threshold``, or None."""
    if threshold.metric not in ("accuracy", "time"):
        return _past_metric(pc, threshold)
    if threshold.metric == "accuracy":
        test = pc.accuracy
        if test is not None and test.diff < threshold.limit - _EPS:
            return f"accuracy {test.diff:+.2f} pp, past the limit {threshold.limit:+g} pp"
        return None
    ratio = pc.time
    if ratio is not None and (ratio.diff - 1) * 100 > threshold.limit + _EPS:
        return (f"{ratio.diff:.2f}× seconds per epoch ({(ratio.diff - 1) * 100:+.1f} %),"
                f" past the limit {threshold.limit:+g} %")
    return None


def _no_ratio(pc: PairComparison) -> str:
    """Why a comparable pair has no time ratio NEW / BASE."""
    for label, side in (("BASE", pc.base_time), ("NEW", pc.new_time)):
        if side is None:
            return f"{label} has no seconds per epoch"
    assert pc.base_time is not None
    return f"BASE has {pc.base_time.mean:g} seconds per epoch (the ratio NEW / BASE is undefined)"


def gate_pair(pc: PairComparison, threshold: Threshold, alpha: float) -> tuple[str | None, str | None]:
    """(why ``pc`` fails ``threshold``, why it is past it yet passes); each None where not.

    A NEW run that lost all its accuracy to a divergence or failure fails any accuracy threshold.
    """
    if threshold.metric == "accuracy" and not pc.new_accuracy and pc.base_accuracy and pc.new_reason:
        return f"no test accuracy in NEW ({pc.new_reason})", None
    if threshold.metric == "time" and pc.comparable and pc.time is None:
        return f"time cannot be gated: {_no_ratio(pc)}", None
    past = _past(pc, threshold)
    if past is None:
        return None, None
    test = pc.deciding_test(threshold.metric, alpha)
    if test is None:
        without = " and no paired predictions" if threshold.metric == "accuracy" else ""
        return f"{past}; significance unknown (no test can reach p ≤ {alpha:g} with these seeds{without})", None
    if test.significant(alpha):
        return f"{past}, significant ({p_text(test.p)}, {test.method})", None
    return None, (f"{key_name((pc.model, pc.dataset))}: {past} but not significant"
                  f" ({p_text(test.p)} > {alpha:g}, {test.method}): not gated")


def missing_seeds(bg: dict[Key, list[PairRecord]], ng: dict[Key, list[PairRecord]]) -> list[Missing]:
    """Every ok seed of BASE without an ok record of the same seed in NEW."""
    missing = []
    for key, pairs in bg.items():
        new_by_seed: dict[int, list[PairRecord]] = {}
        for pair in ng.get(key, []):
            new_by_seed.setdefault(pair["seed"], []).append(pair)
        for pair in ok_pairs(pairs):
            records = new_by_seed.get(pair["seed"], [])
            if not records:
                missing.append(Missing(key, pair["seed"]))
            elif not ok_pairs(records):
                missing.append(Missing(key, pair["seed"], records[0].get("status") or "failed",
                                       pair_reason(records[0])))
    return missing


def resolve_threshold(threshold: Threshold, names: list[str], directions: Directions | None) -> Threshold:
    """A metric threshold named by its scalar (``top2.top2_accuracy``, or ``top2`` for a metric with
    one scalar), checked against the metric's direction; ThresholdError where it cannot apply."""
    if threshold.metric in ("accuracy", "time"):
        return threshold
    name = threshold.metric
    if name not in names:
        inner = [n for n in names if n.startswith(f"{name}.")]
        if len(inner) != 1:
            have = ", ".join(n for n in names if n not in BUILTIN_SCALARS) or "none"
            raise ThresholdError(f"--fail-on {threshold}: no metric scalar {name!r} in BASE or NEW "
                                 f"(metric scalars: {have})" if not inner else
                                 f"--fail-on {threshold}: metric {name!r} has several scalars; name one: "
                                 f"{', '.join(inner)}")
        name = inner[0]
    higher = directions(name) if directions is not None else None
    if higher is None:
        raise ThresholdError(f"--fail-on {threshold}: the metric does not say whether a higher {name} is better "
                             "(MetricSpec.higher_is_better)")
    if threshold.limit and (threshold.limit < 0) != higher:
        way, sign = ("higher", "a drop, e.g. -0.01") if higher else ("lower", "a rise, e.g. +0.01")
        raise ThresholdError(f"--fail-on {threshold}: a {way} {name} is better, so its limit is {sign}")
    return Threshold(name, threshold.limit, threshold.relative, higher)


#: Built-in scalars, named only when a limit asks for them.
BUILTIN_SCALARS = ("accuracy", "accuracy.n")
