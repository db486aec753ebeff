"""Benchmarks run only on request: ``pytest tests/benchmarks -m bench``."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.bench)
            item.add_marker(pytest.mark.slow)  # `-m 'not slow'` replaces the default `-m 'not bench'`
