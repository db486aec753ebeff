"""``report.html``: one self-contained page per run (or per set of runs) to read or attach to a PR.

The page holds where the numbers come from (command, machine, commit, protocol, data), the
summary, hyperparameter, per-class and timing tables, and every run-level plot inline as a
``data:`` URI: no other file, no script, no network, so it opens from a ``file://`` URL or as a
CI artifact. Quick runs carry a banner and a mark on their rows; reference models a badge.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from seqbench.fileio import atomic_write_bytes, atomic_write_text
from seqbench.reporting.disclosure import data_lines, missing_lines, partial_note
from seqbench.reporting.query import config_of, environment_of, machine_of, pairs_of, run_protocol
from seqbench.reporting.tables import (
    PUBLISHED_NOTE,
    STATS_NOTE,
    Column,
    Table,
    code_line,
    data_line,
    human_cells,
    is_quick,
    merged_summary_table,
    per_class_table,
    published_table,
    quick_note,
    summary_table,
    timing_table,
    tuning_line,
)
from seqbench.results import name_part
from seqbench.schema.types import RunResults

if TYPE_CHECKING:
    from seqbench.reporting.plots import RunFigure

REPORT_FILE = "report.html"
HEATMAP_PREFIX = "pairs_heatmap__"
CD_FIGURE = "critical_difference"
MEMORY_NOTE = ("Peak host RSS: the process's resident-memory high-water mark during the pair alone (reset when the"
               " pair starts, where Linux allows it; records of older runs hold the process's running peak)."
               " Peak device: the model's own count of the device memory it allocated.")
Runs = Sequence[tuple[str, RunResults]]

CSS_DPI = 96  # a figure is shown at its size in inches: its fonts read as in print
CONFUSION_SCALE = 0.8  # confusion matrices a little smaller, two side by side on a wide screen
_MIME = {"png": "image/png", "svg": "image/svg+xml"}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 0 24px 48px; color: #1a1a1a; }
h1 { margin: 24px 0 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 16px; }
dl.run dt { color: #555; } dl.run dd { margin: 0; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; word-break: break-all; }
tr.best td { font-weight: 700; background: #eef7ee; } tr.tied td { background: #f6fbf6; }
.banner ul { margin: 6px 0 0; font-weight: 400; }
.banner { background: #fdecea; border: 2px solid #c62828; color: #8e0000; padding: 10px 14px; margin: 16px 0;
          font-weight: 600; border-radius: 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d6d6d6; padding: 3px 8px; white-space: nowrap; }
th { background: #f3f5f7; text-align: left; white-space: normal; min-width: 3em; max-width: 9em;
     vertical-align: bottom; }
td.num { text-align: right; }
tr.reference td { background: #f1f6fc; } tr.quick td { background: #fff4e5; }
tr.published td { background: #f3f3f3; color: #555; font-style: italic; }
.badge { display: inline-block; font-size: 11px; padding: 0 5px; margin-left: 6px; border-radius: 3px;
         color: white; vertical-align: 1px; }
.badge.reference { background: #1f5f9e; } .badge.quick { background: #c62828; }
.note { color: #555; max-width: 1000px; }
.figures { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; margin-top: 4px; }
footer { margin-top: 40px; color: #777; font-size: 12px; }
"""


class Embedded(NamedTuple):
    """A figure ready for the page: its name, caption, width in CSS pixels, image format and bytes."""

    name: str
    caption: str
    width: int
    fmt: str
    data: bytes


# --- merging runs ----------------------------------------------------------------------------


def merge_runs(runs: Runs) -> RunResults:
    """One results dict with the pairs of every run, for the plots of several runs.

    A model that appears on the same dataset in more than one run becomes ``model [run]``; a pair
    from a quick run among full ones becomes ``model (quick)``. One run is returned as it is.
    """
    if len(runs) == 1:
        return runs[0][1]
    seen: dict[tuple[str, str], set[str]] = {}
    for label, results in runs:
        for pair in pairs_of(results):
            seen.setdefault((pair["model"], pair["dataset"]), set()).add(label)
    all_quick = all(is_quick(results) for _, results in runs)
    pairs = []
    for label, results in runs:
        quick = is_quick(results) and not all_quick
        for pair in pairs_of(results):
            name = pair["model"] + (f" [{label}]" if len(seen[pair["model"], pair["dataset"]]) > 1 else "")
            pairs.append(pair | {"model": name + (" (quick)" if quick else "")})
    first = runs[0][1]
    config = {"quick": all_quick, "protocol": run_protocol(first)}
    # A results-shaped view for the plots of several runs: its config and pairs are all they read.
    return cast("RunResults", {"config": config, "pairs": pairs})


