"""``seqbench run`` as a library: every selected model x dataset x seed under the protocol.

Each pair's record is written the moment the pair ends; a pair that cannot run is recorded as
skipped with its reason, a pair that breaks as failed, and the run goes on.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import math
import os
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from seqbench import checkpoints, fileio, preprocess, provenance, records
from seqbench.executors import Executor, Matrix, PairJob
from seqbench.executors.local import SequentialExecutor
from seqbench.loggers import LoggerObserver
from seqbench import results as res
from seqbench.plugins import Registry, one_line, plugin_versions
from seqbench.progress import EventLog, Observers, PlannedPair, RunObserver, Unavailable, is_event_log
from seqbench.hyperparams import Param, ParamValueError, by_name, check_values, declared_defaults
from seqbench.protocol import (
    PROTOCOL_DEFAULTS,
    PROTOCOL_PARAMS,
    QUICK_PROFILE,
    PluginOutputError,
    train_and_evaluate,
    validate_dataset,
)
from seqbench.timeouts import PairTimeout, UserInterrupt, is_plugins_interrupt, time_limit, user_interrupts
from seqbench.types import (
    Dataset, DatasetInfo, DatasetUnavailable, LoadContext, MetricSpec, Preprocessing, derived_fingerprint,
)


class RunError(Exception):
    """A user error in the run request (unknown name, bad --set, unwritable output)."""


class SettingError(RunError):
    """A ``--set`` (or config) key or value that nothing selected takes or allows: a usage error."""


class Terminated(UserInterrupt):
    """The process was asked to stop (SIGTERM): handled like Ctrl-C."""


#: A partly written data download older than this (seconds) is left over from a killed fetch.
STALE_DOWNLOAD_SECONDS = 3600


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
    plot_format: str = "png"
    command: str = "seqbench run"
    #: Keep models and datasets that cannot run here (skipped records) even when not named.
    include_unavailable: bool = False
    #: Show published results of the run's datasets in its reports (seqbench.references).
    published: bool = True
    #: Write a new run into an ``out_dir`` that holds other things (they may be overwritten).
    allow_nonempty: bool = False
    #: Keep each ok pair's restored best-validation model beside its record (seqbench.checkpoints).
    save_models: bool = False
    #: Seconds a pair may train before it is stopped and recorded as failed (None: no limit).
    pair_timeout: float | None = None
    #: Where the hyperparameters came from, when ``seqbench run --params-from`` set them (its tune,
    #: and per model the study, trial and budget); recorded in the run's config.
    tuned: dict[str, Any] | None = None


@dataclass(frozen=True)
class PairFiles:
    """What a pair leaves beside its record: its test predictions (``(2, n_test)`` labels and
    predicted labels) and, with ``save_models``, its checkpoint."""

    predictions: Any = None
    checkpoint: checkpoints.Checkpoint | None = None


#: The file of the run's events, one JSON object a line (:class:`seqbench.progress.EventLog`).
EVENTS_FILE = "events.jsonl"


def is_pattern(name: str) -> bool:
    """Whether a ``-m``/``-d`` value is a shell-style pattern rather than a name."""
    return any(c in name for c in "*?[")


def check_names(kind: str, asked: list[str], known: Mapping[str, Any]) -> list[str]:
    """The names ``asked`` gives, names or shell-style patterns (all known names when empty),
    refusing an unknown name or a pattern that matches nothing, with the known ones listed."""
    if not asked:
        return sorted(known)
    known_list = f"known: {', '.join(sorted(known)) or 'none'}"
    unknown = [n for n in asked if not is_pattern(n) and n not in known]
    if unknown:
        raise RunError(f"unknown {kind} {', '.join(map(repr, unknown))}; {known_list}")
    names: list[str] = []
    for item in asked:
        matches = sorted(fnmatch.filter(known, item)) if is_pattern(item) else [item]
        if not matches:
            raise RunError(f"{kind} pattern {item!r} matches nothing; {known_list}")
        names.extend(matches)
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class RunPlan:
    """What a request runs: its models, datasets and pairs, and what is left out as unavailable."""

    models: list[str]
    datasets: list[str]
    pairs: list[PlannedPair]
    unavailable: list[Unavailable]
    #: Datasets kept, as skipped records, when they cannot load (named ones, or all).
    keep_datasets: frozenset[str] = frozenset()
    #: Which models take each unscoped ``--set`` that not every model takes (:func:`override_notes`).
    notes: tuple[str, ...] = ()


def plan_run(registry: Registry, request: RunRequest) -> RunPlan:
    """Resolve names and patterns, check ``--set``, leave out the models that cannot run here
    (unless named or ``include_unavailable``) and, when no dataset is named, the datasets not
    ``in_all``; resolve each pair's hyperparameters.

    Reads nothing and writes nothing: ``--dry-run`` prints this.
    """
    models = check_names("model", request.models, registry.models)
    datasets = check_names("dataset", request.datasets, registry.datasets)
    if not request.datasets:  # none named: the datasets a whole run includes
        datasets = [d for d in datasets if registry.datasets[d].in_all]
    taken = check_overrides(registry, models, datasets, request.overrides)
    unavailable = []
    if not request.include_unavailable:
        named = set(request.models)
        unavailable = [Unavailable("model", m, r) for m in models if m not in named and (r := _unavailable(registry, m))]
        models = [m for m in models if m not in {u.name for u in unavailable}]
    pairs = []
    for d in datasets:
        for m in models:
            params = _planned_params(registry, m, d, request)
            for seed in request.seeds:
                pairs.append(PlannedPair(m, d, seed, (params or {}).get("epochs"),
                                         params={**params, "seed": seed} if params is not None else None))
    keep = frozenset(datasets if request.include_unavailable else request.datasets)
    taken = {k: [m for m in takers if m in models] for k, takers in taken.items()}
    return RunPlan(models, datasets, pairs, unavailable, keep, tuple(override_notes(taken, models, request.overrides)))


def _unavailable(registry: Registry, model: str) -> str | None:
    """Why ``model`` cannot run here; a plugin whose check raises is kept, to fail in its pairs."""
    try:
        reason = registry.models[model].unavailable()
    except KeyboardInterrupt:
        raise
    except BaseException:
        return None
    return str(reason) if reason else None


def _planned_params(registry: Registry, model: str, dataset: str, request: RunRequest) -> dict[str, Any] | None:
    """The pair's hyperparameters from the model's defaults for the dataset's name (its shape is
    not known before it loads); None when the defaults fail (the pair will fail, naming why)."""
    try:
        defaults = registry.models[model].defaults_for(DatasetInfo(dataset, 1, 1, ("0", "1")))
        return resolve_params(res.json_ready(dict(defaults), "defaults"), request.overrides, request.quick, model=model,
                              declared=declared_params(registry.models[model].params))
    except (KeyboardInterrupt, RunError):
        raise
    except BaseException:
        return None


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
            return res.json_ready(res.loads(text))
    except ValueError:
        expected = "a JSON value (finite numbers only)" if default is None else f"a finite {type(default).__name__}"
        raise SettingError(f"--set {key}={text}: expected {expected}") from None
    return text


def declared_params(params: Iterable[Param] = ()) -> dict[str, Param]:
    """The declarations that check a model's values: the protocol's, then the model's own."""
    return {p.name: p for p in PROTOCOL_PARAMS} | by_name(params, "params")


