"""The from-scratch cells against PyTorch's on this CPU, side by side in one process (issue 24).

    python3 tests/benchmarks/cpu_speed.py                    # about 3-5 minutes on 2 cores
    python3 tests/benchmarks/cpu_speed.py --threads 1 --out results/cpu-speed-1thread

For each cell (rnn, lstm, gru) and hidden size (128, 256), at batch 128: one training step at
T=28 (MNIST rows, F=28) and at T=784 (sMNIST pixels, F=1), Adam with clipping as the defaults
train; and inference throughput at T=28. Every variant runs at the same thread count: ours with
``threads`` batch shards (one single-threaded BLAS each, as ``--set threads`` gives), PyTorch
with ``torch.set_num_threads(threads)``; ours also with the NumPy kernels (the fallback) and,
at ``threads`` > 1, as one shard over a ``threads``-threaded BLAS (both at T=28 only). The variants are interleaved
round by round and each keeps its best round, so that load from other processes, which comes
and goes, reaches them alike; the load average is written beside the table.

The GEMM floor of a cell is the time of the matrix products of its training step alone (the
input projection, T recurrent products forward and T-1 back, the two weight gradients) at the
same shapes, shards and threads: what a step would take with free element-wise work.

Writes ``cpu-speed.md`` and ``cpu-speed.json`` under ``--out`` (default ``results/cpu-speed``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from seqbench.models.backend import NumpyBackend
from seqbench.models.gru import GRU
from seqbench.models.lstm import LSTM
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.models.rnn import RNN

CELLS = {"rnn": (RNN, 1), "lstm": (LSTM, 4), "gru": (GRU, 3)}  # cell, gate blocks
B, C = 128, 10
ROWS = {"T": 28, "F": 28}
PIXELS = {"T": 784, "F": 1}
INFER_SAMPLES = 1024
#: Variables that hold the libraries to an older instruction set, written into the table when set.
#: An AVX2 run on an AVX-512 CPU: NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"
#: OPENBLAS_CORETYPE=Haswell NUMBA_CPU_NAME=haswell ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
ISA_VARIABLES = ("NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "NUMBA_CPU_NAME", "ATEN_CPU_CAPABILITY",
                 "MKL_ENABLE_INSTRUCTIONS")


def machine(threads: int) -> dict[str, Any]:
    """CPU model, vector flags, threads, library versions and the load average."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    import numba
    import torch

    blas = [
        f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]
    return {
        "cpu": model, "cores": os.cpu_count(), "avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
        "threads": threads, "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
        "torch": torch.__version__, "blas": sorted(set(blas)), "load_average_start": os.getloadavg(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "isa_settings": {k: os.environ[k] for k in ISA_VARIABLES if k in os.environ},
    }


def best_of(variants: dict[str, Callable[[], Any]], rounds: int, min_seconds: float) -> dict[str, float]:
    """Seconds per call of each variant: its best round, the variants interleaved round by round."""
    calls = {}
    for name, fn in variants.items():
        start = time.perf_counter()
        fn()  # warm-up: workspaces, numba compilation, torch's allocator
        if min_seconds > 0:
            start = time.perf_counter()
            fn()
        calls[name] = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-6)))
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / calls[name])
    return best


def ours(cell: type, F: int, H: int, threads: int, fused: bool = True) -> RecurrentClassifier:
    return RecurrentClassifier(cell, F, C, hidden=H, optimizer="adam", lr=1e-3, clip=1.0, threads=threads, fused=fused)


def theirs(name: str, F: int, H: int) -> Any:
    from seqbench_torch.model import TorchRecurrentClassifier

    return TorchRecurrentClassifier(name, F, C, hidden=H, optimizer="adam", lr=1e-3, clip=1.0, device="cpu")