# --- figures ---------------------------------------------------------------------------------


def embed_figures(results: RunResults, out_dir: Path | None, fmt: str | None,
                  extra: Iterable[Any] = ()) -> list[Embedded]:
    """Draw the run's figures (and the ``extra`` ones), save each as ``out_dir/plots/<name>.<fmt>``
    (when ``out_dir`` is given), and return them for the page: as saved when PNG or SVG, as PNG
    when saved as PDF. ``fmt`` None draws nothing."""
    if fmt is None:
        return []
    from itertools import chain

    from seqbench.reporting.plots import PLOTS_DIR, UndrawableFigure, check_format, figure_bytes, run_figures

    check_format(fmt)
    embedded = []
    for figure in chain(run_figures(results), extra):
        try:
            if figure.figure is None:
                raise UndrawableFigure(figure.undrawable)
            data = figure_bytes(figure.figure, fmt)
        except UndrawableFigure as exc:  # the page says so in the figure's place
            embedded.append(Embedded(figure.name, f"{figure.caption}: not drawn ({exc})", 0, "", b""))
            continue
        if out_dir is not None:
            atomic_write_bytes(out_dir / PLOTS_DIR / f"{figure.name}.{fmt}", data)
        shown = (fmt, data) if fmt in _MIME else ("png", figure_bytes(figure.figure, "png"))
        scale = CONFUSION_SCALE if figure.name.startswith("confusion") else 1.0
        width = round(figure.figure.get_figwidth() * CSS_DPI * scale)
        embedded.append(Embedded(figure.name, figure.caption, width, *shown))
    return embedded


def _img(figure: Embedded) -> str:
    if not figure.data:
        caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>"
        return f'<figure id="fig-{html.escape(figure.name)}">{caption}</figure>'
    uri = f"data:{_MIME[figure.fmt]};base64,{base64.b64encode(figure.data).decode('ascii')}"
    return (f'<figure id="fig-{html.escape(figure.name)}"><img src="{uri}" style="width: {figure.width}px"'
            f' alt="{html.escape(figure.caption)}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")


# --- header ----------------------------------------------------------------------------------


def _gib(n: Any) -> str | None:
    return f"{n / 2**30:.0f} GiB" if isinstance(n, (int, float)) and not isinstance(n, bool) else None


def _machine(results: RunResults) -> str:
    m = machine_of(results)
    cpu = f"{m['cpu']} ({m.get('cpu_count', '?')} CPUs)" if m.get("cpu") else None
    gpus = m.get("gpus")
    gpu = ", ".join(gpus) if gpus else "no GPU"
    return " · ".join(str(p) for p in (cpu, _gib(m.get("memory_bytes")), gpu, m.get("platform")) if p)


def _software(results: RunResults) -> str:
    env = environment_of(results)
    packages = env.get("packages", {}) | env.get("plugins", {})
    versions = [f"{name} {version}" for name, version in packages.items() if version]
    return " · ".join([f"Python {env['python']}"] * bool(env.get("python")) + versions)


def protocol_line(results: RunResults) -> str:
    """The protocol of a run in one sentence: the split and selection rules, then the epochs,
    patience, schedule and batch each model × dataset ran with (from its own params)."""
    from seqbench.reporting.disclosure import protocol_lines

    p = run_protocol(results)
    parts = []
    if isinstance(p.get("val_fraction"), (int, float)):
        parts.append(f"{p['val_fraction']:.0%} of train held out for validation (seeded)")
    parts.append("early stopping on validation accuracy")
    parts.append("the best validation parameters restored, the test set read once")
    return "; ".join(parts) + ". " + " · ".join(protocol_lines(results))


def _run_header(label: str | None, results: RunResults) -> str:
    commit = code_line(results, digits=40)
    seeds = config_of(results).get("seeds")
    rows = [
        ("command", f"<code>{html.escape(str(results['command']))}</code>" if results.get("command") else None),
        ("when", html.escape(" → ".join(str(results[k]) for k in ("created", "updated") if results.get(k)))),
        ("machine", html.escape(_machine(results))),
        ("software", html.escape(_software(results))),
        ("code", html.escape(commit) if commit else None),
        ("seeds", html.escape(", ".join(map(str, seeds))) if isinstance(seeds, list) else None),
        ("protocol", html.escape(protocol_line(results))),
        ("data", html.escape(data_line(results).removeprefix("Data, for every model: ")) or None),
        ("data copies", "<br>".join(html.escape(line) for line in data_lines(results)) or None),
        ("hyperparameters", html.escape(tuning_line(results).removeprefix("Hyperparameters: "))),
    ]
    quick = quick_note(results)
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows if value)
    title = f"<h3>{html.escape(label)}</h3>" if label else ""
    banner = f'<div class="banner">{html.escape(quick)}</div>' if quick else ""
    return f'{title}{_partial_banner(results)}{banner}<dl class="run">{items}</dl>'


