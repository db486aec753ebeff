"""Verified downloads from a local HTTP server: mirror fall-through, retries, offline behaviour."""

from __future__ import annotations

import gzip
import hashlib
import socket
import time

import pytest
from datasets_helpers import (
    IDX_FILES,
    N_TEST,
    N_TRAIN,
    http_server,
    idx_bytes,
    idx_fingerprint,
    md5,
    mnist_arrays,
    use_small,
)

from seqbench.datasets import loader
from seqbench.datasets.base import Resource, Source
from seqbench.datasets.download import DownloadError, download
from seqbench.types import DatasetUnavailable, LoadContext

GOOD = b"the real archive" * 1000
BAD = b"an html error page" * 10


@pytest.fixture
def server():
    with http_server() as s:
        yield s


GOOD_CHECKSUM = f"md5:{md5(GOOD)}"


def _resource(server, *paths, checksum=GOOD_CHECKSUM):
    return Resource("file.gz", tuple(Source(server.url + p, checksum) for p in paths))


def _quick(resource, directory, **kw):
    return download(resource, directory, progress=False, backoff=0, **kw)


def test_bad_first_mirror_falls_through_to_the_good_second(server, tmp_path):
    server.routes = {"/m1/file.gz": BAD, "/m2/file.gz": GOOD}
    path = _quick(_resource(server, "/m1/file.gz", "/m2/file.gz"), tmp_path)
    assert path == tmp_path / "file.gz" and path.read_bytes() == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["file.gz"]
    assert server.hits == {"/m1/file.gz": 1, "/m2/file.gz": 1}  # a checksum mismatch is not retried


def test_sha256_checksums_are_verified(server, tmp_path):
    server.routes = {"/f": GOOD}
    resource = _resource(server, "/f", checksum=f"sha256:{hashlib.sha256(GOOD).hexdigest()}")
    assert _quick(resource, tmp_path).read_bytes() == GOOD


def test_all_mirrors_bad_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    server.routes = {"/m1/file.gz": BAD}
    target = tmp_path / "data" / "mnist"
    with pytest.raises(DownloadError) as err:
        _quick(_resource(server, "/m1/file.gz", "/m2/file.gz"), target)
    msg = str(err.value)
    assert msg.startswith("could not download file.gz: ")
    assert f"{server.url}/m1/file.gz: checksum mismatch: expected md5 {md5(GOOD)}, got {md5(BAD)}" in msg
    assert f"{server.url}/m2/file.gz: HTTP 404 Not Found" in msg
    assert list(tmp_path.iterdir()) == []  # the directories it created are gone too


def test_existing_directory_is_kept_with_nothing_added(server, tmp_path):
    (tmp_path / "other").write_text("keep me")
    with pytest.raises(DownloadError):
        _quick(_resource(server, "/nowhere"), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["other"]


def test_broken_transfer_is_retried_then_falls_through(server, tmp_path):
    server.routes = {"/m1/f": (200, GOOD[:100], len(GOOD)), "/m2/f": GOOD}
    path = _quick(_resource(server, "/m1/f", "/m2/f"), tmp_path, retries=2)
    assert path.read_bytes() == GOOD
    assert server.hits["/m1/f"] == 3  # the first try and two retries


def test_server_errors_are_retried_a_bounded_number_of_times(server, tmp_path):
    server.routes = {"/f": (503, b"busy", None)}
    with pytest.raises(DownloadError, match="HTTP 503"):
        _quick(_resource(server, "/f"), tmp_path, retries=1)
    assert server.hits["/f"] == 2
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_fails_fast(tmp_path, monkeypatch):
    """Refused is not worth a retry: no backoff sleep at all (the retries would wait 1 + 2 s)."""
    import seqbench.datasets.download as download_module

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    resource = Resource("f", (Source(f"http://127.0.0.1:{port}/f", "md5:0"),))
    sleeps: list[float] = []
    monkeypatch.setattr(download_module.time, "sleep", sleeps.append)
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:\d+/f: connection refused$"):
        download(resource, tmp_path, progress=False)
    assert sleeps == []  # one attempt, no backoff
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_goes_to_stderr(server, tmp_path, capsys):
    server.routes = {"/f": GOOD}
    download(_resource(server, "/f"), tmp_path, backoff=0)
    captured = capsys.readouterr()
    assert captured.out == "" and "file.gz from 127.0.0.1" in captured.err


def _serve_mnist(server, monkeypatch, prefix="/mnist/"):
    """Serve synthetic MNIST files and point the catalog's mnist at a bad mirror, then this one."""
    contents = {name: idx_bytes(a) for name, a in mnist_arrays().items()}
    files = {name: gzip.compress(c, mtime=0) for name, c in contents.items()}
    server.routes = {prefix + name: data for name, data in files.items()}
    server.routes.update({"/bad/" + name: BAD for name in files})
    resources = tuple(
        Resource(name, (Source(f"{server.url}/bad/{name}", f"md5:{md5(data)}"),
                        Source(f"{server.url}{prefix}{name}", f"md5:{md5(data)}")))
        for name, data in files.items()
    )  # fmt: skip
    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST), resources=resources)
    return contents


def test_load_downloads_missing_files_then_loads(server, monkeypatch, tmp_path):
    contents = _serve_mnist(server, monkeypatch)
    ds = loader.load("mnist", LoadContext(tmp_path, download=True))
    assert ds.fingerprint == idx_fingerprint(contents)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(IDX_FILES)


def test_load_downloads_only_what_is_missing(server, monkeypatch, tmp_path):
    contents = _serve_mnist(server, monkeypatch)
    d = tmp_path / "mnist"
    d.mkdir()
    (d / IDX_FILES[0][:-3]).write_bytes(contents[IDX_FILES[0]])  # placed by hand, uncompressed
    loader.load("mnist", LoadContext(tmp_path, download=True))
    assert f"/mnist/{IDX_FILES[0]}" not in server.hits
    assert server.hits[f"/mnist/{IDX_FILES[1]}"] == 1


def test_offline_load_fails_fast_with_the_one_clear_message(monkeypatch, tmp_path):
    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST))

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.monotonic()
    with pytest.raises(DatasetUnavailable) as err:
        loader.load("mnist", LoadContext(tmp_path, download=True))
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert msg.startswith(
        f"dataset 'mnist' is not available: {', '.join(IDX_FILES)} missing from {tmp_path / 'mnist'}/"
    )
    assert "cannot resolve host ossci-datasets.s3.amazonaws.com (no network?)" in msg
    assert "cannot resolve host storage.googleapis.com (no network?)" in msg
    assert (
        "Download them by hand from https://ossci-datasets.s3.amazonaws.com/mnist/ or "
        f"https://storage.googleapis.com/cvdf-datasets/mnist/ into {tmp_path / 'mnist'}/" in msg
    )
    assert "\n" not in msg
    assert not (tmp_path / "mnist").exists()


def test_fetch_reports_what_stayed_missing(server, monkeypatch, tmp_path):
    _serve_mnist(server, monkeypatch)
    del server.routes[f"/mnist/{IDX_FILES[2]}"]
    with pytest.raises(DatasetUnavailable) as err:
        loader.fetch("mnist", LoadContext(tmp_path, download=True))
    msg = str(err.value)
    assert f": {IDX_FILES[2]}, {IDX_FILES[3]} missing from" in msg
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(IDX_FILES[:2])


def test_downloaded_files_get_the_umask_permissions(server, tmp_path):
    import os

    server.routes = {"/f": GOOD}
    old = os.umask(0o022)
    try:
        path = _quick(_resource(server, "/f"), tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # a shared data cache can read it (mkstemp gave 0600)
