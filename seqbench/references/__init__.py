"""Published results of the pixel-by-pixel tasks (``published.json``, shipped with the package).

They are shown beside a run's own rows, marked "published, not run here", for the datasets of
the run (``seqbench run``/``report --no-published`` leaves them out). Each entry names the
dataset (as registered here), the model, the test accuracy in percent, and its source with
year and table.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Published:
    """One published test accuracy (percent)."""

    dataset: str
    model: str
    accuracy: float
    source: str
    year: int
    table: str


@functools.lru_cache(maxsize=1)
def published() -> tuple[Published, ...]:
    """Every published result of ``published.json``."""
    data = json.loads(resources.files(__package__).joinpath("published.json").read_text(encoding="utf-8"))
    return tuple(Published(r["dataset"], r["model"], float(r["accuracy"]), r["source"], int(r["year"]), r["table"])
                 for r in data["results"])


def for_datasets(datasets: Iterable[str]) -> list[Published]:
    """The published results of ``datasets``, in their order, then the file's."""
    order = list(dict.fromkeys(datasets))
    return sorted((p for p in published() if p.dataset in order), key=lambda p: order.index(p.dataset))
