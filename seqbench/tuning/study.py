"""``seqbench tune`` as a library: an equal-budget hyperparameter search per model x dataset.

Each model x dataset is one Optuna study (TPE by default, seeded), stored in the tune
directory's SQLite database (:data:`STUDY_DB`, Optuna's RDB storage) under a name holding the
tune's own random id, so two tunes never share trials. Every study gets the same budget:
``trials`` finished trials, or ``timeout`` seconds of trials. The studies take turns, so that
a machine's changing load falls on every model alike. The first trial of each study is the
model's defaults (as far as the space holds them), so the tune shows what tuning gained.

Only this process writes the database: it asks each study for a trial, hands the trial to a
pool (here, or Dask workers), and tells the study the outcome. A tune killed at any moment
resumes with ``--resume``: finished trials stay, a trial whose record was written before the
kill is told from it, and the other trials that were running are marked failed (``interrupted``,
not counted against the budget) and asked again.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from seqbench import fileio
from seqbench import results as res
from seqbench.executors.worker import PluginSource
from seqbench.plugins import Registry
from seqbench.tuning.space import Dimension, SpaceError, check_entries, model_space
from seqbench.tuning.summary import TUNE_FILE
from seqbench.tuning.trial import COMPLETE, PRUNED, PrunerSpec, TrialTask

STUDY_DB = "study.db"
TRIALS_DIR = "trials"
SAMPLERS = ("tpe", "random")
#: The user attribute of a trial that was running when its tune was killed (not counted).
INTERRUPTED = "interrupted"


@dataclass
class TuneRequest:
    """What ``seqbench tune`` was asked: models, datasets, the budget, the search."""

    models: list[str]
    datasets: list[str]
    out_dir: Path
    data_dir: Path
    trials: int | None = None
    timeout: float | None = None
    seed: int = 0
    sampler: str = "tpe"
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    space: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    max_train: int | None = None
    standardize: bool = True
    augment: bool = True
    download: bool = True
    command: str = "seqbench tune"
    resume: bool = False

    def config(self) -> dict[str, Any]:
        return {"models": self.models, "datasets": self.datasets, "data_dir": str(self.data_dir),
                "trials": self.trials, "timeout": self.timeout, "seed": self.seed, "sampler": self.sampler,
                "pruner": vars(self.pruner), "space": self.space, "overrides": self.overrides,
                "max_train": self.max_train, "standardize": self.standardize, "augment": self.augment}


def request_from_config(
    config: Mapping[str, Any], out_dir: Path, data_dir: Path | None = None, **options: Any
) -> TuneRequest:
    """The request stored in a tune's :data:`TUNE_FILE`, to resume it."""
    return TuneRequest(
        models=list(config["models"]), datasets=list(config["datasets"]), out_dir=out_dir,
        data_dir=data_dir or Path(config["data_dir"]), trials=config["trials"], timeout=config["timeout"],
        seed=int(config["seed"]), sampler=config["sampler"], pruner=PrunerSpec(**config["pruner"]),
        space=dict(config["space"]), overrides=dict(config["overrides"]), max_train=config["max_train"],
        standardize=bool(config["standardize"]), augment=bool(config["augment"]), resume=True, **options)


@dataclass(frozen=True)
class StudyPlan:
    """One study of a tune: its model, dataset, base hyperparameters and search space."""

    model: str
    dataset: str
    params: Mapping[str, Any]
    space: Mapping[str, Dimension]

    def name(self, tune_id: str) -> str:
        return f"{self.model}+{self.dataset}+{tune_id}"


class TuneObserver:
    """What a tune tells as it goes (the CLI prints it)."""

    def trial_end(self, record: Mapping[str, Any], finished: int, budget: str) -> None:
        """A trial ended; ``finished`` of its study's ``budget`` are spent."""


