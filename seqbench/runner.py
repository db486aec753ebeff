"""``seqbench run`` as a library: every selected model x dataset x seed under the protocol.

Each pair's record is written the moment the pair ends; a pair that cannot run is recorded as
skipped with its reason, a pair that breaks as failed, and the run goes on.
"""

from __future__ import annotations

import functools
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seqbench import checkpoints, fileio, preprocess, provenance, records
from seqbench import results as res
from seqbench.executors import Executor, Matrix, PairJob
from seqbench.executors.local import SequentialExecutor
from seqbench.hyperparams import ParamValueError, check_values
from seqbench.loggers import LoggerObserver
from seqbench.planning import (
    RunError,
    RunPlan,
    RunRequest,
    bound_metrics,
    component_params,
    declared_params,
    plan_run,
    resolve_params,
)
from seqbench.plugins import Registry, call_plugin, one_line, plugin_versions
from seqbench.progress import EventLog, Observers, RunObserver, Unavailable, is_event_log
from seqbench.protocol import (
    PROTOCOL_DEFAULTS,
    QUICK_PROFILE,
    PluginOutputError,
    train_and_evaluate,
    validate_dataset,
)
from seqbench.timeouts import PairTimeout, UserInterrupt, is_plugins_interrupt, time_limit, user_interrupts
from seqbench.types import (
    Dataset,
    DatasetUnavailable,
    LoadContext,
    Preprocessing,
    derived_fingerprint,
)


class Terminated(UserInterrupt):
    """The process was asked to stop (SIGTERM): handled like Ctrl-C."""


#: A partly written data download older than this (seconds) is left over from a killed fetch.
STALE_DOWNLOAD_SECONDS = 3600


@dataclass(frozen=True)
class PairFiles:
    """What a pair leaves beside its record: its test predictions (``(2, n_test)`` labels and
    predicted labels) and, with ``save_models``, its checkpoint."""

    predictions: Any = None
    checkpoint: checkpoints.Checkpoint | None = None


