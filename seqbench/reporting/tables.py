"""Tables of a run: pairs aggregated over seeds, rendered as Markdown, grid, CSV or JSON.

Statistics are taken over the seeds whose status is ``ok`` (their number is the row's ``n``);
a model × dataset whose seeds were skipped, diverged or failed shows that status and the
reason in its ``note``. Seconds per epoch are each seed's median over the epochs after the
first (older records, without it: the mean over all epochs).

Every metric plugin's scalar results (:func:`seqbench.metrics.scalars`) get a column of the
summary, after the built-in ones; lists (per-class tables, matrices) stay in the JSON.

Values are read defensively: a malformed field is a :class:`ResultsError` naming it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tabulate import tabulate

from seqbench.reporting.query import (
    Pairs,
    Stat,
    accuracy_stat,
    checked,
    config_of,
    dataset_info_of,
    environment_of,
    group_note,
    group_pairs,
    group_status,
    machine_of,
    metric_names,
    metric_stat,
    metrics_of,
    num_parameters,
    ok_pairs,
    pair_name,
    pairs_of,
    run_protocol,
    stat,
    stat_of,
    time_stat,
    timing_of,
)
from seqbench.results import ResultsError
from seqbench.safe_text import csv_cell
from seqbench.schema.types import ClassScores, PairRecord, PerClassResult, RunResults

FORMATS = ("github", "grid", "csv", "json")
MISSING = "—"
STATS_NOTE = (
    "Mean ± sample standard deviation over the n seeds that finished (status ok); a cell over"
    " fewer seeds says its own (n=…). s/epoch: each seed's median epoch time after the first"
    " epoch (the mean of all epochs in records that predate it)."
)


def fixed(decimals: int) -> Callable[[float], str]:
    return lambda x: f"{x:,.{decimals}f}"


def general(x: float) -> str:
    """Up to three significant digits: 6, 17.3, 0.577."""
    return f"{x:.3g}"


@dataclass(frozen=True)
class Column:
    """A table column: ``key`` in the rows, ``header`` for people, ``fmt`` for numbers.

    A ``stat`` column holds :class:`Stat` values: ``mean ± std`` for people (with ``(n=…)``
    where it differs from the row's ``n_key`` cell), and three machine columns ``<key>_mean``,
    ``<key>_std`` and ``<key>_n`` in CSV and JSON. An ``interval`` column holds ``(low, high)``:
    ``[low, high]`` for people, ``<key>_low`` and ``<key>_high`` for machines (empty where
    unbounded). People see at most ``max_width`` characters of a cell; CSV and JSON hold it whole.
    """

    key: str
    header: str
    fmt: Callable[[float], str] | None = None
    stat: bool = False
    max_width: int | None = None
    n_key: str = "n"
    interval: bool = False


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)


# --- metric columns --------------------------------------------------------------------------


def metric_column(header: str, taken: Iterable[str] = (), key: str | None = None, **options: Any) -> Column:
    """A ``mean ± std`` column of a metric scalar, with ``header``: keyed by ``key``, else by the
    header (``metric.`` before it where that is the key of another column, one of ``taken``)."""
    key = key or (f"metric.{header}" if header in set(taken) else header)
    return Column(key, header, _G4, stat=True, **options)


# --- quick runs ------------------------------------------------------------------------------

QUICK_TITLE = "QUICK RUN"
QUICK_COLUMN = Column("quick", "quick run")
TEST_SAMPLES_COLUMN = Column("test_samples", "test samples", fixed(0))


def is_quick(results: RunResults) -> bool:
    """Whether the run used the ``--quick`` smoke profile."""
    return config_of(results).get("quick", False)


def quick_note(results: RunResults) -> str | None:
    """One line saying that a run is quick and what that means; None for a full run."""
    if not is_quick(results):
        return None
    profile = run_protocol(results).get("quick_profile")
    profile = profile if isinstance(profile, dict) else {}
    limits = [f"{profile[k]:,} {what}" for k, what in (("epochs", "epochs"), ("max_train", "training samples"),
                                                       ("max_test", "test samples")) if isinstance(profile.get(k), int)]
    detail = f" ({', '.join(limits)} at most per pair)" if limits else ""
    return f"{QUICK_TITLE}: the --quick smoke profile{detail}; a smoke test, not a benchmark result."


def _test_samples(pairs: Pairs) -> int | None:
    """How many test samples the row's ok seeds were evaluated on (the largest, if they differ)."""
    return max((n for p in ok_pairs(pairs) if (n := dataset_info_of(p).get("n_test")) is not None), default=None)


def mark_quick(table: Table, results: RunResults, *extra: Column) -> Table:
    """A quick run's table: its title says so, a ``quick`` column (and ``extra`` ones) follow the lead
    columns, so that the CSV says so too. A full run's table is returned as it is."""
    if not is_quick(results):
        return table
    at = next(i for i, c in enumerate(table.columns) if c.key == "seeds") + 1
    columns = [*table.columns[:at], QUICK_COLUMN, *extra, *table.columns[at:]]
    rows = [row | {"quick": "yes"} for row in table.rows]
    return Table(f"{table.title} — {QUICK_TITLE}", columns, rows)


# --- tables ----------------------------------------------------------------------------------

_PCT = fixed(2)
_F3 = fixed(3)
_G4 = "{:.4g}".format
_MIB = 1.0 / 2**20


def _lead_columns(run: str | None) -> list[Column]:
    columns = [Column("model", "model"), Column("dataset", "dataset"), Column("seeds", "seeds")]
    return ([Column("run", "run")] if run is not None else []) + columns


def _lead_cells(run: str | None, key: tuple[str, str], pairs: Pairs) -> dict[str, Any]:
    cells = {"model": key[0], "dataset": key[1], "seeds": ",".join(str(p["seed"]) for p in pairs)}
    return ({"run": run} if run is not None else {}) | cells


N_COLUMN = Column("n", "n", general)

SUMMARY_COLUMNS = [
    Column("status", "status"),
    N_COLUMN,
    Column("accuracy_pct", "test accuracy (%)", _PCT, stat=True),
    Column("macro_f1", "macro F1", _F3, stat=True),
    Column("epochs", "epochs", general, stat=True),
    Column("best_epoch", "best epoch", general, stat=True),
    Column("seconds_per_epoch", "s/epoch (median)", fixed(2), stat=True),
    Column("train_seconds", "train (s)", fixed(1), stat=True),
    Column("num_parameters", "parameters", fixed(0)),
    Column("note", "note", max_width=100),
]


def _metric_columns(run: str | None, names: Iterable[str]) -> list[Column]:
    taken = [c.key for c in _lead_columns(run) + SUMMARY_COLUMNS] + [QUICK_COLUMN.key, TEST_SAMPLES_COLUMN.key]
    return [metric_column(name, taken) for name in names]


def _summary_columns(run: str | None, metrics: list[Column]) -> list[Column]:
    """The summary's columns with the ``metrics`` columns after macro F1."""
    at = next(i for i, c in enumerate(SUMMARY_COLUMNS) if c.key == "macro_f1") + 1
    return _lead_columns(run) + SUMMARY_COLUMNS[:at] + metrics + SUMMARY_COLUMNS[at:]


def _summary_row(pairs: Pairs, metrics: list[Column]) -> dict[str, Any]:
    return {
        "status": group_status(pairs),
        "n": len(ok_pairs(pairs)),
        "num_parameters": num_parameters(pairs),
        **{c.key: metric_stat(pairs, c.header) for c in metrics},
        "accuracy_pct": accuracy_stat(pairs),
        "macro_f1": stat_of(pairs, "metrics.per_class.macro.f1", lambda p: _macro(p).get("f1")),
        "epochs": stat_of(pairs, "epochs_run", lambda p: p.get("epochs_run")),
        "best_epoch": stat_of(pairs, "best_epoch", lambda p: p.get("best_epoch")),
        "seconds_per_epoch": time_stat(pairs),
        "train_seconds": stat_of(pairs, "timing.train_seconds", lambda p: timing_of(p).get("train_seconds")),
        "note": group_note(pairs),
    }


def summary_table(results: RunResults, run: str | None = None, metrics: Sequence[str] | None = None) -> Table:
    """One row per model × dataset: status, parameter count, test accuracy, each plugin metric's
    scalars, epochs and time, over seeds.

    With ``run``, a leading ``run`` column holds that label (see :func:`merged_summary_table`).
    ``metrics``: the metric scalars to show (default: those of this run's ok pairs).
    A quick run's table is marked (:func:`mark_quick`) and says how many test samples each row used.
    """
    groups = group_pairs(pairs_of(results))
    metric_columns = _metric_columns(run, metric_names(pairs_of(results)) if metrics is None else metrics)
    rows = [
        _lead_cells(run, key, pairs) | _summary_row(pairs, metric_columns) | {"test_samples": _test_samples(pairs)}
        for key, pairs in groups.items()
    ]
    return mark_quick(Table("Summary", _summary_columns(run, metric_columns), rows), results, TEST_SAMPLES_COLUMN)


def merged_summary_table(runs: Sequence[tuple[str, RunResults]]) -> Table:
    """One summary of several runs: one row per model × dataset × run, labelled by run, with the
    metric columns of all of them.

    When any run is quick, every row says whether its run was (the columns of the widest table).
    """
    names = list(dict.fromkeys(n for _, results in runs for n in metric_names(pairs_of(results))))
    tables = [summary_table(results, run=label, metrics=names) for label, results in runs]
    columns = max((t.columns for t in tables), key=len)
    quick = any(is_quick(results) for _, results in runs)
    title = f"Summary ({QUICK_TITLE} rows marked)" if quick else "Summary"
    rows = [row | ({"quick": "yes" if is_quick(results) else "no"} if quick else {})
            for t, (_, results) in zip(tables, runs, strict=True) for row in t.rows]
    return Table(title, columns, rows)


PUBLISHED_STATUS = "published, not run here"
PUBLISHED_NOTE = ("Published rows are other papers' test accuracies on these tasks (their own training, "
                  "splits and, for psmnist, permutation), quoted for orientation; seqbench did not run them. "
                  "Turn them off with --no-published.")


def shows_published(results: RunResults) -> bool:
    """Whether a run's reports show published results (``config.published``, default yes)."""
    return config_of(results).get("published") is not False


def published_table(runs: Sequence[RunResults]) -> Table | None:
    """Published results (:mod:`seqbench.references`) for the datasets of ``runs``, every row
    marked "published, not run here"; None when there are none or a run turned them off."""
    if not runs or not all(shows_published(results) for results in runs):
        return None
    from seqbench.references import for_datasets

    datasets = [d for results in runs for d in [*config_of(results).get("datasets", []),
                                                 *(p["dataset"] for p in pairs_of(results))]]
    found = for_datasets(datasets)
    if not found:
        return None
    columns = [Column("model", "model"), Column("dataset", "dataset"), Column("status", "status"),
               Column("accuracy_pct", "test accuracy (%)", _PCT), Column("source", "source", max_width=120),
               Column("table", "table")]
    rows = [{"model": p.model, "dataset": p.dataset, "status": PUBLISHED_STATUS, "accuracy_pct": p.accuracy,
             "source": p.source, "table": p.table} for p in found]
    return Table(f"Published results ({PUBLISHED_STATUS})", columns, rows)


def published_markdown(results: RunResults) -> str:
    """The published-results section of ``summary.md`` ("" when there is none)."""
    table = published_table([results])
    return "" if table is None else f"\n## {table.title}\n\n{render(table, 'github')}\n{PUBLISHED_NOTE}\n"


PER_CLASS_COLUMNS = [
    Column("class", "class"),
    N_COLUMN,
    Column("precision", "precision", _F3, stat=True),
    Column("recall", "recall", _F3, stat=True),
    Column("f1", "F1", _F3, stat=True),
    Column("support", "support", fixed(0)),
]


_CLASS_METRICS = ("precision", "recall", "f1")


def _per_class(pair: PairRecord) -> PerClassResult:
    return metrics_of(pair).get("per_class", {})


def _macro(pair: PairRecord) -> dict[str, float]:
    return _per_class(pair).get("macro", {})


def _classes(pair: PairRecord) -> list[ClassScores]:
    """The per-class entries of a pair's report (empty when it has none)."""
    classes = _per_class(pair).get("classes", [])
    if not all(isinstance(c, dict) for c in classes):  # the loader checks the list, not its items
        raise ResultsError(f"{pair_name(pair)}: metrics.per_class.classes is not a list of objects")
    return classes


def _class_rows(pairs: Pairs) -> list[dict[str, Any]]:
    reporting = [p for p in ok_pairs(pairs) if _classes(p)]
    if not reporting:
        return []
    rows: list[dict[str, Any]] = []
    for i, entry in enumerate(_classes(reporting[0])):
        per_seed = [(p, _classes(p)[i]) for p in reporting if i < len(_classes(p))]
        row = {
            k: stat(checked(p, f"metrics.per_class.classes[{i}].{k}", c.get(k)) for p, c in per_seed)
            for k in _CLASS_METRICS
        }
        support = checked(reporting[0], f"metrics.per_class.classes[{i}].support", entry.get("support"))
        rows.append({"class": str(entry.get("class", i)), "n": len(per_seed),
                     "support": None if support is None else int(support)} | row)
    macro = {k: stat(checked(p, f"metrics.per_class.macro.{k}", _macro(p).get(k)) for p in reporting)
             for k in _CLASS_METRICS}
    support = sum(r["support"] or 0 for r in rows)
    return [*rows, {"class": "macro avg", "n": len(reporting), "support": support} | macro]


def per_class_table(results: RunResults) -> Table:
    """Precision, recall, F1 and support per class and model × dataset, with macro averages."""
    rows = [
        _lead_cells(None, key, pairs) | row
        for key, pairs in group_pairs(pairs_of(results)).items()
        for row in _class_rows(pairs)
    ]
    return mark_quick(Table("Per-class metrics", _lead_columns(None) + PER_CLASS_COLUMNS, rows), results)


TIMING_COLUMNS = [
    Column("device", "device"),
    N_COLUMN,
    Column("seconds_per_epoch", "s/epoch (median)", fixed(2), stat=True),
    Column("epoch_seconds_min", "s/epoch (min)", fixed(2), stat=True),
    Column("epoch_seconds_mean", "s/epoch (mean)", fixed(2), stat=True),
    Column("train_seconds", "train (s)", fixed(1), stat=True),
    Column("time_to_best_seconds", "to best (s)", fixed(1), stat=True),
    Column("inference_seconds", "inference (s)", fixed(3), stat=True),
    Column("samples_per_second", "inference (samples/s)", fixed(0), stat=True),
    Column("peak_host_rss_mib", "peak host RSS (MiB)", fixed(0), stat=True),
    Column("peak_device_mib", "peak device (MiB)", fixed(0), stat=True),
]


#: The timings of a pair that the timing table shows (beside the median, :func:`time_stat`).
TimingField = Literal["epoch_seconds_min", "epoch_seconds_mean", "train_seconds", "time_to_best_seconds",
                      "inference_seconds", "inference_samples_per_second", "peak_host_rss_bytes", "peak_device_bytes"]


def _timing_stat(pairs: Pairs, key: TimingField, scale: float = 1.0) -> Stat | None:
    return stat_of(pairs, f"timing.{key}", lambda p: timing_of(p).get(key), scale=scale)


def _timing_row(pairs: Pairs) -> dict[str, Any]:
    devices = sorted({str(p["device"]) for p in ok_pairs(pairs) if p.get("device")})
    return {
        "device": " / ".join(devices) or None,
        "n": len(ok_pairs(pairs)),
        "seconds_per_epoch": time_stat(pairs),
        "epoch_seconds_min": _timing_stat(pairs, "epoch_seconds_min"),
        "epoch_seconds_mean": _timing_stat(pairs, "epoch_seconds_mean"),
        "train_seconds": _timing_stat(pairs, "train_seconds"),
        "time_to_best_seconds": _timing_stat(pairs, "time_to_best_seconds"),
        "inference_seconds": _timing_stat(pairs, "inference_seconds"),
        "samples_per_second": _timing_stat(pairs, "inference_samples_per_second"),
        "peak_host_rss_mib": _timing_stat(pairs, "peak_host_rss_bytes", scale=_MIB),
        "peak_device_mib": _timing_stat(pairs, "peak_device_bytes", scale=_MIB),
    }


def timing_table(results: RunResults) -> Table:
    """Training and inference time and peak memory per model × dataset."""
    rows = [
        _lead_cells(None, key, pairs) | _timing_row(pairs)
        for key, pairs in group_pairs(pairs_of(results)).items()
        if ok_pairs(pairs)
    ]
    return mark_quick(Table("Timing", _lead_columns(None) + TIMING_COLUMNS, rows), results)


# --- rendering -------------------------------------------------------------------------------


def _end(x: float, fmt: Callable[[float], str]) -> str:
    return fmt(x) if math.isfinite(x) else ("-∞" if x < 0 else "∞")


def _human_cell(value: Any, column: Column, row: dict[str, Any]) -> str:
    if value is None:
        return MISSING
    if isinstance(value, Stat):
        n = row.get(column.n_key)
        return value.format(column.fmt or str, n if isinstance(n, int) else None)
    if column.interval:
        return f"[{_end(value[0], column.fmt or str)}, {_end(value[1], column.fmt or str)}]"
    if column.fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return column.fmt(value)
    text = str(value)
    if column.max_width and len(text) > column.max_width:
        return text[: column.max_width - 1] + "…"
    return text


def _rounded(x: float | None) -> float | None:
    """Six decimals: enough for any timing or accuracy, without float noise in CSV; None if infinite."""
    return None if x is None or not math.isfinite(x) else round(x, 6)


def _machine_cells(column: Column, value: Any) -> dict[str, Any]:
    """A column's cells for machines: ``k_mean``/``k_std``/``k_n`` of a stat, ``k_low``/``k_high``
    of an interval, else ``k``."""
    if column.stat:
        parts = (value.mean, value.std, value.n) if value else (None, None, None)
        return {f"{column.key}_mean": _rounded(parts[0]), f"{column.key}_std": _rounded(parts[1]),
                f"{column.key}_n": parts[2]}
    if column.interval:
        low, high = value or (None, None)
        return {f"{column.key}_low": _rounded(low), f"{column.key}_high": _rounded(high)}
    return {column.key: value}


def machine_rows(table: Table) -> list[dict[str, Any]]:
    """Rows as flat dicts of plain values (see :class:`Column`)."""
    return [
        {k: v for column in table.columns for k, v in _machine_cells(column, row.get(column.key)).items()}
        for row in table.rows
    ]


def _machine_headers(table: Table) -> list[str]:
    return [name for column in table.columns for name in _machine_cells(column, None)]


def _csv(table: Table) -> str:
    """The machine rows as CSV, every cell and header safe to open in a spreadsheet (:func:`csv_cell`)."""
    out = io.StringIO()
    headers = _machine_headers(table)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in headers])
    writer.writerows([csv_cell(row.get(h)) for h in headers] for row in machine_rows(table))
    return out.getvalue()


