"""Loading plugins and collecting what they register.

Built-in plugins (``seqbench.default_plugins``) and installed distributions with an entry point in
the group ``seqbench`` go through the same path. Loading is tolerant: a plugin that fails to
import or to register is reported in one warning line naming it, and the rest keeps working,
unless strict mode (``--strict-plugins`` or ``SEQBENCH_STRICT_PLUGINS=1``) makes it fatal.

Environment:

* ``SEQBENCH_LOAD_PLUGINS=a,b`` loads only those distributions (or entry-point names);
  an empty value loads none. Built-ins are always loaded unless blocked.
* ``SEQBENCH_BLOCK_PLUGINS=a,b`` blocks plugins by name, built-ins included
  (``datasets``, ``models``, ``metrics``); they are listed as blocked.

A plugin that implements no hook (functions without ``@seqbench.hookimpl``) is warned about.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from seqbench import hookspecs
from seqbench.safe_text import warn
from seqbench.types import DatasetSpec, MetricSpec, ModelSpec

ENTRY_POINT_GROUP = "seqbench"
BUILTIN_PLUGINS = ("datasets", "models", "metrics")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
HOOKS = ("register_datasets", "register_models", "register_metrics")
T = TypeVar("T")
#: The hooks of loggers, called with a run's events (:mod:`seqbench.loggers`).
LOG_HOOKS = ("log_run_start", "log_epoch_end", "log_pair_end", "log_run_end")


class PluginError(Exception):
    """A plugin could not be loaded or registered (fatal in strict mode)."""


@dataclass
class PluginInfo:
    """One plugin as ``seqbench plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    error: str | None = None
    blocked: bool = False


@dataclass
class Registry:
    """Everything the loaded plugins registered, by name, with the plugin that registered it."""

    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    owner: dict[tuple[str, str], str] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The implementations of each ``log_*`` hook, in registration order.
    loggers: dict[str, list[pluggy.HookImpl]] = field(default_factory=dict)

    def plugin_of(self, kind: str, name: str) -> str:
        """The name of the plugin that registered ``name`` of ``kind`` (``model``, ...)."""
        return self.owner[(kind, name)]

    def higher_is_better(self, scalar: str) -> bool | None:
        """Whether a higher value of a metric's scalar result (``top2.top2_accuracy``, ``top2``; see
        :func:`seqbench.metrics.scalars`) is better, as its metric declares; None where it does not
        say. KeyError when no registered metric has the scalar."""
        metric = max((m for m in self.metrics if scalar == m or scalar.startswith(f"{m}.")), key=len, default=None)
        if metric is None:
            raise KeyError(scalar)
        return self.metrics[metric].is_higher_better(scalar[len(metric) + 1:] if scalar != metric else metric)


_KINDS: dict[str, tuple[str, str, type[DatasetSpec | ModelSpec | MetricSpec]]] = {
    "register_datasets": ("dataset", "datasets", DatasetSpec),
    "register_models": ("model", "models", ModelSpec),
    "register_metrics": ("metric", "metrics", MetricSpec),
}


