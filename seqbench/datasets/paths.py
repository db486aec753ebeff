"""Where dataset files live."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

DATA_DIR_ENV = "SEQBENCH_DATA_DIR"


def resolve_data_dir(value: str | None = None) -> Path:
    """The data directory: ``value``, else ``$SEQBENCH_DATA_DIR``, else the user cache directory.

    The cache directory is ``$XDG_CACHE_HOME/seqbench`` when that variable holds an absolute
    path (as the XDG spec requires), else ``~/.cache/seqbench``.
    """
    chosen = value or os.environ.get(DATA_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "seqbench"


def find_file(directory: Path, filename: str) -> Path | None:
    """``directory/filename`` if it is a file; for ``X.gz`` also the uncompressed ``X``."""
    candidates: Iterable[str] = (filename, filename[:-3]) if filename.endswith(".gz") else (filename,)
    for name in candidates:
        path = directory / name
        if path.is_file():
            return path
    return None
