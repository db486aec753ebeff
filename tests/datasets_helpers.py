"""Helpers for the dataset tests: synthetic IDX and CIFAR files, a local HTTP server."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from seqbench.datasets import catalog

IDX_FILES = catalog.IDX_FILES
N_TRAIN, N_TEST = 50, 20
CIFAR_PER_BATCH = 4
CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file holding the uint8 ``array`` (magic 2051 for 3-d, 2049 for 1-d unless given)."""
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def mnist_arrays(n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = 0) -> dict[str, np.ndarray]:
    """Random 28x28 images and cycling labels, keyed by the IDX file names."""
    rng = np.random.default_rng(seed)
    return {
        IDX_FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX_FILES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        IDX_FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX_FILES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_mnist(directory: Path, compressed: bool = True, seed: int = 0) -> dict[str, bytes]:
    """Write the four synthetic IDX files; return their uncompressed contents by name."""
    directory.mkdir(parents=True, exist_ok=True)
    contents = {name: idx_bytes(a) for name, a in mnist_arrays(seed=seed).items()}
    for name, content in contents.items():
        if compressed:
            (directory / name).write_bytes(gzip.compress(content, mtime=0))
        else:
            (directory / name[:-3]).write_bytes(content)
    return contents


def idx_fingerprint(contents: dict[str, bytes]) -> str:
    return "sha256:" + hashlib.sha256(b"".join(contents[n] for n in IDX_FILES)).hexdigest()


def use_small(monkeypatch, name: str, counts: tuple[int, int], **changes) -> None:
    """Make the catalog expect ``counts`` (and any other changes) for dataset ``name``."""
    monkeypatch.setitem(catalog.DATASETS, name, replace(catalog.DATASETS[name], counts=counts, **changes))


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the real CIFAR-10 pickles were written."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def py2_pickle(obj: object) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_members(per_batch: int = CIFAR_PER_BATCH, seed: int = 0) -> dict[str, bytes]:
    """Pickled CIFAR-10 batches laid out like the real ones (Python 2 pickles, ``str`` keys)."""
    rng = np.random.default_rng(seed)
    members = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in (np.arange(per_batch) + i) % 10],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img{j}.png".encode() for j in range(per_batch)],
        }
        members[name] = py2_pickle(batch)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
    members["batches.meta"] = py2_pickle(meta)
    return members


def write_cifar_folder(directory: Path, members: dict[str, bytes]) -> Path:
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in members.items():
        (folder / name).write_bytes(content)
    return folder


def cifar_archive_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def write_cifar_archive(directory: Path, members: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cifar-10-python.tar.gz"
    path.write_bytes(cifar_archive_bytes(members))
    return path


class Server:
    """What the local HTTP server serves: ``routes[path] = body`` or ``(status, body, length)``.

    ``length`` overrides the Content-Length header (a larger one simulates a broken transfer).
    ``hits[path]`` counts requests.
    """

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.hits: dict[str, int] = {}
        self.url = ""


@contextlib.contextmanager
def http_server() -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 serving ``Server.routes``; unknown paths get 404."""
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            status, body, length = route if isinstance(route, tuple) else (200, route, None)
            self.send_response(status)
            self.send_header("Content-Length", str(length if length is not None else len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
