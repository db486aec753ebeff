"""Text from plugins and results files made harmless where it is shown: on a terminal, and in
CSV files that a spreadsheet may open.

Names, descriptions, reasons and metric keys come from plugins and from ``results.json`` files
that anyone may hand over; written raw, they could drive a terminal (escape sequences that set
its title or clear it) or a spreadsheet (formulas such as ``=HYPERLINK(...)``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

#: Control characters (C0, DEL, C1) but newline and tab, and the bidirectional overrides that
#: make text read otherwise than it is.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def terminal(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x1b``), never sent as itself."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def warn(message: str) -> None:
    """A warning line on stderr, as seqbench gives them (``seqbench: warning: ...``), made safe
    for the terminal."""
    print(f"seqbench: warning: {terminal(message)}", file=sys.stderr)


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run: text starting like a formula gets a leading
    ``'`` (OWASP); numbers, and text that is just a number (``-0.5``), are kept as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """Every cell of a ``csv.DictWriter`` row through :func:`csv_cell`."""
    return {key: csv_cell(value) for key, value in row.items()}
