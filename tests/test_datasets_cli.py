"""``seqbench data info`` and ``seqbench data fetch``."""

from __future__ import annotations

import gzip
import json
import socket

import pytest
from click.testing import CliRunner
from datasets_helpers import IDX_FILES, N_TEST, N_TRAIN, http_server, idx_fingerprint, md5, use_small, write_mnist

from seqbench.cli import main
from seqbench.cli.data import data
from seqbench.datasets.base import Resource, Source


@pytest.fixture(autouse=True)
def small(monkeypatch):
    use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST))
    use_small(monkeypatch, "fashion-mnist", (N_TRAIN, N_TEST), system_dirs=())
    monkeypatch.delenv("SEQBENCH_DATA_DIR", raising=False)


def _run(*args):
    return CliRunner().invoke(main, ["data", *args])


def test_info_json(tmp_path):
    contents = write_mnist(tmp_path / "mnist")
    (tmp_path / "fashion-mnist").mkdir()
    (tmp_path / "fashion-mnist" / IDX_FILES[0]).write_bytes(b"junk")
    result = _run("info", "--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["data_dir"] == str(tmp_path)
    by_name = {d["name"]: d for d in info["datasets"]}
    assert by_name["mnist"]["status"] == "ok"
    assert by_name["mnist"]["fingerprint"] == idx_fingerprint(contents)
    assert by_name["mnist"]["train_shape"] == [N_TRAIN, 28, 28]
    assert by_name["mnist"]["plugin"] == "datasets"
    assert by_name["fashion-mnist"]["status"] == "missing"
    assert by_name["fashion-mnist"]["missing"] == list(IDX_FILES[1:])
    assert by_name["cifar10"]["status"] == "missing"


def test_info_table_uses_the_environment_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQBENCH_DATA_DIR", str(tmp_path))
    write_mnist(tmp_path / "mnist")
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(b"not an archive")
    result = _run("info")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"data dir: {tmp_path}"
    mnist = next(line for line in lines if line.startswith("mnist "))
    assert "ok" in mnist and f"{N_TRAIN}x28x28" in mnist and "sha256:" in mnist
    assert any(
        line.startswith("fashion-mnist: missing ") and "seqbench data fetch fashion-mnist" in line for line in lines
    )
    assert f"cifar10: {tmp_path / 'cifar10' / 'cifar-10-python.tar.gz'}: not a readable tar.gz archive" in result.output
    assert "corrupt" in next(line for line in lines if line.startswith("cifar10 "))


def test_the_group_works_without_the_main_context(tmp_path):
    result = CliRunner().invoke(data, ["info", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output


def test_fetch_downloads_and_reports(tmp_path, monkeypatch):
    write_mnist(tmp_path / "served")
    with http_server() as server:
        resources = []
        for name in IDX_FILES:
            body = (tmp_path / "served" / name).read_bytes()
            server.routes[f"/{name}"] = body
            resources.append(Resource(name, (Source(f"{server.url}/{name}", f"md5:{md5(body)}"),)))
        use_small(monkeypatch, "mnist", (N_TRAIN, N_TEST), resources=tuple(resources))
        result = _run("fetch", "mnist", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    contents = {n: gzip.decompress((tmp_path / "served" / n).read_bytes()) for n in IDX_FILES}
    assert f"mnist: ok in {tmp_path / 'data' / 'mnist'} ({idx_fingerprint(contents)})" in result.output


def test_fetch_offline_is_one_line_without_traceback(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    result = _run("fetch", "mnist", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: dataset 'mnist' is not available")


def test_fetch_all_continues_past_failures(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    write_mnist(tmp_path / "mnist")
    result = _run("fetch", "all", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "mnist: ok in" in result.output
    assert "Error: could not fetch fashion-mnist, cifar10" in result.output


def test_fetch_unknown_dataset(tmp_path):
    result = _run("fetch", "imagenet", "--data-dir", str(tmp_path))
    assert result.exit_code != 0
    assert "unknown dataset 'imagenet'; choose from mnist, fashion-mnist, cifar10 or all" in result.output
