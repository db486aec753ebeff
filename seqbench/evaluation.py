"""``seqbench eval`` as a library: saved models evaluated on datasets of their input shape and
classes, with the metrics, tables and report of a run.

Every checkpoint is checked (manifest, size, SHA-256) and every dataset loaded and matched
against every model before any model is built; an incompatible pair refuses the whole command
in one line. Each model then reads each dataset's test split once, preprocessed as its training
data was (the standardisation statistics of its training rows) and, for a ``--quick`` model, the
same seeded test subset. The output is a run directory: ``results.json``, one record per
model x dataset x seed (saying which checkpoint and which training data produced it), test
predictions, tables, plots and ``report.html``, read by ``seqbench report`` and ``compare``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import checkpoints, fileio, provenance, records
from seqbench import results as res
from seqbench.checkpoints import CheckpointError, SavedModel
from seqbench.planning import RunError, check_names, parse_value
from seqbench.plugins import Registry, plugin_versions
from seqbench.progress import EventLog, Observers, PlannedPair, RunObserver
from seqbench.protocol import compute_metrics, predict_labels, test_split
from seqbench.runner import EVENTS_FILE, load_dataset, prepare_out_dir
from seqbench.types import Dataset, LoadContext, Model


@dataclass
class EvalRequest:
    """Checkpoints (manifests, parameter files or run directories) and the datasets to evaluate them on."""

    checkpoints: list[Path]
    datasets: list[str]
    out_dir: Path
    data_dir: Path
    #: ``--set KEY=VALUE``: replaces a stored hyperparameter for evaluating (``threads``, a device).
    overrides: dict[str, str] = field(default_factory=dict)
    download: bool = True
    plots: bool = True
    plot_format: str = "png"
    command: str = "seqbench eval"


@dataclass(frozen=True)
class EvalPlan:
    """The checked checkpoints with their restored models, and each dataset loaded (every pair
    of them is compatible)."""

    saved: list[SavedModel]
    models: list[Model]
    datasets: dict[str, Dataset]


def plan_eval(registry: Registry, request: EvalRequest) -> EvalPlan:
    """Read and check the checkpoints, load the datasets, refuse (:class:`RunError`,
    :class:`CheckpointError`) any model x dataset that does not fit before any model is built,
    then restore the models: every refusal comes before anything is evaluated or written."""
    manifests = dict.fromkeys(m.resolve() for p in request.checkpoints for m in checkpoints.find(p))
    saved = [checkpoints.read(m) for m in manifests]
    seen: dict[tuple[str, int], SavedModel] = {}
    for s in saved:
        key = (s.manifest["model"], s.manifest["seed"])
        if key in seen:
            raise RunError(f"{seen[key].path} and {s.path} are both {key[0]} seed {key[1]}: their results would "
                           "share a record; evaluate them in separate commands")
        seen[key] = s
        if key[0] not in registry.models:
            raise CheckpointError(f"{s.path}: model {key[0]!r} is not registered here; install its plugin "
                                  f"({s.manifest['model_plugin']!r})")
    for s in saved:
        params_for(s, request.overrides)  # a bad --set is refused now
    names = check_names("dataset", request.datasets, registry.datasets)
    ctx = LoadContext(data_dir=request.data_dir, download=request.download, datasets=registry.datasets)
    datasets: dict[str, Dataset] = {}
    for name in names:
        dataset, _, reason = load_dataset(registry, name, ctx)
        if dataset is None:
            raise RunError(f"dataset {name!r} cannot be evaluated on: {reason}")
        for s in saved:
            why = checkpoints.incompatibility(s, dataset.info, dataset.channels)
            if why:
                raise RunError(f"{s.label()} cannot be evaluated on {name}: {why} ({s.path})")
        datasets[name] = dataset
    models = [checkpoints.restore(s, registry, params_for(s, request.overrides)) for s in saved]
    return EvalPlan(saved, models, datasets)


def params_for(saved: SavedModel, overrides: Mapping[str, str]) -> dict[str, Any]:
    """The hyperparameters the model was trained with, ``overrides`` (``--set``) applied."""
    params = dict(saved.manifest["params"])
    for key, text in overrides.items():
        if key == "seed" or key not in params:
            raise RunError(f"--set {key}: {saved.manifest['model']} has no such stored hyperparameter "
                           f"(it has: {', '.join(k for k in params if k != 'seed')})")
        params[key] = parse_value(key, text, params[key])
    return params


def evaluate(registry: Registry, request: EvalRequest, observer: RunObserver | None = None) -> dict[str, Any]:
    """Evaluate every checkpoint on every dataset; returns the results (also written to ``out_dir``)."""
    plan = plan_eval(registry, request)
    out = request.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write to output directory {out}: {exc.strerror or exc}") from None
    with fileio.run_lock(out):
        prepare_out_dir(out, resume=False)
        log = EventLog(out / EVENTS_FILE, request.command, (observer or RunObserver()).warn)
        both = Observers(observer or RunObserver(), log)
        try:
            return _evaluate_locked(registry, request, plan, both)
        finally:
            log.close()


def _evaluate_locked(registry: Registry, request: EvalRequest, plan: EvalPlan, observer: RunObserver) -> dict[str, Any]:
    out = request.out_dir
    env = provenance.environment(plugin_versions(registry))
    session = res.new_session(request.command, str(request.data_dir), env)
    results = res.new_results(_config(request, plan), session)
    _save(out, "results.json", lambda: res.write_results(out, results))
    pairs = [PlannedPair(s.manifest["model"], d, s.manifest["seed"]) for d in plan.datasets for s in plan.saved]
    observer.run_start(out, pairs, [], False)
    index = 0
    for ds_name, dataset in plan.datasets.items():
        for saved, model in zip(plan.saved, plan.models, strict=True):
            index += 1
            observer.pair_start(index, len(pairs), saved.manifest["model"], ds_name, saved.manifest["seed"])
            record, predictions = evaluate_pair(registry, saved, model, ds_name, dataset,
                                                params_for(saved, request.overrides), env)
            pair = f"{record['model']} x {ds_name} seed {record['seed']}"
            _save(out, f"the record of {pair}", partial(res.write_predictions, out, record, predictions))
            _save(out, f"the record of {pair}", partial(res.write_pair, out, record))
            observer.pair_end(record)
            results["pairs"].append(record)
            _save(out, "results.json", lambda: res.write_results(out, results))
    _reports(out, results, request.plot_format if request.plots else None, observer)
    observer.run_end(results)
    return results


def evaluate_pair(registry: Registry, saved: SavedModel, model: Model, ds_name: str, dataset: Dataset,
                  params: dict[str, Any], env: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """The record of ``model``, restored from ``saved``, on ``dataset``'s test split (read once),
    and its predictions."""
    m = saved.manifest
    plugin = registry.plugin_of("model", m["model"])
    prep = m["preprocessing"]
    stats = (np.asarray(prep["mean"]), np.asarray(prep["std"])) if prep.get("mean") is not None else None
    test_x, test_y = test_split(dataset, m["seed"], m.get("max_test"), stats)
    num_classes = len(dataset.class_names)
    x_test = model.to_device(test_x)
    model.synchronize()
    t0 = time.perf_counter()
    proba, pred = predict_labels(model, x_test, num_classes, plugin)
    model.synchronize()
    seconds = time.perf_counter() - t0
    metrics, errors, metric_warnings = compute_metrics(registry.metrics, test_y, pred, proba, dataset)
    info = dataset.info
    record = {
        "schema_version": res.SCHEMA_VERSION, "model": m["model"], "dataset": ds_name, "seed": m["seed"],
        "model_plugin": plugin, "dataset_plugin": registry.plugin_of("dataset", ds_name),
        "status": "ok", "reason": None, "started": res.now_iso(), "environment": env,
        "params": params, "hyperparameters": m.get("hyperparameters") or params, "device": str(model.device),
        "num_parameters": m.get("num_parameters"),
        "dataset_info": {
            "name": ds_name, "seq_len": info.seq_len, "n_features": info.n_features,
            "class_names": list(info.class_names), "fingerprint": str(dataset.fingerprint),
            "n_train_full": len(dataset.train_y), "n_test_full": len(dataset.test_y),
            "n_test": len(test_y), "meta": res.json_ready(dict(dataset.meta), "meta"),
        },
        # The model's training, as its checkpoint records it: no epochs were run here.
        "history": m.get("history") or [], "best_epoch": m.get("best_epoch") or 0,
        "epochs_run": m.get("epochs_run") or 0,
        "preprocessing": prep, "metrics": metrics, "metric_errors": errors,
        **({"metric_warnings": metric_warnings} if metric_warnings else {}),
        "timing": {"inference_seconds": seconds,
                   "inference_samples_per_second": len(test_y) / seconds if seconds > 0 else None},
        "evaluated": {
            "checkpoint": str(saved.path), "sha256": m["sha256"], "trained_on": m["data"],
            "validation_accuracy": m.get("validation_accuracy"), "training_test_accuracy": m.get("test_accuracy"),
            "commit": m.get("commit"),
        },
        "finished": res.now_iso(),
    }
    labels = np.stack([test_y, pred]).astype(np.int8 if num_classes <= 127 else np.int32)
    return res.json_ready(record), labels


def _config(request: EvalRequest, plan: EvalPlan) -> dict[str, Any]:
    standardized = {bool(s.manifest["preprocessing"].get("standardize")) for s in plan.saved}
    applied = {"standardize": standardized.pop(), "hflip": False, "shift": 0} if len(standardized) == 1 else None
    return {
        "models": list(dict.fromkeys(s.manifest["model"] for s in plan.saved)),
        "datasets": list(plan.datasets),
        "seeds": sorted({s.manifest["seed"] for s in plan.saved}),
        "quick": any(s.manifest.get("max_test") for s in plan.saved),
        # What was done to every dataset's test rows: the models' own training standardisation.
        "preprocessing": dict.fromkeys(plan.datasets, applied) if applied else {},
        "overrides": dict(request.overrides),
        "data_dir": str(request.data_dir),
        "protocol": {},
        "evaluation": {"checkpoints": [str(s.path) for s in plan.saved]},
        "published": False,
    }


def _save(out_dir: Path, what: str, write: Callable[[], object]) -> None:
    try:
        write()
    except OSError as exc:
        raise RunError(f"cannot write {what} in {out_dir} ({exc.strerror or exc})") from None


def _reports(out_dir: Path, results_dict: dict[str, Any], plot_format: str | None, observer: RunObserver) -> None:
    """The run's tables, records, per-pair plots and report.html; a failure to draw is a warning."""
    from seqbench.reporting import html_report, plots, table_files

    results = res.as_record(results_dict)
    steps = [("tables", lambda: table_files.write_tables(out_dir, results)),
             (records.RECORDS_FILE, lambda: records.write_records(out_dir, results))]
    if plot_format:
        steps += [(f"plots of {r['model']} x {r['dataset']}", partial(plots.write_pair_plots, out_dir, r, plot_format))
                  for r in results["pairs"]]
    steps.append(("report", lambda: html_report.write_run_report(out_dir, results, plot_format)))
    for what, write in steps:
        try:
            write()
        except Exception as exc:  # reports must never cost the evaluation
            observer.warn(f"could not write {what}: {type(exc).__name__}: {exc}")
