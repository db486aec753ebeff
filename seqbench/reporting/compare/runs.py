"""Matching two runs: their pairs by model × dataset (checked), the seeds both have, the
warnings where they may not be comparable, and :func:`compare_runs` that puts it together."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seqbench.reporting.compare.gate import gate_pair, missing_seeds, resolve_threshold
from seqbench.reporting.compare.model import (
    DEFAULT_ALPHA,
    Comparison,
    Directions,
    Key,
    Regression,
    Threshold,
    key_name,
)
from seqbench.reporting.compare.tests import pair_comparison
from seqbench.reporting.query import (
    Groups,
    Pairs,
    config_of,
    dataset_info_of,
    environment_of,
    group_pairs,
    machine_of,
    metric_names,
    metric_values,
    ok_pairs,
    pair_accuracy,
    pair_name,
    pairs_of,
    seconds_per_epoch,
)
from seqbench.results import ResultsError
from seqbench.schema.types import PairRecord, RunResults


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


def _hardware(results: RunResults) -> dict[str, Any]:
    machine = machine_of(results)
    return {k: v for k, v in machine.items() if k in ("cpu", "cpu_count") or "gpu" in k}


def _software(results: RunResults) -> dict[str, Any]:
    env = environment_of(results)
    return {"python": env.get("python"), **env.get("packages", {}), **env.get("plugins", {})}


def _config(results: RunResults) -> dict[str, Any]:
    config = config_of(results)
    return {"seeds": config.get("seeds"), "quick": config.get("quick"), "protocol": config.get("protocol")}


def _params(pairs: list[PairRecord]) -> dict[str, Any] | None:
    """The params of the first pair that has them."""
    return next((params for p in pairs if (params := p.get("params")) is not None), None)


def _devices(pairs: list[PairRecord]) -> str | None:
    return " / ".join(sorted({str(p["device"]) for p in pairs if p.get("device")})) or None


def _fingerprints(groups: dict[Key, list[PairRecord]], keys: list[Key]) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for key in keys:
        for pair in groups[key]:
            fingerprint = dataset_info_of(pair).get("fingerprint")
            if fingerprint:
                found.setdefault(key[1], set()).add(str(fingerprint))
    return {dataset: ", ".join(sorted(fps)) for dataset, fps in found.items()}


def _warnings(base: RunResults, new: RunResults, groups: tuple[Groups, Groups], keys: list[Key]) -> list[str]:
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
        warnings += _warning(f"{key_name(key)}: different device", _diff(_devices(bg[key]), _devices(ng[key])))
        bp, np_ = _params(bg[key]), _params(ng[key])
        if bp is not None and np_ is not None:
            warnings += _warning(f"{key_name(key)}: different params", _diff(bp, np_))
    return warnings


def _groups(results: RunResults, label: str) -> dict[Key, list[PairRecord]]:
    """The pairs of a run by model × dataset, after checking the pairs the comparison reads;
    a ResultsError starting with ``label`` where one is malformed."""
    try:
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


def _check_possible(pair: PairRecord) -> None:
    """Refuse an ok record no run can write (a hand-edited one): accuracy outside [0, 1], a negative time."""
    pair_accuracy(pair)  # raises for an accuracy outside [0, 1]
    seconds_per_epoch(pair)
    timing = pair.get("timing") or {}
    for name, value in (timing.items() if isinstance(timing, dict) else ()):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ResultsError(f"{pair_name(pair)}: timing.{name} is negative ({value!r})")


def _common_seeds(key: Key, base: list[PairRecord], new: list[PairRecord], warnings: list[str]) -> tuple[Pairs, Pairs]:
    """BASE's and NEW's pairs of ``key`` less the ok seeds that the other run lacks (said in
    ``warnings``), so that means and tests pair seed with seed; unchanged when none is common."""
    seeds = [{p["seed"] for p in ok_pairs(side)} for side in (base, new)]
    common = seeds[0] & seeds[1]
    if not common or seeds[0] == seeds[1]:
        return base, new
    left = [f"{label}'s seed{'s' if len(extra) > 1 else ''} {', '.join(map(str, sorted(extra)))} left out"
            for label, extra in (("BASE", seeds[0] - common), ("NEW", seeds[1] - common)) if extra]
    warnings.append(f"{key_name(key)}: compared on the seeds both runs have ({', '.join(map(str, sorted(common)))}); "
                    + ", ".join(left))
    kept = [[p for p in side if p.get("status") != "ok" or p["seed"] in common] for side in (base, new)]
    return kept[0], kept[1]


def _all_metric_names(pairs: list[PairRecord]) -> list[str]:
    """Every metric scalar (built-ins' too) of the ``ok`` pairs, in order of first appearance."""
    return list(dict.fromkeys(n for p in ok_pairs(pairs) for n in metric_values(p, builtins=True)))


def compare_runs(
    base: RunResults,
    new: RunResults,
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
    thresholds = [resolve_threshold(t, _all_metric_names(all_pairs), directions) for t in thresholds]
    shown = metric_names(all_pairs)
    metrics = shown + [t.metric for t in thresholds if t.metric not in ("accuracy", "time", *shown)]
    warnings = (
        _warnings(base, new, (bg, ng), keys)
        + _warning("only in BASE", [key_name(k) for k in only_base])
        + _warning("only in NEW", [key_name(k) for k in only_new])
    )
    if allow_missing:
        sides = {k: _common_seeds(k, bg[k], ng[k], warnings) for k in keys}
    else:
        sides = {k: (bg[k], ng[k]) for k in keys}
    pairs = [pair_comparison(k, *sides[k], alpha, dirs, warnings, metrics) for k in keys]
    regressions, notes = [], []
    for pc in pairs:
        for threshold in thresholds:
            failure, note = gate_pair(pc, threshold, alpha)
            if failure:
                regressions.append(Regression((pc.model, pc.dataset), failure))
            if note:
                notes.append(note)
    return Comparison(pairs, only_base, only_new, thresholds, warnings, regressions,
                      alpha, missing_seeds(bg, ng), allow_missing, notes, metrics)