def plan_tune(registry: Registry, request: TuneRequest) -> list[StudyPlan]:
    """Each model x dataset's study: names resolved, ``--set`` and ``--space`` checked (a
    SettingError or SpaceError before anything runs). Reads and writes nothing."""
    from seqbench.planning import RunRequest, SettingError, check_names, plan_run

    models = check_names("model", request.models, registry.models)
    datasets = check_names("dataset", request.datasets, registry.datasets)
    probe = RunRequest(models, datasets, [request.seed], request.out_dir, request.data_dir, dict(request.overrides))
    plan_run(registry, probe)  # checks --set
    takers, spaces, fixed = {}, {}, {}
    for m in models:
        spec = registry.models[m]
        defaults = _defaults(spec, datasets)
        declared = {p.name: p for p in spec.params}
        takers[m] = set(declared) | set(defaults)
        spaces[m], fixed[m] = model_space(m, declared, defaults, request.space)
    check_entries(request.space, takers)
    overrides = {**request.overrides, **{f"{m}.{k}": v for m in models for k, v in fixed[m].items()}}
    try:
        plan = plan_run(registry, replace(probe, overrides=overrides))
    except SettingError as exc:
        raise SpaceError(str(exc).replace("--set", "--space", 1)) from None
    studies = []
    for pair in plan.pairs:
        if not spaces[pair.model]:
            raise SpaceError(f"model {pair.model!r} has nothing to search: it declares no search space; "
                             f"give one with --space KEY=LOW:HIGH")
        if pair.params is None:
            raise SettingError(f"model {pair.model!r}: its defaults for {pair.dataset!r} fail")
        studies.append(StudyPlan(pair.model, pair.dataset, pair.params, spaces[pair.model]))
    return studies


def _defaults(spec: Any, datasets: list[str]) -> dict[str, Any]:
    from seqbench.types import DatasetInfo

    out: dict[str, Any] = {}
    for d in datasets:
        try:
            out.update(spec.defaults_for(DatasetInfo(d, 1, 1, ("0", "1"))))
        except Exception:  # the plugin's defaults fail: its trials will say so
            continue
    return out


def storage_url(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / STUDY_DB).resolve()}"


def _sampler(request: TuneRequest, study: str, asked_before: int) -> Any:
    """The study's sampler, seeded from the tune's seed, the study and how many trials it had:
    a fresh tune is reproducible, and a resumed one does not draw its first trials again."""
    import optuna

    text = f"{request.seed}:{study.rsplit('+', 1)[0]}:{asked_before}".encode()
    seed = int.from_bytes(hashlib.sha256(text).digest()[:4], "little")
    if request.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def counted(trial: Any) -> bool:
    """Whether a trial spends budget: finished, and not cut off by a killed tune."""
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and not trial.user_attrs.get(INTERRUPTED))


def summarize(tune: Tune) -> list[dict[str, Any]]:
    """One entry per study: names, budget, counts by state, the defaults' and the best trial."""
    from optuna.trial import TrialState

    out = []
    for name, study in tune.studies.items():
        plan = tune.plans[name]
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        states = {
            s: sum(t.state.name.lower() == s and counted(t) for t in trials) for s in ("complete", "pruned", "fail")
        }
        best = max(complete, key=lambda t: (t.value, -t.number), default=None)
        defaults = next((t for t in trials if t.user_attrs.get("defaults") and counted(t)), None)
        out.append({
            "study": name, "model": plan.model, "dataset": plan.dataset,
            "budget": {"trials": tune.request.trials, "timeout": tune.request.timeout},
            "trials": states, "finished": sum(states.values()),
            "seconds": sum(t.user_attrs.get("seconds", 0.0) for t in trials if counted(t)),
            "space": {k: dim.describe() for k, dim in plan.space.items()},
            "fixed": {k: v for k, v in plan.params.items() if k != "seed"},
            "defaults": None if defaults is None else {"trial": defaults.number, "state": defaults.state.name.lower(),
                                                       "value": defaults.value, "params": dict(defaults.params)},
            "best": None if best is None else {"trial": best.number, "value": best.value, "params": dict(best.params),
                                               "record": best.user_attrs.get("record")},
        })
    return out


