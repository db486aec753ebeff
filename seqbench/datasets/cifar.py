"""CIFAR-10, python version: the ``cifar-10-python.tar.gz`` archive or its extracted folder.

Each image becomes 32 steps (rows) of 96 features: the 3 colour values of each pixel side by
side, ``(N, 3, 32, 32) -> (N, 32, 32, 3) -> (N, 32, 96)``.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import importlib
import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from seqbench.datasets.base import DatasetDef, Found, RawData
from seqbench.datasets.errors import DataError

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
#: The files read, in fingerprint order.
MEMBERS = (*TRAIN_BATCHES, TEST_BATCH, META)
_PIXELS = 3 * 32 * 32


def find(defn: DatasetDef, data_dir: Path) -> Found:
    """The extracted folder if present, else the archive, else the archive is missing."""
    directory = data_dir / defn.subdir
    for candidate in (directory / FOLDER, directory / ARCHIVE):
        if candidate.exists():
            return Found(directory, (candidate,), ())
    return Found(directory, (), (ARCHIVE,))


def to_rows(data: np.ndarray) -> np.ndarray:
    """CIFAR rows ``(N, 3072)`` (all red, all green, all blue) as ``(N, 32, 96)`` row sequences."""
    planes = data.reshape(len(data), 3, 32 * 32)
    # Stacking the colour planes is the (N, 3, 32, 32) -> (N, 32, 32, 3) transpose, twice as fast.
    return np.stack((planes[:, 0], planes[:, 1], planes[:, 2]), axis=-1).reshape(len(data), 32, 96)


def read(defn: DatasetDef, found: Found) -> RawData:
    """Read and validate all batches; the fingerprint hashes the seven member files in order."""
    (source,) = found.files
    members = _read_members(source)
    hasher = hashlib.sha256()
    for name in MEMBERS:
        hasher.update(members[name][1])
    class_names = _class_names(*members.pop(META), defn.num_classes)
    splits = []
    for split, names, expected in (
        ("train", TRAIN_BATCHES, defn.counts[0]),
        ("test", (TEST_BATCH,), defn.counts[1]),
    ):
        batches = [_batch(*members.pop(name), defn.num_classes) for name in names]
        data = np.concatenate([b[0] for b in batches])
        if len(data) != expected:
            raise DataError(f"{source}: {len(data)} {split} images, expected {expected}")
        splits.append((to_rows(data), np.concatenate([b[1] for b in batches])))
    (train_x, train_y), (test_x, test_y) = splits
    return RawData(train_x, train_y, test_x, test_y, class_names, f"sha256:{hasher.hexdigest()}")


def _read_members(source: Path) -> dict[str, tuple[str, bytes]]:
    """``name -> (label for messages, content)`` for every member, from the folder or archive."""
    if source.is_dir():
        members = {}
        for name in MEMBERS:
            path = source / name
            try:
                members[name] = (str(path), path.read_bytes())
            except OSError as exc:
                raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        return members
    wanted = {f"{FOLDER}/{name}": name for name in MEMBERS}
    members = {}
    try:
        with tarfile.open(source, "r:gz") as tar:
            for info in tar:  # one pass: seeking back in a gzip stream would decompress again
                member = wanted.get(info.name)
                data = tar.extractfile(info) if member is not None and info.isfile() else None
                if member is not None and data is not None:
                    members[member] = (f"{source}:{info.name}", data.read())
    except EOFError:
        raise DataError(f"{source}: truncated archive (the compressed stream ends early)") from None
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataError(f"{source}: not a readable tar.gz archive ({exc})") from None
    missing = [f"{FOLDER}/{name}" for name in MEMBERS if name not in members]
    if missing:
        raise DataError(f"{source}: not the CIFAR-10 python archive (no {', '.join(missing)})")
    return members


def _class_names(label: str, content: bytes, num_classes: int) -> tuple[str, ...]:
    meta = _unpickle_dict(label, content, "batches.meta")
    names = meta.get("label_names")
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise DataError(f"{label}: not CIFAR-10 batches.meta (no list of label_names)")
    if len(names) != num_classes:
        raise DataError(f"{label}: {len(names)} label names, expected {num_classes}")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


def _batch(label: str, content: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle_dict(label, content, "batch")
    for key in ("data", "labels"):
        if key not in batch:
            raise DataError(f"{label}: not a CIFAR-10 batch (no {key!r} entry)")
    data = batch["data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == _PIXELS):
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{label}: 'data' is a {what}, expected a uint8 array of shape (N, {_PIXELS})")
    labels = np.asarray(batch["labels"])
    if labels.ndim != 1 or len(labels) != len(data) or (labels.size and labels.dtype.kind not in "iu"):
        raise DataError(f"{label}: 'labels' must be {len(data)} integers, one per image")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(
            f"{label}: label {int(labels[bad[0]])} at index {int(bad[0])} is out of range [0, {num_classes})"
        )
    return data, labels.astype(np.int64)


def _unpickle_dict(label: str, content: bytes, what: str) -> dict[str, Any]:
    """Unpickle a CIFAR dict (Python 2 pickles: latin-1), allowing only NumPy array globals."""
    try:
        obj = _SafeUnpickler(io.BytesIO(content), encoding="latin1").load()
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean the same here
        raise DataError(f"{label}: not a CIFAR-10 {what} pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{label}: not a CIFAR-10 {what} (a pickled {type(obj).__name__}, expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


_NUMPY_MODULES = {
    "numpy",
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
}
_NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and plain Python values, and refuses anything else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):  # how Python 3 writes bytes at protocol 2
            return codecs.encode
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            # Pickles name numpy.core (NumPy 1) or numpy._core (NumPy 2); use what is installed.
            for candidate in (module.replace("numpy.core", "numpy._core", 1), module):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except (ImportError, AttributeError):
                    continue
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
