"""Read-only questions about a results dict: its pairs grouped and checked, a pair's accuracy,
time per epoch and metric scalars, and the mean ± std of a quantity over seeds.

Every value read is checked: a malformed one is a :class:`~seqbench.results.ResultsError` naming
the pair and field, never a wrong number in a table.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from seqbench.metrics import scalars
from seqbench.results import ResultsError
from seqbench.schema.types import DatasetInfo, Environment, Machine, Metrics, PairRecord, RunConfig, RunResults, Timing

Pairs = list[PairRecord]
Groups = dict[tuple[str, str], Pairs]


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of a quantity over seeds (``std`` is None for one)."""

    mean: float
    std: float | None
    n: int

    def format(self, fmt: Callable[[float], str], n: int | None = None) -> str:
        """``mean ± std``, followed by ``(n=…)`` when the seeds are not the ``n`` of its row."""
        text = fmt(self.mean) if self.std is None else f"{fmt(self.mean)} ± {fmt(self.std).lstrip('+')}"
        return text if n is None or n == self.n else f"{text} (n={self.n})"


def stat(values: Iterable[float | None], scale: float = 1.0) -> Stat | None:
    """The :class:`Stat` of the values that are not None (None when there are none)."""
    xs = [float(v) * scale for v in values if v is not None]
    if not xs:
        return None
    return Stat(*mean_std(xs), len(xs))