def human_cells(table: Table) -> list[list[str]]:
    """The cells of every row as people read them (``mean ± std``, ``—`` where missing)."""
    return [[_human_cell(row.get(c.key), c, row) for c in table.columns] for row in table.rows]


def render(table: Table, fmt: str = "github") -> str:
    """The table as text: ``github`` (Markdown) or ``grid`` for people, ``csv`` or ``json``."""
    if fmt == "csv":
        return _csv(table)
    if fmt == "json":
        return json.dumps(machine_rows(table), indent=2) + "\n"
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r} (expected one of {', '.join(FORMATS)})")
    cells = human_cells(table)
    align = ["right" if c.fmt else "left" for c in table.columns]
    headers = [c.header for c in table.columns]
    return tabulate(cells, headers, tablefmt=fmt, colalign=align, disable_numparse=True) + "\n"


def summary_text(results: RunResults, fmt: str = "github") -> str:
    """The summary table of a run as text, for printing at the end of ``seqbench run``."""
    return render(summary_table(results), fmt)


# --- files -----------------------------------------------------------------------------------

TABLES: dict[str, Callable[[RunResults], Table]] = {
    "summary": summary_table,
    "per_class": per_class_table,
    "timing": timing_table,
}


def code_line(results: RunResults, digits: int = 12) -> str | None:
    """The code the run's pairs ran under: ``commit X`` (``digits`` digits) when one version, else
    every commit and dirty state with its number of pairs (a resume under other code averages
    seeds of both)."""
    from seqbench.provenance import code_state, code_version

    versions = Counter(v for p in pairs_of(results) if (v := code_version(p.get("environment"), digits)) is not None)
    if not versions:
        return code_state(environment_of(results), digits)
    if len(versions) == 1:
        (commit, flags), = versions
        return f"commit {commit}" + (f" ({', '.join(flags)})" if flags else "")
    shown = []
    for (commit, flags), n in versions.items():
        count = f"{n} pair{'s' * (n > 1)}"
        shown.append(f"{commit} ({', '.join(flags)}; {count})" if flags else f"{commit} ({count})")
    return "pairs ran under different code: commits " + " · ".join(shown)