def _partial_banner(results: RunResults) -> str:
    """A partial run's banner: what is missing and why ("" for a complete run)."""
    note = partial_note(results)
    if note is None:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in missing_lines(results))
    return f'<div class="banner partial" id="partial">{html.escape(note)}<ul>{items}</ul></div>'


# --- tables ----------------------------------------------------------------------------------


def _with_run(build: Callable[[RunResults], Table], runs: Runs) -> Table:
    """``build`` of every run in one table; with several runs, a leading ``run`` column."""
    if len(runs) == 1:
        return build(runs[0][1])
    tables = [build(results) for _, results in runs]
    columns = [Column("run", "run"), *max((t.columns for t in tables), key=len)]
    rows = [{"run": label} | row for (label, _), t in zip(runs, tables, strict=True) for row in t.rows]
    return Table(tables[0].title, columns, rows)


def _reference_models(runs: Runs) -> set[tuple[str, str]]:
    from seqbench.reporting.plots import is_reference

    return {(label, p["model"]) for label, results in runs for p in pairs_of(results) if is_reference(p)}


def _td(column: Column, text: str) -> str:
    """A cell of escaped ``text``; numbers right-aligned."""
    return f'<td class="num">{text}</td>' if column.fmt else f"<td>{text}</td>"


def _table_markup(table: Table, rows: Iterable[str]) -> str:
    """``table``'s header over the ``<tr>`` markup of ``rows``, scrolling sideways when wide."""
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in table.columns)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _html_table(table: Table, runs: Runs) -> str:
    """The table with reference rows badged and quick rows marked; numbers right-aligned."""
    references = _reference_models(runs)
    quick_runs = {label for label, results in runs if is_quick(results)}
    single = runs[0][0] if len(runs) == 1 else None
    body = []
    for row, cells in zip(table.rows, human_cells(table), strict=True):
        run = row.get("run", single)
        reference = (run, row.get("model")) in references
        quick = run in quick_runs
        tds = []
        for column, cell in zip(table.columns, cells, strict=True):
            text = html.escape(cell)
            if column.key == "model":
                text += '<span class="badge reference">reference</span>' * reference
                text += '<span class="badge quick">quick</span>' * quick
            tds.append(_td(column, text))
        kind = " ".join(k for k, on in (("reference", reference), ("quick", quick)) if on)
        body.append(f'<tr class="{kind}">' + "".join(tds) + "</tr>" if kind else "<tr>" + "".join(tds) + "</tr>")
    return _table_markup(table, body)


def _published(runs: Runs) -> str:
    """Published results for the runs' datasets, as a table of rows marked "published, not run here"."""
    table = published_table([results for _, results in runs])
    if table is None:
        return ""
    rows = (
        '<tr class="published">'
        + "".join(_td(column, html.escape(cell)) for column, cell in zip(table.columns, cells, strict=True))
        + "</tr>"
        for cells in human_cells(table)
    )
    return (f'<h3 id="published">{html.escape(table.title)}</h3>{_table_markup(table, rows)}'
            f'<p class="note">{html.escape(PUBLISHED_NOTE)}</p>')