def parse_setting(key: str, text: str, default: Any, declared: Param | None, owner: str | None = None) -> Any:
    """A ``--set`` value: checked against its declaration when there is one, else converted to
    the type of the default (:func:`parse_value`). A value not allowed is a :class:`SettingError`."""
    if declared is None:
        return parse_value(key, text, default)
    try:
        return declared.parse(text)
    except ParamValueError as exc:
        whose = f" ({declared.name} of {owner})" if owner and key == declared.name else ""
        raise SettingError(f"--set {key}={text}{whose}: {exc}") from None


def scope(key: str, models: Iterable[str]) -> tuple[str | None, str]:
    """``(model, parameter)`` of a ``--set`` key: ``MODEL.KEY`` names one of ``models``
    (the longest that matches), anything else is ``(None, key)`` for every model."""
    owner = max((m for m in models if key.startswith(f"{m}.")), key=len, default=None)
    return (owner, key[len(owner) + 1:]) if owner else (None, key)


def resolve_params(defaults: Mapping[str, Any], overrides: Mapping[str, str], quick: bool,
                   model: str | None = None, declared: Mapping[str, Param] | None = None) -> dict[str, Any]:
    """Harness protocol defaults < the model's defaults < ``--quick`` < ``--set KEY`` (only the
    keys the model has) < ``--set MODEL.KEY`` (``model``'s own). ``declared`` (default: the
    protocol's) checks the ``--set`` values it declares (:class:`SettingError`)."""
    declared = declared_params() if declared is None else declared
    params = {**PROTOCOL_DEFAULTS, **defaults}
    if quick:
        params.update(epochs=QUICK_PROFILE["epochs"], patience=QUICK_PROFILE["patience"])
    scoped = {}
    for key, text in overrides.items():
        owner, param = scope(key, [model] if model else [])
        if owner:
            scoped[param] = (key, text)
        elif key in params or key in declared:
            params[key] = parse_setting(key, text, params.get(key), declared.get(key), model)
    for param, (key, text) in scoped.items():
        if param in params or param in declared:
            params[param] = parse_setting(key, text, params.get(param), declared.get(param), model)
    return params


def component_params(declared: Iterable[Param], name: str, overrides: Mapping[str, str]) -> dict[str, Any]:
    """The values of a dataset's or metric's declared hyperparameters: their defaults < ``--set
    KEY`` < ``--set NAME.KEY``."""
    table = by_name(declared, name)
    values = declared_defaults(table.values())
    for key, text in sorted(overrides.items(), key=lambda item: item[0].startswith(f"{name}.")):
        param = key[len(name) + 1:] if key.startswith(f"{name}.") else key
        if param in table:
            values[param] = parse_setting(key, text, None, table[param], name)
    return values


