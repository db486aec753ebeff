"""The runner's side of an executor (what ``--workers``/``--scheduler`` rely on), with an
in-process executor that finishes the pairs in reverse: records land in the plan's order."""

from __future__ import annotations

from seqbench import results as res
from seqbench.executors import Matrix
from seqbench.runner import RunRequest, run_benchmark


class Reversed:
    """Trains every pair in this process, the last first, as a parallel executor may finish them."""

    def describe(self):
        return {"kind": "reversed"}

    def run(self, matrix: Matrix) -> None:
        for job, dataset in reversed(list(matrix.jobs)):
            matrix.observer.pair_start(job.index, job.total, *job.pair.key)
            matrix.received(job, *matrix.run_here(job, dataset))


def test_records_finishing_out_of_order_are_listed_in_the_plans_order(toy_registry, tmp_path):
    request = RunRequest(["logreg", "rnn-cpu"], ["toy"], [0, 1], tmp_path / "r", tmp_path, plots=False,
                         overrides={"rnn-cpu.hidden": "4", "rnn-cpu.epochs": "1"})
    results = run_benchmark(toy_registry, request, executor=Reversed())

    plan = [("logreg", "toy", 0), ("logreg", "toy", 1), ("rnn-cpu", "toy", 0), ("rnn-cpu", "toy", 1)]
    assert [res.key_of(p) for p in results["pairs"]] == plan
    stored = res.load_results(tmp_path / "r", strict=True)
    assert [res.key_of(p) for p in stored["pairs"]] == plan and all(p["status"] == "ok" for p in stored["pairs"])
    assert sorted(res.read_pairs(tmp_path / "r")) == sorted(plan)
    started = [p["started"] for p in results["pairs"]]
    assert started == sorted(started, reverse=True)  # they did finish last first
    assert stored["sessions"][-1]["executor"] == {"kind": "reversed"} and stored["sessions"][-1]["wall_seconds"] > 0
