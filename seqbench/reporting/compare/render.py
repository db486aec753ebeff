"""The comparison for people and machines: its table, the verdict in words, one JSON document."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from seqbench.reporting.compare.model import DEFAULT_ALPHA, Comparison, Key, PairComparison
from seqbench.reporting.tables import Column, Table, fixed, general, machine_rows, metric_column

if TYPE_CHECKING:  # seqbench.reporting.stats imports NumPy: only where a comparison is made
    from seqbench.reporting.stats import Estimate


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
