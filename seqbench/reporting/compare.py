"""Compare two runs pair by pair, say how sure each difference is, and gate on thresholds.

Pairs are matched by model × dataset and aggregated over their ``ok`` seeds. The accuracy
difference is in percentage points (NEW − BASE); time is the ratio NEW / BASE of the seconds
per epoch (each seed's median, see :func:`seqbench.reporting.query.seconds_per_epoch`). Every difference
comes with a confidence interval and a p-value (:mod:`seqbench.reporting.stats`): a permutation test over
seeds and, for accuracy, a paired test on the test set's per-sample predictions (McNemar's
exact test, paired bootstrap interval), seed paired with seed of the same number, where both
runs stored predictions for the same data and the same test labels.

The gate (asv's rule): a pair fails a threshold only when its difference is past the threshold
AND significant (p ≤ alpha), by the paired prediction test where there is one, else by the
permutation test over seeds. When no test can reach alpha (one seed, or three against three,
and no stored predictions), significance is unknown and the threshold alone decides.

Every metric plugin's scalar results (:func:`seqbench.reporting.query.metric_values`) are compared too
(mean over seeds, NEW − BASE, permutation test over seeds) and can be gated on:
``--fail-on top2.top2_accuracy:-0.01`` (a change in the metric's own units) or ``...:-1%``
(relative to BASE's mean). Which way is worse is the metric's declaration
(``MetricSpec.higher_is_better``), looked up by the caller (:data:`Directions`).

Whatever the thresholds, a comparison with no model × dataset ``ok`` in both runs exits
:data:`EXIT_NOTHING_COMPARABLE`, and one where an ``ok`` seed of BASE is missing or not ``ok``
in NEW exits :data:`EXIT_MISSING` unless missing pairs are allowed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from seqbench.results import ResultsError
from seqbench.reporting.query import (
    Stat,
    accuracy_stat,
    dig,
    group_pairs,
    group_status,
    metric_names,
    metric_stat,
    mean_std,
    metric_values,
    ok_pairs,
    pair_accuracy,
    pair_name,
    pair_reason,
    pairs_of,
    seconds_per_epoch,
    section,
    time_stat,
)
from seqbench.reporting.tables import Column, Table, fixed, general, machine_rows, metric_column

if TYPE_CHECKING:  # seqbench.reporting.stats imports NumPy: only where a comparison is made
    from seqbench.reporting.stats import Estimate

Key = tuple[str, str]
_EPS = 1e-9  # a difference exactly at a threshold is not past it
FAILING_STATUSES = ("diverged", "failed")
DEFAULT_ALPHA = 0.05

EXIT_OK = 0
EXIT_REGRESSION = 1  # a difference past a --fail-on limit and significant
EXIT_NOTHING_COMPARABLE = 3  # no model × dataset has an ok seed in both runs
EXIT_MISSING = 4  # an ok seed of BASE is missing or not ok in NEW (without --allow-missing)


def _name(key: Key) -> str:
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
        where = f"{_name(self.key)} seed {self.seed}"
        if self.status is None:
            return f"{where}: missing in NEW"
        return f"{where}: {self.status} in NEW" + (f" ({self.reason})" if self.reason else "")


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


# --- statistics of one model × dataset --------------------------------------------------------


def _accuracy_test(base: list[dict], new: list[dict], alpha: float) -> Estimate | None:
    from seqbench.reporting.stats import permutation_test

    scores = [[100 * pair_accuracy(p) for p in ok_pairs(side)] for side in (base, new)]
    return permutation_test(*scores, alpha=alpha)


def _time_test(base: list[dict], new: list[dict], alpha: float) -> Estimate | None:
    """The ratio NEW / BASE of seconds per epoch (means over seeds); its interval is the
    permutation interval of the difference in seconds, divided by BASE's mean."""
    from seqbench.reporting.stats import permutation_test

    b, n = ([s for s in map(seconds_per_epoch, ok_pairs(side)) if s is not None] for side in (base, new))
    test = permutation_test(b, n, alpha=alpha)
    base_mean = mean_std(b)[0] if b else 0.0
    return test.affine(1 / base_mean, 1.0) if test is not None and base_mean > 0 else None


def _metric_comparison(name: str, base: list[dict], new: list[dict], alpha: float) -> MetricComparison:
    from seqbench.reporting.stats import permutation_test

    values = [[v for p in ok_pairs(side) if (v := metric_values(p, builtins=True).get(name)) is not None]
              for side in (base, new)]
    mc = MetricComparison(metric_stat(base, name, builtins=True), metric_stat(new, name, builtins=True))
    mc.test = permutation_test(*values, alpha=alpha) if all(values) else None
    return mc


