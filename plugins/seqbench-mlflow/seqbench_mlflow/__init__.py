"""seqbench-mlflow: a seqbench run as MLflow runs, through seqbench's logger hooks.

One parent MLflow run per seqbench run (a ``--resume`` continues it; a pair it trains again gets
a new nested run, the killed one is marked ``KILLED``), and one nested run per
model x dataset x seed with its hyperparameters as params, ``train_loss``, ``val_accuracy`` and
``epoch_seconds`` per epoch (step = epoch), every scalar test metric and timing at its end, and
its per-class table as ``per_class.json``. At the end the run's ``report.html``, ``summary.md``,
``summary.csv`` and ``results.json`` are artifacts of the parent.

Where: ``$SEQBENCH_MLFLOW_TRACKING_URI``, else ``$MLFLOW_TRACKING_URI``, else the file store
``./mlruns`` (``mlflow ui --backend-store-uri ./mlruns`` shows it); experiment
``$SEQBENCH_MLFLOW_EXPERIMENT`` (default ``seqbench``). mlflow is imported when a run starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seqbench import hookimpl
from seqbench.metrics import is_number, scalars

#: The tracking store when no URI is given.
DEFAULT_STORE = "mlruns"
#: Tags that find a seqbench run's MLflow runs again (on --resume).
RUN_DIR_TAG, PAIR_TAG = "seqbench.run_dir", "seqbench.pair"
#: The parent run's tag: run directory and this.
ROLE_TAG = "seqbench.role"
#: Files of the run directory logged as artifacts of the parent run, when they exist.
ARTIFACTS = ("report.html", "summary.md", "summary.csv", "results.json")
#: MLflow's limit on a param value's length.
PARAM_CHARS = 6000
_STATUS = {"ok": "FINISHED", "diverged": "FINISHED", "skipped": "KILLED", "failed": "FAILED"}


def tracking_uri() -> str:
    """Where the runs go: the seqbench or MLflow variable, else the file store ``./mlruns``.

    MLflow 3 keeps its file store in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``; this
    default opts in for it (a database store needs SQLAlchemy, which mlflow-skinny lacks).
    """
    uri = os.environ.get("SEQBENCH_MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return Path(DEFAULT_STORE).resolve().as_uri()


def _text(value: Any) -> str:
    return str(value)[:PARAM_CHARS]


class MlflowLogger:
    """The logger; its state is one seqbench run's MLflow runs."""

    def __init__(self) -> None:
        self.client: Any = None
        self.experiment = ""
        self.parent = ""
        self.children: dict[str, str] = {}

    @hookimpl
    def log_run_start(self, run_dir: Path, command: str, config: Mapping[str, Any], pairs: Sequence[Mapping[str, Any]],
                      resume: bool) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri())
        name = os.environ.get("SEQBENCH_MLFLOW_EXPERIMENT", "seqbench")
        found = self.client.get_experiment_by_name(name)
        self.experiment = found.experiment_id if found else self.client.create_experiment(name)
        where = str(Path(run_dir).resolve())
        self.children = {}
        previous = self._search(f"tags.`{RUN_DIR_TAG}` = '{where}' and tags.`{ROLE_TAG}` = 'run'") if resume else []
        if previous:
            self.parent = previous[0].info.run_id
            self.client.update_run(self.parent, status="RUNNING")
            done = {f"{p['model']}+{p['dataset']}+seed{p['seed']}" for p in pairs if p["done"]}
            for child in self._search(f"tags.`mlflow.parentRunId` = '{self.parent}'"):
                pair = child.data.tags.get(PAIR_TAG, "")
                if pair in done:
                    self.children[pair] = child.info.run_id
                elif child.info.status == "RUNNING":  # killed mid-pair: the pair trains again, in a new run
                    self.client.set_terminated(child.info.run_id, status="KILLED")
            return
        self.parent = self.client.create_run(self.experiment, run_name=Path(run_dir).name,
                                             tags={RUN_DIR_TAG: where, ROLE_TAG: "run"}).info.run_id
        from mlflow.entities import Param

        params = {
            "command": command,
            "models": ",".join(config.get("models", [])),
            "datasets": ",".join(config.get("datasets", [])),
            "seeds": ",".join(map(str, config.get("seeds", []))),
            "quick": config.get("quick"),
            **{f"set.{k}": v for k, v in (config.get("overrides") or {}).items()},
        }
        self.client.log_batch(self.parent, params=[Param(k, _text(v)) for k, v in params.items()])

    def _search(self, query: str) -> list[Any]:
        return list(self.client.search_runs([self.experiment], filter_string=query, max_results=10000))

    def _child(self, model: str, dataset: str, seed: int) -> str:
        pair = f"{model}+{dataset}+seed{seed}"
        if pair not in self.children:
            self.children[pair] = self.client.create_run(
                self.experiment, run_name=pair,
                tags={"mlflow.parentRunId": self.parent, PAIR_TAG: pair, "model": model, "dataset": dataset,
                      "seed": str(seed)}).info.run_id
        return self.children[pair]

    @hookimpl
    def log_epoch_end(self, model: str, dataset: str, seed: int, epoch: int, train_loss: float | None,
                      val_accuracy: float, epoch_seconds: float) -> None:
        from mlflow.entities import Metric

        run = self._child(model, dataset, seed)
        now = _millis()
        values = {"train_loss": train_loss, "val_accuracy": val_accuracy, "epoch_seconds": epoch_seconds}
        self.client.log_batch(
            run, metrics=[Metric(k, float(v), now, epoch) for k, v in values.items() if v is not None]
        )

    @hookimpl
    def log_pair_end(self, record: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric, Param

        run = self._child(record["model"], record["dataset"], record["seed"])
        now = _millis()
        metrics = [Metric(s.name, float(s.value), now, 0)
                   for name, result in (record.get("metrics") or {}).items() for s in scalars(name, result)]
        metrics += [Metric(f"timing.{k}", float(v), now, 0) for k, v in (record.get("timing") or {}).items()
                    if is_number(v)]
        params = [Param(k, _text(v)) for k, v in (record.get("params") or {}).items()]
        if record.get("num_parameters") is not None:
            params.append(Param("num_parameters", str(record["num_parameters"])))
        self.client.log_batch(run, metrics=metrics, params=params)
        self.client.set_tag(run, "status", record["status"])
        if record.get("reason"):
            self.client.set_tag(run, "reason", _text(record["reason"]))
        per_class = (record.get("metrics") or {}).get("per_class")
        if per_class:
            self.client.log_dict(run, per_class, "per_class.json")
        self.client.set_terminated(run, status=_STATUS.get(record["status"], "FINISHED"))

    @hookimpl
    def log_run_end(self, run_dir: Path) -> None:
        for name in ARTIFACTS:
            if (Path(run_dir) / name).is_file():
                self.client.log_artifact(self.parent, str(Path(run_dir) / name))
        self.client.set_terminated(self.parent)


def _millis() -> int:
    import time

    return int(time.time() * 1000)


#: The plugin object the entry point names.
logger = MlflowLogger()
