"""How a local cluster shares the machine (threads, GPUs) and which workers a pair may use:
the logic, with fake GPUs and fake clusters (no Dask needed)."""

from __future__ import annotations

from seqbench.executors.resources import (
    THREAD_VARIABLES,
    capacity,
    is_gpu_pair,
    local_workers,
    pair_class,
    pair_resources,
    split_threads,
    threads_per_worker,
    visible_gpus,
)
from seqbench.progress import PlannedPair
from seqbench.runner import RunRequest, plan_run


def test_workers_share_the_cores_without_oversubscribing():
    assert [threads_per_worker(n, 16) for n in (1, 2, 3, 4, 16, 32)] == [16, 8, 5, 4, 1, 1]
    assert threads_per_worker(2, 2) == 1


def test_each_gpu_worker_sees_one_gpu_and_cpu_workers_none():
    specs = local_workers(2, 8, ["0", "3"])
    assert [s.name for s in specs] == ["cpu-0", "cpu-1", "gpu-0", "gpu-3"]
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in specs] == ["", "", "0", "3"]
    assert [dict(s.resources) for s in specs] == [{"cpu": 1}, {"cpu": 1}, {"gpu": 1}, {"gpu": 1}]
    assert [s.env[v] for s in specs for v in THREAD_VARIABLES] == ["4"] * 6 + ["1"] * 6
    assert [s.name for s in local_workers(3, 2, [])] == ["cpu-0", "cpu-1", "cpu-2"]


def test_gpu_and_cpu_pairs_go_to_their_own_workers_where_the_cluster_has_gpus():
    gpu = PlannedPair("gru-gpu", "mnist", 0)
    torch_cuda = PlannedPair("torch-gru", "mnist", 0, params={"device": "cuda:1"})
    cpu = PlannedPair("gru-cpu", "mnist", 0, params={"device": None})
    assert [is_gpu_pair(p) for p in (gpu, torch_cuda, cpu)] == [True, True, False]
    assert pair_resources(True, {"cpu", "gpu"}) == {"gpu": 1} and pair_resources(False, {"cpu", "gpu"}) == {"cpu": 1}
    assert pair_resources(False, {"gpu"}) is None
    assert pair_resources(True, {"cpu"}) is None and pair_resources(True, set()) is None  # no GPU worker: any worker
    assert [pair_class(True, {"gpu"}), pair_class(True, set()), pair_class(False, {"gpu"})] == ["gpu", "cpu", "cpu"]


def test_capacity_counts_the_pairs_each_kind_of_worker_trains_at_once():
    mixed = {"a": {"nthreads": 1, "resources": {"cpu": 1}}, "b": {"nthreads": 1, "resources": {"cpu": 1}},
             "g0": {"nthreads": 1, "resources": {"gpu": 1}}}
    assert capacity(mixed) == {"cpu": 2, "gpu": 1}
    plain = {"a": {"nthreads": 2, "resources": {}}, "b": {"nthreads": 1}}
    assert capacity(plain) == {"cpu": 3, "gpu": 1}
    undeclared_cpu = {"a": {"nthreads": 4, "resources": {}}, "g": {"nthreads": 1, "resources": {"gpu": 2}}}
    assert capacity(undeclared_cpu) == {"cpu": 4, "gpu": 2}
    assert capacity({}) == {"cpu": 1, "gpu": 1}  # a batch system's workers yet to come


def test_visible_gpus_honour_cuda_visible_devices_before_asking_nvidia_smi():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,5"}, query=lambda: ["0"]) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, query=lambda: ["0"]) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, query=lambda: ["0"]) == []
    assert visible_gpus({}, query=lambda: ["0", "1"]) == ["0", "1"]


def test_split_threads_sets_threads_for_the_models_that_take_it_unless_given(toy_registry, tmp_path):
    def request(models, overrides=None):
        return RunRequest(models, ["toy"], [0], tmp_path, tmp_path, overrides=overrides or {})

    split = split_threads(toy_registry, request(["rnn-cpu", "logreg"]), 1)
    assert split.overrides == {"threads": "1"}
    assert {p.model: p.params.get("threads") for p in plan_run(toy_registry, split).pairs} == {
        "rnn-cpu": 1,
        "logreg": None,
    }
    assert split_threads(toy_registry, request(["logreg"]), 1).overrides == {}  # nothing takes threads
    assert split_threads(toy_registry, request(["rnn-cpu"], {"rnn-cpu.threads": "2"}), 1).overrides == {
        "rnn-cpu.threads": "2"
    }
