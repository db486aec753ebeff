"""``records.csv``: a run's numbers in tidy long format, one row per pair and measured value.

Columns: ``run, commit, model, dataset, seed, quick, fingerprint, provenance, metric, value,
unit``, then one ``param.<name>`` column per hyperparameter of any pair (the pair's own
``params``: epochs, patience, lr, hidden, ...; empty where a model has no such parameter).
``quick`` is ``true`` for rows of a ``--quick`` smoke run, so that an analysis can drop them;
``fingerprint`` identifies the data, ``provenance`` the label its dataset declares for that copy
(``CIFAR-10 dev split``). Metrics are the scalar results of every metric plugin (``accuracy``,
``per_class.macro.f1``, ``<plugin metric>.<key>``), the timing of the pair
(``epoch_seconds_median``, ``inference_samples_per_second``, ...), its epochs and its parameter
count. Only pairs that finished ``ok`` have rows. Text that a spreadsheet would run as a
formula is neutralised (:func:`seqbench.safe_text.csv_row`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from seqbench.fileio import atomic_write_text
from seqbench.metrics import is_number, scalars
from seqbench.safe_text import csv_row
from seqbench.schema.types import PairRecord, RunResults

RECORDS_FILE = "records.csv"
COLUMNS = ("run", "commit", "model", "dataset", "seed", "quick", "fingerprint", "provenance", "metric", "value", "unit")
PARAM_PREFIX = "param."

#: Units of the values seqbench itself measures; a plugin metric's unit is left empty.
UNITS = {
    "accuracy": "fraction", "accuracy.n": "samples",
    "per_class.macro.precision": "fraction", "per_class.macro.recall": "fraction", "per_class.macro.f1": "fraction",
    "epoch_seconds_median": "s", "epoch_seconds_min": "s", "epoch_seconds_mean": "s", "epochs_timed": "epochs",
    "train_seconds": "s", "time_to_best_seconds": "s", "inference_seconds": "s", "inference_timed_samples": "samples",
    "inference_samples_per_second": "samples/s", "peak_host_rss_bytes": "bytes", "peak_device_bytes": "bytes",
    "best_epoch": "epoch", "epochs_run": "epochs", "num_parameters": "parameters",
}



def pair_values(pair: PairRecord) -> Iterator[tuple[str, Any]]:
    """The measured values of one pair record, by metric name."""
    for name, result in (pair.get("metrics") or {}).items():
        yield from ((s.name, s.value) for s in scalars(name, result))
    for name, value in (pair.get("timing") or {}).items():
        if is_number(value):
            yield name, value
    for name, value in (("best_epoch", pair.get("best_epoch")), ("epochs_run", pair.get("epochs_run")),
                        ("num_parameters", pair.get("num_parameters"))):
        if is_number(value):
            yield name, value


def _commit(pair: PairRecord, results: RunResults) -> str:
    env = pair.get("environment") or results.get("environment") or {}
    return env.get("git_commit") or ""


def _pair_columns(pair: PairRecord, results: RunResults, run: str) -> dict[str, Any]:
    """The columns a pair's rows share: where it comes from, its data and its hyperparameters."""
    from seqbench.reporting.disclosure import provenance_label
    from seqbench.reporting.query import dataset_info_of

    info, params = dataset_info_of(pair), pair.get("params") or {}
    fingerprint = info.get("fingerprint")
    return {
        "run": run, "commit": _commit(pair, results), "model": pair["model"], "dataset": pair["dataset"],
        "seed": pair["seed"], "quick": "true" if (results.get("config") or {}).get("quick") else "false",
        "fingerprint": fingerprint or "",
        "provenance": provenance_label(pair["dataset"], fingerprint, info.get("provenance")) or "",
        **{PARAM_PREFIX + k: _param(v) for k, v in params.items() if k != "seed"},
    }


def _param(value: Any) -> Any:
    """A hyperparameter as one CSV cell (booleans as ``true``/``false``, lists as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def rows(results: RunResults, run: str) -> list[dict[str, Any]]:
    """The tidy rows of a run's ``ok`` pairs."""
    return [
        _pair_columns(pair, results, run) | {"metric": metric, "value": value, "unit": UNITS.get(metric, "")}
        for pair in results.get("pairs", []) if pair.get("status") == "ok"
        for metric, value in pair_values(pair)
    ]


def records_text(runs: Sequence[tuple[str, RunResults]]) -> str:
    """``records.csv`` of one or more ``(run label, results)``: :data:`COLUMNS`, then the
    ``param.*`` columns of every hyperparameter found, sorted."""
    all_rows = [row for run, results in runs for row in rows(results, run)]
    params = sorted({k for row in all_rows for k in row if k.startswith(PARAM_PREFIX)})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*COLUMNS, *params], lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_row(row) for row in all_rows)
    return buf.getvalue()


def write_records(run_dir: Path, results: RunResults) -> Path:
    """Write ``records.csv`` into ``run_dir`` (the run column is the directory's name)."""
    path = Path(run_dir) / RECORDS_FILE
    atomic_write_text(path, records_text([(Path(run_dir).resolve().name, results)]))
    return path