def strict_from_env() -> bool:
    return os.environ.get("SEQBENCH_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def _names_from_env(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def _warn(registry: Registry, message: str, strict: bool) -> None:
    if strict:
        raise PluginError(message)
    registry.warnings.append(message)
    warn(message)


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def call_plugin(call: Callable[[], T], *passes: type[BaseException]) -> T | None:
    """``call()`` of plugin code, or None where it raised: a plugin must not end the run (SystemExit
    too). A KeyboardInterrupt and the exceptions in ``passes`` go on up."""
    try:
        return call()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if isinstance(exc, passes):
            raise
        return None


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("seqbench")
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    strict: bool | None = None,
    extra: Iterable[tuple[str, object]] = (),
    *,
    installed: bool = True,
    builtins: bool = True,
) -> Registry:
    """Load built-in and installed plugins and collect their registrations.

    ``extra`` is ``(name, plugin)`` pairs registered after the built-ins, as installed plugins
    are: tests use it to register a plugin without installing it. A name or a plugin object
    that is already loaded (an installed copy of the same plugin) is a :class:`PluginError`
    naming both. ``installed=False`` loads the built-ins and ``extra`` alone, whatever the
    environment says (no installed distribution; ``SEQBENCH_LOAD_PLUGINS`` and
    ``SEQBENCH_BLOCK_PLUGINS`` are not read); ``builtins=False`` loads no built-in plugin.
    """
    strict = strict_from_env() if strict is None else strict
    registry = Registry()
    pm = make_plugin_manager()
    for name in (_names_from_env("SEQBENCH_BLOCK_PLUGINS") or ()) if installed else ():
        pm.set_blocked(name)

    for name in BUILTIN_PLUGINS if builtins else ():
        info = PluginInfo(name, "seqbench", _version("seqbench"), builtin=True, blocked=pm.is_blocked(name))
        registry.plugins.append(info)
        if not info.blocked:
            pm.register(importlib.import_module(f"seqbench.default_plugins.{name}"), name=name)

    allowed = _names_from_env("SEQBENCH_LOAD_PLUGINS")
    for ep in _entry_points() if installed else ():
        dist = ep.dist.name if ep.dist is not None else None
        if allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        info = PluginInfo(ep.name, dist, ep.dist.version if ep.dist else None, builtin=False)
        registry.plugins.append(info)
        if pm.is_blocked(ep.name) or (dist and pm.is_blocked(dist)):
            info.blocked = True
            continue
        label = dist or ep.name
        if pm.has_plugin(ep.name):  # pluggy would refuse it with a ValueError; say which plugin has the name
            taken = _describe_loaded(registry, ep.name)
            info.name = f"{dist}:{ep.name}" if dist else f"{ep.name}#{len(registry.plugins)}"  # unambiguous
            info.error = f"has the name of {taken}"
            _warn(registry, f"plugin {ep.name!r}{f' (distribution {dist!r})' if dist else ''} has the name of "
                  f"{taken}; rename its entry point", strict)
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin (even one calling sys.exit) must not take the others down
            info.error = one_line(exc)
            _warn(registry, f"plugin {label!r} failed to load: {info.error}; to skip it, block its entry point: "
                            f"SEQBENCH_BLOCK_PLUGINS={ep.name}", strict)

    for name, plugin in extra:
        _register_extra(pm, registry, name, plugin)

    _check_pending(pm, registry, strict)
    _check_implements_hooks(pm, registry, strict)

    _collect(pm, registry, strict)
    _collect_loggers(pm, registry)
    return registry


def _describe_loaded(registry: Registry, name: str) -> str:
    info = next((p for p in registry.plugins if p.name == name), None)
    if info is None or info.distribution is None:
        return f"plugin {name!r}"
    if info.builtin:
        return f"the built-in plugin {name!r}"
    return f"plugin {name!r} (distribution {info.distribution!r})"


def _register_extra(pm: pluggy.PluginManager, registry: Registry, name: str, plugin: object) -> None:
    """Register a plugin given in ``extra=``; one already loaded is a PluginError naming both."""
    if pm.has_plugin(name):
        info = next((p for p in registry.plugins if p.name == name), None)
        if info is not None and info.distribution and not info.builtin:
            where = f"the installed distribution {info.distribution!r}"
        else:
            where = f"plugin {name!r}"
        raise PluginError(f"plugin {name!r} given in extra= has the name of {where}, already loaded; load "
                          "without installed plugins (load_plugins(installed=False), seqbench.testing) or "
                          "give it another name")
    if pm.is_registered(plugin):
        other = pm.get_name(plugin)
        assert other is not None, "a registered plugin has a name"
        raise PluginError(f"plugin {name!r} given in extra= is already loaded as {_describe_loaded(registry, other)}; "
                          "load without installed plugins (load_plugins(installed=False), seqbench.testing)")
    pm.register(plugin, name=name)
    registry.plugins.append(PluginInfo(name, None, None, builtin=False))


