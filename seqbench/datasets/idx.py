"""Reading and validating IDX files (the MNIST format), gzip-compressed or not."""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from seqbench.datasets.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
_GZIP_MAGIC = b"\x1f\x8b"


def read_content(path: Path) -> bytes:
    """The content of ``path``, decompressed when its name ends in ``.gz``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix != ".gz":
        if raw[:2] == _GZIP_MAGIC:
            raise DataError(f"{path}: is gzip-compressed but its name lacks the .gz suffix")
        return raw
    if raw[:2] != _GZIP_MAGIC:
        raise DataError(f"{path}: not a gzip file")
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (the compressed stream ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip file ({exc})") from None


def parse(content: bytes, path: Path, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file's ``content``, checking its magic number and length."""
    if len(content) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(content)} bytes)")
    found = int.from_bytes(content[:4], "big")
    if found != magic:
        if found in _KIND:
            raise DataError(
                f"{path}: is an IDX {_KIND[found]} file (magic {found}), "
                f"expected {_KIND[magic]} (magic {magic})"
            )
        raise DataError(f"{path}: bad magic number {found:#010x}, expected {magic} (IDX {_KIND[magic]})")
    ndim = content[3]
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)
    body = len(content) - header
    if body < size:
        raise DataError(f"{path}: truncated: its header announces {size} data bytes {dims}, only {body} follow")
    if body > size:
        raise DataError(f"{path}: {body - size} unexpected bytes after the data {dims}")
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def read_split(
    images: Path, labels: Path, shape: tuple[int, int], num_classes: int, hasher: hashlib._Hash
) -> tuple[np.ndarray, np.ndarray]:
    """One split: ``(N, rows, cols)`` uint8 images and ``(N,)`` int64 labels, validated.

    The decompressed content of both files (images first) is fed to ``hasher``.
    """
    content = read_content(images)
    hasher.update(content)
    x = parse(content, images, IMAGES_MAGIC)
    if x.shape[1:] != shape:
        raise DataError(
            f"{images}: images are {x.shape[1]}x{x.shape[2]} pixels, expected {shape[0]}x{shape[1]}"
        )
    content = read_content(labels)
    hasher.update(content)
    y = parse(content, labels, LABELS_MAGIC)
    if len(y) != len(x):
        raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    bad = np.flatnonzero(y >= num_classes)
    if bad.size:
        raise DataError(
            f"{labels}: label {int(y[bad[0]])} at index {int(bad[0])} is out of range [0, {num_classes})"
        )
    return x, y.astype(np.int64)