def _run_line(results: RunResults) -> str:
    """Where the numbers come from: command, time, machine and commit(s), in one line."""
    machine = machine_of(results)
    parts = [
        f"`{results['command']}`" if results.get("command") else None,
        results.get("updated") or results.get("created"),
        f"{machine['cpu']} ({machine.get('cpu_count', '?')} CPUs)" if machine.get("cpu") else None,
        code_line(results),
    ]
    return " · ".join(str(p) for p in parts if p)


def data_line(results: RunResults) -> str:
    """What the harness did to each dataset's arrays (the same for every model)."""
    from seqbench.types import Preprocessing

    declared = config_of(results).get("preprocessing", {})
    parts = []
    for name, rec in declared.items():
        try:
            p = Preprocessing(bool(rec["standardize"]), bool(rec["hflip"]), int(rec["shift"]))
        except (KeyError, TypeError, ValueError):
            continue
        parts.append(f"{name}: {p.describe()}")
    return ("Data, for every model: " + " · ".join(parts)) if parts else ""


def tuning_line(results: RunResults) -> str:
    """Where the hyperparameters came from: ``tuned: N trials each on validation (...)`` (``seqbench
    run --params-from``) or ``defaults, untuned``."""
    tuned = config_of(results).get("tuned")
    if tuned is None:
        return "Hyperparameters: defaults, untuned"
    budgets = {(s["budget"].get("trials"), s["budget"].get("timeout")) for s in tuned["models"].values()}
    trials, timeout = next(iter(budgets))
    what = ("unequal budgets" if len(budgets) > 1 else f"{trials} trials each" if trials is not None
            else f"{timeout:g} s of trials each")
    subset = f", training subset of {tuned['max_train']}" if tuned.get("max_train") else ""
    return f"Hyperparameters: tuned: {what} on validation{subset} (seqbench tune {tuned['from']})"


def markdown(table: Table, results: RunResults) -> str:
    """A Markdown document: what is missing from a partial run, title, where the run comes from
    (data copies and the protocol each pair ran), the table and how to read it."""
    from seqbench.reporting.disclosure import data_lines, partial_markdown, protocol_lines

    quick = quick_note(results)
    copies, protocols = data_lines(results), protocol_lines(results)
    head = "\n\n".join(line for line in (
        f"**{quick}**" if quick else "", _run_line(results), data_line(results), tuning_line(results),
        "Data copies: " + " · ".join(copies) if copies else "",
        "Protocol, as each pair ran it: " + " · ".join(protocols) if protocols else "") if line)
    return f"{partial_markdown(results)}# {table.title}\n\n{head}\n\n{render(table, 'github')}\n{STATS_NOTE}\n"
