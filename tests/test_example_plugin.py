"""Installed plugins through real entry points: the example distribution end to end, a broken
installed plugin, and uninstalling.

The example plugin is installed with ``pip install --no-deps -e plugins/seqbench-example``
(``.ci/run`` does it); without it those tests skip. The broken and removable plugins are
installed by putting a ``*.dist-info`` directory on ``sys.path``: that is all an installed
distribution is to ``importlib.metadata``, so discovery is the real one.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import make_toy_dataset

from seqbench import DatasetInfo
from seqbench.cli import main
from seqbench.plugins import LOG_HOOKS, load_plugins

EXAMPLE = "seqbench-example"

TOY_DATA_MODULE = '''
"""A toy dataset plugin: 3 classes of (6, 4) sequences; the class shifts one feature's mean."""
import numpy as np
from seqbench import Dataset, DatasetSpec, hookimpl


def load(ctx):
    rng = np.random.default_rng(0)

    def split(n):
        y = rng.integers(0, 3, n)
        x = rng.normal(0.0, 0.5, (n, 6, 4)).astype(np.float32)
        x[np.arange(n), :, y] += 1.5
        return x, y.astype(np.int64)

    (tx, ty), (sx, sy) = split(300), split(90)
    return Dataset("toy", tx, ty, sx, sy, ("a", "b", "c"), "sha256:toy")


@hookimpl
def register_datasets(register):
    register(DatasetSpec("toy", load, "synthetic toy sequences"))