def _correct(run_dir: Path, pair: dict[str, Any], warnings: list[str]) -> tuple[Any, Any] | None:
    """A pair's stored test labels and whether each prediction is right; None when it stored
    none, or ones that disagree with its recorded accuracy (with a warning)."""
    from seqbench.results import read_predictions

    rows = read_predictions(run_dir, pair)
    if rows is None:
        return None
    right = rows[1] == rows[0]
    if abs(float(right.mean()) - pair_accuracy(pair)) > 1e-9:
        warnings.append(f"{pair_name(pair)}: the stored predictions in {run_dir} do not give the recorded"
                        " accuracy: no paired test")
        return None
    return rows[0], right


def _paired_test(dirs: tuple[Path, Path], base: list[dict], new: list[dict], alpha: float,
                 warnings: list[str]) -> Estimate | None:
    """The paired prediction test over the seeds ok in both runs that stored predictions of
    the same data (fingerprint) and the same test labels; None when there are none."""
    import numpy as np

    from seqbench.reporting.stats import paired_accuracy_test

    new_by_seed = {p["seed"]: p for p in ok_pairs(new)}
    base_rows, new_rows = [], []
    for bp in ok_pairs(base):
        np_ = new_by_seed.get(bp["seed"])
        fingerprint = dig(bp, "dataset_info", "fingerprint")
        if np_ is None or fingerprint is None or fingerprint != dig(np_, "dataset_info", "fingerprint"):
            continue
        b, n = _correct(dirs[0], bp, warnings), _correct(dirs[1], np_, warnings)
        if b is None or n is None:
            continue
        if b[0].shape != n[0].shape or not np.array_equal(b[0], n[0]):
            warnings.append(f"{pair_name(bp)}: the test labels differ between BASE and NEW: no paired test")
            continue
        base_rows.append(b[1])
        new_rows.append(n[1])
    if not base_rows:
        return None
    return paired_accuracy_test(np.array(base_rows), np.array(new_rows), alpha).affine(100.0)


def _pair_comparison(key: Key, base: list[dict], new: list[dict], alpha: float,
                     dirs: tuple[Path, Path] | None, warnings: list[str], metrics: list[str]) -> PairComparison:
    """Aggregate one model × dataset's seeds on both sides, with its tests when both have ok seeds."""
    failing = [p for p in new if p.get("status") in FAILING_STATUSES]
    pc = PairComparison(
        model=key[0], dataset=key[1],
        base_status=group_status(base), new_status=group_status(new),
        base_accuracy=accuracy_stat(base), new_accuracy=accuracy_stat(new),
        base_time=time_stat(base), new_time=time_stat(new),
        new_reason=pair_reason(failing[0]) if failing else None,
    )
    if pc.comparable:
        pc.accuracy = _accuracy_test(base, new, alpha)
        pc.time = _time_test(base, new, alpha)
        pc.paired = _paired_test(dirs, base, new, alpha, warnings) if dirs else None
    pc.metrics = {name: _metric_comparison(name, base, new, alpha) for name in metrics}
    return pc


# --- the gate ---------------------------------------------------------------------------------


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
    return f"BASE has {pc.base_time.mean:g} seconds per epoch (the ratio NEW / BASE is undefined)"


def _gate(pc: PairComparison, threshold: Threshold, alpha: float) -> tuple[str | None, str | None]:
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
    return None, (f"{_name((pc.model, pc.dataset))}: {past} but not significant"
                  f" ({p_text(test.p)} > {alpha:g}, {test.method}): not gated")


def _missing(bg: dict[Key, list[dict]], ng: dict[Key, list[dict]]) -> list[Missing]:
    """Every ok seed of BASE without an ok record of the same seed in NEW."""
    missing = []
    for key, pairs in bg.items():
        new_by_seed: dict[int, list[dict]] = {}
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


# --- warnings ---------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value[:19] + "…" if value.startswith("sha256:") and len(value) > 20 else value
    return json.dumps(value, default=repr)


