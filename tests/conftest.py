"""Shared fixtures: an isolated environment, and a registry with the toy plugin."""

from __future__ import annotations

import pytest
from helpers import toy_plugin

from seqbench import results
from seqbench.plugins import load_plugins


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No installed third-party plugins, no real data dir, unless a test asks for them."""
    monkeypatch.setenv("SEQBENCH_LOAD_PLUGINS", "")
    monkeypatch.delenv("SEQBENCH_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("SEQBENCH_BLOCK_PLUGINS", raising=False)
    monkeypatch.setenv("SEQBENCH_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(autouse=True)
def _fresh_result_checks():
    """The loader's field checks derived from the schemas in each test, not cached by an earlier
    one: a change to the derivation (or a mutant of it) shows in every test that loads a record."""
    results._checks.cache_clear()


@pytest.fixture
def toy_registry(monkeypatch):
    """Built-in models and metrics plus the toy plugin; the built-in datasets are blocked."""
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=[("toy", toy_plugin())])


@pytest.fixture
def torch_one_thread():
    """Tiny tensors on shared cores: torch's intra-op threads only contend (100x slower under load).
    Skips the test where PyTorch is not installed."""
    torch = pytest.importorskip("torch", reason="needs PyTorch (pip install torch==2.13.0)")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
