"""seqbench-mlflow against the real MLflow: MLflow's own client reads what a run logged."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("seqbench_mlflow")

from mlflow.tracking import MlflowClient
from seqbench_mlflow import MlflowLogger

from seqbench.runner import RunRequest, run_benchmark
from seqbench.testing import PluginTester

SMALL = {"epochs": 3, "hidden": 8, "threads": 1}


@pytest.fixture(autouse=True)
def _no_tracking_env(monkeypatch, tmp_path):
    for var in ("MLFLOW_TRACKING_URI", "SEQBENCH_MLFLOW_TRACKING_URI", "SEQBENCH_MLFLOW_EXPERIMENT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def runs_of(client: MlflowClient, experiment: str = "seqbench") -> tuple:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_a_run_is_one_parent_with_a_nested_run_per_pair_and_the_recorded_values(tmp_path):
    tester = PluginTester(MlflowLogger(), tmp_path=tmp_path)
    record = tester.run_pair("rnn-cpu", overrides=SMALL)
    assert record["status"] == "ok", record["reason"]
    client = MlflowClient((tmp_path / "mlruns").as_uri())  # the default store: ./mlruns
    (parent,), (child,) = runs_of(client)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id and child.info.run_name == "rnn-cpu+tiny+seed0"
    assert parent.info.status == child.info.status == "FINISHED"
    for key in ("train_loss", "val_accuracy", "epoch_seconds"):
        history = client.get_metric_history(child.info.run_id, key)
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
               [(h["epoch"], h[key]) for h in record["history"]]
    assert child.data.metrics["accuracy"] == record["metrics"]["accuracy"]["accuracy"]
    assert child.data.metrics["per_class.macro.f1"] == record["metrics"]["per_class"]["macro"]["f1"]
    assert child.data.params["hidden"] == "8" and child.data.params["lr"] == str(record["params"]["lr"])
    assert child.data.tags["status"] == "ok"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "summary.md", "summary.csv", "results.json"} <= artifacts
    assert "per_class.json" in {a.path for a in client.list_artifacts(child.info.run_id)}
    assert parent.data.params["models"] == "rnn-cpu"


def test_the_tracking_uri_and_experiment_come_from_the_environment(monkeypatch, tmp_path):
    store = tmp_path / "elsewhere"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("SEQBENCH_MLFLOW_EXPERIMENT", "robustness")
    PluginTester(MlflowLogger(), tmp_path=tmp_path).run_pair("rnn-cpu", overrides=SMALL)
    assert not (tmp_path / "mlruns").exists()
    parents, children = runs_of(MlflowClient(store.as_uri()), "robustness")
    assert len(parents) == len(children) == 1


def test_a_resume_continues_the_same_parent_run(tmp_path):
    tester = PluginTester(MlflowLogger(), tmp_path=tmp_path)
    out = tmp_path / "run"
    request = RunRequest(
        ["rnn-cpu"],
        ["tiny"],
        [0, 1],
        out,
        tmp_path / "data",
        overrides={k: str(v) for k, v in SMALL.items()},
        download=False,
        plots=False,
    )
    run_benchmark(tester.registry, request)
    (out / "pairs" / "rnn-cpu+tiny+seed1.json").unlink()  # seed 1 was training when the run was killed
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    _, children = runs_of(client)
    client.update_run(next(c for c in children if c.info.run_name.endswith("seed1")).info.run_id, status="RUNNING")
    run_benchmark(tester.registry, RunRequest(**{**request.__dict__, "resume": True}))
    parents, children = runs_of(client)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    status = sorted((c.info.run_name, c.info.status) for c in children)
    assert status == [
        ("rnn-cpu+tiny+seed0", "FINISHED"),
        ("rnn-cpu+tiny+seed1", "FINISHED"),
        ("rnn-cpu+tiny+seed1", "KILLED"),
    ]
    again = next(c for c in children if c.info.run_name.endswith("seed1") and c.info.status == "FINISHED")
    assert len(client.get_metric_history(again.info.run_id, "val_accuracy")) == 3
