"""The records the dataset modules pass around."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from seqbench.types import Preprocessing

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class Source:
    """A URL for a file and the file's published checksum, ``"md5:<hex>"`` or ``"sha256:<hex>"``."""

    url: str
    checksum: str


@dataclass(frozen=True)
class Resource:
    """A file of a dataset and the sources to download it from, in order of preference."""

    filename: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class DatasetDef:
    """A built-in dataset: where it lives, how it is stored, where to download it.

    ``format`` picks the reader (``"idx"`` or ``"cifar"``); ``counts`` are the expected
    (train, test) sizes; ``class_names`` is empty when the files carry them (CIFAR-10);
    ``system_dirs`` are read-only places searched after ``<data-dir>/<subdir>``; ``channels``
    are the values per pixel; ``preprocessing`` is what the harness applies for every model.
    ``provenance`` labels known copies by fingerprint (``("sha256:…", "CIFAR-10 dev split")``):
    reports show the label wherever that copy's figures appear.
    """

    name: str
    description: str
    subdir: str
    format: str
    counts: tuple[int, int]
    resources: tuple[Resource, ...]
    class_names: tuple[str, ...] = ()
    num_classes: int = 10
    system_dirs: tuple[Path, ...] = ()
    system_hint: str = ""
    channels: int = 1
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    provenance: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Found:
    """Where a dataset's files are: ``files`` present, ``missing`` names to download into ``directory``."""

    directory: Path
    files: tuple[Path, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class RawData:
    """A dataset as read from its files: ``(N, T, F)`` uint8 images and ``(N,)`` int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    fingerprint: str
