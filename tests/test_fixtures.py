"""The shared fixtures of tests/conftest.py behave on machines without the optional packages."""

from __future__ import annotations

import sys

import pytest


def test_torch_one_thread_skips_without_torch(monkeypatch, request):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(pytest.skip.Exception, match="PyTorch"):
        request.getfixturevalue("torch_one_thread")
