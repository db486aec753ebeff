"""MNIST-format datasets (MNIST, Fashion-MNIST): four IDX files in a directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

from seqbench.datasets import idx
from seqbench.datasets.base import DatasetDef, Found, RawData
from seqbench.datasets.catalog import IDX_FILES
from seqbench.datasets.errors import DataError
from seqbench.datasets.paths import find_file

_SHAPE = (28, 28)


def find(defn: DatasetDef, data_dir: Path) -> Found:
    """The first directory holding all four files: ``<data-dir>/<subdir>``, then the system dirs."""
    own = data_dir / defn.subdir
    for directory in (own, *defn.system_dirs):
        found = [p for p in (find_file(directory, name) for name in IDX_FILES) if p is not None]
        if len(found) == len(IDX_FILES):
            return Found(directory, tuple(found), ())
    paths = [find_file(own, name) for name in IDX_FILES]
    present = tuple(p for p in paths if p is not None)
    missing = tuple(name for name, p in zip(IDX_FILES, paths, strict=True) if p is None)
    return Found(own, present, missing)


def read(defn: DatasetDef, found: Found) -> RawData:
    """Read and validate both splits; the fingerprint hashes the four decompressed files in order."""
    hasher = hashlib.sha256()
    train_images, train_labels, test_images, test_labels = found.files
    splits = []
    for split, images, labels, expected in (
        ("train", train_images, train_labels, defn.counts[0]),
        ("test", test_images, test_labels, defn.counts[1]),
    ):
        x, y = idx.read_split(images, labels, _SHAPE, defn.num_classes, hasher)
        if len(x) != expected:
            raise DataError(f"{images}: {len(x)} images, expected {expected} for the {split} split")
        splits.append((x, y))
    (train_x, train_y), (test_x, test_y) = splits
    return RawData(train_x, train_y, test_x, test_y, defn.class_names, f"sha256:{hasher.hexdigest()}")
