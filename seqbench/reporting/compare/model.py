"""What a comparison is: the thresholds it gates on, one model × dataset in both runs, and the
whole comparison with its verdict's exit code."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from seqbench.reporting.query import Stat

if TYPE_CHECKING:  # seqbench.reporting.stats imports NumPy: only where a comparison is made
    from seqbench.reporting.stats import Estimate


Key = tuple[str, str]
FAILING_STATUSES = ("diverged", "failed")
DEFAULT_ALPHA = 0.05
EXIT_OK = 0
EXIT_REGRESSION = 1  # a difference past a --fail-on limit and significant
EXIT_NOTHING_COMPARABLE = 3  # no model × dataset has an ok seed in both runs
EXIT_MISSING = 4  # an ok seed of BASE is missing or not ok in NEW (without --allow-missing)


def key_name(key: Key) -> str:
    return f"{key[0]} on {key[1]}"


@dataclass(frozen=True)
class Threshold:
    """A gate: ``accuracy`` drop in percentage points (≤ 0), ``time`` increase in % (≥ 0), or a
    metric scalar's change (NEW − BASE) past ``limit``, in its units or, ``relative``, in % of
    BASE's mean; its sign is the worse direction."""

    metric: str
    limit: float
    relative: bool = False
    higher_is_better: bool | None = None  # a metric's, once resolved against the runs

    def __str__(self) -> str:
        if self.metric == "accuracy":
            return f"accuracy:{self.limit:+g}pp"
        return f"{self.metric}:{self.limit:+g}" + ("%" if self.relative or self.metric == "time" else "")


#: Which way is better for a metric scalar (``top2.top2_accuracy``): True higher, False lower,
#: None not declared; raises :class:`ThresholdError` for a metric unknown to the caller.
Directions = Callable[[str], "bool | None"]
_THRESHOLD = re.compile(r"(?P<metric>[A-Za-z0-9][A-Za-z0-9._-]*):(?P<value>[+-]?(\d+(\.\d*)?|\.\d+))(?P<unit>pp|%)?")


class ThresholdError(ValueError):
    """A ``--fail-on`` limit that cannot be applied to these runs (no such metric, wrong sign)."""


def parse_threshold(text: str) -> Threshold:
    """``accuracy:-0.5`` (or ``-0.5pp``), ``time:+10%``, or ``METRIC[.KEY]:LIMIT[%]`` of a metric
    plugin; ValueError with the reason otherwise."""
    match = _THRESHOLD.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not METRIC:LIMIT, e.g. accuracy:-0.5, time:+10% or top2:-0.01")
    metric, value, unit = match["metric"], float(match["value"]), match["unit"]
    if metric == "accuracy" and (unit == "%" or value > 0):
        raise ValueError(f"{text!r}: an accuracy limit is a drop in percentage points, e.g. accuracy:-0.5")
    if metric == "time" and (unit != "%" or value < 0):
        raise ValueError(f"{text!r}: a time limit is a slowdown in percent, e.g. time:+10%")
    if metric not in ("accuracy", "time") and unit == "pp":
        raise ValueError(f"{text!r}: a metric's limit is in its own units, or in % of BASE (e.g. {metric}:-1%)")
    return Threshold(metric, value, relative=unit == "%" and metric != "time")


@dataclass
class MetricComparison:
    """A metric scalar in both runs over their ok seeds, and NEW − BASE (permutation test)."""

    base: Stat | None
    new: Stat | None
    test: Estimate | None = None


@dataclass
class PairComparison:
    """One model × dataset in both runs: accuracy (%) and seconds per epoch, and the differences."""

    model: str
    dataset: str
    base_status: str
    new_status: str
    base_accuracy: Stat | None
    new_accuracy: Stat | None
    base_time: Stat | None
    new_time: Stat | None
    accuracy: Estimate | None = None  # NEW − BASE in pp, permutation test over seeds
    paired: Estimate | None = None  # NEW − BASE in pp on the paired test predictions
    time: Estimate | None = None  # NEW / BASE seconds per epoch, permutation test over seeds
    new_reason: str | None = None
    metrics: dict[str, MetricComparison] = field(default_factory=dict)  # metric scalars by name

    @property
    def comparable(self) -> bool:
        """Both runs have an ok seed."""
        return self.base_accuracy is not None and self.new_accuracy is not None

    def deciding_test(self, metric: str, alpha: float) -> Estimate | None:
        """The test that decides significance for ``metric``, or None when none can reach ``alpha``."""
        if metric == "accuracy":
            tests: tuple[Estimate | None, ...] = (self.paired, self.accuracy)
        elif metric == "time":
            tests = (self.time,)
        else:
            tests = (self.metrics[metric].test,) if metric in self.metrics else ()
        return next((t for t in tests if t is not None and t.significant(alpha) is not None), None)


@dataclass(frozen=True)
class Missing:
    """An ok seed of BASE that NEW lacks (``status`` None) or did not finish ok."""

    key: Key
    seed: int
    status: str | None = None
    reason: str | None = None

    def __str__(self) -> str:
        where = f"{key_name(self.key)} seed {self.seed}"
        if self.status is None:
            return f"{where}: missing in NEW"
        return f"{where}: {self.status} in NEW" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class Regression:
    """A model × dataset past a threshold, and why, in one line."""

    key: Key
    message: str

    def __str__(self) -> str:
        return f"{key_name(self.key)}: {self.message}"


@dataclass
class Comparison:
    """Two runs side by side: matched pairs, unmatched ones, warnings and the gate's verdict."""

    pairs: list[PairComparison]
    only_base: list[Key]
    only_new: list[Key]
    thresholds: list[Threshold]
    warnings: list[str]
    regressions: list[Regression]
    alpha: float = DEFAULT_ALPHA
    missing: list[Missing] = field(default_factory=list)
    allow_missing: bool = False
    notes: list[str] = field(default_factory=list)  # past a threshold but not significant
    metrics: list[str] = field(default_factory=list)  # the metric scalars compared, by name

    @property
    def comparable(self) -> bool:
        return any(pc.comparable for pc in self.pairs)

    @property
    def exit_code(self) -> int:
        """The first that applies: 3 nothing comparable, 4 missing or not ok, 1 regression, 0."""
        if not self.comparable:
            return EXIT_NOTHING_COMPARABLE
        if self.missing and not self.allow_missing:
            return EXIT_MISSING
        return EXIT_REGRESSION if self.regressions else EXIT_OK

    @property
    def failed(self) -> bool:
        return self.exit_code != EXIT_OK