def bound_metrics(registry: Registry, overrides: Mapping[str, str]) -> dict[str, MetricSpec]:
    """The registered metrics, those that declare hyperparameters called with their values."""
    return {name: replace(spec, compute=functools.partial(spec.compute, **component_params(spec.params, name, overrides)))
            if spec.params else spec for name, spec in registry.metrics.items()}


def check_overrides(registry: Registry, models: list[str], datasets: list[str],
                    overrides: Mapping[str, str]) -> dict[str, list[str]]:
    """Which selected models take each ``--set`` key: ``MODEL.KEY`` that model (which must be
    selected and have the key), ``KEY`` every selected model that has it; a selected dataset or a
    metric takes the keys it declares likewise (``DATASET.KEY``, ``METRIC.KEY``, ``KEY``).
    Refuses (:class:`SettingError`) a key that nothing selected takes, and a value of the wrong
    type or out of what its declaration allows.

    A model's defaults are asked for with a placeholder dataset shape; a plugin whose defaults
    raise is left to fail in its own pair.
    """
    known: dict[str, set[str]] = {m: set(PROTOCOL_DEFAULTS) | {p.name for p in registry.models[m].params} for m in models}
    for m in models:
        for d in datasets:
            try:
                defaults = dict(registry.models[m].defaults_for(DatasetInfo(d, 1, 1, ("0", "1"))))
            except KeyboardInterrupt:
                raise
            except BaseException:
                continue
            known[m].update(defaults)
            with contextlib.suppress(res.UnwritableValue):  # that pair will fail, naming the value
                resolve_params(res.json_ready(defaults), overrides, quick=False, model=m,
                               declared=declared_params(registry.models[m].params))
    components = {**{d: registry.datasets[d].params for d in datasets}, **{n: s.params for n, s in registry.metrics.items()}}
    for name, declared in components.items():
        component_params(declared, name, overrides)
    taken: dict[str, list[str]] = {}
    for key, text in overrides.items():
        owner, param = scope(key, [*models, *components])
        if param == "seed":
            raise SettingError(f"--set {key}=...: use --seeds instead")
        if owner is not None:
            has = known[owner] if owner in known else {p.name for p in components[owner]}
            if param not in has:
                kind = "model" if owner in known else "dataset" if owner in datasets else "metric"
                raise SettingError(f"--set {key}: {kind} {owner!r} has no parameter {param!r}; "
                                   f"it has: {', '.join(sorted(has)) or 'none'}")
            taken[key] = [owner] if owner in known else []
            continue
        for kind, table, selected in (("model", registry.models, models), ("dataset", registry.datasets, datasets)):
            other = scope(key, table)[0]
            if other is not None:
                raise SettingError(f"--set {key}: {kind} {other!r} is not selected (selected: {', '.join(selected)})")
        taken[key] = [m for m in models if key in known[m]]
        if not taken[key] and not any(key == p.name for declared in components.values() for p in declared):
            every = sorted(set().union(*known.values())) if known else sorted(PROTOCOL_DEFAULTS)
            raise SettingError(f"--set: unknown parameter {key!r}; known: {', '.join(every)}")
    return {k: takers for k, takers in taken.items() if takers}


def override_notes(taken: Mapping[str, list[str]], models: list[str], overrides: Mapping[str, str]) -> list[str]:
    """One line for each unscoped ``--set`` that not every selected model takes, saying which do."""
    return [
        f"--set {key}={overrides[key]} applies to {', '.join(takers)} only "
        f"({', '.join(m for m in models if m not in takers)} {'has' if len(models) - len(takers) == 1 else 'have'} "
        f"no {key!r}; MODEL.{key}=... sets one model's)"
        for key, takers in taken.items() if scope(key, models)[0] is None and len(takers) < len(models)
    ]


def _make_out_dir(out_dir: Path) -> None:
    if out_dir.is_symlink() and not out_dir.exists():
        raise RunError(f"output directory {out_dir} is a symbolic link to {os.readlink(out_dir)}, which does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise RunError(f"output directory {out_dir} is a file, not a directory; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}") from None


def check_run_dir(out_dir: Path) -> None:
    """Refuse a directory with pair records but no ``results.json``: neither a run nor a place for one."""
    if (out_dir / res.PAIRS_DIR).exists() and not (out_dir / res.RESULTS_FILE).exists():
        raise RunError(f"{out_dir} holds pair records ({res.PAIRS_DIR}/) but no {res.RESULTS_FILE}, so it cannot be "
                       f"resumed; move {res.PAIRS_DIR}/ away, or choose another --out")


def foreign_entries(out_dir: Path) -> list[str]:
    """What ``out_dir`` holds besides what a run killed before its ``results.json`` leaves: its
    lock, its event log and the temporary files seqbench names."""
    def own(path: Path) -> bool:
        return path.name == fileio.LOCK_FILE or fileio.is_own_temp(path) or (path.name == EVENTS_FILE and is_event_log(path))

    return sorted(p.name for p in out_dir.iterdir() if not own(p))


