"""``seqbench run`` as a library: every selected model x dataset x seed under the protocol.

Each pair's record is written the moment the pair ends; a pair that cannot run is recorded as
skipped with its reason, a pair that breaks as failed, and the run goes on.
"""

from __future__ import annotations

import json
import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from seqbench import preprocess
from seqbench import results as res
from seqbench.plugins import Registry, one_line, plugin_versions
from seqbench.progress import RunObserver
from seqbench.protocol import (
    PROTOCOL_DEFAULTS,
    QUICK_PROFILE,
    PluginOutputError,
    train_and_evaluate,
    validate_dataset,
)
from seqbench.types import Dataset, DatasetInfo, DatasetUnavailable, LoadContext, Preprocessing


class RunError(Exception):
    """A user error in the run request (unknown name, bad --set, unwritable output)."""


@dataclass
class RunRequest:
    models: list[str]
    datasets: list[str]
    seeds: list[int]
    out_dir: Path
    data_dir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    quick: bool = False
    standardize: bool = True
    augment: bool = True
    download: bool = True
    resume: bool = False
    plots: bool = True
    command: str = "seqbench run"


def check_names(kind: str, asked: list[str], known: Mapping[str, Any]) -> list[str]:
    """``asked`` (all known names when empty), refusing unknown names with the known ones listed."""
    if not asked:
        return sorted(known)
    unknown = [n for n in asked if n not in known]
    if unknown:
        raise RunError(f"unknown {kind} {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known)) or 'none'}")
    return list(dict.fromkeys(asked))


def parse_value(key: str, text: str, default: Any) -> Any:
    """Convert a ``--set`` value to the type of the parameter's default."""
    try:
        if isinstance(default, bool):
            low = text.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
        if default is None:
            return json.loads(text)
    except ValueError:
        raise RunError(f"--set {key}={text}: expected a finite value of type {type(default).__name__}") from None
    return text


def resolve_params(defaults: Mapping[str, Any], overrides: Mapping[str, str], quick: bool) -> dict[str, Any]:
    """Harness protocol defaults < the model's defaults < ``--quick`` < ``--set`` (only known keys)."""
    params = {**PROTOCOL_DEFAULTS, **defaults}
    if quick:
        params.update(epochs=QUICK_PROFILE["epochs"], patience=QUICK_PROFILE["patience"])
    for key, text in overrides.items():
        if key in params:
            params[key] = parse_value(key, text, params[key])
    return params


#: Allowed ranges of the protocol's hyperparameters.
_PROTOCOL_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "patience": (lambda v: v >= 1, "at least 1"),
    "val_fraction": (lambda v: 0 < v < 1, "between 0 and 1"),
}


