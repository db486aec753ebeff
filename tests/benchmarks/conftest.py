"""Benchmarks run only on request: ``pytest tests/benchmarks -m bench``."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.bench)