def _diff(base: Any, new: Any) -> list[str]:
    """``key BASE → NEW`` for each differing key of two dicts, or ``BASE → NEW`` for values."""
    if isinstance(base, dict) and isinstance(new, dict):
        keys = sorted(set(base) | set(new), key=str)
        return [f"{k} {_show(base.get(k))} → {_show(new.get(k))}" for k in keys if base.get(k) != new.get(k)]
    return [] if base == new else [f"{_show(base)} → {_show(new)}"]


def _warning(subject: str, diffs: list[str]) -> list[str]:
    return [f"{subject}: {', '.join(diffs)}"] if diffs else []


def _hardware(results: dict[str, Any]) -> dict[str, Any]:
    machine = section(results, "environment", "machine")
    return {k: v for k, v in machine.items() if k in ("cpu", "cpu_count") or "gpu" in k}


def _software(results: dict[str, Any]) -> dict[str, Any]:
    env = section(results, "environment")
    return {"python": env.get("python"), **section(results, "environment", "packages"),
            **section(results, "environment", "plugins")}


def _config(results: dict[str, Any]) -> dict[str, Any]:
    config = section(results, "config")
    return {k: config.get(k) for k in ("seeds", "quick", "protocol")}


def _first(pairs: list[dict], *path: str) -> Any:
    return next((v for v in (dig(p, *path) for p in pairs) if v is not None), None)


def _devices(pairs: list[dict]) -> str | None:
    return " / ".join(sorted({str(p["device"]) for p in pairs if p.get("device")})) or None


def _fingerprints(groups: dict[Key, list[dict]], keys: list[Key]) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for key in keys:
        for pair in groups[key]:
            fingerprint = dig(pair, "dataset_info", "fingerprint")
            if fingerprint:
                found.setdefault(key[1], set()).add(str(fingerprint))
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


def _groups(results: dict[str, Any], label: str) -> dict[Key, list[dict]]:
    """The pairs of a run by model × dataset, after checking every field the comparison reads;
    a ResultsError starting with ``label`` where one is malformed."""
    try:
        for read in (_hardware, _software, _config):
            read(results)
        seen: set[tuple[Any, Any, Any]] = set()
        for pair in pairs_of(results):
            key = (pair["model"], pair["dataset"], pair["seed"])
            if key in seen:
                raise ResultsError(f"{pair_name(pair)} is there twice")
            seen.add(key)
        for pair in ok_pairs(pairs_of(results)):
            _check_possible(pair)
        return group_pairs(pairs_of(results))
    except ResultsError as exc:
        raise ResultsError(f"{label}: {exc}") from None


def _check_possible(pair: dict[str, Any]) -> None:
    """Refuse an ok record no run can write (a hand-edited one): accuracy outside [0, 1], a negative time."""
    pair_accuracy(pair)  # raises for an accuracy outside [0, 1]
    seconds_per_epoch(pair)
    timing = pair.get("timing") or {}
    for name, value in (timing.items() if isinstance(timing, dict) else ()):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ResultsError(f"{pair_name(pair)}: timing.{name} is negative ({value!r})")


def _common_seeds(key: Key, base: list[dict], new: list[dict], warnings: list[str]) -> tuple[list[dict], list[dict]]:
    """BASE's and NEW's pairs of ``key`` less the ok seeds that the other run lacks (said in
    ``warnings``), so that means and tests pair seed with seed; unchanged when none is common."""
    seeds = [{p["seed"] for p in ok_pairs(side)} for side in (base, new)]
    common = seeds[0] & seeds[1]
    if not common or seeds[0] == seeds[1]:
        return base, new
    left = [f"{label}'s seed{'s' if len(extra) > 1 else ''} {', '.join(map(str, sorted(extra)))} left out"
            for label, extra in (("BASE", seeds[0] - common), ("NEW", seeds[1] - common)) if extra]
    warnings.append(f"{_name(key)}: compared on the seeds both runs have ({', '.join(map(str, sorted(common)))}); "
                    + ", ".join(left))
    return tuple([p for p in side if p.get("status") != "ok" or p["seed"] in common] for side in (base, new))


def _all_metric_names(pairs: list[dict]) -> list[str]:
    """Every metric scalar (built-ins' too) of the ``ok`` pairs, in order of first appearance."""
    return list(dict.fromkeys(n for p in ok_pairs(pairs) for n in metric_values(p, builtins=True)))


def _resolve(threshold: Threshold, names: list[str], directions: Directions | None) -> Threshold:
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