def check_overrides(registry: Registry, models: list[str], datasets: list[str], overrides: Mapping[str, str]) -> None:
    """Refuse a ``--set`` key that no selected model knows, or a value of the wrong type or range.

    A model's defaults are asked for with a placeholder dataset shape; a plugin whose defaults
    raise is left to fail in its own pair.
    """
    if "seed" in overrides:
        raise RunError("--set seed=...: use --seeds instead")
    known: set[str] = set(PROTOCOL_DEFAULTS)
    for m in models:
        for d in datasets:
            try:
                defaults = registry.models[m].defaults(DatasetInfo(d, 1, 1, ("0", "1")))
            except Exception:
                continue
            known.update(defaults)
            resolve_params(defaults, overrides, quick=False)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise RunError(f"--set: unknown parameter {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    params = resolve_params({}, {k: v for k, v in overrides.items() if k in PROTOCOL_DEFAULTS}, quick=False)
    for key, (ok, expected) in _PROTOCOL_CHECKS.items():
        if key in overrides and not ok(params[key]):
            raise RunError(f"--set {key}={overrides[key]}: must be {expected}")


def prepare_out_dir(out_dir: Path, resume: bool) -> None:
    """Check that ``out_dir`` can be written, and holds a run exactly when resuming."""
    has_run = (out_dir / res.RESULTS_FILE).exists()
    if resume and not has_run:
        raise RunError(f"--resume {out_dir}: no {res.RESULTS_FILE} there")
    if not resume and (has_run or (out_dir / res.PAIRS_DIR).exists()):
        raise RunError(f"{out_dir} already holds a run; continue it with --resume {out_dir}, or choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".seqbench-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}") from None


def resume_request(out_dir: Path, data_dir: Path | None = None, **options: Any) -> RunRequest:
    """The request of the run stored in ``out_dir``, to continue it (``data_dir`` may move)."""
    config = res.load_results(out_dir)["config"]
    return RunRequest(
        models=list(config["models"]),
        datasets=list(config["datasets"]),
        seeds=[int(s) for s in config["seeds"]],
        out_dir=out_dir,
        data_dir=data_dir or Path(config["data_dir"]),
        overrides=dict(config.get("overrides") or {}),
        quick=bool(config.get("quick")),
        standardize=bool(config.get("standardize", True)),
        augment=bool(config.get("augment", True)),
        resume=True,
        **options,
    )


def _record(model: str, dataset: str, seed: int, registry: Registry, status: str, reason: str | None) -> dict[str, Any]:
    return {
        "schema_version": res.SCHEMA_VERSION,
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "model_plugin": registry.plugin_of("model", model),
        "dataset_plugin": registry.plugin_of("dataset", dataset),
        "status": status,
        "reason": reason,
        "started": res.now_iso(),
    }


def run_benchmark(
    registry: Registry, request: RunRequest, observer: RunObserver | None = None
) -> dict[str, Any]:
    """Run every requested pair and return the run's results (also written to ``out_dir``)."""
    observer = observer or RunObserver()
    models = check_names("model", request.models, registry.models)
    datasets = check_names("dataset", request.datasets, registry.datasets)
    check_overrides(registry, models, datasets, request.overrides)
    prepare_out_dir(request.out_dir, request.resume)
    done = {}
    if request.resume:
        done = {k: r for k, r in res.read_pairs(request.out_dir).items() if r["status"] in res.DONE_STATUSES}

    config = {
        "models": models,
        "datasets": datasets,
        "seeds": request.seeds,
        "quick": request.quick,
        "standardize": request.standardize,
        "augment": request.augment,
        "preprocessing": {d: preprocess.record(_preprocessing(registry, d, request), None) for d in datasets},
        "overrides": dict(request.overrides),
        "data_dir": str(request.data_dir),
        "protocol": {**PROTOCOL_DEFAULTS, **({"quick_profile": QUICK_PROFILE} if request.quick else {})},
    }
    results = res.new_results(config, res.environment(plugin_versions(registry)), request.command)
    if request.resume:
        results["created"] = res.load_results(request.out_dir).get("created", results["created"])
    res.write_results(request.out_dir, results)  # resumable from the first moment
    ctx = LoadContext(data_dir=request.data_dir, download=request.download)
    total = len(models) * len(datasets) * len(request.seeds)
    observer.run_start(request.out_dir, total)
    index = 0
    for ds_name in datasets:
        keys = {(m, s): res.pair_key(m, ds_name, s) for m in models for s in request.seeds}
        todo = any(k not in done for k in keys.values())
        dataset, ds_status, ds_reason = _load_dataset(registry, ds_name, ctx) if todo else (None, "ok", None)
        for model_name in models:
            for seed in request.seeds:
                index += 1
                key = keys[(model_name, seed)]
                if key in done:
                    record = done[key]
                else:
                    observer.pair_start(index, total, model_name, ds_name, seed)
                    if dataset is None:
                        record = _record(model_name, ds_name, seed, registry, ds_status, ds_reason)
                    else:
                        record = _run_pair(registry, model_name, ds_name, dataset, seed, request, observer)
                    record["finished"] = res.now_iso()
                    predictions = record.pop("test_predictions", None)
                    if predictions is not None:
                        res.write_predictions(request.out_dir, record, predictions)
                    res.write_pair(request.out_dir, record)
                    observer.pair_end(record)
                results["pairs"].append(record)
                res.write_results(request.out_dir, results)
                _write_reports(request.out_dir, results, record, request.plots and key not in done, observer)
        del dataset
    if request.plots:
        _guard(observer, "run plots", lambda: _plots().write_run_plots(request.out_dir, results))
    return results


def _load_dataset(registry: Registry, name: str, ctx: LoadContext) -> tuple[Dataset | None, str, str | None]:
    plugin = registry.plugin_of("dataset", name)
    try:
        dataset = registry.datasets[name].load(ctx)
        if not isinstance(dataset, Dataset):
            return None, "failed", f"dataset plugin {plugin!r}: load() returned {type(dataset).__name__}, not a Dataset"
        validate_dataset(dataset, plugin)
    except DatasetUnavailable as exc:
        return None, "skipped", str(exc)
    except PluginOutputError as exc:
        return None, "failed", str(exc)
    except Exception as exc:
        return None, "failed", f"dataset plugin {plugin!r}: {one_line(exc)}"
    return dataset, "ok", None


def _run_pair(
    registry: Registry,
    model_name: str,
    ds_name: str,
    dataset: Dataset,
    seed: int,
    request: RunRequest,
    observer: RunObserver,
) -> dict[str, Any]:
    spec = registry.models[model_name]
    plugin = registry.plugin_of("model", model_name)
    record = _record(model_name, ds_name, seed, registry, "ok", None)
    info = dataset.info
    record["dataset_info"] = {
        "name": ds_name,
        "seq_len": info.seq_len,
        "n_features": info.n_features,
        "class_names": list(dataset.class_names),
        "fingerprint": dataset.fingerprint,
        "n_train_full": int(len(dataset.train_y)),
        "n_test_full": int(len(dataset.test_y)),
    }
    try:
        reason = spec.unavailable()
        if reason:
            record.update(status="skipped", reason=reason)
            return record
        params = resolve_params(spec.defaults(info), request.overrides, request.quick)
        params["seed"] = seed
        record["params"] = params
        model = spec.build(info, params)
        record["device"] = str(model.device)
        limits = {"max_train": QUICK_PROFILE["max_train"], "max_test": QUICK_PROFILE["max_test"]} if request.quick else {}
        out = train_and_evaluate(
            model, dataset, params, registry.metrics, seed=seed, model_plugin=plugin, progress=observer,
            preprocessing=_preprocessing(registry, ds_name, request), **limits,
        )
    except PluginOutputError as exc:
        record.update(status="failed", reason=str(exc))
        return record
    except Exception as exc:
        record.update(status="failed", reason=f"model plugin {plugin!r}: {one_line(exc)}", traceback=traceback.format_exc())
        return record
    split = out.pop("split")
    record["dataset_info"].update(split)
    record.update(out)
    for name, error in (out.get("metric_errors") or {}).items():
        observer.warn(f"metric {name!r} from plugin {registry.plugin_of('metric', name)!r} failed: {error}")
    return record


def _preprocessing(registry: Registry, dataset: str, request: RunRequest) -> Preprocessing:
    """The dataset's declared preprocessing, less what the run turned off."""
    declared = registry.datasets[dataset].preprocessing
    return preprocess.plan(declared, standardize=request.standardize, augment=request.augment)


def _plots():
    from seqbench import plots

    return plots


def _guard(observer: RunObserver, what: str, fn: Callable[[], Any]) -> None:
    """Reports must never cost a finished pair: a failure to draw is a warning."""
    try:
        fn()
    except Exception as exc:
        observer.warn(f"could not write {what}: {one_line(exc)}")


def _write_reports(out_dir: Path, results: dict[str, Any], record: dict[str, Any], plots: bool, observer: RunObserver) -> None:
    from seqbench import tables

    _guard(observer, "tables", lambda: tables.write_tables(out_dir, results))
    if plots and record.get("status") in res.DONE_STATUSES:
        _guard(observer, "pair plots", lambda: _plots().write_pair_plots(out_dir, record))
