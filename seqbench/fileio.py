"""Files written safely: atomically (a temporary file beside the target, then a rename), never
through a symbolic or hard link, and under a lock that one process holds at a time.

Every temporary file is named as :data:`TEMP_NAME` says, so that only seqbench's own leftovers of
interrupted writes are ever deleted (:func:`remove_stale_temp`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

LOCK_FILE = ".seqbench.lock"
#: The name :func:`create_temp` gives its temporary files, ``.<name>.<8 hex digits>.tmp`` (or ``.part``,
#: downloads): nothing else is seqbench's to delete.
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.(?:tmp|part)")


class ResultsError(Exception):
    """A results directory or file cannot be read or written."""


def create_temp(path: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new, empty temporary file beside ``path``, created with the umask's permissions
    (``tempfile.mkstemp`` would make it 0600 whatever the umask)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def is_own_temp(path: Path) -> bool:
    """Whether ``path`` is named as :func:`create_temp` names its files (and is a plain file)."""
    return TEMP_NAME.fullmatch(path.name) is not None and path.is_file() and not path.is_symlink()


def remove_stale_temp(directories: Iterable[Path], older_than: float = 0.0) -> list[Path]:
    """Delete the temporary files of interrupted writes that seqbench made (:func:`is_own_temp`)
    directly in each of ``directories``; nothing else, and nothing in their subfolders.

    Only files last written more than ``older_than`` seconds ago go: a live writer's file is
    younger. Returns what was deleted.
    """
    now = time.time()
    removed = []
    for directory in directories:
        if directory.is_symlink() or not directory.is_dir():
            continue
        for path in directory.iterdir():
            with contextlib.suppress(OSError):
                if is_own_temp(path) and now - path.lstat().st_mtime >= older_than:
                    path.unlink()
                    removed.append(path)
    return removed


def open_own(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT)`` that never follows a symbolic link and refuses anything
    but a plain file with one name (a hard link to another file would be written through), each
    with a :class:`ResultsError`; other failures are the ``OSError``."""
    try:
        fd = os.open(path, flags | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError:
        if path.is_symlink():
            raise ResultsError(f"{path} is a symbolic link; seqbench never writes through one: move it away") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "not a plain file" if not stat.S_ISREG(info.st_mode) else "a hard link to another file"
        raise ResultsError(f"{path} is {what}; seqbench never writes through one: move it away")
    return fd


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process: a second holder is refused while the first lives.

    The lock is an ``flock`` on :data:`LOCK_FILE`, which holds the holder's pid; the kernel drops
    it when its process dies, so a killed run's lock file is stale and is taken over.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    path = run_dir / LOCK_FILE
    fd = _acquire(path, fcntl)
    try:
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            raise ResultsError(f"cannot write to output directory {run_dir}: {exc.strerror or exc}") from None
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _acquire(path: Path, fcntl: Any) -> int:
    """An open descriptor of ``path``, exclusively flocked; the file it names is still ``path``."""
    while True:
        try:
            fd = open_own(path, os.O_RDWR)
        except OSError as exc:
            raise ResultsError(f"cannot write to output directory {path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ResultsError(
                f"{path.parent} is in use by another seqbench run (pid {holder}); wait for it to end"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed the file between our open and our lock: again
