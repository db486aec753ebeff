"""``seqbench plugins`` and ``seqbench list``: what is installed and registered."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from seqbench.cli.common import echo, registry_from
from seqbench.plugins import PluginInfo, one_line


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.pass_context
def plugins_cmd(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List installed plugins, their versions and hooks; blocked ones are listed as blocked."""
    registry = registry_from(ctx)
    shown = [p for p in registry.plugins if show_all or not p.builtin or p.blocked]
    if as_json:
        echo(json.dumps([asdict(p) for p in shown], indent=2))
        return
    if not shown:
        echo("no third-party plugins installed (--all shows the built-ins)")
        return
    from tabulate import tabulate

    rows = [
        [p.name, p.distribution or "-", p.version or "-", _status(p), ", ".join(p.hooks) or "-",
         ", ".join(p.registered) or "-", p.error or ""]
        for p in shown
    ]
    echo(tabulate(rows, headers=["plugin", "distribution", "version", "status", "hooks", "registers", "error"]))


def _status(plugin: PluginInfo) -> str:
    """``blocked`` (SEQBENCH_BLOCK_PLUGINS), ``failed`` (see its error) or ``ok``."""
    return "blocked" if plugin.blocked else "failed" if plugin.error else "ok"


@click.group("list")
def list_cmd() -> None:
    """List registered models, datasets or metrics."""


def _entries(ctx: click.Context, kind: str, params: bool = False) -> list[dict[str, Any]]:
    """Each registered ``kind`` (``model`` or ``dataset``); a model says whether it can run here;
    with ``params``, each one's declared hyperparameters."""
    registry = registry_from(ctx)
    entries = []
    for name, spec in sorted(getattr(registry, f"{kind}s").items()):
        entry: dict[str, Any] = {"name": name, "plugin": registry.plugin_of(kind, name)}
        if kind == "model":
            try:
                reason = spec.unavailable() or None
            except Exception as exc:  # a plugin's own failure: report it and go on
                reason = f"error: {one_line(exc)}"
            entry.update(available=reason is None, reason=None if reason is None else str(reason))
        if kind == "dataset":
            entry["in_all"] = spec.in_all
        if params:
            entry["params"] = [p.as_dict() for p in spec.params]
        entries.append({**entry, "description": spec.description})
    return entries


def short_reason(reason: str, width: int = 30) -> str:
    """The first clause of a reason (before a parenthesis, ``;`` or ``:``), at most ``width`` long."""
    for stop in (" (", ";", ":"):
        reason = reason.split(stop, 1)[0]
    return reason if len(reason) <= width else reason[: width - 1].rstrip() + "…"


def _listing(ctx: click.Context, kind: str, as_json: bool, params: bool = False) -> None:
    entries = _entries(ctx, kind, params)
    if as_json:
        echo(json.dumps(entries, indent=2))
        return
    from tabulate import tabulate

    if params:
        click.echo(_params_table(entries))
        return

    notes: dict[str, int] = {}  # full reason -> footnote number
    rows = []
    for e in entries:
        row = [e["name"], e["plugin"], e["description"]]
        if kind == "model":
            reason = e["reason"]
            note = notes.setdefault(reason, len(notes) + 1) if reason else None
            row.insert(2, "yes" if reason is None else f"no ({short_reason(reason)}) [{note}]")
        else:
            row.insert(2, "yes" if e["in_all"] else "no (name it)")
        rows.append(row)
    headers = ["name", "plugin", "available" if kind == "model" else "in --all", "description"]
    echo(tabulate(rows, headers=headers))
    if notes:
        echo("")
    for reason, note in notes.items():
        echo(f"[{note}] {reason}")


def _params_table(entries: list[dict[str, Any]]) -> str:
    """One row per declared hyperparameter: what it is, allows and how ``seqbench tune`` searches it."""
    from tabulate import tabulate

    from seqbench.hyperparams import format_value

    rows = []
    for e in entries:
        if not e["params"]:
            rows.append([e["name"], "-", "", "", "", "", "declares none (its defaults are taken as they are)"])
        for p in e["params"]:
            search = p["search"]
            space = "" if search is None else (
                f"{format_value(search[0])}..{format_value(search[1])}{' (log)' if p['log'] else ''}"
                if p["choices"] is None and p["type"] in ("int", "float") else ",".join(map(format_value, search)))
            default = "" if p["default"] is None else format_value(p["default"])
            rows.append([e["name"], p["name"], p["type"], default, p["allowed"], space, p["help"]])
    return tabulate(rows, headers=["model", "parameter", "type", "default", "allowed", "tune searches", "description"],
                    disable_numparse=True)


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@list_cmd.command("models")
@_json_option
@click.option("--params", is_flag=True, help="List each model's declared hyperparameters: type, default "
              "(per-dataset defaults may differ: `seqbench run --dry-run`), allowed values, tune's search space.")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool, params: bool) -> None:
    """List registered models and whether they can run here."""
    _listing(ctx, "model", as_json, params)


@list_cmd.command("datasets")
@_json_option
@click.pass_context
def list_datasets(ctx: click.Context, as_json: bool) -> None:
    """List registered datasets."""
    _listing(ctx, "dataset", as_json)


@list_cmd.command("metrics")
@click.pass_context
def list_metrics(ctx: click.Context) -> None:
    """List registered metrics and which way is better (what `compare --fail-on` gates on)."""
    from tabulate import tabulate

    registry = registry_from(ctx)
    rows = []
    for name in sorted(registry.metrics):
        spec = registry.metrics[name]
        way = spec.higher_is_better
        better = ("higher" if way else "lower") if isinstance(way, bool) else ", ".join(
            f"{key}: {'higher' if up else 'lower'}" for key, up in way.items())
        rows.append([name, registry.plugin_of("metric", name), better, spec.description])
    echo(tabulate(rows, headers=["name", "plugin", "better", "description"]))


@click.command("show")
@click.argument("run_dir", metavar="RUN", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("pair", metavar="PAIR")
def show_cmd(run_dir: Path, pair: str) -> None:
    """Print one pair's record of run directory RUN, and the traceback of a failed pair.

    PAIR is the pair's file name in RUN/pairs/ without .json, e.g. rnn-cpu+mnist+seed0.
    """
    from seqbench.results import ResultsError, pair_stem, read_pairs

    try:
        records = {pair_stem(*key): record for key, record in read_pairs(run_dir).items()}
    except ResultsError as exc:
        raise click.ClickException(str(exc)) from None
    if pair not in records:
        failed = [stem for stem, r in records.items() if r["status"] == "failed"]
        others = [stem for stem in records if stem not in failed]
        listed = ", ".join([*(f"{stem} (failed)" for stem in failed), *others]) or "none"
        raise click.ClickException(f"no pair {pair!r} in {run_dir}; its pairs: {listed}")
    record = dict(records[pair])
    trace = record.pop("traceback", None)
    echo(json.dumps(record, indent=2))
    if trace:
        echo(f"\ntraceback of {pair}:\n{trace.rstrip()}")
