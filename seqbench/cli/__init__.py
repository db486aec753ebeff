"""The ``seqbench`` command line: parses, calls the library, prints."""

from __future__ import annotations

import click

from seqbench import __version__
from seqbench.cli.data import data
from seqbench.cli.inspect import list_cmd, plugins_cmd
from seqbench.cli.report import compare, report
from seqbench.cli.run import run
from seqbench.cli.tune import tune


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
main.add_command(tune)
main.add_command(list_cmd)
main.add_command(plugins_cmd)
main.add_command(data)
main.add_command(report)
main.add_command(compare)