def prepare_out_dir(out_dir: Path, resume: bool, allow_nonempty: bool = False) -> None:
    """Check that ``out_dir`` (locked by this process) can be written, and holds a run exactly when
    resuming; a new run refuses a directory with other things in it unless ``allow_nonempty``."""
    check_run_dir(out_dir)
    res.check_own_dirs(out_dir)
    has_run = (out_dir / res.RESULTS_FILE).exists()
    if resume and not has_run:
        raise RunError(f"--resume {out_dir}: no {res.RESULTS_FILE} there")
    if not resume and has_run:
        raise RunError(f"{out_dir} already holds a run; continue it with --resume {out_dir}, or choose another --out")
    others = [] if resume or allow_nonempty else foreign_entries(out_dir)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise RunError(f"--out {out_dir} is not empty and holds no seqbench run ({shown}); choose a new or empty "
                       f"directory, or add --allow-nonempty-out to write into it")
    try:
        fd, probe = fileio.create_temp(out_dir / ".seqbench-write-test")
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}") from None


def resume_request(out_dir: Path, data_dir: Path | None = None, **options: Any) -> RunRequest:
    """The request of the run stored in ``out_dir``, to continue it (``data_dir`` may move)."""
    check_run_dir(out_dir)
    config = res.load_results(out_dir, strict=True)["config"]
    stored_dir = config.get("data_dir")
    if data_dir is None and stored_dir is None:
        raise RunError(f"--resume {out_dir}: the run does not say where its data was; give --data-dir")
    return RunRequest(
        models=list(config["models"]),
        datasets=list(config["datasets"]),
        seeds=list(config["seeds"]),
        out_dir=out_dir,
        data_dir=data_dir or Path(stored_dir),
        overrides=dict(config.get("overrides") or {}),
        quick=bool(config.get("quick")),
        standardize=bool(config.get("standardize", True)),
        augment=bool(config.get("augment", True)),
        save_models=bool(config.get("save_models", False)),
        tuned=config.get("tuned"),
        resume=True,
        **options,
    )


def pair_record(model: str, dataset: str, seed: int, registry: Registry, status: str, reason: str | None,
                env: dict[str, Any]) -> dict[str, Any]:
    """A pair's record as it starts, with its status and the reason when not ok."""
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
        "environment": env,
    }


def run_benchmark(
    registry: Registry, request: RunRequest, observer: RunObserver | None = None, executor: Executor | None = None
) -> dict[str, Any]:
    """Run every requested pair and return the run's results (also written to ``out_dir``).

    ``executor`` trains the pairs (default: one after another in this process,
    :class:`seqbench.executors.local.SequentialExecutor`). The run directory is locked while
    the run lives (:func:`seqbench.fileio.run_lock`): a second run or resume on it is refused.
    Its events are appended to ``events.jsonl`` there.
    """
    plan = plan_run(registry, request)
    _make_out_dir(request.out_dir)
    with fileio.run_lock(request.out_dir):
        prepare_out_dir(request.out_dir, request.resume, request.allow_nonempty)
        observer = observer or RunObserver()
        log = EventLog(request.out_dir / EVENTS_FILE, request.command, observer.warn)
        both = Observers(observer, log)
        try:
            with user_interrupts():
                return _run_locked(registry, request, plan, both, executor or SequentialExecutor())
        except KeyboardInterrupt as exc:
            both.interrupted("SIGTERM" if isinstance(exc, Terminated) else "SIGINT")
            raise
        except (RunError, res.ResultsError) as exc:
            both.error(str(exc))
            raise
        finally:
            log.close()


def finished_pairs(out_dir: Path) -> dict[res.PairKey, dict[str, Any]]:
    """The records of a run's pairs that need not run again (ok or diverged)."""
    return {k: r for k, r in res.read_pairs(out_dir).items() if r["status"] in res.DONE_STATUSES}


