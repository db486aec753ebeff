"""What a run is asked to do and what it will do: the request, names and patterns resolved, ``--set``
checked and resolved into each pair's hyperparameters, and the plan (models, datasets, pairs, and
what is left out as unavailable). Reads nothing and writes nothing: ``--dry-run`` prints a plan.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seqbench import results as res
from seqbench.hyperparams import Param, ParamValueError, by_name, declared_defaults
from seqbench.plugins import Registry, call_plugin
from seqbench.progress import PlannedPair, Unavailable
from seqbench.protocol import PROTOCOL_DEFAULTS, PROTOCOL_PARAMS, QUICK_PROFILE
from seqbench.types import DatasetInfo, MetricSpec


class RunError(Exception):
    """A user error in the run request (unknown name, bad --set, unwritable output)."""


class SettingError(RunError):
    """A ``--set`` (or config) key or value that nothing selected takes or allows: a usage error."""


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
    tuned: Mapping[str, Any] | None = None


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
        unavailable = [Unavailable("model", m, r) for m in models
                       if m not in named and (r := _unavailable(registry, m))]
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
    reason = call_plugin(registry.models[model].unavailable)
    return str(reason) if reason else None


def _planned_params(registry: Registry, model: str, dataset: str, request: RunRequest) -> dict[str, Any] | None:
    """The pair's hyperparameters from the model's defaults for the dataset's name (its shape is
    not known before it loads); None when the defaults fail (the pair will fail, naming why)."""
    def resolve() -> dict[str, Any]:
        defaults = _placeholder_defaults(registry, model, dataset)
        return resolve_params(res.json_ready(defaults, "defaults"), request.overrides, request.quick, model=model,
                              declared=declared_params(registry.models[model].params))

    return call_plugin(resolve, RunError)


def _placeholder_defaults(registry: Registry, model: str, dataset: str) -> dict[str, Any]:
    """The model's defaults for the dataset's name, asked with a placeholder shape (it is not known
    before the dataset loads)."""
    return dict(registry.models[model].defaults_for(DatasetInfo(dataset, 1, 1, ("0", "1"))))


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
    return {name: replace(spec, compute=functools.partial(spec.compute,
                                                          **component_params(spec.params, name, overrides)))
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
    known: dict[str, set[str]] = {m: set(PROTOCOL_DEFAULTS) | {p.name for p in registry.models[m].params}
                                  for m in models}
    for m in models:
        for d in datasets:
            defaults = call_plugin(functools.partial(_placeholder_defaults, registry, m, d))
            if defaults is None:
                continue
            known[m].update(defaults)
            with contextlib.suppress(res.UnwritableValue):  # that pair will fail, naming the value
                resolve_params(res.json_ready(defaults), overrides, quick=False, model=m,
                               declared=declared_params(registry.models[m].params))
    components = {**{d: registry.datasets[d].params for d in datasets},
                  **{n: s.params for n, s in registry.metrics.items()}}
    for name, declared in components.items():
        component_params(declared, name, overrides)
    taken: dict[str, list[str]] = {}
    for key in overrides:
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
