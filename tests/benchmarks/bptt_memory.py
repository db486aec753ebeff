"""The BPTT workspace of one training step at batch 128, one thread, default bptt_mb, measured
with tracemalloc (seconds to minutes on a CPU):

    python3 tests/benchmarks/bptt_memory.py [--steps 1024] [--features 3] [--hidden 256] [rnn|lstm|gru ...]

The defaults are sCIFAR's shape; ``--steps 28 --features 28`` is MNIST rows, ``--steps 784
--features 1`` sMNIST. Runs against whatever ``seqbench`` is on the path (so an older checkout
gives the "before" of a change).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN

B = 128
CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def measure(cell: type, T: int, F: int, H: int) -> str:
    x = np.random.default_rng(0).random((B, T, F)).astype(np.float32)
    y = np.arange(B) % 10
    model = RecurrentClassifier(cell, F, 10, hidden=H, threads=1)
    tracemalloc.start()
    model.train_batch(x, y)  # makes the workspace
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]  # the workspace, and whatever else the first step left
    start = time.perf_counter()
    model.train_batch(x, y)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    held = sum(b.nbytes for b in model.cell.ws._buffers.values())
    whole = T * B * H * cell.widths * 4
    return (
        f"{cell.__name__} T={T} H={H}: chunk {model.cell.chunk_len(T, B, H)} steps; "
        f"workspace held {held / 2**20:.1f} MiB; allocated during a step at most {peak / 2**20:.1f} MiB more; "
        f"all steps' buffers would be {whole / 2**20:.0f} MiB; "
        f"step {seconds:.2f} s (under tracemalloc)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", nargs="*", default=list(CELLS))
    parser.add_argument("--steps", type=int, default=1024)
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    for name in args.cells:
        print(measure(CELLS[name], args.steps, args.features, args.hidden), flush=True)