def _run_locked(registry: Registry, request: RunRequest, plan: RunPlan, observer: RunObserver,
                executor: Executor) -> dict[str, Any]:
    out = request.out_dir
    _remove_stale_temp(request)
    env = provenance.environment(plugin_versions(registry))
    session = res.new_session(request.command, str(request.data_dir), env)
    session["executor"] = executor.describe()
    started = time.monotonic()
    ctx = LoadContext(data_dir=request.data_dir, download=request.download, datasets=registry.datasets)
    done = finished_pairs(out) if request.resume else {}
    plan, missing = locate_datasets(registry, plan, ctx, done)
    if request.resume:
        results = res.resumed_results(res.load_results(out, strict=True), session)
        for item in plan.unavailable:
            if item.kind == "dataset" and item.name in results["config"]["datasets"]:
                _drop_dataset(results["config"], item)
    else:
        results = res.new_results(_config(registry, request, plan), session)
        _write(out, res.RESULTS_FILE, lambda: res.write_results(out, results))  # resumable from the first moment
    if any(registry.loggers.values()):
        observer = Observers(observer, LoggerObserver(registry.loggers, request.command, results["config"], observer.warn))
    pairs = [replace(p, done=p.key in done) for p in plan.pairs]
    observer.run_start(out, pairs, plan.unavailable, request.resume)
    for note in plan.notes:
        observer.warn(note)
    if any(not p.done for p in pairs):
        for line in resume_differences(env, plan, done):
            observer.warn(line)
    for name, reason in missing.items():
        count = sum(p.dataset == name for p in pairs if not p.done)
        observer.warn(f"dataset {name} cannot load here: {reason}; its {count} pair(s) will be recorded as skipped")
    order = {p.key: i for i, p in enumerate(plan.pairs)}
    kept: dict[res.PairKey, dict[str, Any]] = {}

    plot_format = request.plot_format if request.plots else None

    def keep(record: dict[str, Any], only_missing: bool = False) -> None:
        """Add a record to the results (in the plan's order, however the pairs finish), write them
        and the pair's plots (``only_missing``: those a killed run did not draw)."""
        kept[res.key_of(record)] = record
        results["pairs"] = sorted(kept.values(), key=lambda r: order[res.key_of(r)])
        _write(out, res.RESULTS_FILE, lambda: res.write_results(out, results))
        _write_reports(out, results, record, plot_format, observer, only_missing)

    def received(job: PairJob, record: dict[str, Any], files: PairFiles | None) -> None:
        for name, error in (record.get("metric_errors") or {}).items():
            plugin = registry.owner.get(("metric", name), "?")  # a worker may have metrics this process lacks
            observer.warn(f"metric {name!r} from plugin {plugin!r} failed: {error}")
        if record.get("checkpoint_error"):
            observer.warn(f"no checkpoint of {record['model']} x {record['dataset']} seed {record['seed']}: "
                          f"{record['checkpoint_error']}")
        for name, note in (record.get("metric_warnings") or {}).items():
            observer.warn(f"metric {name!r} from plugin {registry.owner.get(('metric', name), '?')!r} {note}")
        record.setdefault("finished", res.now_iso())
        _save_pair(out, record, files)
        observer.pair_end(record)
        keep(record)

    def jobs() -> Iterator[tuple[PairJob, Dataset]]:
        nonlocal pairs
        for ds_name in plan.datasets:
            ds_pairs = [p for p in pairs if p.dataset == ds_name]
            todo = any(not p.done for p in ds_pairs)
            dataset, ds_status, ds_reason = (load_dataset(registry, ds_name, ctx, request.overrides) if todo
                                             else (None, "ok", None))
            if ds_status == "skipped" and ds_name not in plan.keep_datasets:
                pairs = [p for p in pairs if p.dataset != ds_name]
                _leave_out(out, results, Unavailable("dataset", ds_name, str(ds_reason)), len(ds_pairs), observer)
                continue
            if dataset is not None:
                _check_same_data(ds_name, dataset.fingerprint, done, request.data_dir)
            index = {p.key: i for i, p in enumerate(pairs, 1)}
            for p in ds_pairs:
                if p.done:
                    keep(done[p.key], only_missing=True)
                    continue
                job = PairJob(p, index[p.key], len(pairs), str(dataset.fingerprint) if dataset is not None else "")
                if dataset is None:
                    observer.pair_start(job.index, job.total, *p.key)
                    received(job, pair_record(p.model, ds_name, p.seed, registry, ds_status, ds_reason, env), None)
                else:
                    yield job, dataset
            dataset = None  # free it before the next dataset loads

    def run_here(job: PairJob, dataset: Dataset) -> tuple[dict[str, Any], Any]:
        return run_pair(registry, job.pair.model, job.pair.dataset, dataset, job.pair.seed, request, observer, env)

    def failed(job: PairJob, reason: str) -> dict[str, Any]:
        model, ds_name, seed = job.pair.key
        return pair_record(model, ds_name, seed, registry, "failed", reason, env)

    executor.run(Matrix(request, jobs(), run_here, failed, received, observer))
    session["wall_seconds"] = round(time.monotonic() - started, 3)
    _write(out, res.RESULTS_FILE, lambda: res.write_results(out, results))
    _guard(observer, "report", lambda: _html_report().write_run_report(out, results, plot_format))
    observer.run_end(results)
    return results


def resume_differences(env: Mapping[str, Any], plan: RunPlan, done: Mapping[res.PairKey, dict[str, Any]]) -> list[str]:
    """What differs between the finished pairs of a resumed run and the pairs it will run now,
    which would be averaged together: the code (commit, dirty state), plugin versions, and
    each model × dataset's hyperparameters (changed plugin defaults)."""
    lines = []
    now = provenance.code_state(env)
    before = sorted({s for r in done.values() if (s := provenance.code_state(r.get("environment"))) and s != now})
    if before:
        lines.append(f"the finished pairs ran under other code: {' · '.join(before)}; now {now or 'unknown code'}: "
                     "their seeds will be averaged with this code's (summary.md and report.html list every commit)")
    plugins = dict(env.get("plugins") or {})
    changed = sorted({f"{name} {version} → {plugins.get(name)}" for r in done.values()
                      for name, version in ((r.get("environment") or {}).get("plugins") or {}).items()
                      if plugins.get(name) != version})
    if changed:
        lines.append(f"plugin versions differ from the finished pairs': {', '.join(changed)}")
    for pair in plan.pairs:
        if pair.params is None or pair.key in done:
            continue
        old = next((r.get("params") for (m, d, _), r in done.items() if (m, d) == (pair.model, pair.dataset)), None)
        if not isinstance(old, dict):
            continue
        diffs = [f"{k} {_shown(old.get(k))} → {_shown(pair.params.get(k))}" for k in sorted(set(old) | set(pair.params))
                 if k != "seed" and old.get(k) != pair.params.get(k)]
        line = (f"{pair.model} on {pair.dataset}: the finished pairs ran with other hyperparameters ({', '.join(diffs)}); "
                "their seeds will be averaged with these")
        if diffs and line not in lines:
            lines.append(line)
    return lines


