"""``seqbench run --scheduler`` against a real ``dask scheduler`` and ``dask worker`` started as
subprocesses on 127.0.0.1; an unreachable scheduler; Dask never imported by a plain run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")

from dask_helpers import CRASH_DIR, installed_env, seqbench_command

from seqbench.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the scheduler exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@pytest.fixture
def cluster(tmp_path):
    """A ``dask scheduler`` and one single-threaded ``dask worker`` that has the demo plugin but not
    the ghost one; yields (scheduler address, worker environment); both stopped afterwards."""
    port = free_port()
    worker_env = installed_env(tmp_path / "site", ghost=False)
    log = (tmp_path / "cluster.log").open("w")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", "127.0.0.1:0"], stdout=log, stderr=log)]
    try:
        wait_listening(port, procs[0])
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                       "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                                      env=worker_env, stdout=log, stderr=log))
        yield f"tcp://127.0.0.1:{port}"
    finally:
        for proc in procs:
            proc.kill()  # a graceful close takes seconds; nothing here needs one
            proc.wait()
        log.close()


@pytest.mark.slow
def test_run_on_an_existing_cluster_with_scheduler(cluster, tmp_path):
    out = tmp_path / "run"
    env = installed_env(tmp_path / "site")
    proc = subprocess.run(seqbench_command("run", "-m", "logreg", "-m", "ghost", "-d", "toy", "--seeds", "0,1",
                                           "--scheduler", cluster, "--out", str(out), "--no-plots", "--format", "json"),
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stderr  # the ghost pairs failed
    assert f"training on the Dask cluster at {cluster}" in proc.stderr
    results = json.loads((out / "results.json").read_text())
    pairs = {(p["model"], p["seed"]): p for p in results["pairs"]}
    assert [(p["model"], p["seed"]) for p in results["pairs"]] == [
        ("logreg", 0),
        ("logreg", 1),
        ("ghost", 0),
        ("ghost", 1),
    ]
    for seed in (0, 1):
        ok = pairs[("logreg", seed)]
        assert ok["status"] == "ok" and ok["worker"]["address"].startswith("tcp://127.0.0.1:")
        assert ok["timing"]["epoch_seconds_median"] > 0
        ghost = pairs[("ghost", seed)]
        assert ghost["status"] == "failed"
        assert ghost["reason"] == (f"model 'ghost' is not registered on worker {ok['worker']['address']} "
                                   f"(host {ok['worker']['host']}): install its plugin there")
    assert results["sessions"][-1]["executor"] == {"kind": "dask", "scheduler": cluster}
    assert "on worker tcp://127.0.0.1:" in proc.stderr  # progress names the worker


def test_an_unreachable_scheduler_is_one_error_line(tmp_path, monkeypatch, toy_registry):
    from seqbench.executors import dask_executor

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", "-m", "logreg", "-d", "toy", "--scheduler", address,
                                       "--out", str(tmp_path / "r"), "--no-plots"], obj={"registry": toy_registry})
    assert time.monotonic() - started < 20
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert errors[0].startswith(f"Error: cannot reach the Dask scheduler at {address}: ")
    assert (tmp_path / "r" / "results.json").exists()  # resumable with --resume, like any stopped run


def test_a_malformed_scheduler_address_is_refused_before_the_run_starts(toy_registry, tmp_path):
    result = CliRunner().invoke(main, ["run", "-m", "logreg", "-d", "toy", "--scheduler", "host:port",
                                       "--out", str(tmp_path / "r")], obj={"registry": toy_registry})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        "Error: --scheduler host:port: not a Dask scheduler address (invalid literal "
        "for int() with base 10: 'port'); give one such as tcp://host:8786"
    )
    assert not (tmp_path / "r").exists()


def test_workers_and_scheduler_together_are_refused(toy_registry, tmp_path):
    result = CliRunner().invoke(main, ["run", "-m", "logreg", "--workers", "2", "--scheduler", "tcp://h:8786"],
                                obj={"registry": toy_registry})
    assert result.exit_code == 2 and "give one of them" in result.output


def test_a_plain_run_imports_nothing_of_dask(tmp_path):
    code = ("import sys\nfrom seqbench.cli import main\ntry:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "-m", "logreg", "-d", "toy", "--out", str(tmp_path / "r"), "--no-plots"],
        env=installed_env(tmp_path / "site"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.splitlines()[-1] == "0 []", proc.stderr


@pytest.mark.slow
def test_sigterm_stops_the_local_cluster_and_leaves_a_resumable_run(tmp_path):
    psutil = pytest.importorskip("psutil")
    crash = tmp_path / "crash"
    crash.mkdir()
    env = {**installed_env(tmp_path / "site"), CRASH_DIR: str(crash)}
    out = tmp_path / "run"
    proc = subprocess.Popen(seqbench_command("run", "-m", "logreg", "-m", "sleeper", "-d", "toy", "--workers", "2",
                                             "--out", str(out), "--no-plots"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (out / "pairs" / "logreg+toy+seed0.json").exists():  # the sleeper trains meanwhile
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr.read() if proc.poll() else "too slow"
            )
            time.sleep(0.2)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2  # the workers (and their nannies' helpers)
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + 15, err
    assert f"terminated; finished pairs are in {out}; continue with --resume {out}" in err
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []  # no worker left training

    (crash / "heal").touch()  # resumed in this process (test_dask_executor resumes on a cluster)
    resumed = subprocess.run(seqbench_command("run", "--resume", str(out), "--no-plots"),
                             env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 pair(s) to run (1 finished before)" in resumed.stderr
    results = json.loads((out / "results.json").read_text())
    assert [(p["model"], p["status"]) for p in results["pairs"]] == [("logreg", "ok"), ("sleeper", "ok")]
