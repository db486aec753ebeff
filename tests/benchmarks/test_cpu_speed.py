"""The CPU speed table's command (``cpu_speed.py``), run small: it writes its table and its data.

    pytest tests/benchmarks/test_cpu_speed.py -m bench
"""

from __future__ import annotations

import json

import cpu_speed
import pytest

pytestmark = pytest.mark.bench


def test_writes_the_table_and_its_data(tmp_path):
    pytest.importorskip("torch")
    cpu_speed.main(["--threads", "1", "--hidden", "8", "--cells", "lstm", "--rounds", "1", "--long-rounds", "1",
                    "--out", str(tmp_path)])
    data = json.loads((tmp_path / "cpu-speed.json").read_text())
    assert data["machine"]["threads"] == 1 and "avx2" in data["machine"] and data["machine"]["numba"]
    assert [(r["cell"], r["T"]) for r in data["train"]] == [("lstm", 28), ("lstm", 784)]
    assert set(data["train"][0]["seconds"]) == {"ours", "ours (NumPy kernels)", "torch", "GEMM floor"}
    assert set(data["train"][1]["seconds"]) == {"ours", "torch", "GEMM floor"}
    table = (tmp_path / "cpu-speed.md").read_text()
    assert (
        "| lstm | 8 | 28 |" in table
        and "| lstm | 8 | 784 |" in table
        and "| lstm | 8 |" in table.split("## Inference")[1]
    )
