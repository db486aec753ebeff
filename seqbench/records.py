"""``records.csv``: a run's numbers in tidy long format, one row per pair and measured value.

Columns: ``run, commit, model, dataset, seed, metric, value, unit``. Metrics are the scalar
results of every metric plugin (``accuracy``, ``per_class.macro.f1``, ``<plugin metric>.<key>``),
the timing of the pair (``epoch_seconds_median``, ``inference_samples_per_second``, ...), its
epochs and its parameter count. Only pairs that finished ``ok`` have rows. Text that a
spreadsheet would run as a formula is neutralised (:func:`seqbench.safe_text.csv_cell`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterator

from seqbench.metrics import is_number, scalars
from seqbench.results import atomic_write_text
from seqbench.safe_text import csv_row

RECORDS_FILE = "records.csv"
COLUMNS = ("run", "commit", "model", "dataset", "seed", "metric", "value", "unit")

#: Units of the values seqbench itself measures; a plugin metric's unit is left empty.
UNITS = {
    "accuracy": "fraction", "accuracy.n": "samples",
    "per_class.macro.precision": "fraction", "per_class.macro.recall": "fraction", "per_class.macro.f1": "fraction",
    "epoch_seconds_median": "s", "epoch_seconds_min": "s", "epoch_seconds_mean": "s", "epochs_timed": "epochs",
    "train_seconds": "s", "time_to_best_seconds": "s", "inference_seconds": "s", "inference_timed_samples": "samples",
    "inference_samples_per_second": "samples/s", "peak_host_rss_bytes": "bytes", "peak_device_bytes": "bytes",
    "best_epoch": "epoch", "epochs_run": "epochs", "num_parameters": "parameters",
}



def pair_values(pair: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The measured values of one pair record, by metric name."""
    for name, result in (pair.get("metrics") or {}).items():
        yield from ((s.name, s.value) for s in scalars(name, result))
    for name, value in (pair.get("timing") or {}).items():
        if is_number(value):
            yield name, value
    for name in ("best_epoch", "epochs_run", "num_parameters"):
        if is_number(pair.get(name)):
            yield name, pair[name]


def _commit(pair: dict[str, Any], results: dict[str, Any]) -> str:
    env = pair.get("environment") or results.get("environment") or {}
    return env.get("git_commit") or ""


def rows(results: dict[str, Any], run: str) -> list[dict[str, Any]]:
    """The tidy rows of a run's ``ok`` pairs."""
    return [
        {"run": run, "commit": _commit(pair, results), "model": pair["model"], "dataset": pair["dataset"],
         "seed": pair["seed"], "metric": metric, "value": value, "unit": UNITS.get(metric, "")}
        for pair in results.get("pairs", []) if pair.get("status") == "ok"
        for metric, value in pair_values(pair)
    ]


def write_records(run_dir: Path, results: dict[str, Any]) -> Path:
    """Write ``records.csv`` into ``run_dir`` (the run column is the directory's name)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_row(row) for row in rows(results, Path(run_dir).resolve().name))
    path = Path(run_dir) / RECORDS_FILE
    atomic_write_text(path, buf.getvalue())
    return path
