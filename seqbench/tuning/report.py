"""The report of a tune: per study, the defaults' and the best trial, best-so-far validation
accuracy against trials and against time (``best_so_far.png``), and each searched
hyperparameter's importance (``optuna.importance``), in ``report.md``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import fileio
from seqbench.plugins import one_line

REPORT_FILE = "report.md"
PLOT_FILE = "best_so_far.png"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f} %"


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """A Markdown table of the studies: budget spent, defaults, best trial and its hyperparameters."""
    from tabulate import tabulate

    rows = []
    for s in summary["studies"]:
        t = s["trials"]
        best = s["best"] or {}
        rows.append([s["model"], s["dataset"], f"{s['finished']} ({t['complete']} complete, {t['pruned']} pruned, "
                     f"{t['fail']} failed)", f"{s['seconds']:.0f}", _pct((s["defaults"] or {}).get("value")),
                     _pct(best.get("value")), best.get("trial", ""),
                     " ".join(f"{k}={_short(v)}" for k, v in sorted(best.get("params", {}).items()))])
    headers = [
        "model",
        "dataset",
        "trials",
        "trial s",
        "defaults (val)",
        "best (val)",
        "best trial",
        "best hyperparameters",
    ]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True).splitlines()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def curves(tune_dir: Path, summary: Mapping[str, Any]) -> dict[str, list[tuple[int, float, float]]]:
    """Per study, each counted trial as (number, cumulative trial seconds, best value of the
    complete trials so far): pruned and failed trials spend time, they do not raise the best."""
    import optuna

    from seqbench.tuning.study import counted, storage_url

    out = {}
    for s in summary["studies"]:
        study = optuna.load_study(study_name=s["study"], storage=storage_url(tune_dir))
        best, seconds, points = float("nan"), 0.0, []
        for t in sorted((t for t in study.get_trials(deepcopy=False) if counted(t)), key=lambda t: t.number):
            seconds += t.user_attrs.get("seconds", 0.0)
            value = t.value if t.state == optuna.trial.TrialState.COMPLETE else None
            if value is not None and not value <= best:
                best = value
            points.append((t.number, seconds, best))
        out[s["study"]] = points
    return out


def importances(tune_dir: Path, study_name: str) -> dict[str, float]:
    """Optuna's importance of each searched hyperparameter (PED-ANOVA: needs neither scikit-learn
    nor SciPy); empty with too few trials or nothing varied."""
    import optuna

    from seqbench.tuning.study import storage_url

    study = optuna.load_study(study_name=study_name, storage=storage_url(tune_dir))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2 or not any(len({str(t.params.get(k)) for t in complete}) > 1 for k in complete[0].params):
        return {}
    return dict(
        optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    )


def write_report(tune_dir: Path, summary: Mapping[str, Any]) -> Path:
    """``report.md`` and ``best_so_far.png`` in ``tune_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines_by_study = curves(tune_dir, summary)
    fig, (by_trial, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for s in summary["studies"]:
        points = lines_by_study[s["study"]]
        label = f"{s['model']} x {s['dataset']}"
        by_trial.step([i + 1 for i in range(len(points))], [100 * p[2] for p in points], where="post", label=label)
        by_time.step([p[1] for p in points], [100 * p[2] for p in points], where="post", label=label)
    by_trial.set(xlabel="trials finished", ylabel="best validation accuracy so far (%)", title="against trials")
    by_time.set(xlabel="trial seconds", title="against time")
    by_trial.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(tune_dir / PLOT_FILE, dpi=110)
    plt.close(fig)

    text = [f"# Tune {summary.get('tune', '')}", "", f"Command: `{summary.get('command', '')}`", "",
            "Validation accuracy only (the test split is never read while tuning); the first trial of each study "
            "is the model's defaults.", "", *summary_lines(summary), "", f"![best so far]({PLOT_FILE})", ""]
    for s in summary["studies"]:
        try:
            ranked = importances(tune_dir, s["study"])
        except Exception as exc:  # Optuna refuses too few or too alike trials
            ranked, text = {}, [*text, f"importances not computed: {one_line(exc)}"]
        text += [f"## {s['model']} x {s['dataset']}", "",
                 "searched: " + ", ".join(f"{k} {v}" for k, v in s["space"].items()), ""]
        if ranked:
            text += ["| hyperparameter | importance |", "| --- | --- |",
                     *(f"| {k} | {v:.3f} |" for k, v in ranked.items()), ""]
        else:
            text += ["importances: too few complete trials", ""]
    path = tune_dir / REPORT_FILE
    fileio.atomic_write_text(path, "\n".join(text))
    return path
