"""``seqbench plugins`` and ``seqbench list``: what is installed and registered."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from seqbench.cli.common import registry_from
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
        click.echo(json.dumps([asdict(p) for p in shown], indent=2))
        return
    if not shown:
        click.echo("no third-party plugins installed (--all shows the built-ins)")
        return
    from tabulate import tabulate

    rows = [
        [p.name, p.distribution or "-", p.version or "-", _status(p), ", ".join(p.hooks) or "-",
         ", ".join(p.registered) or "-", p.error or ""]
        for p in shown
    ]
    click.echo(tabulate(rows, headers=["plugin", "distribution", "version", "status", "hooks", "registers", "error"]))


def _status(plugin: PluginInfo) -> str:
    """``blocked`` (SEQBENCH_BLOCK_PLUGINS), ``failed`` (see its error) or ``ok``."""
    return "blocked" if plugin.blocked else "failed" if plugin.error else "ok"


@click.group("list")
def list_cmd() -> None:
    """List registered models or datasets."""


def _listing(ctx: click.Context, kind: str) -> None:
    from tabulate import tabulate

    registry = registry_from(ctx)
    table = getattr(registry, f"{kind}s")
    rows = []
    for name in sorted(table):
        spec = table[name]
        row = [name, registry.plugin_of(kind, name), spec.description]
        if kind == "model":
            try:
                available = spec.unavailable() or "yes"
            except Exception as exc:  # a plugin's own failure: report it and go on
                available = f"error: {one_line(exc)}"
            row.insert(2, available)
        rows.append(row)
    headers = ["name", "plugin", "available", "description"] if kind == "model" else ["name", "plugin", "description"]
    click.echo(tabulate(rows, headers=headers))


@list_cmd.command("models")
@click.pass_context
def list_models(ctx: click.Context) -> None:
    """List registered models and whether they can run here."""
    _listing(ctx, "model")


@list_cmd.command("datasets")
@click.pass_context
def list_datasets(ctx: click.Context) -> None:
    """List registered datasets."""
    _listing(ctx, "dataset")