def _shown(value: Any) -> str:
    return "unset" if value is None else str(value)


def _leave_out(out: Path, results: dict[str, Any], item: Unavailable, pairs: int, observer: RunObserver) -> None:
    """A dataset that cannot load here leaves the run: out of its config, into ``config.unavailable``."""
    _drop_dataset(results["config"], item)
    _write(out, res.RESULTS_FILE, lambda: res.write_results(out, results))
    observer.unavailable(item, pairs)


def _drop_dataset(config: dict[str, Any], item: Unavailable) -> None:
    config["datasets"] = [d for d in config["datasets"] if d != item.name]
    config.get("preprocessing", {}).pop(item.name, None)
    config.setdefault("unavailable", []).append(item.as_dict())


def locate_datasets(registry: Registry, plan: RunPlan, ctx: LoadContext,
                    done: Mapping[res.PairKey, Any]) -> tuple[RunPlan, dict[str, str]]:
    """Check every dataset with pairs to run, cheaply (``DatasetSpec.check``: no data is read),
    before the first pair trains. Those that cannot load and were not named leave the plan (its
    ``unavailable``), so that all are reported at once and the pair counts hold from the start;
    returns the plan and, for the named ones (kept as skipped pairs), why each cannot load.

    A check that fails otherwise is left to ``load``, which names the plugin."""
    missing: dict[str, str] = {}
    for name in plan.datasets:
        spec = registry.datasets[name]
        if spec.check is None or all(p.key in done for p in plan.pairs if p.dataset == name):
            continue
        try:
            spec.check(ctx)
        except DatasetUnavailable as exc:
            missing[name] = str(exc)
        except KeyboardInterrupt:
            raise
        except BaseException:
            continue
    gone = {name: reason for name, reason in missing.items() if name not in plan.keep_datasets}
    if gone:
        plan = replace(plan, datasets=[d for d in plan.datasets if d not in gone],
                       pairs=[p for p in plan.pairs if p.dataset not in gone],
                       unavailable=[*plan.unavailable, *(Unavailable("dataset", d, r) for d, r in gone.items())])
    return plan, {name: reason for name, reason in missing.items() if name not in gone}


def _config(registry: Registry, request: RunRequest, plan: RunPlan) -> dict[str, Any]:
    return {
        "models": list(plan.models),
        "datasets": list(plan.datasets),
        "seeds": request.seeds,
        "quick": request.quick,
        "standardize": request.standardize,
        "augment": request.augment,
        "preprocessing": {d: preprocess.record(_preprocessing(registry, d, request), None) for d in plan.datasets},
        "overrides": dict(request.overrides),
        "data_dir": str(request.data_dir),
        "protocol": {**PROTOCOL_DEFAULTS, **({"quick_profile": QUICK_PROFILE} if request.quick else {})},
        "unavailable": [u.as_dict() for u in plan.unavailable],
        "published": request.published,
        "save_models": request.save_models,
        **({"tuned": request.tuned} if request.tuned else {}),
    }


def _remove_stale_temp(request: RunRequest) -> None:
    """Temporary files of killed writes, as seqbench names them (:func:`seqbench.fileio.is_own_temp`):
    all in the (locked) run directory's own folders, and those nothing has written to for an hour
    in the data directory's folders of the built-in datasets."""
    from seqbench.datasets import catalog

    fileio.remove_stale_temp(res.run_dirs(request.out_dir))
    fileio.remove_stale_temp([request.data_dir / d.subdir for d in catalog.DATASETS.values()],
                          older_than=STALE_DOWNLOAD_SECONDS)


def _write(out_dir: Path, what: str, write: Callable[[], Any]) -> None:
    """Write with ``write``; an I/O error (disk full, permissions) becomes one line with the resume hint."""
    try:
        write()
    except OSError as exc:
        raise RunError(
            f"cannot write {what} in {out_dir} ({exc.strerror or exc}); the finished pairs are kept: "
            f"free space or fix permissions, then continue with --resume {out_dir}"
        ) from None


def _save_pair(out_dir: Path, record: dict[str, Any], files: PairFiles | None) -> None:
    """The pair's checkpoint and predictions, then its record (a record names complete files)."""
    pair = f"{record['model']} x {record['dataset']} seed {record['seed']}"
    if files is not None and files.checkpoint is not None:
        _write(out_dir, f"the checkpoint of {pair}",
               lambda: record.update(checkpoint=checkpoints.write(out_dir, record, files.checkpoint)))
    if files is not None and files.predictions is not None:
        _write(out_dir, f"the pair record of {pair}", lambda: res.write_predictions(out_dir, record, files.predictions))
    _write(out_dir, f"the pair record of {pair}", lambda: res.write_pair(out_dir, record))


