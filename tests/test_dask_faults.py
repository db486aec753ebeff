"""``--scheduler`` against hostile servers on 127.0.0.1 (issue 26, item 11): one that accepts and
never answers, one that answers garbage, a real ``dask scheduler`` killed mid-run, a cluster
without workers; ``--scheduler ''``. Each test failed (or hung) on the code before the fix."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")

from dask_helpers import CRASH_DIR, installed_env, seqbench_command
from test_dask_cli import free_port, wait_listening

from seqbench.cli import main


@contextlib.contextmanager
def server(answer: bytes | None):
    """A TCP server on 127.0.0.1 that accepts connections and sends ``answer`` (None: nothing, ever)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    conns = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            if answer is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for conn in conns:
            conn.close()


def run(registry, tmp_path, address):
    return CliRunner().invoke(main, ["run", "-m", "logreg", "-d", "toy", "--scheduler", address,
                                     "--out", str(tmp_path / "r"), "--no-plots"], obj={"registry": registry})


def one_error(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output and "Exception ignored" not in result.output, \
        result.output
    return errors[0]


@pytest.mark.slow
def test_a_scheduler_that_never_answers_times_out(monkeypatch, toy_registry, tmp_path):
    from seqbench.executors import dask_executor

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", 2.0)
    with server(None) as address:
        started = time.monotonic()
        result = run(toy_registry, tmp_path, address)
        assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert one_error(result) == f"Error: cannot reach the Dask scheduler at {address}: no answer in 2 s"


def test_a_server_answering_garbage_is_one_clear_line(toy_registry, tmp_path):
    with server(b"\xff" * 64 + b"HTTP/1.1 200 OK\r\n\r\n" * 20) as address:
        started = time.monotonic()
        result = run(toy_registry, tmp_path, address)
        assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert one_error(result).startswith(f"Error: {address} does not answer as a Dask scheduler (")
    assert "EiB" not in result.output


def test_a_refused_connection_says_so_at_once_without_claiming_a_wait(toy_registry, tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run(toy_registry, tmp_path, address)
    assert time.monotonic() - started < 10
    error = one_error(result)
    assert error.startswith(f"Error: cannot reach the Dask scheduler at {address}: ") and "waited" not in error


def test_an_empty_scheduler_address_is_refused(toy_registry, tmp_path):
    result = run(toy_registry, tmp_path, "")
    assert result.exit_code == 2 and "--scheduler" in result.output and "give an address" in result.output
    assert not (tmp_path / "r").exists()


def _scheduler(tmp_path):
    port = free_port()
    log = (tmp_path / "scheduler.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", str(port), "--dashboard-address", "127.0.0.1:0"], stdout=log, stderr=log)
    wait_listening(port, proc)
    return proc, f"tcp://127.0.0.1:{port}"


@pytest.mark.slow
def test_a_cluster_without_workers_is_said_once_while_waiting(tmp_path):
    proc, address = _scheduler(tmp_path)
    try:
        env = installed_env(tmp_path / "site")
        run_proc = subprocess.Popen(seqbench_command("run", "-m", "logreg", "-d", "toy", "--scheduler", address,
                                                     "--out", str(tmp_path / "r"), "--no-plots"),
                                    env=env, stderr=subprocess.PIPE, text=True)
        time.sleep(12)
        run_proc.terminate()
        _, stderr = run_proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert stderr.count(f"the Dask cluster at {address} has no worker yet: waiting for one to join") == 1, stderr


@pytest.mark.slow
def test_a_scheduler_killed_mid_run_is_a_clear_error_with_the_resume_hint(tmp_path):
    proc, address = _scheduler(tmp_path)
    env = installed_env(tmp_path / "site", ghost=False)
    env[CRASH_DIR] = str(tmp_path)  # the sleeper waits for a 'heal' file that never comes
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                               "--host", "127.0.0.1", "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "r"
    try:
        run_proc = subprocess.Popen(seqbench_command("run", "-m", "logreg", "-m", "sleeper", "-d", "toy",
                                                     "--scheduler", address, "--out", str(out), "--no-plots"),
                                    env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while not (out / "pairs" / "logreg+toy+seed0.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        proc.kill()
        _, stderr = run_proc.communicate(timeout=120)
    finally:
        for p in (proc, worker):
            p.kill()
            p.wait()
    assert run_proc.returncode == 1, stderr
    assert "KeyError" not in stderr and "Traceback" not in stderr, stderr
    assert f"lost the Dask scheduler at {address}" in stderr and f"--resume {out}" in stderr, stderr
