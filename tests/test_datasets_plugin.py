"""The built-in datasets plugin and the data-directory resolution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seqbench.datasets import resolve_data_dir
from seqbench.plugins import load_plugins


def test_the_three_datasets_are_registered_by_the_builtin_plugin():
    registry = load_plugins()
    for name in ("mnist", "fashion-mnist", "cifar10"):
        spec = registry.datasets[name]
        assert registry.plugin_of("dataset", name) == "datasets"
        assert spec.locate is not None and spec.fetch is not None and spec.description


def test_registering_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from seqbench.plugins import load_plugins\n"
        "load_plugins()\n"
        "heavy = [m for m in ('numpy', 'urllib.request', 'seqbench.datasets.loader') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_data_dir_explicit_value_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"


def test_data_dir_defaults_to_the_xdg_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir(None) == tmp_path / "cache" / "seqbench"


def test_data_dir_ignores_a_relative_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path / ".cache" / "seqbench"


def test_data_dir_expands_home_and_is_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir("~/data") == tmp_path / "data"
    assert resolve_data_dir("rel").is_absolute()
    assert resolve_data_dir("rel") == Path.cwd() / "rel"