def _check_same_data(name: str, fingerprint: str, done: Mapping[res.PairKey, dict[str, Any]], data_dir: Path) -> None:
    """Refuse to resume on data other than the finished pairs' (they would be averaged together)."""
    used = {
        r["dataset_info"]["fingerprint"] for (_, d, _), r in done.items()
        if d == name and (r.get("dataset_info") or {}).get("fingerprint")
    }
    if used and fingerprint not in used:
        raise RunError(
            f"--resume: dataset {name!r} in {data_dir} is {fingerprint}, but the run's finished pairs used "
            f"{', '.join(sorted(used))}; resume with their data (--data-dir)"
        )


def load_dataset(registry: Registry, name: str, ctx: LoadContext, overrides: Mapping[str, str] | None = None,
                 test: bool = True) -> tuple[Dataset | None, str, str | None]:
    """The dataset ``name`` checked, with ``"ok"``; or None with ``"skipped"`` or ``"failed"`` and why.
    A dataset that declares hyperparameters gets their values (``overrides`` applied) in
    ``ctx.params``, and they are folded into its fingerprint. ``test=False`` (``seqbench
    tune``): the test split is taken away (:func:`without_test`) before anything looks at it."""
    plugin = registry.plugin_of("dataset", name)
    spec = registry.datasets[name]
    try:
        values = component_params(spec.params, name, overrides or {})
        dataset = spec.load(replace(ctx, params=values))
        if not isinstance(dataset, Dataset):
            return None, "failed", f"dataset plugin {plugin!r}: load() returned {type(dataset).__name__}, not a Dataset"
        if not test:
            dataset = without_test(dataset)
        validate_dataset(dataset, plugin, with_test=test)
        _check_dataset_fields(name, dataset, plugin)
        if spec.params:
            dataset = replace(dataset, fingerprint=params_fingerprint(dataset.fingerprint, values))
    except DatasetUnavailable as exc:
        return None, "skipped", str(exc)
    except PluginOutputError as exc:
        return None, "failed", str(exc)
    except KeyboardInterrupt as exc:
        if not is_plugins_interrupt(exc):
            raise
        return None, "failed", f"dataset plugin {plugin!r}: KeyboardInterrupt raised by the plugin"
    except BaseException as exc:
        return None, "failed", f"dataset plugin {plugin!r}: {one_line(exc)}"
    return dataset, "ok", None


def without_test(dataset: Dataset) -> Dataset:
    """``dataset`` with empty test arrays (same steps and features): nothing downstream can read its test split."""
    import numpy as np

    empty_x = np.empty((0, *dataset.test_x.shape[1:]), dtype=dataset.test_x.dtype)
    return replace(dataset, test_x=empty_x, test_y=np.empty((0,), dtype=dataset.test_y.dtype))


def params_fingerprint(fingerprint: str, values: Mapping[str, Any]) -> str:
    """The fingerprint of a dataset loaded with hyperparameter ``values``."""
    return derived_fingerprint(fingerprint, "params", values)


def _check_dataset_fields(name: str, dataset: Dataset, plugin: str) -> None:
    """The fields of a dataset that go into every record must be text, and its meta JSON."""
    where = f"dataset {name!r} from plugin {plugin!r}"
    if not isinstance(dataset.fingerprint, str):
        raise PluginOutputError(f"{where}: fingerprint must be text, got {type(dataset.fingerprint).__name__}")
    if not all(isinstance(c, str) for c in dataset.class_names):
        raise PluginOutputError(f"{where}: class names must be text")
    try:
        res.json_ready(dict(dataset.meta), "meta")
    except (res.UnwritableValue, TypeError, ValueError) as exc:
        raise PluginOutputError(f"{where}: {exc}") from None


def run_pair(
    registry: Registry,
    model_name: str,
    ds_name: str,
    dataset: Dataset,
    seed: int,
    request: RunRequest,
    observer: RunObserver,
    env: dict[str, Any],
) -> tuple[dict[str, Any], PairFiles | None]:
    """The pair's record (every value JSON-ready; a failed pair when a plugin fails) and its
    files: test predictions, and its checkpoint when the request saves models. Runs wherever
    the dataset is: in the run's process, or on a worker."""
    spec = registry.models[model_name]
    plugin = registry.plugin_of("model", model_name)
    info = dataset.info
    base = pair_record(model_name, ds_name, seed, registry, "ok", None, env)
    base["dataset_info"] = {
        "name": ds_name,
        "seq_len": info.seq_len,
        "n_features": info.n_features,
        "class_names": [str(c) for c in dataset.class_names],
        "fingerprint": str(dataset.fingerprint),
        "provenance": dict(registry.datasets[ds_name].provenance).get(str(dataset.fingerprint)),
        "n_train_full": int(len(dataset.train_y)),
        "n_test_full": int(len(dataset.test_y)),
        "meta": res.json_ready(dict(dataset.meta), "meta"),
    }
    record = dict(base)
    try:
        with time_limit(request.pair_timeout, observer) as progress:
            return _train_pair(registry, spec, plugin, ds_name, dataset, seed, request, progress, base, record)
    except PairTimeout as exc:
        return {**record, "status": "failed", "reason": f"model plugin {plugin!r}: {exc}"}, None