class Tune:
    """The studies of a tune in its directory, and the loop that fills their budgets."""

    def __init__(self, request: TuneRequest, studies: list[StudyPlan], tune_id: str, plugins: PluginSource,
                 observer: TuneObserver, on_trial: Callable[[], Any] = lambda: None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.request, self.tune_id, self.plugins, self.observer = request, tune_id, plugins, observer
        self.on_trial = on_trial  # called after each trial is told (the tune's summary is rewritten then)
        self.plans = {plan.name(tune_id): plan for plan in studies}
        self.storage = optuna.storages.RDBStorage(storage_url(request.out_dir))
        self.studies = {name: self._open(plan) for name, plan in self.plans.items()}
        self._asked: dict[tuple[str, int], Any] = {}

    def _open(self, plan: StudyPlan) -> Any:
        import optuna
        from optuna.trial import TrialState

        name = plan.name(self.tune_id)
        study = optuna.create_study(study_name=name, storage=self.storage, direction="maximize",
                                    pruner=self.request.pruner.make(),
                                    load_if_exists=self.request.resume)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            if trial.state != TrialState.RUNNING:
                continue
            record = self._written(plan, trial.number)
            if record is not None:  # killed after its record was written, before the study was told
                _finish(study, optuna.trial.Trial(study, trial._trial_id), record)
            else:  # its process was killed: ask it again
                # Optuna has no public way to mark a trial that another process asked.
                study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
                study.tell(trial.number, state=TrialState.FAIL)
        if not study.trials:
            study.set_user_attr("model", plan.model)
            study.set_user_attr("dataset", plan.dataset)
            defaults = {k: plan.params[k] for k, dim in plan.space.items()
                        if k in plan.params and _contains(dim, plan.params[k])}
            study.enqueue_trial(defaults, user_attrs={"defaults": True})
        study.sampler = _sampler(self.request, name, len(study.trials))
        return study

    def spent(self, name: str) -> int:
        """How many of study ``name``'s trials count against its budget."""
        return sum(counted(t) for t in self.studies[name].get_trials(deepcopy=False))

    def budget_left(self, name: str, running: int) -> bool:
        """Whether study ``name`` may start another trial (``running`` of its trials are out)."""
        trials = self.studies[name].get_trials(deepcopy=False)
        if self.request.trials is not None:
            return sum(counted(t) for t in trials) + running < self.request.trials
        spent = sum(t.user_attrs.get("seconds", 0.0) for t in trials if counted(t))
        return spent < float(self.request.timeout or 0)

    def run(self, pool: Any, fingerprint: Callable[[str], str]) -> None:
        """Ask, train and tell until every study's budget is spent: the study with the fewest
        trials goes next, so that the studies take turns."""
        running: dict[str, int] = dict.fromkeys(self.studies, 0)
        order = list(self.studies)
        while True:
            while sum(running.values()) < pool.slots:
                open_ = [n for n in order if self.budget_left(n, running[n])]
                if not open_:
                    break
                name = min(open_, key=lambda n: (self.spent(n) + running[n], order.index(n)))
                running[name] += 1
                pool.submit(self._ask(name, fingerprint, pool.data_dir(self.request.data_dir)))
            if not any(running.values()):
                return
            for task, record in pool.wait():
                running[task.study] -= 1
                self._tell(task, record)

    def _ask(self, name: str, fingerprint: Callable[[str], str], data_dir: str | None) -> TrialTask:
        from optuna.trial import TrialState

        study, plan = self.studies[name], self.plans[name]
        distributions = {k: dim.distribution() for k, dim in plan.space.items()}
        trial = study.ask(distributions)
        finished = tuple(study.get_trials(deepcopy=True, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        r = self.request
        self._asked[(name, trial.number)] = trial
        return TrialTask(study=name, number=trial.number, model=plan.model, dataset=plan.dataset,
                         params={**plan.params, **trial.params}, searched=distributions, finished=finished,
                         pruner=r.pruner, data_dir=data_dir, download=r.download, max_train=r.max_train,
                         fingerprint=fingerprint(plan.dataset), overrides=dict(r.overrides),
                         standardize=r.standardize, augment=r.augment, plugins=self.plugins)

    def _written(self, plan: StudyPlan, number: int) -> dict[str, Any] | None:
        """The record this tune wrote of trial ``number`` of ``plan``'s study, if any."""
        path = trial_path(self.request.out_dir, plan.model, plan.dataset, number)
        try:
            record = res.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("tune") == self.tune_id else None

    def _tell(self, task: TrialTask, record: dict[str, Any]) -> None:
        study = self.studies[task.study]
        trial = self._asked.pop((task.study, task.number))
        record = {**record, "searched": dict(trial.params), "tune": self.tune_id, "schema_version": res.SCHEMA_VERSION}
        # The record first: a tune killed before the study is told finishes the trial from it on --resume.
        fileio.atomic_write_json(trial_path(self.request.out_dir, task.model, task.dataset, task.number), record)
        _finish(study, trial, record)
        self.on_trial()
        finished = self.spent(task.study)
        budget = f"{self.request.trials} trials" if self.request.trials is not None else f"{self.request.timeout:g} s"
        self.observer.trial_end(record, finished, budget)


def _finish(study: Any, trial: Any, record: Mapping[str, Any]) -> None:
    """Tell ``study`` how ``trial`` ended, as its ``record`` says: every epoch's best validation
    accuracy so far (the pruner replays on them), its time, and its value or state."""
    from optuna.trial import TrialState

    best = -1.0
    for epoch in record.get("history") or []:
        best = max(best, epoch["val_accuracy"])
        trial.report(best, epoch["epoch"])
        trial.should_prune()  # replays the pruner here: successive halving records its rungs in the store
    trial.set_user_attr("seconds", float(record["timing"]["trial_seconds"]))
    trial.set_user_attr("record", str(trial_path(Path(), record["model"], record["dataset"], record["trial"])))
    if record.get("reason"):
        trial.set_user_attr("reason", str(record["reason"]))
    state = {COMPLETE: TrialState.COMPLETE, PRUNED: TrialState.PRUNED}.get(record["state"], TrialState.FAIL)
    if state == TrialState.COMPLETE:
        study.tell(trial, record["value"])
    else:
        study.tell(trial, state=state)


def _contains(dim: Dimension, value: Any) -> bool:
    if dim.choices is not None:
        return value in dim.choices
    return isinstance(value, (int, float)) and not isinstance(value, bool) and dim.low <= value <= dim.high


def trial_path(out_dir: Path, model: str, dataset: str, number: int) -> Path:
    """Where a trial's record is written: ``trials/MODEL+DATASET/trial-NNNN.json``."""
    return (
        out_dir / TRIALS_DIR / f"{quote(model, safe='._-')}+{quote(dataset, safe='._-')}" / f"trial-{number:04d}.json"
    )


def run_tune(registry: Registry, request: TuneRequest, pool: Any, plugins: PluginSource,
             observer: TuneObserver | None = None) -> dict[str, Any]:
    """Run (or resume) the tune of ``request`` in ``request.out_dir`` on ``pool`` and return its
    summary (:func:`summarize`), also written to :data:`TUNE_FILE`."""
    from seqbench import provenance
    from seqbench.planning import RunError
    from seqbench.plugins import plugin_versions
    from seqbench.runner import load_dataset
    from seqbench.types import LoadContext

    studies = plan_tune(registry, request)
    out = request.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write to tune directory {out}: {exc.strerror or exc}") from None
    observer = observer or TuneObserver()
    with fileio.run_lock(out):
        stored = stored_tune(out)
        if request.resume and stored is None:
            raise RunError(f"--resume {out}: no {TUNE_FILE} there")
        if not request.resume and (stored is not None or (out / STUDY_DB).exists()):
            raise RunError(f"{out} already holds a tune; continue it with --resume {out}, or choose another --out")
        head = stored or {"tune": uuid.uuid4().hex, "created": res.now_iso(), "config": request.config(),
                          "command": request.command}
        head.setdefault("sessions", []).append({"command": request.command, "started": res.now_iso(),
                                                "executor": pool.describe(),
                                                "environment": provenance.environment(plugin_versions(registry))})
        fileio.atomic_write_json(out / TUNE_FILE, head)
        fingerprints: dict[str, str] = {}

        def fingerprint(dataset: str) -> str:
            if dataset not in fingerprints:
                ctx = LoadContext(data_dir=request.data_dir, download=request.download, datasets=registry.datasets)
                loaded, status, reason = load_dataset(registry, dataset, ctx, request.overrides, test=False)
                if loaded is None:
                    raise RunError(f"dataset {dataset!r} {status}: {reason}")
                fingerprints[dataset] = str(loaded.fingerprint)
            return fingerprints[dataset]

        def write() -> dict[str, Any]:
            summary = {**head, "updated": res.now_iso(), "studies": summarize(tune)}
            fileio.atomic_write_json(out / TUNE_FILE, summary)
            return summary

        started = time.monotonic()
        tune = Tune(request, studies, head["tune"], plugins, observer, on_trial=write)
        tune.run(pool, fingerprint)
        head["sessions"][-1]["wall_seconds"] = round(time.monotonic() - started, 3)
        return write()


def stored_tune(out_dir: Path) -> dict[str, Any] | None:
    """The summary in a tune directory's :data:`TUNE_FILE`; None when there is none."""
    path = out_dir / TUNE_FILE
    return res.loads(path.read_text()) if path.exists() else None