def gemm_floor(k: int, T: int, F: int, H: int, threads: int) -> Callable[[], None]:
    """The matrix products of one training step of a cell with ``k`` gate blocks, on the shards
    a model with ``threads`` threads makes."""
    backend = NumpyBackend(threads)
    rng = np.random.default_rng(0)
    shards = backend.map_shards(lambda i, rows: rows.stop - rows.start, B)

    def arrays(b: int) -> dict[str, np.ndarray]:
        r = lambda *shape: rng.random(shape, dtype=np.float32)  # noqa: E731
        return {"x": r(T * b, F), "W_x": r(F, k * H), "W_h": r(H, k * H), "h": r(b, H), "g": r(b, k * H),
                "proj": r(T * b, k * H), "hs": r(T * b, H), "da": r(T * b, k * H), "dh": r(b, H)}

    per_shard = [arrays(b) for b in shards]

    def products(i: int, rows: slice) -> None:
        a = per_shard[i]
        np.matmul(a["x"], a["W_x"], out=a["proj"])
        for _ in range(T):
            np.matmul(a["h"], a["W_h"], out=a["g"])
        W_h_T = a["W_h"].T
        for _ in range(T - 1):
            np.matmul(a["g"], W_h_T, out=a["dh"])
        a["x"].T @ a["da"]
        a["hs"].T @ a["da"]

    return lambda: backend.map_shards(products, B)


def flops(k: int, T: int, F: int, H: int) -> float:
    """Multiply-adds x 2 of :func:`gemm_floor`'s products."""
    return 2.0 * B * (T * F * k * H + T * H * k * H + (T - 1) * k * H * H + F * T * k * H + H * T * k * H)


def train_row(
    name: str, H: int, shape: dict[str, int], threads: int, rounds: int, min_seconds: float
) -> dict[str, Any]:
    cell, k = CELLS[name]
    T, F = shape["T"], shape["F"]
    rng = np.random.default_rng(0)
    x, y = rng.random((B, T, F), dtype=np.float32), rng.integers(0, C, B)
    models = {"ours": ours(cell, F, H, threads)}
    if ROWS["T"] >= T:  # at T=784 these take up to 15x as long: left out to keep the run short
        models["ours (NumPy kernels)"] = ours(cell, F, H, threads, fused=False)
        if threads > 1:
            models["ours (1 shard, BLAS threads)"] = ours(cell, F, H, 1)
    variants: dict[str, Callable[[], Any]] = {k_: (lambda m=m: m.train_batch(x, y)) for k_, m in models.items()}
    torch_model = theirs(name, F, H)
    xt, yt = torch_model.to_device(x), torch_model.to_device(y)
    variants["torch"] = lambda: float(torch_model.train_batch(xt, yt))
    variants["GEMM floor"] = gemm_floor(k, T, F, H, threads)
    seconds = best_of(variants, rounds, min_seconds)
    return {"cell": name, "hidden": H, "T": T, "F": F, "seconds": seconds,
            "floor_gflops": flops(k, T, F, H) / seconds["GEMM floor"] / 1e9}


def infer_row(name: str, H: int, threads: int, rounds: int, min_seconds: float) -> dict[str, Any]:
    cell, _ = CELLS[name]
    T, F = ROWS["T"], ROWS["F"]
    x = np.random.default_rng(0).random((INFER_SAMPLES, T, F), dtype=np.float32)
    model, torch_model = ours(cell, F, H, threads), theirs(name, F, H)
    xt = torch_model.to_device(x)
    seconds = best_of({"ours": lambda: model.predict_proba(x), "torch": lambda: torch_model.predict_proba(xt)},
                      rounds, min_seconds)
    return {"cell": name, "hidden": H, "T": T, "samples_per_s": {k: INFER_SAMPLES / s for k, s in seconds.items()}}