def _train_pair(registry: Registry, spec: Any, plugin: str, ds_name: str, dataset: Dataset, seed: int,
                request: RunRequest, progress: Any, base: dict[str, Any],
                record: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """:func:`run_pair`'s work: ``record`` (a copy of ``base``) filled as the pair goes, so that a
    pair stopped at its time limit keeps what it had."""
    model_name, info = spec.name, dataset.info
    try:
        reason = spec.unavailable()
        if reason:
            return {**base, "status": "skipped", "reason": str(reason)}, None
        declared = declared_params(spec.params)
        params = resolve_params(res.json_ready(dict(spec.defaults_for(info)), "defaults"), request.overrides,
                                request.quick, model=model_name, declared=declared)
        params["seed"] = seed
        record["params"] = params
        check_values(params, declared)
        model = spec.build(info, params)
        record["hyperparameters"] = res.json_ready({**params, **dict(model.hyperparameters())}, "hyperparameters")
        record["device"] = str(model.device)
        record["num_parameters"] = _num_parameters(model, plugin)
        limits = {"max_train": QUICK_PROFILE["max_train"], "max_test": QUICK_PROFILE["max_test"]} if request.quick else {}
        out = train_and_evaluate(
            model, dataset, params, bound_metrics(registry, request.overrides), seed=seed, model_plugin=plugin, progress=progress,
            preprocessing=_preprocessing(registry, ds_name, request), quick=request.quick, **limits,
        )
        predictions = out.pop("test_predictions", None)
        split = out.pop("split")
        record.update(out)
        record["dataset_info"] = {**base["dataset_info"], **split}
        record = res.json_ready(record)
        checkpoint = None
        if request.save_models and record["status"] == "ok":
            try:
                checkpoint = checkpoints.pack(model, record, plugin, dataset, limits.get("max_test"))
            except checkpoints.CheckpointError as exc:  # the pair's results stand without it
                record["checkpoint_error"] = str(exc)
    except PluginOutputError as exc:
        return {**record, "status": "failed", "reason": str(exc)}, None
    except ParamValueError as exc:
        return {**record, "status": "failed", "reason": f"model plugin {plugin!r}: {exc}"}, None
    except res.UnwritableValue as exc:
        return {**base, "params": record.get("params"), "status": "failed", "reason": f"model plugin {plugin!r}: {exc}"}, None
    except PairTimeout:
        raise
    except KeyboardInterrupt as exc:
        if not is_plugins_interrupt(exc):
            raise
        failed = {"status": "failed", "reason": f"model plugin {plugin!r}: KeyboardInterrupt raised by the plugin "
                  "(not a Ctrl-C of the run)", "traceback": traceback.format_exc()}
        return {**record, **failed}, None
    except BaseException as exc:  # SystemExit too: a plugin must not end the run
        failed = {"status": "failed", "reason": f"model plugin {plugin!r}: {one_line(exc)}", "traceback": traceback.format_exc()}
        return {**record, **failed}, None
    return record, PairFiles(predictions, checkpoint)


def _num_parameters(model: Any, plugin: str) -> int | None:
    """The model's parameter count, where it tells (``Model.num_parameters``)."""
    count = getattr(model, "num_parameters", lambda: None)()
    count = res.json_ready(count, "num_parameters")
    if count is not None and not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        raise PluginOutputError(f"model from plugin {plugin!r}: num_parameters() returned {count!r}, not a count or None")
    return count


def _preprocessing(registry: Registry, dataset: str, request: RunRequest) -> Preprocessing:
    """The dataset's declared preprocessing, less what the run turned off."""
    declared = registry.datasets[dataset].preprocessing
    return preprocess.plan(declared, standardize=request.standardize, augment=request.augment)


def _plots():
    from seqbench.reporting import plots

    return plots


def _html_report():
    from seqbench.reporting import html_report

    return html_report


def _guard(observer: RunObserver, what: str, fn: Callable[[], Any]) -> None:
    """Reports must never cost a finished pair: a failure to draw is a warning."""
    try:
        fn()
    except Exception as exc:
        observer.warn(f"could not write {what}: {one_line(exc)}")


def _write_reports(out_dir: Path, results: dict[str, Any], record: dict[str, Any], plot_format: str | None,
                   observer: RunObserver, only_missing: bool = False) -> None:
    """Tables and records after every pair; the pair's own plots in ``plot_format`` (None: none;
    ``only_missing``: only those not on disk)."""
    from seqbench.reporting import tables

    _guard(observer, "tables", lambda: tables.write_tables(out_dir, results))
    _guard(observer, records.RECORDS_FILE, lambda: records.write_records(out_dir, results))
    if plot_format and record.get("status") in res.DONE_STATUSES:
        _guard(observer, "pair plots", lambda: _plots().write_pair_plots(out_dir, record, plot_format, only_missing))