#: The file of the run's events, one JSON object a line (:class:`seqbench.progress.EventLog`).
EVENTS_FILE = "events.jsonl"


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
        return (path.name == fileio.LOCK_FILE or fileio.is_own_temp(path)
                or (path.name == EVENTS_FILE and is_event_log(path)))

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
    if data_dir is None:
        if config.get("data_dir") is None:
            raise RunError(f"--resume {out_dir}: the run does not say where its data was; give --data-dir")
        data_dir = Path(config["data_dir"])
    return RunRequest(
        models=list(config["models"]),
        datasets=list(config["datasets"]),
        seeds=list(config["seeds"]),
        out_dir=out_dir,
        data_dir=data_dir,
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
    run = _Run(registry, request, plan, observer, executor)
    executor.run(Matrix(request, run.jobs(), run.run_here, run.failed, run.received, run.observer))
    return run.finish()


class _Run:
    """A run in its locked directory: set up (stale files removed, datasets checked, results
    started or resumed, observers told) when made; the executor then takes its :meth:`jobs` and
    hands back each pair's record to :meth:`received`; :meth:`finish` writes the last of it."""

    def __init__(self, registry: Registry, request: RunRequest, plan: RunPlan, observer: RunObserver,
                 executor: Executor) -> None:
        self.registry, self.request = registry, request
        self.out = out = request.out_dir
        _remove_stale_temp(request)
        self.env = env = provenance.environment(plugin_versions(registry))
        self.session = res.new_session(request.command, str(request.data_dir), env)
        self.session["executor"] = executor.describe()
        self.started = time.monotonic()
        self.ctx = LoadContext(data_dir=request.data_dir, download=request.download, datasets=registry.datasets)
        self.done = done = finished_pairs(out) if request.resume else {}
        plan, missing = locate_datasets(registry, plan, self.ctx, done)
        self.plan = plan
        if request.resume:
            results = res.resumed_results(res.load_results(out, strict=True), self.session)
            for item in plan.unavailable:
                if item.kind == "dataset" and item.name in results["config"]["datasets"]:
                    _drop_dataset(results["config"], item)
        else:
            results = res.new_results(_config(registry, request, plan), self.session)
            _write(out, res.RESULTS_FILE, lambda: res.write_results(out, results))  # resumable from the first moment
        self.results = results
        if any(registry.loggers.values()):
            observer = Observers(observer, LoggerObserver(registry.loggers, request.command, results["config"],
                                                          observer.warn))
        self.observer = observer
        self.pairs = pairs = [replace(p, done=p.key in done) for p in plan.pairs]
        observer.run_start(out, pairs, plan.unavailable, request.resume)
        for note in plan.notes:
            observer.warn(note)
        if any(not p.done for p in pairs):
            for line in resume_differences(env, plan, done):
                observer.warn(line)
        for name, reason in missing.items():
            count = sum(p.dataset == name for p in pairs if not p.done)
            observer.warn(f"dataset {name} cannot load here: {reason}; its {count} pair(s) will be recorded as "
                          "skipped")
        self.order = {p.key: i for i, p in enumerate(plan.pairs)}
        self.kept: dict[res.PairKey, dict[str, Any]] = {}
        self.plot_format = request.plot_format if request.plots else None

    def keep(self, record: dict[str, Any], only_missing: bool = False) -> None:
        """Add a record to the results (in the plan's order, however the pairs finish), write them
        and the pair's plots (``only_missing``: those a killed run did not draw)."""
        self.kept[res.key_of(record)] = record
        self.results["pairs"] = sorted(self.kept.values(), key=lambda r: self.order[res.key_of(r)])
        _write(self.out, res.RESULTS_FILE, lambda: res.write_results(self.out, self.results))
        _write_reports(self.out, self.results, record, self.plot_format, self.observer, only_missing)

    def received(self, job: PairJob, record: dict[str, Any], files: PairFiles | None) -> None:
        registry, observer = self.registry, self.observer
        for name, error in (record.get("metric_errors") or {}).items():
            plugin = registry.owner.get(("metric", name), "?")  # a worker may have metrics this process lacks
            observer.warn(f"metric {name!r} from plugin {plugin!r} failed: {error}")
        if record.get("checkpoint_error"):
            observer.warn(f"no checkpoint of {record['model']} x {record['dataset']} seed {record['seed']}: "
                          f"{record['checkpoint_error']}")
        for name, note in (record.get("metric_warnings") or {}).items():
            observer.warn(f"metric {name!r} from plugin {registry.owner.get(('metric', name), '?')!r} {note}")
        record.setdefault("finished", res.now_iso())
        _save_pair(self.out, record, files)
        observer.pair_end(record)
        self.keep(record)

    def jobs(self) -> Iterator[tuple[PairJob, Dataset]]:
        """The pairs to train with their loaded dataset, dataset by dataset; pairs that are done,
        or whose dataset cannot load, are recorded on the way."""
        registry, request, plan, done = self.registry, self.request, self.plan, self.done
        for ds_name in plan.datasets:
            ds_pairs = [p for p in self.pairs if p.dataset == ds_name]
            todo = any(not p.done for p in ds_pairs)
            dataset, ds_status, ds_reason = (load_dataset(registry, ds_name, self.ctx, request.overrides) if todo
                                             else (None, "ok", None))
            if ds_status == "skipped" and ds_name not in plan.keep_datasets:
                self.pairs = [p for p in self.pairs if p.dataset != ds_name]
                _leave_out(self.out, self.results, Unavailable("dataset", ds_name, str(ds_reason)), len(ds_pairs),
                           self.observer)
                continue
            if dataset is not None:
                _check_same_data(ds_name, dataset.fingerprint, done, request.data_dir)
            index = {p.key: i for i, p in enumerate(self.pairs, 1)}
            for p in ds_pairs:
                if p.done:
                    self.keep(done[p.key], only_missing=True)
                    continue
                job = PairJob(p, index[p.key], len(self.pairs), str(dataset.fingerprint) if dataset is not None else "")
                if dataset is None:
                    self.observer.pair_start(job.index, job.total, *p.key)
                    self.received(job, pair_record(p.model, ds_name, p.seed, registry, ds_status, ds_reason, self.env),
                                  None)
                else:
                    yield job, dataset
            dataset = None  # free it before the next dataset loads

    def run_here(self, job: PairJob, dataset: Dataset) -> tuple[dict[str, Any], Any]:
        return run_pair(self.registry, job.pair.model, job.pair.dataset, dataset, job.pair.seed, self.request,
                        self.observer, self.env)

    def failed(self, job: PairJob, reason: str) -> dict[str, Any]:
        model, ds_name, seed = job.pair.key
        return pair_record(model, ds_name, seed, self.registry, "failed", reason, self.env)

    def finish(self) -> dict[str, Any]:
        """The run's last writes: its wall time, results and report; the observers told it ended."""
        out, results = self.out, self.results
        self.session["wall_seconds"] = round(time.monotonic() - self.started, 3)
        _write(out, res.RESULTS_FILE, lambda: res.write_results(out, results))
        _guard(self.observer, "report", lambda: _html_report().write_run_report(out, results, self.plot_format))
        self.observer.run_end(results)
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
        line = (f"{pair.model} on {pair.dataset}: the finished pairs ran with other hyperparameters "
                f"({', '.join(diffs)}); "
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
            call_plugin(functools.partial(spec.check, ctx), DatasetUnavailable)
        except DatasetUnavailable as exc:
            missing[name] = str(exc)
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
        checkpoint = files.checkpoint
        _write(out_dir, f"the checkpoint of {pair}",
               lambda: record.update(checkpoint=checkpoints.write(out_dir, record, checkpoint)))
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
        "n_train_full": len(dataset.train_y),
        "n_test_full": len(dataset.test_y),
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
        limits = ({"max_train": QUICK_PROFILE["max_train"], "max_test": QUICK_PROFILE["max_test"]}
                  if request.quick else {})
        out = train_and_evaluate(
            model, dataset, params, bound_metrics(registry, request.overrides), seed=seed, model_plugin=plugin,
            progress=progress,
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
        reason = f"model plugin {plugin!r}: {exc}"
        return {**base, "params": record.get("params"), "status": "failed", "reason": reason}, None
    except PairTimeout:
        raise
    except KeyboardInterrupt as exc:
        if not is_plugins_interrupt(exc):
            raise
        failed = {"status": "failed", "reason": f"model plugin {plugin!r}: KeyboardInterrupt raised by the plugin "
                  "(not a Ctrl-C of the run)", "traceback": traceback.format_exc()}
        return {**record, **failed}, None
    except BaseException as exc:  # SystemExit too: a plugin must not end the run
        failed = {"status": "failed", "reason": f"model plugin {plugin!r}: {one_line(exc)}",
                  "traceback": traceback.format_exc()}
        return {**record, **failed}, None
    return record, PairFiles(predictions, checkpoint)


def _num_parameters(model: Any, plugin: str) -> int | None:
    """The model's parameter count, where it tells (``Model.num_parameters``)."""
    count = getattr(model, "num_parameters", lambda: None)()
    count = res.json_ready(count, "num_parameters")
    if count is not None and not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        raise PluginOutputError(
            f"model from plugin {plugin!r}: num_parameters() returned {count!r}, not a count or None")
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
    from seqbench.reporting import table_files

    _guard(observer, "tables", lambda: table_files.write_tables(out_dir, res.as_record(results)))
    _guard(observer, records.RECORDS_FILE, lambda: records.write_records(out_dir, res.as_record(results)))
    if plot_format and record.get("status") in res.DONE_STATUSES:
        _guard(observer, "pair plots", lambda: _plots().write_pair_plots(out_dir, record, plot_format, only_missing))