def compare_runs(
    base: dict[str, Any],
    new: dict[str, Any],
    thresholds: Iterable[Threshold] = (),
    *,
    alpha: float = DEFAULT_ALPHA,
    allow_missing: bool = False,
    dirs: tuple[Path, Path] | None = None,
    labels: tuple[str, str] = ("BASE", "NEW"),
    directions: Directions | None = None,
) -> Comparison:
    """Match BASE and NEW by model × dataset, test each difference, list warnings, missing
    seeds and the significant regressions past ``thresholds``.

    ``dirs``: the run directories of BASE and NEW, where the pairs' test predictions are read.
    ``labels``: how errors name BASE and NEW. ``directions``: which way each metric scalar is
    better, for limits on metric plugins (:class:`ThresholdError` without it).
    """
    bg, ng = _groups(base, labels[0]), _groups(new, labels[1])
    keys = [k for k in bg if k in ng]
    only_base, only_new = [k for k in bg if k not in ng], [k for k in ng if k not in bg]
    all_pairs = [p for groups in (bg, ng) for pairs in groups.values() for p in pairs]
    thresholds = [_resolve(t, _all_metric_names(all_pairs), directions) for t in thresholds]
    shown = metric_names(all_pairs)
    metrics = shown + [t.metric for t in thresholds if t.metric not in ("accuracy", "time", *shown)]
    warnings = (
        _warnings(base, new, (bg, ng), keys)
        + _warning("only in BASE", [_name(k) for k in only_base])
        + _warning("only in NEW", [_name(k) for k in only_new])
    )
    if allow_missing:
        sides = {k: _common_seeds(k, bg[k], ng[k], warnings) for k in keys}
    else:
        sides = {k: (bg[k], ng[k]) for k in keys}
    pairs = [_pair_comparison(k, *sides[k], alpha, dirs, warnings, metrics) for k in keys]
    regressions, notes = [], []
    for pc in pairs:
        for threshold in thresholds:
            failure, note = _gate(pc, threshold, alpha)
            if failure:
                regressions.append(Regression((pc.model, pc.dataset), failure))
            if note:
                notes.append(note)
    return Comparison(pairs, only_base, only_new, thresholds, warnings, regressions,
                      alpha, _missing(bg, ng), allow_missing, notes, metrics)


# --- output -----------------------------------------------------------------------------------


def _signed(decimals: int) -> Callable[[float], str]:
    return lambda x: f"{x:+,.{decimals}f}"


#: The smallest p-value printed as a number; below it (or where it underflowed to 0), a bound.
P_FLOOR = 1e-300


def _p_value(p: float) -> str:
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.2g}"


def p_text(p: float) -> str:
    """``p = 0.012``, or ``p < 1e-300`` where the p-value is too small to print (or underflowed to 0)."""
    return f"p {_p_value(p)}" if p < P_FLOOR else f"p = {_p_value(p)}"


def _metric_columns(name: str) -> list[Column]:
    """BASE and NEW mean ± std, NEW − BASE and its p-value of metric scalar ``name``."""
    return [
        metric_column(f"BASE {name}", key=f"base_{name}", n_key="base_n"),
        metric_column(f"NEW {name}", key=f"new_{name}", n_key="new_n"),
        Column(f"{name}_diff", f"Δ {name}", lambda x: f"{x:+.4g}"),
        Column(f"{name}_p", "p (seeds)", _p_value),
    ]


def compare_columns(alpha: float = DEFAULT_ALPHA, metrics: Iterable[str] = ()) -> list[Column]:
    """The comparison's columns, with four per metric scalar in ``metrics``; intervals at the
    ``1 − alpha`` level."""
    ci = f"{100 * (1 - alpha):g}% CI"
    return [
        Column("model", "model"),
        Column("dataset", "dataset"),
        Column("status", "status"),
        Column("base_n", "BASE n", general),
        Column("new_n", "NEW n", general),
        Column("base_accuracy_pct", "BASE acc (%)", fixed(2), stat=True, n_key="base_n"),
        Column("new_accuracy_pct", "NEW acc (%)", fixed(2), stat=True, n_key="new_n"),
        Column("accuracy_diff_pp", "Δ acc (pp)", _signed(2)),
        Column("accuracy_ci_pp", ci, _signed(2), interval=True),
        Column("accuracy_p", "p (seeds)", _p_value),
        Column("paired_diff_pp", "Δ acc paired (pp)", _signed(2)),
        Column("paired_ci_pp", ci, _signed(2), interval=True),
        Column("paired_p", "p (McNemar)", _p_value),
        Column("base_seconds_per_epoch", "BASE s/epoch", fixed(2), stat=True, n_key="base_n"),
        Column("new_seconds_per_epoch", "NEW s/epoch", fixed(2), stat=True, n_key="new_n"),
        Column("time_ratio", "time ×", fixed(2)),
        Column("time_ci", ci, fixed(2), interval=True),
        Column("time_p", "p (seeds)", _p_value),
        *(c for name in metrics for c in _metric_columns(name)),
        Column("gate", "gate"),
    ]