def _check_implements_hooks(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    """A loaded plugin that implements no hook registers nothing: say so."""
    for info in registry.plugins:
        plugin = pm.get_plugin(info.name)
        if plugin is None or info.error or pm.get_hookcallers(plugin):
            continue
        label = info.distribution if info.distribution and not info.builtin else info.name
        info.error = "implements no seqbench hook"
        _warn(registry, f"plugin {label!r} implements no seqbench hook: decorate "
              f"{', '.join(HOOKS[:-1])} or {HOOKS[-1]} with @seqbench.hookimpl", strict)


def _check_pending(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    """A hook implementation that matches no hook spec (a typo) is that plugin's error."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin)
            info = next(p for p in registry.plugins if p.name == name)
            info.error = str(exc)
            pm.unregister(exc.plugin)
            label = info.distribution if info.distribution and not info.builtin else name
            _warn(registry, f"plugin {label!r} has a hook that seqbench does not define: {exc}", strict)


def _registrar(registry: Registry, hook: str, plugin: str, label: str, added: list[str],
               strict: bool) -> Callable[[Any], None]:
    """The ``register`` that ``plugin``'s ``hook`` is called with; it appends each name it takes to ``added``."""
    kind, attr, spec_type = _KINDS[hook]
    table: dict[str, Any] = getattr(registry, attr)

    def register(spec: Any) -> None:
        if not isinstance(spec, spec_type):
            raise TypeError(f"{hook} expects {spec_type.__name__}, got {type(spec).__name__}")
        if not isinstance(spec.name, str) or not NAME_PATTERN.fullmatch(spec.name):
            raise PluginError(f"{kind} name {spec.name!r} from plugin {label!r} is not a valid name "
                              "(letters, digits, '.', '_' and '-', starting with a letter or digit)")
        if spec.name in table:
            other = registry.owner[(kind, spec.name)]
            message = f"{kind} name {spec.name!r} from plugin {plugin!r} is already registered by plugin {other!r}"
            if strict:
                raise PluginError(message)
            # Refuse this name only; the plugin's other registrations go on.
            _warn(registry, f"{message}; ignored", strict)
            return
        table[spec.name] = spec
        registry.owner[(kind, spec.name)] = plugin
        added.append(spec.name)

    return register


def _collect(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    infos = {info.name: info for info in registry.plugins if not info.error and not info.blocked}
    for hook in HOOKS:
        kind = _KINDS[hook][0]
        for impl in getattr(pm.hook, hook).get_hookimpls():  # in registration order
            info = infos[impl.plugin_name]
            info.hooks.append(hook)
            added: list[str] = []
            label = info.distribution if info.distribution and not info.builtin else info.name
            try:
                impl.function(register=_registrar(registry, hook, impl.plugin_name, label, added, strict))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                error = str(exc) if isinstance(exc, PluginError) else one_line(exc)
                info.error = error
                _warn(registry, f"plugin {label!r} failed in {hook}: {error}", strict)
            info.registered.extend(f"{kind}:{n}" for n in added)


def _collect_loggers(pm: pluggy.PluginManager, registry: Registry) -> None:
    infos = {info.name: info for info in registry.plugins}
    for hook in LOG_HOOKS:
        impls = getattr(pm.hook, hook).get_hookimpls()  # in registration order
        registry.loggers[hook] = impls
        for impl in impls:
            infos[impl.plugin_name].hooks.append(hook)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def plugin_versions(registry: Registry) -> dict[str, str | None]:
    """Distribution versions of the loaded third-party plugins, for the results."""
    return {p.distribution or p.name: p.version for p in registry.plugins if not p.builtin and not p.blocked}

