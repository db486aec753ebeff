"""The leaderboard as tables: per dataset, all pairs, ranks over datasets; as Markdown, JSON and
LaTeX (booktabs) for papers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seqbench.reporting.leaderboard import CORRECTION, AcrossDatasets, Leaderboard, Row, caveat
from seqbench.reporting.query import Stat
from seqbench.reporting.tables import Column, Table, fixed, general, human_cells, machine_rows, render
from seqbench.schema.types import RunResults

_PP = fixed(2)
_P = "{:.3g}".format

LEADERBOARD_COLUMNS = [
    Column("dataset", "dataset"), Column("rank", "rank", general), Column("model", "model"),
    Column("accuracy_pct", "test accuracy (%)", _PP, stat=True),
    Column("ci95", "95 % interval (%)", _PP, interval=True),
    Column("n", "n", general), Column("mark", "mark"),
    Column("vs_best_pp", "Δ vs best (pp)", _PP), Column("p_adjusted", f"p vs best ({CORRECTION})", _P),
]
PAIR_COLUMNS = [
    Column("dataset", "dataset"), Column("a", "model A"), Column("b", "model B"),
    Column("diff_pp", "A − B (pp)", _PP), Column("ci95", "95 % interval (pp)", _PP, interval=True),
    Column("p", "p", _P), Column("p_adjusted", f"p ({CORRECTION})", _P), Column("test", "test"),
    Column("over", "over"),
]
RANK_COLUMNS = [Column("model", "model"), Column("mean_rank", "mean rank", fixed(2))]


def how_note(boards: Sequence[Leaderboard]) -> str:
    """Which tests and correction made the marks, in one paragraph."""
    methods = sorted({m for b in boards for m in b.methods()})
    alpha = boards[0].alpha if boards else 0.05
    if not methods:
        return "Ranked by mean test accuracy over the ok seeds; one model per dataset: no pair to test."
    return (f"Ranked by mean test accuracy over the ok seeds; interval: 95 % t-interval of the mean over seeds. "
            f"Every pair of models on a dataset is tested ({', '.join(methods) or 'no pair'}: on the two models' stored"
            f" test predictions of the same samples and seeds where both have them, else on their per-seed accuracies),"
            f" the p-values adjusted with {CORRECTION}'s method over that dataset's family of pairs. "
            f"\"tied with best\": not significantly different from the best at α = {alpha:g}; \"(untestable)\": the"
            f" test could not reach α with these seeds (one seed, or three against three without predictions), so the"
            f" tie says nothing.")


def leaderboard_table(boards: Sequence[Leaderboard]) -> Table:
    rows = []
    for board in boards:
        for row in board.rows:
            vs = None if row.best else board.pair(board.rows[0].entry.name, row.entry.name)
            rows.append({
                "dataset": board.title, "rank": row.rank, "model": row.entry.name, "accuracy_pct": row.accuracy,
                "ci95": (row.low, row.high) if row.accuracy.n > 1 else None, "n": row.accuracy.n, "mark": row.mark,
                "vs_best_pp": None if vs is None else -100 * vs.difference.diff,
                "p_adjusted": None if vs is None else vs.p_adjusted,
            })
    return Table("Leaderboard", LEADERBOARD_COLUMNS, rows)


def pairs_table(boards: Sequence[Leaderboard]) -> Table:
    rows = [{
        "dataset": board.title, "a": p.a, "b": p.b, "diff_pp": 100 * p.difference.diff,
        "ci95": (100 * p.difference.low, 100 * p.difference.high), "p": p.difference.p, "p_adjusted": p.p_adjusted,
        "test": p.difference.method, "over": p.difference.over,
    } for board in boards for p in board.pairs]
    return Table("All pairs of models", PAIR_COLUMNS, rows)


def ranks_table(across: AcrossDatasets) -> Table | None:
    if across.test is None:
        return None
    test = across.test
    rows = [{"model": name, "mean_rank": rank} for rank, name in sorted(zip(test.mean_ranks, test.names, strict=True))]
    return Table("Mean ranks over datasets", RANK_COLUMNS, rows)


def across_lines(across: AcrossDatasets) -> list[str]:
    """The rank test in sentences: Friedman, the critical difference, and the caveat."""
    test = across.test
    if test is None:
        return [f"No ranking over datasets: {across.reason}."]
    lines = [f"Over {test.n_datasets} datasets ({', '.join(across.datasets)}), {len(test.names)} models."]
    if test.friedman_p is not None:
        lines.append(f"Friedman test: χ²_F = {test.friedman_chi2:.3g}, p = {test.friedman_p:.3g}"
                     + (f" (Iman-Davenport F = {test.iman_davenport_f:.3g}, p = {test.iman_davenport_p:.3g})"
                        if test.iman_davenport_p is not None else "")
                     + (": the models do not all rank alike." if test.friedman_p <= test.alpha
                        else ": no significant difference in rank."))
    lines.append(f"Nemenyi critical difference at α = {test.alpha:g}: {test.cd:.2f} (mean ranks further apart differ"
                 " significantly; models joined by a bar in the diagram do not).")
    lines.append(caveat(test))
    return lines


def markdown(boards: Sequence[Leaderboard], across: AcrossDatasets) -> str:
    """The leaderboard sections of ``summary.md``."""
    if not boards:
        return ""
    parts = [f"\n## Leaderboard\n\n{render(leaderboard_table(boards), 'github')}\n{how_note(boards)}\n"]
    pairs = pairs_table(boards)
    if pairs.rows:
        parts.append(f"\n## {pairs.title}\n\n{render(pairs, 'github')}")
    ranks = ranks_table(across)
    if len(across.datasets) < 2:
        return "".join(parts)
    parts.append("\n## Across datasets\n\n" + (render(ranks, "github") + "\n" if ranks else "")
                 + "\n".join(across_lines(across)) + "\n")
    return "".join(parts)


def as_json(summary: Table, boards: Sequence[Leaderboard], across: AcrossDatasets) -> dict[str, Any]:
    """``seqbench report --format json``: the summary rows, the leaderboards, the pairs and the ranks."""
    test = across.test
    return {
        "summary": machine_rows(summary),
        "leaderboard": machine_rows(leaderboard_table(boards)),
        "pairs": machine_rows(pairs_table(boards)),
        "method": how_note(boards),
        "across_datasets": None if test is None else {
            "datasets": across.datasets, "models": test.names, "mean_ranks": test.mean_ranks,
            "friedman_chi2": test.friedman_chi2, "friedman_p": test.friedman_p,
            "iman_davenport_f": test.iman_davenport_f, "iman_davenport_p": test.iman_davenport_p,
            "critical_difference": test.cd, "alpha": test.alpha, "groups": test.groups, "caveat": caveat(test),
        },
        "across_datasets_reason": across.reason or None,
    }


# --- LaTeX -------------------------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
TIE_MARK = r"$^{\dagger}$"


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _mean_std(s: Stat | None) -> str:
    if s is None:
        return "—"
    std = "" if s.std is None else f" $\\pm$ {s.std:.2f}"
    return f"{s.mean:.2f}{std} ($n={s.n}$)"


def latex(boards: Sequence[Leaderboard]) -> str:
    """A booktabs table per dataset: model, test accuracy mean ± std (n), 95 % interval, p vs the
    best; the best in bold, models tied with it marked †. Needs ``\\usepackage{booktabs}``."""
    out = []
    for board in boards:
        lines = [r"\begin{table}[t]", r"\centering",
                 f"\\caption{{Test accuracy (\\%) on {latex_escape(board.title)}. Bold: best; {TIE_MARK}: not"
                 f" significantly different from the best ({CORRECTION}-adjusted, $\\alpha={board.alpha:g}$).}}",
                 r"\begin{tabular}{rlrrr}", r"\toprule",
                 r"Rank & Model & Accuracy (\%) & 95\,\% interval & $p$ vs best \\", r"\midrule"]
        for row in board.rows:
            name, acc = latex_escape(row.entry.name), _mean_std(row.accuracy)
            if row.best:
                name, acc = f"\\textbf{{{name}}}", f"\\textbf{{{acc}}}"
            elif row.tied:
                name += TIE_MARK
            vs = None if row.best else board.pair(board.rows[0].entry.name, row.entry.name)
            p = "—" if vs is None else f"{vs.p_adjusted:.3g}"
            lines.append(f"{row.rank} & {name} & {acc} & [{row.low:.2f}, {row.high:.2f}] & {p} \\\\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def summary_latex(summary: Table, boards: Sequence[Leaderboard]) -> str:
    """The summary table in booktabs: every column as people read it, the best model of each
    dataset in bold, models tied with it marked †."""
    marks: dict[tuple[str | None, str | None], Row] = {(b.dataset, r.entry.name): r for b in boards for r in b.rows}
    cols = summary.columns
    lines = [r"\begin{tabular}{" + "".join("r" if c.fmt else "l" for c in cols) + "}", r"\toprule",
             " & ".join(latex_escape(c.header) for c in cols) + r" \\", r"\midrule"]
    for row, cells in zip(summary.rows, human_cells(summary), strict=True):
        name = row.get("model") if "run" not in row else _shown(row, marks)
        mark = marks.get((row.get("dataset"), name))
        texts = [latex_escape(cell) for cell in cells]
        if mark is not None and mark.best:
            texts = [f"\\textbf{{{t}}}" for t in texts]
        elif mark is not None and mark.tied:
            at = next(i for i, c in enumerate(cols) if c.key == "model")
            texts[at] += TIE_MARK
        lines.append(" & ".join(texts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def _shown(row: dict[str, Any], marks: Mapping[tuple[str | None, str | None], Row]) -> str:
    """The leaderboard name of a merged summary row: ``model [run]`` where that is an entry."""
    tagged = f"{row['model']} [{row['run']}]"
    return tagged if (row.get("dataset"), tagged) in marks else row["model"]



# --- what `seqbench report` prints and writes --------------------------------------------------


def partial_lines(runs: Sequence[tuple[str, RunResults]]) -> list[str]:
    """What each partial run is missing, as lines for the console (none for complete runs)."""
    from seqbench.reporting.disclosure import missing_lines, partial_note

    out = []
    for label, results in runs:
        note = partial_note(results)
        if note:
            out.append(f"{label}: {note}" if len(runs) > 1 else note)
            out.extend(f"  - {line}" for line in missing_lines(results))
    return out


def console_report(runs: Sequence[tuple[str, RunResults]], summary: Table, boards: Sequence[Leaderboard],
                   across: AcrossDatasets, fmt: str) -> str:
    """What ``seqbench report`` prints: for people (github, grid) what is missing, the summary,
    the leaderboard, the pairs and the ranks; csv the summary; json and latex as documented."""
    import json

    if fmt == "json":
        return json.dumps(as_json(summary, boards, across), indent=2) + "\n"
    if fmt == "latex":
        return summary_latex(summary, boards) + "\n" + latex(boards)
    if fmt == "csv":
        return render(summary, fmt)
    missing = partial_lines(runs)
    return (
        ("\n".join(missing) + "\n\n" if missing else "") + render(summary, fmt) + leaderboard_text(boards, across, fmt)
    )


def leaderboard_text(boards: Sequence[Leaderboard], across: AcrossDatasets, fmt: str = "github") -> str:
    """The leaderboard, all pairs and ranks over datasets for people ("" with one model a dataset)."""
    parts = []
    if any(len(b.rows) > 1 for b in boards):
        parts += ["\nLeaderboard\n\n", render(leaderboard_table(boards), fmt), "\n" + how_note(boards) + "\n",
                  "\nAll pairs of models\n\n", render(pairs_table(boards), fmt)]
    if len(across.datasets) > 1:
        ranks = ranks_table(across)
        parts += ["\nAcross datasets\n\n", render(ranks, fmt) + "\n" if ranks else "",
                  "\n".join(across_lines(across)) + "\n"]
    return "".join(parts)


def run_leaderboard_text(run_dir: Path, results: RunResults, fmt: str = "github") -> str:
    """The leaderboard of one run directory for the console (its predictions make the tests paired)."""
    from seqbench.reporting.leaderboard import across_datasets, leaderboards

    boards = leaderboards([(Path(run_dir).name, results, Path(run_dir))])
    return leaderboard_text(boards, across_datasets(boards), fmt)


def write_merged_files(out_dir: Path, runs: Sequence[tuple[str, RunResults]],
                       run_dirs: Sequence[Path]) -> list[Path]:
    """``summary.md`` (what each run is missing, the merged summary, the leaderboard) and
    ``records.csv`` of several runs, in ``out_dir``."""
    from seqbench.fileio import atomic_write_text
    from seqbench.records import RECORDS_FILE, records_text
    from seqbench.reporting.disclosure import partial_markdown
    from seqbench.reporting.leaderboard import across_datasets, leaderboards
    from seqbench.reporting.tables import STATS_NOTE, merged_summary_table

    boards = leaderboards([(label, results, path) for (label, results), path in zip(runs, run_dirs, strict=True)])
    missing = "".join(f"### {label}\n\n{text}" for label, results in runs if (text := partial_markdown(results)))
    summary = merged_summary_table(runs)
    text = (missing + f"# {summary.title} of {len(runs)} runs\n\n"
            + "".join(f"- {label}: `{results.get('command', '?')}`\n" for label, results in runs)
            + f"\n{render(summary, 'github')}\n{STATS_NOTE}\n" + markdown(boards, across_datasets(boards)))
    paths = [out_dir / "summary.md", out_dir / RECORDS_FILE]
    atomic_write_text(paths[0], text)
    atomic_write_text(paths[1], records_text(runs))
    return paths
