"""Helpers shared by the CLI commands."""

from __future__ import annotations

import click

from seqbench.plugins import PluginError, Registry, load_plugins


def registry_from(ctx: click.Context) -> Registry:
    """Load the plugins once per invocation, honouring ``--strict-plugins``."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    if "registry" not in root.obj:
        try:
            root.obj["registry"] = load_plugins(strict=root.obj.get("strict_plugins") or None)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from None
    return root.obj["registry"]
