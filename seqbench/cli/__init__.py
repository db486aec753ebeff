"""The ``seqbench`` command line: parses, calls the library, prints."""

from __future__ import annotations

from typing import Any

import click

from seqbench import __version__
from seqbench.cli.data import data
from seqbench.cli.evaluate import evaluate
from seqbench.cli.inspect import list_cmd, plugins_cmd, show_cmd
from seqbench.cli.report import compare, report
from seqbench.cli.run import run
from seqbench.cli.tune import tune
from seqbench.safe_text import terminal


class _Main(click.Group):
    """The command group; its one-line errors, which may quote plugins and results files, are
    shown with their control characters escaped."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            # In place, so the exception keeps its class and exit code; click's stubs mark message Final.
            exc.message = terminal(exc.message)  # type: ignore[misc]
            raise


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seqbench")
@click.option(
    "--strict-plugins",
    is_flag=True,
    envvar="SEQBENCH_STRICT_PLUGINS",
    help="Make a plugin that fails to load an error instead of a warning.",
)
@click.pass_context
def main(ctx: click.Context, strict_plugins: bool) -> None:
    """Benchmark models that read images as sequences of rows."""
    ctx.ensure_object(dict)["strict_plugins"] = strict_plugins


main.add_command(run)
main.add_command(evaluate)
main.add_command(tune)
main.add_command(list_cmd)
main.add_command(plugins_cmd)
main.add_command(data)
main.add_command(report)
main.add_command(compare)
main.add_command(show_cmd)
