"""Helpers shared by the CLI commands."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import click
from click.shell_completion import CompletionItem

from seqbench.plugins import PluginError, Registry, load_plugins
from seqbench.safe_text import terminal


def echo(message: str = "", err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of text that may hold names and reasons from plugins or results files,
    with their control characters escaped (:func:`seqbench.safe_text.terminal`)."""
    click.echo(terminal(message), err=err, nl=nl)


class SettingRefused(click.ClickException):
    """A ``--set``, ``--space`` or config value that is not allowed: one line, exit 2 (usage)."""

    exit_code = 2


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


def complete_names(kind: str) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """Shell completion of registered ``kind`` names (``model`` or ``dataset``) for ``-m``/``-d``."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        with contextlib.redirect_stderr(io.StringIO()):  # no plugin warnings in the shell's prompt
            try:
                names = getattr(registry_from(ctx), f"{kind}s")
            except click.ClickException:
                return []
        return [CompletionItem(name) for name in sorted(names) if name.startswith(incomplete)]

    return complete
