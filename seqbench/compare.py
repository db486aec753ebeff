"""Compare two runs pair by pair, warn where they are not comparable, and gate on thresholds.

Pairs are matched by model × dataset and aggregated over their ``ok`` seeds. The accuracy
difference is in percentage points (NEW − BASE), the time ratio is NEW / BASE seconds per
epoch. The seed-to-seed spread of a difference is ``sqrt(std_base² + std_new²)`` (a side with
one seed borrows the other side's std); a difference is "beyond spread" when larger than it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from seqbench.tables import (
    Column,
    Stat,
    Table,
    accuracy_stat,
    dig,
    fixed,
    group_pairs,
    group_status,
    machine_rows,
    pair_reason,
    pairs_of,
    time_stat,
)

Key = tuple[str, str]
_EPS = 1e-9  # a difference exactly at a threshold is not past it
FAILING_STATUSES = ("diverged", "failed")


def _name(key: Key) -> str:
    return f"{key[0]} on {key[1]}"


@dataclass(frozen=True)
class Threshold:
    """A gate: ``accuracy`` drop in percentage points (≤ 0) or ``time`` increase in % (≥ 0)."""

    metric: str
    limit: float

    def __str__(self) -> str:
        return f"accuracy:{self.limit:+g}pp" if self.metric == "accuracy" else f"time:{self.limit:+g}%"


_THRESHOLD = re.compile(r"(?P<metric>[a-z]+):(?P<value>[+-]?(\d+(\.\d*)?|\.\d+))(?P<unit>pp|%)?")


def parse_threshold(text: str) -> Threshold:
    """``accuracy:-0.5`` (or ``-0.5pp``) or ``time:+10%``; ValueError with the reason otherwise."""
    match = _THRESHOLD.fullmatch(text.strip())
    if match is None or match["metric"] not in ("accuracy", "time"):
        raise ValueError(f"{text!r} is not METRIC:LIMIT, e.g. accuracy:-0.5 or time:+10%")
    value, unit = float(match["value"]), match["unit"]
    if match["metric"] == "accuracy" and (unit == "%" or value > 0):
        raise ValueError(f"{text!r}: an accuracy limit is a drop in percentage points, e.g. accuracy:-0.5")
    if match["metric"] == "time" and (unit != "%" or value < 0):
        raise ValueError(f"{text!r}: a time limit is a slowdown in percent, e.g. time:+10%")
    return Threshold(match["metric"], value)


def _spread(base: Stat, new: Stat) -> float | None:
    """The seed-to-seed spread of a difference: sqrt(std_base² + std_new²), stds borrowed."""
    sb = base.std if base.std is not None else new.std
    sn = new.std if new.std is not None else base.std
    return None if sb is None else math.hypot(sb, sn)


@dataclass
class PairComparison:
    """One model × dataset in both runs: accuracy (%) and seconds per epoch, BASE and NEW."""

    model: str
    dataset: str
    base_status: str
    new_status: str
    base_accuracy: Stat | None
    new_accuracy: Stat | None
    base_time: Stat | None
    new_time: Stat | None
    new_reason: str | None = None

    @property
    def accuracy_diff(self) -> Stat | None:
        """NEW − BASE in percentage points, ± the seed-to-seed spread."""
        if self.base_accuracy is None or self.new_accuracy is None:
            return None
        diff = self.new_accuracy.mean - self.base_accuracy.mean
        n = min(self.base_accuracy.n, self.new_accuracy.n)
        return Stat(diff, _spread(self.base_accuracy, self.new_accuracy), n)

    @property
    def time_ratio(self) -> Stat | None:
        """NEW / BASE seconds per epoch, ± the spread propagated from relative stds."""
        if not self.base_time or not self.new_time or self.base_time.mean <= 0:
            return None
        ratio = self.new_time.mean / self.base_time.mean
        relative = _spread(_relative(self.base_time), _relative(self.new_time))
        n = min(self.base_time.n, self.new_time.n)
        return Stat(ratio, None if relative is None else ratio * relative, n)


def _relative(s: Stat) -> Stat:
    return Stat(1.0, None if s.std is None or s.mean == 0 else s.std / s.mean, s.n)


def beyond_spread(diff: Stat | None, center: float = 0.0) -> str | None:
    """``yes``/``no``: is ``|mean − center|`` larger than the spread; None if unknown."""
    if diff is None or diff.std is None:
        return None
    return "yes" if abs(diff.mean - center) > diff.std else "no"


@dataclass(frozen=True)
class Regression:
    """A model × dataset past a threshold, and why, in one line."""

    key: Key
    message: str

    def __str__(self) -> str:
        return f"{_name(self.key)}: {self.message}"


@dataclass
class Comparison:
    """Two runs side by side: matched pairs, unmatched ones, warnings and the gate's verdict."""

    pairs: list[PairComparison]
    only_base: list[Key]
    only_new: list[Key]
    thresholds: list[Threshold]
    warnings: list[str]
    regressions: list[Regression]

    @property
    def failed(self) -> bool:
        return bool(self.regressions)