def mean_std(xs: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation of finite floats, without the OverflowError of
    ``statistics.fmean`` near the float limit: computed on the values scaled by the largest
    magnitude (a std beyond the float range is ``inf``). Non-finite values give no std."""
    if not all(map(math.isfinite, xs)):
        return sum(xs) / len(xs), None
    big = max(abs(x) for x in xs)
    unit = big if big > 1e300 else 1.0
    scaled = [x / unit for x in xs]
    mean = statistics.fmean(scaled) * unit
    return mean, (statistics.stdev(scaled) * unit if len(xs) > 1 else None)


# --- a record's sections, typed ------------------------------------------------------------------
# A leniently loaded record (results.load_results) holds only fields of their schema type; a
# section it lacks, or that is null, reads as empty.


def config_of(results: RunResults) -> RunConfig:
    """The run's ``config`` (empty where the file has none)."""
    return results.get("config", {})


def environment_of(results: RunResults) -> Environment:
    """Where the run's first session ran (empty where the file does not say)."""
    return results.get("environment") or {}


def machine_of(results: RunResults) -> Machine:
    return environment_of(results).get("machine", {})


def run_protocol(results: RunResults) -> dict[str, Any]:
    """The run's ``config.protocol`` (free-form: its fields are the readers' to check)."""
    return config_of(results).get("protocol", {})


def dataset_info_of(pair: PairRecord) -> DatasetInfo:
    return pair.get("dataset_info") or {}


def metrics_of(pair: PairRecord) -> Metrics:
    return pair.get("metrics") or {}


def timing_of(pair: PairRecord) -> Timing:
    return pair.get("timing") or {}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def pair_name(pair: PairRecord) -> str:
    """``model on dataset seed k``, for messages."""
    return f"{pair.get('model')} on {pair.get('dataset')} seed {pair.get('seed')}"


def checked(pair: PairRecord, field: str, value: Any) -> float | None:
    """``value`` of ``pair``'s ``field`` as a float; None when missing, a ResultsError when not a finite number."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        # an integer past float's range (a count of 10**400)
        return sys.float_info.max if value > 0 else -sys.float_info.max
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ResultsError(f"{pair_name(pair)}: {field} is {_short(value)}, not a finite number")
    return float(value)


def pairs_of(results: RunResults) -> Pairs:
    """The pair records of a results dict, checked enough to be tabulated."""
    pairs = results.get("pairs")
    if not isinstance(pairs, list):
        raise ResultsError("results file has no list of pairs")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not all(k in pair for k in ("model", "dataset", "seed")):
            raise ResultsError(f"pair #{i} of the results file lacks model, dataset or seed")
        if not (isinstance(pair["model"], str) and isinstance(pair["dataset"], str)
                and isinstance(pair["seed"], int) and not isinstance(pair["seed"], bool)
                and isinstance(pair.get("status", ""), str)):
            raise ResultsError(f"pair #{i} of the results file: model and dataset must be strings, seed an"
                               f" integer, status a string (got {_short(pair['model'])}, {_short(pair['dataset'])},"
                               f" {_short(pair['seed'])}, {_short(pair.get('status'))})")
    return pairs


def group_pairs(pairs: Pairs) -> Groups:
    """Pairs grouped by (model, dataset), in order of first appearance, seeds sorted."""
    groups: Groups = {}
    for pair in pairs:
        groups.setdefault((pair["model"], pair["dataset"]), []).append(pair)
    return {key: sorted(group, key=lambda p: p["seed"]) for key, group in groups.items()}


def ok_pairs(pairs: Pairs) -> Pairs:
    return [p for p in pairs if p.get("status") == "ok"]


def pair_accuracy(pair: PairRecord) -> float | None:
    """Test accuracy as a fraction; a ResultsError for an ``ok`` pair without one."""
    accuracy = checked(pair, "metrics.accuracy.accuracy", metrics_of(pair).get("accuracy", {}).get("accuracy"))
    if accuracy is None and pair.get("status") == "ok":
        raise ResultsError(f"{pair_name(pair)}: status ok but no metrics.accuracy.accuracy")
    if accuracy is not None and not 0 <= accuracy <= 1:
        raise ResultsError(
            f"{pair_name(pair)}: metrics.accuracy.accuracy is {_short(accuracy)}, not a fraction in [0, 1]")
    return accuracy


def seconds_per_epoch(pair: PairRecord) -> float | None:
    """The median epoch time after the first; the mean of all epochs in older records."""
    timing = timing_of(pair)
    median = checked(pair, "timing.epoch_seconds_median", timing.get("epoch_seconds_median"))
    if median is not None:
        return median
    return checked(pair, "timing.epoch_seconds_mean", timing.get("epoch_seconds_mean"))


def accuracy_stat(pairs: Pairs) -> Stat | None:
    """Test accuracy in percent over the ``ok`` pairs."""
    return stat((pair_accuracy(p) for p in ok_pairs(pairs)), scale=100.0)


def time_stat(pairs: Pairs) -> Stat | None:
    """Seconds per training epoch (:func:`seconds_per_epoch`) over the ``ok`` pairs."""
    return stat(seconds_per_epoch(p) for p in ok_pairs(pairs))


def group_status(pairs: Pairs) -> str:
    """``ok`` / ``skipped`` / ... when all seeds agree, else e.g. ``ok 2/3, diverged 1/3``."""
    counts = Counter(p.get("status") or "failed" for p in pairs)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{status} {n}/{len(pairs)}" for status, n in counts.items())


def pair_reason(pair: PairRecord) -> str:
    """Why a pair is not ``ok``, in one line."""
    reason = pair.get("reason")
    reason = reason if reason is None or isinstance(reason, str) else _short(reason)
    if pair.get("status") == "diverged" and pair.get("diverged_epoch") is not None:
        where = f"diverged at epoch {pair['diverged_epoch']}"
        return f"{where}: {reason}" if reason else where
    return reason or str(pair.get("status", "unknown status"))


def group_note(pairs: Pairs) -> str | None:
    """Why seeds are not ``ok``: ``reason``, or ``seeds 0,2: reason; seed 1: other reason``."""
    seeds_by_reason: dict[str, list[str]] = {}
    for pair in pairs:
        if pair.get("status") != "ok":
            seeds_by_reason.setdefault(pair_reason(pair), []).append(str(pair["seed"]))
    if len(seeds_by_reason) == 1 and sum(map(len, seeds_by_reason.values())) == len(pairs):
        return next(iter(seeds_by_reason))
    return "; ".join(
        f"seed{'s' if len(seeds) > 1 else ''} {','.join(seeds)}: {reason}"
        for reason, seeds in seeds_by_reason.items()
    ) or None


def stat_of(pairs: Pairs, field: str, read: Callable[[PairRecord], float | None], scale: float = 1.0) -> Stat | None:
    """The number ``read`` of each ``ok`` pair, checked as ``field`` (:func:`checked`), over the pairs."""
    return stat((checked(p, field, read(p)) for p in ok_pairs(pairs)), scale=scale)


#: Built-in metrics whose numbers have columns of their own (accuracy, macro F1) or are not scalars.
BUILTIN_METRICS = ("accuracy", "per_class", "confusion")


def metric_values(pair: PairRecord, builtins: bool = False) -> dict[str, float | None]:
    """The scalar results of a pair's metrics by name (``top2.top2_accuracy``), checked finite;
    those of :data:`BUILTIN_METRICS` only with ``builtins``."""
    metrics = pair.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise ResultsError(f"{pair_name(pair)}: metrics is {_short(metrics)}, expected an object")
    return {
        s.name: checked(pair, f"metrics.{metric}.{s.key}", s.value)
        for metric, result in metrics.items() if builtins or metric not in BUILTIN_METRICS
        for s in scalars(metric, result)
    }


def metric_names(pairs: Pairs) -> list[str]:
    """The plugin metrics' scalar names of the ``ok`` pairs, in order of first appearance."""
    return list(dict.fromkeys(name for p in ok_pairs(pairs) for name in metric_values(p)))


def metric_stat(pairs: Pairs, name: str, builtins: bool = False) -> Stat | None:
    """A metric scalar over the ``ok`` pairs that have it (see :func:`metric_values`)."""
    return stat(metric_values(p, builtins).get(name) for p in ok_pairs(pairs))


def num_parameters(pairs: Pairs) -> int | str | None:
    """The models' trainable parameter count over the ``ok`` seeds (``a / b`` where they differ)."""
    counts = sorted({_count(p) for p in ok_pairs(pairs) if p.get("num_parameters") is not None})
    if len(counts) == 1 and counts[0] < 2**53:  # a float column shows it exactly
        return counts[0]
    return " / ".join(f"{c:,}" for c in counts) or None


def _count(pair: PairRecord) -> int:
    """A pair's parameter count, exact however large (a float of it would overflow)."""
    value = pair.get("num_parameters")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    count = checked(pair, "num_parameters", value)
    assert count is not None  # its callers pass only pairs that have one
    return int(count)
