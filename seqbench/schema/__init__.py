"""JSON Schemas of seqbench's results: ``results.schema.json`` and ``pair.schema.json``."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

NAMES = ("results", "pair")


def load(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (``"results"`` or ``"pair"``) as a dict."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r} (known: {', '.join(NAMES)})")
    return json.loads(resources.files(__name__).joinpath(f"{name}.schema.json").read_text())