def _pair_comparison(key: Key, base: list[dict], new: list[dict]) -> PairComparison:
    """Aggregate one model × dataset's seeds on both sides."""
    failing = [p for p in new if p.get("status") in FAILING_STATUSES]
    return PairComparison(
        model=key[0], dataset=key[1],
        base_status=group_status(base), new_status=group_status(new),
        base_accuracy=accuracy_stat(base), new_accuracy=accuracy_stat(new),
        base_time=time_stat(base), new_time=time_stat(new),
        new_reason=pair_reason(failing[0]) if failing else None,
    )


def _regression(pc: PairComparison, threshold: Threshold) -> str | None:
    """Why ``pc`` is past ``threshold``, or None. A NEW run that lost its accuracy to a
    divergence or failure is past any accuracy threshold."""
    if threshold.metric == "accuracy":
        diff = pc.accuracy_diff
        if diff is not None and diff.mean < threshold.limit - _EPS:
            return f"accuracy {diff.mean:+.2f} pp, past the limit {threshold.limit:+g} pp"
        if diff is None and pc.base_accuracy is not None and pc.new_reason:
            return f"no test accuracy in NEW ({pc.new_reason})"
        return None
    ratio = pc.time_ratio
    if ratio is not None and (ratio.mean - 1) * 100 > threshold.limit + _EPS:
        return (f"{ratio.mean:.2f}× seconds per epoch ({(ratio.mean - 1) * 100:+.1f} %),"
                f" past the limit {threshold.limit:+g} %")
    return None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value[:19] + "…" if value.startswith("sha256:") and len(value) > 20 else value
    return json.dumps(value)


def _diff(base: Any, new: Any) -> list[str]:
    """``key BASE → NEW`` for each differing key of two dicts, or ``BASE → NEW`` for values."""
    if isinstance(base, dict) and isinstance(new, dict):
        keys = sorted(set(base) | set(new), key=str)
        return [f"{k} {_show(base.get(k))} → {_show(new.get(k))}" for k in keys if base.get(k) != new.get(k)]
    return [] if base == new else [f"{_show(base)} → {_show(new)}"]


def _warning(subject: str, diffs: list[str]) -> list[str]:
    return [f"{subject}: {', '.join(diffs)}"] if diffs else []


def _hardware(results: dict[str, Any]) -> dict[str, Any]:
    machine = dig(results, "environment", "machine") or {}
    return {k: v for k, v in machine.items() if k in ("cpu", "cpu_count") or "gpu" in k}


def _software(results: dict[str, Any]) -> dict[str, Any]:
    env = results.get("environment") or {}
    return {"python": env.get("python"), **(env.get("packages") or {}), **(env.get("plugins") or {})}


def _config(results: dict[str, Any]) -> dict[str, Any]:
    config = results.get("config") or {}
    return {k: config.get(k) for k in ("seeds", "quick", "protocol")}


def _first(pairs: list[dict], *path: str) -> Any:
    return next((v for v in (dig(p, *path) for p in pairs) if v is not None), None)


def _devices(pairs: list[dict]) -> str | None:
    return " / ".join(sorted({p["device"] for p in pairs if p.get("device")})) or None


def _fingerprints(groups: dict[Key, list[dict]], keys: list[Key]) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for key in keys:
        for pair in groups[key]:
            if dig(pair, "dataset_info", "fingerprint"):
                found.setdefault(key[1], set()).add(pair["dataset_info"]["fingerprint"])
    return {dataset: ", ".join(sorted(fps)) for dataset, fps in found.items()}


def _warnings(base: dict, new: dict, groups: tuple[dict, dict], keys: list[Key]) -> list[str]:
    """Why the runs may not be comparable: data, hardware, configs, software."""
    bg, ng = groups
    bf, nf = _fingerprints(bg, keys), _fingerprints(ng, keys)
    warnings = [
        w for dataset in bf.keys() & nf.keys()
        for w in _warning(f"{dataset}: different data (fingerprint)", _diff(bf[dataset], nf[dataset]))
    ]
    warnings += _warning("different hardware", _diff(_hardware(base), _hardware(new)))
    warnings += _warning("different configs", _diff(_config(base), _config(new)))
    warnings += _warning("different software", _diff(_software(base), _software(new)))
    for key in keys:
        warnings += _warning(f"{_name(key)}: different device", _diff(_devices(bg[key]), _devices(ng[key])))
        bp, np_ = _first(bg[key], "params"), _first(ng[key], "params")
        if bp is not None and np_ is not None:
            warnings += _warning(f"{_name(key)}: different params", _diff(bp, np_))
    return warnings