def markdown(info: dict[str, Any], train: list[dict], infer: list[dict]) -> str:
    lines = [
        "# From-scratch cells against PyTorch on this CPU",
        "",
        f"`python3 tests/benchmarks/cpu_speed.py --threads {info['threads']}` on {info['date_utc']}: "
        f"{info['cpu']} ({info['cores']} cores; AVX2 {'yes' if info['avx2'] else 'no'}, "
        f"AVX-512 {'yes' if info['avx512f'] else 'no'}), {info['threads']} thread(s) for every variant; "
        f"Python {info['python']}, NumPy {info['numpy']}, numba {info['numba']}, PyTorch {info['torch']}, "
        f"BLAS {', '.join(info['blas'])}"
        + (f"; held to older instructions by {', '.join(f'{k}={v}' for k, v in info['isa_settings'].items())}"
           if info["isa_settings"] else "")
        + f". Load average (1, 5, 15 min) {fmt_load(info['load_average_start'])} at the "
        f"start, {fmt_load(info['load_average_end'])} at the end: the machine is shared, so the variants are "
        "interleaved round by round and each keeps its best round; compare ratios, not absolute times.",
        "",
        f"## Training step (batch {B}, Adam, gradient clipping)",
        "",
        "Milliseconds per step; **speed-up** = PyTorch's time / ours (>1: ours is faster); "
        "**floor** = the step's matrix products alone at the same shapes and threads (their rate in GFLOP/s), "
        "**ours / floor** = how far ours is from it.",
        "",
    ]
    names = [k for k in train[0]["seconds"] if k not in ("torch", "GEMM floor")]  # the T=28 rows have them all
    lines.append(
        "| cell | hidden | T | " + " | ".join(names) + " | torch | speed-up | floor (GFLOP/s) | ours / floor |"
    )
    lines.append("| --- | ---: | ---: |" + " ---: |" * len(names) + " ---: | ---: | ---: | ---: |")
    for r in train:
        s = r["seconds"]
        cells = " | ".join(f"{1e3 * s[n]:.2f}" if n in s else "-" for n in names)
        lines.append(f"| {r['cell']} | {r['hidden']} | {r['T']} | {cells} | {1e3 * s['torch']:.2f} | "
                     f"**{s['torch'] / s['ours']:.2f}x** | {1e3 * s['GEMM floor']:.2f} ({r['floor_gflops']:.0f}) | "
                     f"{s['ours'] / s['GEMM floor']:.2f}x |")
    lines += [
        "",
        f"## Inference ({INFER_SAMPLES} samples, T={ROWS['T']}, `predict_proba`)",
        "",
        "| cell | hidden | ours (samples/s) | torch (samples/s) | ours / torch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in infer:
        s = r["samples_per_s"]
        lines.append(
            f"| {r['cell']} | {r['hidden']} | {s['ours']:,.0f} | {s['torch']:,.0f} "
            f"| **{s['ours'] / s['torch']:.2f}x** |"
        )
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def fmt_load(load: Any) -> str:
    return ", ".join(f"{v:.1f}" for v in load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--hidden", default="128,256", help="comma-separated hidden sizes")
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--rounds", type=int, default=8, help="rounds at T=28 (about 0.15 s each)")
    parser.add_argument("--long-rounds", type=int, default=2, help="rounds at T=784 (one step each)")
    parser.add_argument("--no-long", action="store_true", help="skip the T=784 steps")
    parser.add_argument("--out", type=Path, default=Path("results/cpu-speed"))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    hidden = [int(h) for h in args.hidden.split(",")]
    cells = args.cells.split(",")
    info = machine(args.threads)
    print(json.dumps(info), flush=True)
    train, infer = [], []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for H in hidden:
            for name in cells:
                train.append(train_row(name, H, ROWS, args.threads, args.rounds, 0.15))
                print(json.dumps(train[-1]), flush=True)
                infer.append(infer_row(name, H, args.threads, args.rounds, 0.15))
                print(json.dumps(infer[-1]), flush=True)
        if not args.no_long:
            for H in hidden:
                for name in cells:
                    train.append(train_row(name, H, PIXELS, args.threads, args.long_rounds, 0.0))
                    print(json.dumps(train[-1]), flush=True)
    info["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(info, train, infer)
    write_atomically(
        args.out / "cpu-speed.json", json.dumps({"machine": info, "train": train, "inference": infer}, indent=1) + "\n"
    )
    write_atomically(args.out / "cpu-speed.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