'''


def example_version() -> str:
    try:
        return importlib.metadata.version(EXAMPLE)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{EXAMPLE} is not installed (pip install --no-deps -e plugins/{EXAMPLE})")


def fake_install(site: Path, dist: str, module: str, source: str, version: str = "0.1") -> None:
    """Write ``module.py`` and a minimal ``dist-info`` with a ``seqbench`` entry point into ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[seqbench]\n{module} = {module}\n")


def cli(*args: str) -> tuple[int, list[str], list[str]]:
    """Exit code, output lines and warning lines of an in-process ``seqbench`` command."""
    result = CliRunner().invoke(main, list(args))
    lines = result.output.splitlines()
    warnings = [ln for ln in lines if ln.startswith("seqbench: warning:")]
    return result.exit_code, [ln for ln in lines if ln not in warnings], warnings


def test_example_plugin_runs_end_to_end_through_entry_points(tmp_path):
    """A fresh ``seqbench`` process finds logreg and the toy dataset by their entry points alone."""
    version = example_version()
    site = tmp_path / "site"
    fake_install(site, "seqbench-toydata", "seqbench_toydata", TOY_DATA_MODULE)
    pythonpath = [str(site), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath),
           "SEQBENCH_LOAD_PLUGINS": f"{EXAMPLE},seqbench-toydata", "SEQBENCH_STRICT_PLUGINS": "1"}
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", "from seqbench.cli import main; main()", "run", "-m", "logreg", "-d", "toy",
         "--set", "epochs=4", "--out", str(out), "--no-plots", "--offline"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr  # stderr has the progress
    assert proc.stdout.startswith("| model")  # stdout only the summary table
    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["plugins"] == {EXAMPLE: version, "seqbench-toydata": "0.1"}
    (pair,) = results["pairs"]
    assert pair["status"] == "ok" and pair["model_plugin"] == "example" and pair["dataset_plugin"] == "seqbench_toydata"
    assert pair["params"] == {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 4, "batch_size": 128,
                              "patience": 3, "val_fraction": 0.1, "seed": 0}
    assert pair["metrics"]["accuracy"]["accuracy"] >= 0.9
    assert "logreg" in (out / "summary.md").read_text()


def test_plugins_command_shows_the_example_with_its_version(monkeypatch):
    version = example_version()
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    code, out, _ = cli("plugins", "--json")
    assert code == 0
    (entry,) = [p for p in json.loads("\n".join(out)) if p["distribution"] == EXAMPLE]
    assert entry["version"] == version and entry["registered"] == ["model:logreg"] and entry["error"] is None
    code, out, _ = cli("plugins")
    (line,) = [ln for ln in out if EXAMPLE in ln]
    assert version in line.split() and "model:logreg" in line


def test_example_model_saves_and_loads_through_the_model_base_class(tmp_path):
    example_version()
    import seqbench_example

    registry = load_plugins(extra=[("example", seqbench_example)])
    spec, ds = registry.models["logreg"], make_toy_dataset()
    params = {**spec.defaults(ds.info), "seed": 0}
    model = spec.build(ds.info, params)
    for _ in range(20):
        model.train_batch(ds.train_x, ds.train_y)
    assert (model.predict_proba(ds.test_x).argmax(1) == ds.test_y).mean() >= 0.9
    model.save(tmp_path / "logreg.npz")
    fresh = spec.build(ds.info, params)
    assert not (fresh.predict_proba(ds.test_x) == model.predict_proba(ds.test_x)).all()
    fresh.load(tmp_path / "logreg.npz")
    assert (fresh.predict_proba(ds.test_x) == model.predict_proba(ds.test_x)).all()
    assert spec.defaults(DatasetInfo("cifar10", 32, 96, ds.class_names))["lr"] == 0.005


def test_installed_plugin_whose_import_fails_is_one_warning(monkeypatch, tmp_path):
    fake_install(tmp_path, "seqbench-broken", "seqbench_broken", "import seqbench_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SEQBENCH_LOAD_PLUGINS", "seqbench-broken")
    code, out, warnings = cli("list", "models")
    assert code == 0 and any(ln.startswith("rnn-cpu ") for ln in out)
    assert warnings == [
        "seqbench: warning: plugin 'seqbench-broken' failed to load: "
        "ModuleNotFoundError: No module named 'seqbench_missing_dependency'; "
        "to skip it, block its entry point: SEQBENCH_BLOCK_PLUGINS=seqbench_broken"
    ]
    code, out, _ = cli("plugins")
    (line,) = [ln for ln in out if "seqbench-broken" in ln]
    assert "0.1" in line.split() and "ModuleNotFoundError" in line
    code, out, _ = cli("--strict-plugins", "list", "models")
    assert code == 1 and out == [
        "Error: plugin 'seqbench-broken' failed to load: "
        "ModuleNotFoundError: No module named 'seqbench_missing_dependency'; "
        "to skip it, block its entry point: SEQBENCH_BLOCK_PLUGINS=seqbench_broken"
    ]


def test_every_installed_plugin_loads_without_warnings(monkeypatch, capsys):
    """With no plugin selection, the installed distributions (example, torch, ...) all load, and
    each registers something or is a logger (implements log_* hooks: mlflow, tensorboard)."""
    installed = {ep.name: ep.dist.name for ep in importlib.metadata.entry_points(group="seqbench")}
    if not installed:
        pytest.skip("no seqbench plugin distribution is installed")
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    registry = load_plugins()
    assert registry.warnings == [] and capsys.readouterr().err == ""
    loaded = {p.name: p for p in registry.plugins if not p.builtin}
    assert set(loaded) == set(installed)
    for name, dist in installed.items():
        assert loaded[name].distribution == dist, name
        assert loaded[name].registered or (loaded[name].hooks and set(loaded[name].hooks) <= set(LOG_HOOKS)), name
        assert all(registry.plugin_of(*item.split(":", 1)) == name for item in loaded[name].registered)
    if "seqbench-example" in installed.values():  # the two plugins this repository ships
        assert registry.plugin_of("model", "logreg") == "example"
    if "seqbench-torch" in installed.values():
        assert {"torch-rnn", "torch-lstm", "torch-gru"} <= {
            m for m in registry.models if registry.plugin_of("model", m) == "torch"
        }


def test_uninstalling_a_plugin_removes_it(monkeypatch, tmp_path):
    fake_install(tmp_path, "seqbench-removable", "seqbench_removable", '''
        from seqbench import ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("removable-model", lambda info, params: None))
    ''')
    monkeypatch.setenv("SEQBENCH_LOAD_PLUGINS", "seqbench-removable")
    with monkeypatch.context() as installed:
        installed.syspath_prepend(str(tmp_path))
        code, out, _ = cli("plugins")
        (line,) = [ln for ln in out if "seqbench-removable" in ln]
        assert code == 0 and "model:removable-model" in line
    importlib.invalidate_caches()  # the dist-info is off sys.path again: uninstalled
    code, out, warnings = cli("plugins")
    assert code == 0 and warnings == [] and not [ln for ln in out if "removable" in ln]
    assert "removable-model" not in load_plugins().models