def compare_runs(base: dict[str, Any], new: dict[str, Any], thresholds: Iterable[Threshold] = ()) -> Comparison:
    """Match BASE and NEW by model × dataset, list warnings and the regressions past ``thresholds``."""
    bg, ng = group_pairs(pairs_of(base)), group_pairs(pairs_of(new))
    keys = [k for k in bg if k in ng]
    only_base, only_new = [k for k in bg if k not in ng], [k for k in ng if k not in bg]
    pairs = [_pair_comparison(k, bg[k], ng[k]) for k in keys]
    thresholds = list(thresholds)
    warnings = (
        _warnings(base, new, (bg, ng), keys)
        + _warning("only in BASE", [_name(k) for k in only_base])
        + _warning("only in NEW", [_name(k) for k in only_new])
    )
    regressions = [
        Regression((pc.model, pc.dataset), message)
        for pc in pairs
        for message in (_regression(pc, t) for t in thresholds)
        if message
    ]
    return Comparison(pairs, only_base, only_new, thresholds, warnings, regressions)


COMPARE_COLUMNS = [
    Column("model", "model"),
    Column("dataset", "dataset"),
    Column("status", "status"),
    Column("base_accuracy_pct", "BASE acc (%)", fixed(2), stat=True),
    Column("new_accuracy_pct", "NEW acc (%)", fixed(2), stat=True),
    Column("accuracy_diff_pp", "Δ acc (pp)", lambda x: f"{x:+.2f}", stat=True),
    Column("accuracy_beyond_spread", "acc > spread"),
    Column("base_seconds_per_epoch", "BASE s/epoch", fixed(2), stat=True),
    Column("new_seconds_per_epoch", "NEW s/epoch", fixed(2), stat=True),
    Column("time_ratio", "time ×", fixed(2), stat=True),
    Column("time_beyond_spread", "time > spread"),
    Column("gate", "gate"),
]


def _status(pc: PairComparison) -> str:
    return pc.base_status if pc.base_status == pc.new_status else f"{pc.base_status} → {pc.new_status}"


def _row(pc: PairComparison, failing: set[Key]) -> dict[str, Any]:
    return {
        "model": pc.model,
        "dataset": pc.dataset,
        "status": _status(pc),
        "base_accuracy_pct": pc.base_accuracy,
        "new_accuracy_pct": pc.new_accuracy,
        "accuracy_diff_pp": pc.accuracy_diff,
        "accuracy_beyond_spread": beyond_spread(pc.accuracy_diff),
        "base_seconds_per_epoch": pc.base_time,
        "new_seconds_per_epoch": pc.new_time,
        "time_ratio": pc.time_ratio,
        "time_beyond_spread": beyond_spread(pc.time_ratio, center=1.0),
        "gate": "FAIL" if (pc.model, pc.dataset) in failing else None,
    }


def comparison_table(comparison: Comparison) -> Table:
    """One row per model × dataset present in both runs."""
    failing = {r.key for r in comparison.regressions}
    return Table("Comparison", COMPARE_COLUMNS, [_row(pc, failing) for pc in comparison.pairs])


def verdict(comparison: Comparison) -> str:
    """One line, then one line per regression."""
    if not comparison.thresholds:
        return "no --fail-on thresholds given: nothing gated"
    limits = ", ".join(map(str, comparison.thresholds))
    if not comparison.failed:
        return f"OK: no regression past {limits}"
    lines = [f"REGRESSION past {limits}:"] + [f"  {r}" for r in comparison.regressions]
    return "\n".join(lines)


def comparison_json(comparison: Comparison) -> str:
    """Everything as one JSON document: rows, pairs in one run only, warnings, verdict."""
    return json.dumps({
        "pairs": machine_rows(comparison_table(comparison)),
        "only_in_base": [list(k) for k in comparison.only_base],
        "only_in_new": [list(k) for k in comparison.only_new],
        "warnings": comparison.warnings,
        "thresholds": [str(t) for t in comparison.thresholds],
        "regressions": [str(r) for r in comparison.regressions],
        "failed": comparison.failed,
    }, indent=2) + "\n"
