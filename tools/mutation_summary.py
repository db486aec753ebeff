"""Summarise a mutmut run (``mutants/`` in the current directory) as Markdown.

    python3 tools/mutation_summary.py [--times TIMES] > results/mutation/summary.md

Per module: mutants, killed, survived, timeout, no tests, not checked; then every survivor with
its one-line change and the reason it is left, from ``results/mutation/reasons.tsv`` (mutant
name, tab, reason; a name may end in ``*``). A survivor without a reason is listed as
UNCLASSIFIED. ``--times`` is a file of ``module<TAB>seconds`` lines (the durations measured).

It reads mutmut's own modules (``mutmut.stats``, ``mutmut.mutation.diff_apply``): mutmut 3 has no
public API for its results, hence the pinned version in the ``mutation`` extra.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from collections import Counter
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

REASONS = Path(__file__).resolve().parents[1] / "results" / "mutation" / "reasons.tsv"
COLUMNS = ("killed", "survived", "timeout", "no tests", "not checked")


def load_reasons() -> list[tuple[str, str]]:
    lines = REASONS.read_text().splitlines()
    return [tuple(line.split("\t", 1)) for line in lines if line.strip() and not line.startswith("#")]


def reason_for(name: str, reasons: list[tuple[str, str]]) -> str:
    return next((why for pattern, why in reasons if fnmatch.fnmatchcase(name, pattern)), "UNCLASSIFIED")


def change(name: str, source: str) -> str:
    """The mutated line(s), as ``old → new``."""
    diff = get_diff_for_mutant(name, path=source).splitlines()
    old = [line[1:].strip() for line in diff if line.startswith("-") and not line.startswith("---")]
    new = [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]
    return f"`{' '.join(old)}` → `{' '.join(new)}`".replace("|", "\\|")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--times", type=Path)
    args = parser.parse_args()
    times = {}
    if args.times:
        times = dict(line.split("\t") for line in args.times.read_text().splitlines() if line.strip())
    reasons = load_reasons()
    rows, survivors = [], []
    for meta in sorted(Path("mutants").glob("**/*.py.meta")):
        source = str(meta.relative_to("mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status_by_exit_code[c] for c in codes.values())
        checked = sum(counts[c] for c in ("killed", "survived", "timeout"))
        rate = f"{100 * (counts['killed'] + counts['timeout']) / checked:.1f} %" if checked else "–"
        rows.append(f"| `{source}` | {len(codes)} | " + " | ".join(str(counts[c]) for c in COLUMNS)
                    + f" | {rate} | {times.get(source, '–')} |")
        survivors += [(name, source) for name, c in sorted(codes.items(), key=lambda kv: _order(kv[0]))
                      if status_by_exit_code[c] == "survived"]
    print("| module | mutants | " + " | ".join(COLUMNS) + " | killed (incl. timeout) of checked | seconds |")
    print("|---|---:|" + "---:|" * (len(COLUMNS) + 2))
    print("\n".join(rows))
    print(f"\n## Survivors ({len(survivors)})\n")
    print("| mutant | change | why it is left |")
    print("|---|---|---|")
    for name, source in survivors:
        print(f"| `{name}` | {change(name, source)} | {reason_for(name, reasons)} |")


def _order(name: str) -> tuple[str, int]:
    head, _, n = name.rpartition("__mutmut_")
    return head, int(n) if n.isdigit() else 0


if __name__ == "__main__":
    main()
