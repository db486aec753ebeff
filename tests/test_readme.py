"""The plugin example in README.md runs as printed."""

from __future__ import annotations

import re
import types
from pathlib import Path

from seqbench.plugins import load_plugins
from seqbench.runner import RunRequest, run_benchmark

from helpers import toy_plugin

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
    assert 0 < pair["metrics"]["accuracy"]["accuracy"] < 1
