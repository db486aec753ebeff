"""``seqbench data``: fetch and inspect datasets."""

from __future__ import annotations

import json
import shlex
from typing import Any

import click

from seqbench.cli.common import echo, registry_from
from seqbench.datasets.errors import DataError
from seqbench.datasets.paths import resolve_data_dir
from seqbench.plugins import one_line
from seqbench.types import DatasetSpec, DatasetUnavailable, LoadContext

_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Data directory [default: $SEQBENCH_DATA_DIR, else $XDG_CACHE_HOME/seqbench or ~/.cache/seqbench].",
)


@click.group()
def data() -> None:
    """Fetch and inspect datasets."""


@data.command()
@click.argument("names", nargs=-1, required=True, metavar="DATASET...|all")
@_data_dir_option
@click.pass_context
def fetch(ctx: click.Context, names: tuple[str, ...], data_dir: str | None) -> None:
    """Download missing dataset files, checksum-verified.

    DATASET is mnist, fashion-mnist, cifar10 (or any plugin dataset that can be fetched), or all
    (every dataset with a fetcher; a derived dataset fetches its source). Files already present
    are left alone.
    """
    registry = registry_from(ctx)
    fetchable = [name for name, spec in registry.datasets.items() if spec.fetch is not None and spec.source is None]
    chosen = fetchable if "all" in names else list(dict.fromkeys(names))
    for name in chosen:
        if name not in registry.datasets:
            raise click.ClickException(f"unknown dataset {name!r}; choose from {', '.join(fetchable)} or all")
        if registry.datasets[name].fetch is None:
            raise click.ClickException(f"dataset {name!r} (plugin {registry.plugin_of('dataset', name)!r}) has no "
                                       "fetcher: seqbench cannot download it; `seqbench data info` says where its "
                                       "files go")
    load_ctx = LoadContext(resolve_data_dir(data_dir), download=True, datasets=registry.datasets)
    failed = []
    for name in chosen:
        try:
            echo(_fetch_one(name, registry.datasets[name], load_ctx))
        except click.ClickException as exc:
            if len(chosen) == 1:
                raise
            echo(f"Error: {name}: {exc.message}", err=True)
            failed.append(name)
    if failed:
        raise click.ClickException(f"could not fetch {', '.join(failed)}")


def _fetch_one(name: str, spec: DatasetSpec, load_ctx: LoadContext) -> str:
    """Fetch one dataset and return its status line; raise ClickException with the reason."""
    assert spec.fetch is not None, "fetch() chose datasets that have a fetcher"
    try:
        spec.fetch(load_ctx)
        where = dict(spec.locate(load_ctx)) if spec.locate is not None else {}
    except (DatasetUnavailable, DataError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # a plugin's own failure: name it, no traceback
        raise click.ClickException(f"{name}: {one_line(exc)}") from None
    if where.get("status", "ok") != "ok":
        raise click.ClickException(where.get("error") or f"{name}: {where['status']}")
    fingerprint = f" ({where['fingerprint']})" if where.get("fingerprint") else ""
    return f"{name}: ok in {where.get('directory', load_ctx.data_dir)}{fingerprint}"


@data.command()
@_data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def info(ctx: click.Context, data_dir: str | None, as_json: bool) -> None:
    """Show each dataset's files, status, fingerprint and shapes."""
    registry = registry_from(ctx)
    load_ctx = LoadContext(resolve_data_dir(data_dir), download=False, datasets=registry.datasets)
    entries = []
    for name, spec in registry.datasets.items():
        entry: dict[str, Any] = {"name": name, "status": "unknown"}
        if spec.locate is not None:
            try:
                entry.update(spec.locate(load_ctx))
            except (DatasetUnavailable, DataError, OSError) as exc:
                entry.update(status="error", error=str(exc))
            except Exception as exc:  # a plugin's own failure: report it and go on
                entry.update(status="error", error=one_line(exc))
        entry.update(plugin=registry.plugin_of("dataset", name), description=spec.description)
        entries.append(entry)
    if as_json:
        echo(json.dumps({"data_dir": str(load_ctx.data_dir), "datasets": entries}, indent=2, default=str))
        return
    from tabulate import tabulate

    echo(f"data dir: {load_ctx.data_dir}")
    headers = ["dataset", "status", "location", "train", "test", "fingerprint"]
    rows = [
        [e["name"], e["status"], e.get("directory", ""), _shape(e.get("train_shape")),
         _shape(e.get("test_shape")), _short(e.get("fingerprint"))]
        for e in entries
    ]  # fmt: skip
    echo(tabulate(rows, headers=headers))
    for e in entries:
        if e.get("missing"):
            fix = (
                f"run `seqbench data fetch {e['name']}{_data_dir_args(data_dir)}`"
                if registry.datasets[e["name"]].fetch is not None
                else "it has no fetcher: put them there yourself"
            )
            echo(f"{e['name']}: missing {', '.join(e['missing'])}; {fix}")
        if e.get("derived_from"):
            echo(
                f"{e['name']}: derived from {e['derived_from']} in memory (its files are those of {e['derived_from']})"
            )
        if e.get("error"):
            echo(f"{e['name']}: {e['error']}")


def _data_dir_args(data_dir: str | None) -> str:
    """`` --data-dir DIR`` when one was given, for a command to suggest."""
    return f" --data-dir {shlex.quote(data_dir)}" if data_dir else ""


def _shape(shape: Any) -> str:
    return "x".join(str(d) for d in shape) if shape else ""


def _short(fingerprint: str | None) -> str:
    return f"{fingerprint[:19]}…" if fingerprint else ""
