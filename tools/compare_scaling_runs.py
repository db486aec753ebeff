"""Wall times of the runs in results/scaling-dask-cpu/ (or DIR), and whether --workers 2 trained
exactly what the sequential runs did.

    python tools/compare_scaling_runs.py [DIR]
"""
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "results" / "scaling-dask-cpu"
PARALLEL = "workers2"


def learnt(record: dict) -> dict:
    """A pair's losses, accuracies and metrics, without timings."""
    history = [{k: v for k, v in e.items() if "seconds" not in k} for e in record["history"]]
    return {"history": history, "metrics": record["metrics"], "best_epoch": record["best_epoch"]}


runs = {
    d.name: json.loads((d / "results.json").read_text())
    for d in sorted(HERE.iterdir())
    if (d / "results.json").exists()
}
for name, results in runs.items():
    session = results["sessions"][-1]
    threads = sorted({p["params"]["threads"] for p in results["pairs"]})
    medians = [round(p["timing"]["epoch_seconds_median"], 1) for p in results["pairs"]]
    print(f"{name:24} wall {session['wall_seconds']:7.1f} s  threads {threads}  executor {session['executor']}"
          f"  s/epoch {medians}")
for par in (n for n in runs if n.startswith(PARALLEL)):
    for name in ("sequential", "sequential-threads1"):  # the default threads (2), and the workers' (1)
        same_learning = same_predictions = same_accuracy = 0
        for a, b in zip(runs[name]["pairs"], runs[par]["pairs"], strict=True):
            assert (a["model"], a["seed"]) == (b["model"], b["seed"])
            same_accuracy += a["metrics"] == b["metrics"]
            same_learning += learnt(a) == learnt(b)
            stem = f"{a['model']}+{a['dataset']}+seed{a['seed']}.pred.npy"
            same_predictions += np.array_equal(
                np.load(HERE / name / "pairs" / stem), np.load(HERE / par / "pairs" / stem)
            )
        n = len(runs[name]["pairs"])
        print(f"{par} vs {name}: same metrics {same_accuracy}/{n}, same test predictions {same_predictions}/{n}, "
              f"same losses and accuracies every epoch {same_learning}/{n}")