def params_table(results: RunResults) -> Table:
    """The hyperparameters of every model × dataset (of its first seed that has them), seed left out."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for pair in pairs_of(results):
        params = pair.get("params")
        if isinstance(params, dict) and (pair["model"], pair["dataset"]) not in rows:
            text = ", ".join(f"{k}={v}" for k, v in params.items() if k != "seed")
            rows[pair["model"], pair["dataset"]] = {"model": pair["model"], "dataset": pair["dataset"],
                                                     "device": pair.get("device"), "params": text}
    columns = [Column("model", "model"), Column("dataset", "dataset"), Column("device", "device"),
               Column("params", "hyperparameters")]
    return Table("Hyperparameters", columns, list(rows.values()))


# --- the page --------------------------------------------------------------------------------


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def _leaderboard_markup(boards: Sequence[Any]) -> str:
    """The leaderboard table: the best row bold, rows tied with it marked."""
    from seqbench.reporting.leaderboard_tables import leaderboard_table

    table = leaderboard_table(boards)
    body = []
    for row, cells in zip(table.rows, human_cells(table), strict=True):
        kind = {"best": "best"}.get(row["mark"], "tied" if row["mark"].startswith("tied") else "")
        tds = "".join(_td(column, html.escape(cell)) for column, cell in zip(table.columns, cells, strict=True))
        body.append(f'<tr class="{kind}">{tds}</tr>' if kind else f"<tr>{tds}</tr>")
    return _table_markup(table, body)


def _comparison_section(boards: Sequence[Any], across: Any, figures: list[Embedded]) -> str:
    """Leaderboard, all pairs with their heatmaps, and the ranks over datasets with the CD diagram."""
    from seqbench.reporting.leaderboard_tables import across_lines, how_note, pairs_table, ranks_table

    if not boards:
        return ""
    heatmaps = [f for f in figures if f.name.startswith(HEATMAP_PREFIX)]
    cd = [f for f in figures if f.name == CD_FIGURE]
    parts = [_leaderboard_markup(boards), f'<p class="note">{html.escape(how_note(boards))}</p>']
    pairs = pairs_table(boards)
    if pairs.rows:
        rows = (
            "<tr>" + "".join(_td(c, html.escape(cell)) for c, cell in zip(pairs.columns, cells, strict=True)) + "</tr>"
            for cells in human_cells(pairs)
        )
        parts.append(f'<h3 id="all-pairs">{html.escape(pairs.title)}</h3>{_table_markup(pairs, rows)}')
        if heatmaps:
            parts.append('<div class="figures">' + "".join(map(_img, heatmaps)) + "</div>")
    if len(across.datasets) > 1:
        ranks = ranks_table(across)
        parts.append('<h3 id="across-datasets">Across datasets</h3>')
        if ranks is not None:
            rows = (
                "<tr>"
                + "".join(_td(c, html.escape(cell)) for c, cell in zip(ranks.columns, cells, strict=True))
                + "</tr>"
                for cells in human_cells(ranks)
            )
            parts.append(_table_markup(ranks, rows))
        parts.append("".join(f'<p class="note">{html.escape(line)}</p>' for line in across_lines(across)))
        if cd:
            parts.append('<div class="figures">' + "".join(map(_img, cd)) + "</div>")
    return _section("leaderboard", "Leaderboard", "".join(parts))


def render_report(runs: Runs, figures: Iterable[Embedded] = (), boards: Sequence[Any] = (),
                  across: Any = None) -> str:
    """The HTML page of one or more ``(label, results)`` runs with the given figures inline, and
    the leaderboards (with the rank test over datasets, ``across``) when given."""
    if not runs:
        raise ValueError("no runs to report")
    single = len(runs) == 1
    summary = summary_table(runs[0][1]) if single else merged_summary_table(runs)
    quick = any(is_quick(results) for _, results in runs)
    marks = ["Rows of PyTorch reference models carry a <em>reference</em> badge."]
    if quick:
        marks.append("Rows of quick runs carry a <em>quick</em> badge: smoke tests, not benchmark results.")
    figures = list(figures)
    comparison = [f for f in figures if f.name.startswith(HEATMAP_PREFIX) or f.name == CD_FIGURE]
    others = [f for f in figures if f not in comparison]
    plots = ('<div class="figures">' + "".join(map(_img, others)) + "</div>") if others else \
        '<p class="note">No plots (drawn with --no-plots, or nothing finished).</p>'
    partial = any(partial_note(results) for _, results in runs)
    title = ("seqbench report" + (f" — {runs[0][0]}" if single else f" — {len(runs)} runs")
             + (" — QUICK RUN" if quick else "") + (" — PARTIAL RUN" if partial else ""))
    header = "".join(_run_header(None if single else label, results) for label, results in runs)
    body = [
        f"<header><h1>{html.escape(title)}</h1>{header}</header>",
        _section("summary", "Summary", _html_table(summary, runs)
                 + f'<p class="note">{html.escape(STATS_NOTE)} {" ".join(marks)}</p>' + _published(runs)),
        _comparison_section(boards, across, comparison) if across is not None else "",
        _section("plots", "Plots", plots),
        _section("hyperparameters", "Hyperparameters", _html_table(_with_run(params_table, runs), runs)),
        _section("per-class", "Per-class metrics (test set)", _html_table(_with_run(per_class_table, runs), runs)),
        _section("timing", "Timing", _html_table(_with_run(timing_table, runs), runs)
                 + f'<p class="note">{html.escape(MEMORY_NOTE)}</p>'),
        f"<footer>Written by seqbench on {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}."
        " Self-contained: the plots are embedded, nothing is loaded from elsewhere.</footer>",
    ]
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(b for b in body if b) + "\n</body></html>\n")


def comparison_figures(merged: RunResults, boards: Sequence[Any], across: Any) -> Iterator[RunFigure]:
    """The leaderboards' heatmaps, the CD diagram and accuracy against cost, drawn one at a time."""
    from seqbench.reporting import comparison_plots as cp
    from seqbench.reporting.plots import drawn, model_colours

    colours = model_colours(merged)
    for board in boards:
        if len(board.rows) > 1:
            yield drawn(HEATMAP_PREFIX + name_part(board.dataset), f"Pairwise differences on {board.title}",
                        partial(cp.heatmap_figure, board))
    if across is not None and across.test is not None:
        yield drawn(CD_FIGURE, "Critical-difference diagram over datasets", partial(cp.cd_figure, across.test, colours))
    if cp.has_cost(merged):
        yield drawn("accuracy_vs_cost", "Test accuracy against cost, with the Pareto front",
                    partial(cp.cost_figure, merged, colours, cp.provenance_title([merged])))


def write_report(out_dir: Path, runs: Runs, plot_format: str | None = "png",
                 run_dirs: Sequence[Path | None] | None = None) -> Path:
    """Write ``out_dir/report.html`` for the runs, and their plots as ``out_dir/plots/*.<plot_format>``
    (no plots when ``plot_format`` is None). ``run_dirs``, where the runs' stored predictions are,
    make the leaderboard's tests paired."""
    from seqbench.reporting.leaderboard import across_datasets, leaderboards

    dirs = list(run_dirs) if run_dirs is not None else [None] * len(runs)
    boards = leaderboards([(label, results, d) for (label, results), d in zip(runs, dirs, strict=True)])
    across = across_datasets(boards)
    merged = merge_runs(runs)
    figures = embed_figures(merged, out_dir, plot_format, comparison_figures(merged, boards, across))
    path = out_dir / REPORT_FILE
    atomic_write_text(path, render_report(runs, figures, boards, across))
    return path


def write_run_report(run_dir: Path, results: RunResults, plot_format: str | None = "png") -> Path:
    """The end of ``seqbench run``: the run's plots in ``plot_format`` and its ``report.html``."""
    return write_report(run_dir, [(run_dir.name or str(run_dir), results)], plot_format, [run_dir])