def _status(pc: PairComparison) -> str:
    return pc.base_status if pc.base_status == pc.new_status else f"{pc.base_status} → {pc.new_status}"


def _estimate_cells(prefix: str, test: Estimate | None, diff_key: str, ci_key: str) -> dict[str, Any]:
    if test is None:
        return {diff_key: None, ci_key: None, f"{prefix}_p": None}
    return {diff_key: round(test.diff, 6), ci_key: (test.low, test.high), f"{prefix}_p": test.p}


def _row(pc: PairComparison, failing: set[Key]) -> dict[str, Any]:
    return {
        "model": pc.model,
        "dataset": pc.dataset,
        "status": _status(pc),
        "base_n": pc.base_accuracy.n if pc.base_accuracy else 0,
        "new_n": pc.new_accuracy.n if pc.new_accuracy else 0,
        "base_accuracy_pct": pc.base_accuracy,
        "new_accuracy_pct": pc.new_accuracy,
        **_estimate_cells("accuracy", pc.accuracy, "accuracy_diff_pp", "accuracy_ci_pp"),
        **_estimate_cells("paired", pc.paired, "paired_diff_pp", "paired_ci_pp"),
        "base_seconds_per_epoch": pc.base_time,
        "new_seconds_per_epoch": pc.new_time,
        **_estimate_cells("time", pc.time, "time_ratio", "time_ci"),
        **{cell: value for name, mc in pc.metrics.items() for cell, value in (
            (f"base_{name}", mc.base), (f"new_{name}", mc.new),
            (f"{name}_diff", None if mc.test is None else round(mc.test.diff, 6)),
            (f"{name}_p", None if mc.test is None else mc.test.p))},
        "gate": "FAIL" if (pc.model, pc.dataset) in failing else None,
    }


def comparison_table(comparison: Comparison) -> Table:
    """One row per model × dataset present in both runs."""
    failing = {r.key for r in comparison.regressions}
    rows = [_row(pc, failing) for pc in comparison.pairs]
    return Table("Comparison", compare_columns(comparison.alpha, comparison.metrics), rows)


def verdict(comparison: Comparison) -> str:
    """What the gate decided and why, one line per finding."""
    lines = []
    if not comparison.comparable:
        lines.append("NOTHING COMPARABLE: no model × dataset has an ok seed in both BASE and NEW")
    if comparison.missing:
        head = ("missing or not ok in NEW, allowed by --allow-missing" if comparison.allow_missing
                else "MISSING OR NOT OK IN NEW (--allow-missing accepts this)")
        lines += [f"{head}:"] + [f"  {m}" for m in comparison.missing]
    lines += [f"note: {note}" for note in comparison.notes]
    limits = ", ".join(map(str, comparison.thresholds))
    if not comparison.thresholds:
        lines.append("no --fail-on thresholds given: nothing gated")
    elif comparison.regressions:
        lines += [f"REGRESSION past {limits} (alpha {comparison.alpha:g}):"]
        lines += [f"  {r}" for r in comparison.regressions]
    elif comparison.comparable:
        lines.append(f"OK: no regression past {limits} (alpha {comparison.alpha:g})")
    return "\n".join(lines)


def comparison_json(comparison: Comparison) -> str:
    """Everything as one JSON document: rows, unmatched and missing pairs, warnings, verdict."""
    return json.dumps({
        "pairs": machine_rows(comparison_table(comparison)),
        "only_in_base": [list(k) for k in comparison.only_base],
        "only_in_new": [list(k) for k in comparison.only_new],
        "missing_in_new": [str(m) for m in comparison.missing],
        "warnings": comparison.warnings,
        "alpha": comparison.alpha,
        "thresholds": [str(t) for t in comparison.thresholds],
        "regressions": [str(r) for r in comparison.regressions],
        "not_significant": comparison.notes,
        "comparable": comparison.comparable,
        "failed": comparison.failed,
        "exit_code": comparison.exit_code,
    }, indent=2) + "\n"
