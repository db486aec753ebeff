"""Verified downloads: mirrors tried in order, published checksums, timeouts, bounded retries.

A file is streamed into a temporary file in its destination directory, its checksum is checked,
and only then is it renamed into place: a failed or interrupted download leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

import click

from seqbench import __version__
from seqbench.datasets.base import Resource, Source
from seqbench.fileio import create_temp

TIMEOUT_S = 15.0
RETRIES = 2
BACKOFF_S = 1.0
_CHUNK = 1 << 20
_USER_AGENT = f"seqbench/{__version__}"


class DownloadError(Exception):
    """No source gave the file with its published checksum; the message says what each one did."""


class _SourceFailed(Exception):
    def __init__(self, reason: str, transient: bool) -> None:
        super().__init__(reason)
        self.transient = transient


def download(
    resource: Resource,
    directory: Path,
    *,
    timeout: float = TIMEOUT_S,
    retries: int = RETRIES,
    backoff: float = BACKOFF_S,
    progress: bool = True,
) -> Path:
    """Download ``resource`` into ``directory`` and return its path once its checksum is verified.

    Each source is tried in turn; a timeout, a server error or a broken transfer is retried up to
    ``retries`` times (waiting ``backoff``, then twice as long, ...), a checksum mismatch or any
    other failure moves on to the next source. Raises :class:`DownloadError` when all fail.
    """
    directory = Path(directory)
    created = [d for d in (directory, *directory.parents) if not d.exists()]  # innermost first
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {directory}: {exc.strerror or exc}") from None
    try:
        return _download(resource, directory, timeout, retries, backoff, progress)
    except BaseException:
        for d in created:
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty
        raise


def _download(
    resource: Resource, directory: Path, timeout: float, retries: int, backoff: float, progress: bool
) -> Path:
    failures = []
    for source in resource.sources:
        for attempt in range(retries + 1):
            try:
                tmp = _fetch(source, directory, resource.filename, timeout, progress)
            except _SourceFailed as exc:
                if exc.transient and attempt < retries:
                    time.sleep(backoff * 2**attempt)
                    continue
                failures.append(f"{source.url}: {exc}")
                break
            final = directory / resource.filename
            os.replace(tmp, final)
            return final
    raise DownloadError(f"could not download {resource.filename}: " + "; ".join(failures))


def _fetch(source: Source, directory: Path, filename: str, timeout: float, progress: bool) -> Path:
    """Download one source into a temporary file in ``directory`` and check its checksum."""
    algorithm, _, expected = source.checksum.partition(":")
    hasher = hashlib.new(algorithm)
    try:
        fd, tmp = create_temp(directory / filename, ".part")
    except OSError as exc:
        raise DownloadError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            total, received = _stream(source.url, out, hasher, timeout, progress, filename)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received != total:
            raise _SourceFailed(f"broken transfer: got {received} of {total} bytes", transient=True)
        digest = hasher.hexdigest()
        if digest != expected.lower():
            raise _SourceFailed(
                f"checksum mismatch: expected {algorithm} {expected}, got {digest}", transient=False
            )
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _stream(
    url: str, out: BinaryIO, hasher: hashlib._Hash, timeout: float, progress: bool, filename: str
) -> tuple[int | None, int]:
    """Copy ``url`` to ``out``, feeding ``hasher``; return (announced length, bytes received)."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.length  # the Content-Length header, None when absent or invalid
            host = urllib.parse.urlsplit(url).netloc
            bar = (
                click.progressbar(length=total, label=f"{filename} from {host}", file=sys.stderr)
                if progress and total
                else None
            )
            with bar if bar is not None else contextlib.nullcontext():
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        transient = exc.code >= 500 or exc.code == 429
        raise _SourceFailed(f"HTTP {exc.code} {exc.reason}", transient) from None
    except urllib.error.URLError as exc:
        raise _reason(exc.reason, url, timeout) from None
    except (http.client.HTTPException, OSError) as exc:
        raise _reason(exc, url, timeout) from None
    return total, received


def _reason(error: object, url: str, timeout: float) -> _SourceFailed:
    """Classify a network error: timeouts and dropped connections are worth a retry."""
    if isinstance(error, socket.gaierror):
        host = urllib.parse.urlsplit(url).hostname
        return _SourceFailed(f"cannot resolve host {host} (no network?)", transient=False)
    if isinstance(error, TimeoutError):
        return _SourceFailed(f"timed out after {timeout:g} s", transient=True)
    if isinstance(error, ConnectionRefusedError):
        return _SourceFailed("connection refused", transient=False)
    if isinstance(error, (ConnectionError, http.client.HTTPException)):
        return _SourceFailed(f"connection lost ({error or type(error).__name__})", transient=True)
    if isinstance(error, OSError):
        return _SourceFailed(error.strerror or str(error), transient=False)
    return _SourceFailed(str(error), transient=False)
