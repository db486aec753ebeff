"""Load, locate and fetch a built-in dataset: the functions behind its :class:`DatasetSpec`."""

from __future__ import annotations

import os
import shlex
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from seqbench.datasets import catalog, cifar, mnist
from seqbench.datasets.base import DatasetDef, Found
from seqbench.datasets.download import DownloadError, download
from seqbench.datasets.errors import DataError
from seqbench.types import Dataset, DatasetUnavailable, LoadContext

_READERS: dict[str, ModuleType] = {"idx": mnist, "cifar": cifar}


def load(name: str, ctx: LoadContext) -> Dataset:
    """Load dataset ``name`` as float32 row sequences in [0, 1], downloading missing files if allowed.

    Raises :class:`DatasetUnavailable` when files are missing and cannot be downloaded, and
    :class:`DataError` when a file is corrupt or not the one expected.
    """
    defn, reader = _lookup(name)
    found = reader.find(defn, ctx.data_dir)
    if found.missing:
        if not ctx.download:
            raise DatasetUnavailable(unavailable_message(defn, found, "downloads are off", ctx.data_dir))
        _download_missing(defn, found, ctx.data_dir)
        found = reader.find(defn, ctx.data_dir)
    raw = reader.read(defn, found)
    return Dataset(
        name=name,
        train_x=_scale(raw.train_x),
        train_y=raw.train_y,
        test_x=_scale(raw.test_x),
        test_y=raw.test_y,
        class_names=raw.class_names,
        fingerprint=raw.fingerprint,
        meta={"directory": str(found.directory), "files": [str(p) for p in found.files]},
        channels=defn.channels,
    )


def locate(name: str, ctx: LoadContext) -> dict[str, Any]:
    """Where dataset ``name``'s files are and, when all are there, its fingerprint and shapes.

    ``status`` is ``"ok"``, ``"missing"`` or ``"corrupt"`` (then ``error`` says why).
    """
    defn, reader = _lookup(name)
    found = reader.find(defn, ctx.data_dir)
    info: dict[str, Any] = {
        "name": name,
        "status": "missing" if found.missing else "ok",
        "directory": str(found.directory),
        "files": [str(p) for p in found.files],
        "missing": list(found.missing),
        "fingerprint": None,
        "train_shape": None,
        "test_shape": None,
        "error": None,
    }
    if not found.missing:
        try:
            raw = reader.read(defn, found)
        except DataError as exc:
            info.update(status="corrupt", error=str(exc))
        else:
            info.update(
                fingerprint=raw.fingerprint,
                train_shape=list(raw.train_x.shape),
                test_shape=list(raw.test_x.shape),
            )
    return info


def check(name: str, ctx: LoadContext) -> None:
    """Raise :class:`DatasetUnavailable` as :func:`load` would for missing files with downloads
    off, looking only at which files exist (nothing is read)."""
    defn, reader = _lookup(name)
    found = reader.find(defn, ctx.data_dir)
    if found.missing and not ctx.download:
        raise DatasetUnavailable(unavailable_message(defn, found, "downloads are off", ctx.data_dir))


def fetch(name: str, ctx: LoadContext) -> None:
    """Download dataset ``name``'s missing files, each verified against its published checksum."""
    defn, reader = _lookup(name)
    found = reader.find(defn, ctx.data_dir)
    if found.missing:
        _download_missing(defn, found, ctx.data_dir)


def unavailable_message(defn: DatasetDef, found: Found, reason: str, data_dir: Path) -> str:
    """The one message for missing files: which, where to put them, and where to get them (the
    fetch command names ``data_dir``, the data directory the files were looked for in)."""
    where = f"{found.directory}{os.sep}"
    mirrors: list[str] = []
    for resource in defn.resources:
        if resource.filename in found.missing:
            for source in resource.sources:
                base = source.url.removesuffix(resource.filename)
                if base not in mirrors:
                    mirrors.append(base)
    them = "it" if len(found.missing) == 1 else "them"
    hint = f", {defn.system_hint}" if defn.system_hint else ""
    return (
        f"dataset {defn.name!r} is not available: {', '.join(found.missing)} missing from {where} "
        f"({reason}). Download {them} by hand from {' or '.join(mirrors)} into {where}{hint}, "
        f"or run `seqbench data fetch {defn.name} --data-dir {shlex.quote(str(data_dir))}` with network access."
    )


def _lookup(name: str) -> tuple[DatasetDef, ModuleType]:
    defn = catalog.DATASETS[name]
    return defn, _READERS[defn.format]


def _download_missing(defn: DatasetDef, found: Found, data_dir: Path) -> None:
    remaining = list(found.missing)
    for resource in defn.resources:
        if resource.filename in remaining:
            try:
                download(resource, found.directory)
            except DownloadError as exc:
                left = replace(found, missing=tuple(remaining))
                raise DatasetUnavailable(unavailable_message(defn, left, f"download failed: {exc}", data_dir)) from None
            remaining.remove(resource.filename)


def _scale(x: np.ndarray) -> np.ndarray:
    out = x.astype(np.float32)  # then divide in place: 5x faster than a casting np.divide
    out /= np.float32(255)
    return out
