"""A finished tune as ``seqbench run --params-from`` reads it: its summary file and the best
hyperparameters of each study (the summary is written by :mod:`seqbench.tuning.study`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import results as res

#: A tune directory's summary: its request, then what each study found.
TUNE_FILE = "tune.json"


class TuneDirError(Exception):
    """A directory that holds no finished tune, or not the studies a run asks for."""


def read_tune(tune_dir: Path) -> dict[str, Any]:
    """A tune directory's summary (``tune.json``); TuneDirError when there is none."""
    path = Path(tune_dir) / TUNE_FILE
    try:
        return res.loads(path.read_text())
    except OSError as exc:
        raise TuneDirError(f"--params-from {tune_dir}: no tune there ({exc.strerror or exc})") from None


def tuned_overrides(tune: Mapping[str, Any], tune_dir: Path, models: list[str],
                    datasets: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``--set MODEL.KEY=VALUE`` texts that give each of ``models`` its best trial's
    hyperparameters (those the tune searched, and those its ``--space`` fixed), and what the run
    records of where they came from. Each model must have one finished study among ``datasets``."""
    from seqbench.hyperparams import format_value

    studies = [s for s in tune.get("studies") or [] if s["dataset"] in datasets]
    overrides: dict[str, str] = {}
    sources: dict[str, Any] = {}
    for model in models:
        mine = [s for s in studies if s["model"] == model]
        if not mine:
            tuned = sorted({f"{s['model']} on {s['dataset']}" for s in tune.get("studies") or []})
            raise TuneDirError(f"--params-from {tune_dir}: {model!r} was not tuned on {', '.join(datasets)} "
                               f"(tuned: {', '.join(tuned) or 'nothing yet'})")
        if len(mine) > 1:
            raise TuneDirError(
                f"--params-from {tune_dir}: {model!r} was tuned on {', '.join(s['dataset'] for s in mine)}: "
                "run one dataset at a time (-d)"
            )
        study = mine[0]
        if study["best"] is None:
            raise TuneDirError(f"--params-from {tune_dir}: the study {study['study']} has no complete trial")
        fixed = {k: v for k, v in (tune["config"].get("space") or {}).items() if _fixes(k, v, model)}
        for key, value in fixed.items():
            overrides[f"{model}.{key.split('.')[-1]}"] = value
        for key, value in study["best"]["params"].items():
            overrides[f"{model}.{key}"] = format_value(value)
        budget = study["budget"]
        sources[model] = {"study": study["study"], "trial": study["best"]["trial"], "value": study["best"]["value"],
                          "dataset": study["dataset"], "budget": budget, "finished": study["finished"],
                          "trials": study["trials"], "params": dict(study["best"]["params"])}
    return overrides, {"from": str(tune_dir), "tune": tune.get("tune"), "max_train": tune["config"].get("max_train"),
                       "models": sources}


def _fixes(key: str, spec: str, model: str) -> bool:
    """Whether the tune's ``--space KEY=SPEC`` fixed one value for ``model``."""
    owner, _, name = key.rpartition(".")
    return (not owner or owner == model) and "," not in spec and ":" not in spec and bool(name)
