"""A run's table files: ``summary`` (with the run's leaderboard), ``per_class`` and ``timing``,
each as Markdown and CSV. Above :mod:`~seqbench.reporting.tables` (the tables) and
:mod:`~seqbench.reporting.leaderboard_tables` (the leaderboard's sections), which it joins."""

from __future__ import annotations

from pathlib import Path

from seqbench.fileio import atomic_write_text
from seqbench.reporting.leaderboard import across_datasets, leaderboards
from seqbench.reporting.leaderboard_tables import markdown as board_markdown
from seqbench.reporting.tables import TABLES, markdown, published_markdown, render
from seqbench.schema.types import RunResults


def leaderboard_markdown(run_dir: Path, results: RunResults) -> str:
    """The leaderboard, all-pairs and across-datasets sections of a run's ``summary.md``."""
    boards = leaderboards([(Path(run_dir).name, results, Path(run_dir))])
    return board_markdown(boards, across_datasets(boards))


def write_tables(run_dir: Path, results: RunResults) -> list[Path]:
    """Write ``summary``, ``per_class`` and ``timing`` as ``.md`` and ``.csv`` into ``run_dir``
    (``summary.md`` with the leaderboard)."""
    paths = []
    for name, build in TABLES.items():
        table = build(results)
        extra = leaderboard_markdown(run_dir, results) + published_markdown(results) if name == "summary" else ""
        for path, text in ((run_dir / f"{name}.md", markdown(table, results) + extra),
                           (run_dir / f"{name}.csv", render(table, "csv"))):
            atomic_write_text(path, text)
            paths.append(path)
    return paths
