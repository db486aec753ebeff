"""The plugin example in README.md runs as printed."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np
import pytest
from helpers import make_toy_dataset, toy_plugin

from seqbench.plugins import load_plugins
from seqbench.protocol import split_train_val
from seqbench.runner import RunRequest, run_benchmark

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_plugin_example_registers_and_runs(monkeypatch, tmp_path):
    code = re.search(r"```python\n# my_plugin.py\n(.*?)```", README.read_text(), re.S).group(1)
    plugin = types.ModuleType("my_plugin")
    exec(compile(code, "README.md", "exec"), plugin.__dict__)
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(strict=True, extra=[("my_plugin", plugin), ("toy", toy_plugin(models={}))])
    request = RunRequest(models=["majority"], datasets=["toy"], seeds=[0], out_dir=tmp_path / "run",
                         data_dir=tmp_path, plots=False)
    (pair,) = run_benchmark(registry, request)["pairs"]
    assert pair["status"] == "ok" and pair["epochs_run"] == 1
    ds = make_toy_dataset()
    train_idx, _ = split_train_val(len(ds.train_y), 0.1, seed=0)
    majority = np.bincount(ds.train_y[train_idx]).argmax()
    assert pair["metrics"]["accuracy"]["accuracy"] == pytest.approx(np.mean(ds.test_y == majority))
