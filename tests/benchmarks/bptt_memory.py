"""The BPTT workspace of one training step at batch 128, one thread, default bptt_mb, measured
with tracemalloc (seconds to minutes on a CPU):

    python3 tests/benchmarks/bptt_memory.py [--steps 1024] [--features 3] [--hidden 256] [rnn|lstm|gru ...]

The defaults are sCIFAR's shape; ``--steps 28 --features 28`` is MNIST rows, ``--steps 784
--features 1`` sMNIST. Runs against whatever ``seqbench`` is on the path (so an older checkout
gives the "before" of a change). ``--rss`` measures instead how much a training step grows the
peak resident memory of a fresh process, for ours and for the same PyTorch cell (needs the
seqbench-torch plugin), with ``--threads`` threads: tracemalloc does not see PyTorch's memory.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
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


def rss_growth(name: str, impl: str, T: int, F: int, H: int, threads: int) -> float:
    """MiB a second training step adds to the peak RSS of a fresh process (``impl``: ours or torch)."""
    argv = [sys.executable, __file__, name, "--steps", str(T), "--features", str(F), "--hidden", str(H),
            "--threads", str(threads), "--child", impl]
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def child(name: str, impl: str, T: int, F: int, H: int, threads: int) -> None:
    """Prints the MiB a training step adds to this process's peak RSS, after a first small step."""
    rng = np.random.default_rng(0)
    x, y = rng.random((B, T, F), dtype=np.float32), np.arange(B) % 10
    if impl == "torch":
        import torch
        from seqbench_torch.model import TorchRecurrentClassifier

        torch.set_num_threads(threads)
        model = TorchRecurrentClassifier(name, F, 10, hidden=H, optimizer="adam", lr=1e-3, clip=1.0, device="cpu")
        x, y = model.to_device(x), model.to_device(y)
    else:
        model = RecurrentClassifier(CELLS[name], F, 10, hidden=H, optimizer="adam", lr=1e-3, clip=1.0,
                                    threads=threads)
    model.train_batch(x[:2], y[:2])  # parameters, optimizer state, libraries' first allocations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.train_batch(x, y)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", nargs="*", default=list(CELLS))
    parser.add_argument("--steps", type=int, default=1024)
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rss", action="store_true", help="peak RSS growth of ours and PyTorch's, fresh processes")
    parser.add_argument("--threads", type=int, default=2, help="threads of each model (with --rss)")
    parser.add_argument("--child", choices=("ours", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (args.steps, args.features, args.hidden)
    for name in args.cells:
        if args.child:
            child(name, args.child, *shape, args.threads)
        elif args.rss:
            ours, torch_ = (rss_growth(name, impl, *shape, args.threads) for impl in ("ours", "torch"))
            print(f"{name} T={args.steps} H={args.hidden} threads={args.threads}: a training step grows the peak RSS "
                  f"by {ours:.0f} MiB (ours), {torch_:.0f} MiB (torch)", flush=True)
        else:
            print(measure(CELLS[name], *shape), flush=True)
