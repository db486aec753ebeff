"""Pairs on a local Dask cluster (``--workers``): same records as the sequential run, a worker
killed mid-pair, resume; and what a worker does with a pair (plugins, data) without a cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

import dask_helpers
from test_schema import validators

from seqbench import results as res
from seqbench.executors.dask_executor import DaskExecutor
from seqbench.executors.worker import PairTask, PluginSource, WorkerInfo, run_task
from seqbench.plugins import load_plugins
from seqbench.progress import RunObserver
from seqbench.runner import RunRequest, run_benchmark

TOY = PluginSource(extra="dask_helpers:toy_plugins")
#: rnn-cpu tiny enough for a test; threads as the local cluster's workers get them on 2 cores.
RNN = {"rnn-cpu.hidden": "8", "rnn-cpu.epochs": "2", "rnn-cpu.batch_size": "64", "threads": "1"}


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=dask_helpers.toy_plugins())


def local(tmp_path: Path) -> DaskExecutor:
    return DaskExecutor(TOY, workers=2, data_dir=tmp_path, cores=2)


def outcome(record: dict) -> dict:
    """What a pair learnt, without its timings and where it ran."""
    history = [{k: v for k, v in e.items() if "seconds" not in k} for e in record.get("history") or []]
    return {"status": record["status"], "params": record.get("params"), "metrics": record.get("metrics"),
            "history": history, "best_epoch": record.get("best_epoch"), "dataset_info": record.get("dataset_info")}


@pytest.mark.slow
def test_a_local_cluster_of_two_processes_gives_the_sequential_records(registry, tmp_path):
    def request(name):
        return RunRequest(["logreg", "rnn-cpu"], ["toy"], [0, 1], tmp_path / name, tmp_path, overrides=RNN, plots=False)

    sequential = run_benchmark(registry, request("seq"))
    parallel = run_benchmark(registry, request("dask"), executor=local(tmp_path))

    assert [res.key_of(p) for p in parallel["pairs"]] == [res.key_of(p) for p in sequential["pairs"]]
    for seq, par in zip(sequential["pairs"], parallel["pairs"], strict=True):
        assert par["status"] == "ok" and par["params"]["threads" if par["model"] == "rnn-cpu" else "lr"]
        assert outcome(par) == outcome(seq)  # bit-identical: floats compared exactly
        assert par["worker"]["address"].startswith("tcp://127.0.0.1:") and par["worker"]["pid"] != os.getpid()
        assert "worker" not in seq
        stored = res.read_pairs(tmp_path / "dask")[res.key_of(par)]
        assert outcome(stored) == outcome(seq)
        assert np.array_equal(res.read_predictions(tmp_path / "dask", par), res.read_predictions(tmp_path / "seq", seq))
    session = parallel["sessions"][-1]
    assert session["executor"] == {"kind": "dask-local", "workers": 2, "cores": 2, "threads_per_worker": 1,
                                   "gpu_workers": []}
    assert session["wall_seconds"] > 0 and sequential["sessions"][-1]["executor"] == {"kind": "sequential"}
    assert res.load_results(tmp_path / "dask", strict=True)["pairs"] == parallel["pairs"]
    results_validator, pair_validator = validators()  # the worker, executor and wall time are documented
    results_validator.validate(json.loads((tmp_path / "dask" / "results.json").read_text()))
    for path in (tmp_path / "dask" / "pairs").glob("*.json"):
        pair_validator.validate(json.loads(path.read_text()))


@pytest.mark.slow
def test_a_killed_worker_retries_the_pair_once_then_fails_it_and_the_run_resumes(registry, tmp_path, monkeypatch):
    crash = tmp_path / "crash"
    crash.mkdir()
    monkeypatch.setenv(dask_helpers.CRASH_DIR, str(crash))
    monkeypatch.setenv(dask_helpers.SAFE_PID, str(os.getpid()))
    deaths = crash / "killer-0"
    out = tmp_path / "run"
    request = RunRequest(["logreg", "killer"], ["toy"], [0], out, tmp_path, plots=False)

    first = {p["model"]: p for p in run_benchmark(registry, request, executor=local(tmp_path))["pairs"]}

    assert first["logreg"]["status"] == "ok"
    killed = first["killer"]
    assert killed["status"] == "failed" and len(deaths.read_text().split()) == 2  # tried, retried once
    assert "the worker running it died (killed, or out of memory) on each of 2 attempt(s)" in killed["reason"]

    (crash / "budget").write_text("3")  # it dies once more, then trains
    resumed = run_benchmark(registry, RunRequest(**{**vars(request), "resume": True}), executor=local(tmp_path))

    again = {p["model"]: p for p in resumed["pairs"]}
    assert again["killer"]["status"] == "ok" and len(deaths.read_text().split()) == 3
    assert again["killer"]["worker"]["pid"] != int(deaths.read_text().split()[-1])  # another worker process
    assert again["logreg"] == first["logreg"]  # kept, not rerun
    assert [s["executor"]["kind"] for s in resumed["sessions"]] == ["dask-local", "dask-local"]
    assert res.load_results(out, strict=True)["pairs"] == resumed["pairs"]


@pytest.mark.slow
def test_ctrl_c_shuts_the_local_cluster_down_and_leaves_a_resumable_run(registry, tmp_path, monkeypatch):
    psutil = pytest.importorskip("psutil")
    monkeypatch.setenv(dask_helpers.CRASH_DIR, str(tmp_path))  # the sleeper waits for tmp_path/heal
    workers = []

    class CtrlC(RunObserver):
        def pair_end(self, record):  # logreg is done, the sleeper trains on the other worker
            workers.extend(p for p in psutil.Process().children(recursive=True)
                           if "resource_tracker" not in " ".join(p.cmdline()))  # multiprocessing's, lives on
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(registry, RunRequest(["logreg", "sleeper"], ["toy"], [0], out, tmp_path, plots=False),
                      CtrlC(), local(tmp_path))
    assert len(workers) >= 2
    assert psutil.wait_procs(workers, timeout=10)[1] == []  # closed, not left to the end of the process
    assert [json.loads(line)["event"] for line in (out / "events.jsonl").read_text().splitlines()][-1] == "interrupted"
    assert list(res.read_pairs(out)) == [("logreg", "toy", 0)]
    assert res.load_results(out, strict=True)["config"]["models"] == ["logreg", "sleeper"]


def task(model: str, tmp_path: Path, plugins: PluginSource = TOY, fingerprint: str = "sha256:toy0") -> PairTask:
    return PairTask(model, "toy", 0, fingerprint, RunRequest([model], ["toy"], [0], tmp_path, tmp_path), plugins)


WHERE = WorkerInfo("tcp://10.0.0.7:4000", "node7", 123)


def test_a_worker_trains_the_pair_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    record, files = run_task(task("logreg", tmp_path), WHERE)
    assert record["status"] == "ok" and record["dataset_info"]["fingerprint"] == "sha256:toy0"
    assert record["worker"] == {"address": "tcp://10.0.0.7:4000", "host": "node7", "pid": 123}
    assert (
        record["timing"]["epoch_seconds_median"] > 0 and files.predictions.shape[-1] == record["dataset_info"]["n_test"]
    )


def test_a_worker_refuses_a_pair_whose_data_differs_from_the_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    other = PluginSource(extra="dask_helpers:other_data_plugins")
    record, predictions = run_task(task("logreg", tmp_path, other), WHERE)
    assert record["status"] == "failed" and predictions is None and "history" not in record
    assert record["reason"] == ("dataset 'toy' on worker tcp://10.0.0.7:4000 (host node7) is sha256:toy1, but the run "
                                "loaded sha256:toy0: refused; give the workers the same data (--data-dir)")


def test_a_model_whose_plugin_is_missing_on_the_worker_fails_naming_both(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    record, _ = run_task(task("ghost", tmp_path), WHERE)
    assert record["status"] == "failed"
    assert record["reason"] == ("model 'ghost' is not registered on worker tcp://10.0.0.7:4000 (host node7): "
                                "install its plugin there")
    res.check_pair(record, "record")


def test_a_worker_sends_its_checkpoint_and_the_run_writes_it(registry, tmp_path):
    """Workers need no shared filesystem: a pair's checkpoint comes back with its record."""
    from seqbench import checkpoints
    from seqbench.protocol import predict_labels

    request = RunRequest(["logreg"], ["toy"], [0], tmp_path / "dask", tmp_path, plots=False, save_models=True)
    (pair,) = run_benchmark(registry, request, executor=DaskExecutor(TOY, workers=1, data_dir=tmp_path, cores=1))[
        "pairs"
    ]
    saved = checkpoints.read(checkpoints.checkpoint_dir(tmp_path / "dask", pair) / checkpoints.MANIFEST)
    assert pair["worker"]["pid"] != os.getpid() and saved.manifest["sha256"] == pair["checkpoint"]["sha256"]
    model = checkpoints.restore(saved, registry, saved.manifest["params"])
    _, predictions = res.read_predictions(tmp_path / "dask", pair)
    assert np.array_equal(predict_labels(model, dask_helpers.make_toy_dataset().test_x, 3, "toy")[1], predictions)
