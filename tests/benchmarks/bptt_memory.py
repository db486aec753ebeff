"""The BPTT workspace of one training step at B=128, T=1,024, F=3, H=256 (sCIFAR's shape),
one thread, default bptt_mb, measured with tracemalloc (minutes on a CPU):

    python3 tests/benchmarks/bptt_memory.py [rnn|lstm|gru ...]
"""

from __future__ import annotations

import sys
import time
import tracemalloc

import numpy as np

from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN

T, B, F, H = 1024, 128, 3, 256
CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def measure(cell: type) -> str:
    x = np.random.default_rng(0).random((B, T, F)).astype(np.float32)
    y = np.arange(B) % 10
    model = RecurrentClassifier(cell, F, 10, hidden=H, threads=1)
    tracemalloc.start()
    model.train_batch(x, y)  # makes the workspace
    tracemalloc.reset_peak()
    start = time.perf_counter()
    model.train_batch(x, y)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    held = sum(b.nbytes for b in model.cell.ws._buffers.values())
    whole = T * B * H * cell.widths * 4
    return (f"{cell.__name__}: chunk {model.cell.chunk_len(T, B, H)} steps; workspace held {held / 2**20:.1f} MiB; "
            f"peak traced during a step {peak / 2**20:.1f} MiB; all steps' buffers would be {whole / 2**20:.0f} MiB; "
            f"step {seconds:.1f} s (under tracemalloc)")


if __name__ == "__main__":
    for name in sys.argv[1:] or CELLS:
        print(measure(CELLS[name]), flush=True)
