"""Where a run ran: host, CPU, GPUs and CUDA, BLAS threads, thread variables, packages, git state.

Every pair record carries :func:`environment`, so a number can always be traced to the machine
and the code that produced it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seqbench.results import json_ready


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_info(cwd: Path | None = None) -> dict[str, Any] | None:
    """The git commit of ``cwd`` (default: seqbench's source tree), whether tracked files differ
    from it, and the SHA-256 of that diff; ``None`` outside a git checkout."""
    cwd = cwd or Path(__file__).resolve().parent
    head = _git(["rev-parse", "HEAD"], cwd)
    if head is None:
        return None
    diff = _git(["diff", "HEAD", "--no-ext-diff", "--no-color", "--binary"], cwd)
    return {
        "commit": head.decode().strip(),
        "dirty": bool(diff) if diff is not None else None,
        "diff_sha256": hashlib.sha256(diff).hexdigest() if diff else None,
    }


def git_commit(cwd: Path | None = None) -> str | None:
    """The current git commit of ``cwd``, with ``-dirty`` when tracked files differ from it."""
    info = git_info(cwd)
    return None if info is None else info["commit"] + ("-dirty" if info["dirty"] else "")


def code_version(env: Any, digits: int = 12) -> tuple[str, tuple[str, ...]] | None:
    """The code an environment ran: its commit (``digits`` digits) and ``dirty`` with ``diff``
    and the diff's hash (12 digits) when tracked files differed; None where it does not say."""
    git = env.get("git") if isinstance(env, dict) else None
    if isinstance(git, dict) and isinstance(git.get("commit"), str):
        dirty = ("dirty", f"diff {str(git.get('diff_sha256'))[:12]}") if git.get("dirty") else ()
        return git["commit"][:digits], dirty
    commit = env.get("git_commit") if isinstance(env, dict) else None
    if isinstance(commit, str):
        return commit.removesuffix("-dirty")[:digits], ("dirty",) if commit.endswith("-dirty") else ()
    return None


def code_state(env: Any, digits: int = 12) -> str | None:
    """:func:`code_version` for people: ``commit 0123456789ab (dirty, diff abcdef012345)``."""
    version = code_version(env, digits)
    if version is None:
        return None
    commit, flags = version
    return f"commit {commit}" + (f" ({', '.join(flags)})" if flags else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _nvidia_smi() -> list[list[str]]:
    """Name, memory and driver of each NVIDIA GPU; empty where there is none (or no nvidia-smi)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [[f.strip() for f in line.split(",")] for line in out.stdout.splitlines() if line.strip()]


def machine_info(gpus: list[list[str]] | None = None) -> dict[str, Any]:
    """The host: OS, CPU, core count, memory and GPUs (each pair also records its model's device)."""
    gpus = _nvidia_smi() if gpus is None else gpus
    return {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "gpus": [", ".join(g[:2]) for g in gpus],
        "hostname": platform.node(),
    }


def cuda_info(gpus: list[list[str]]) -> dict[str, Any] | None:
    """The NVIDIA driver and the CUDA runtimes of CuPy and PyTorch, where there is a GPU."""
    if not gpus:
        return None
    runtime: dict[str, str] = {}
    with contextlib.suppress(Exception):
        import cupy

        version = cupy.cuda.runtime.runtimeGetVersion()
        runtime["cupy"] = f"{version // 1000}.{version % 1000 // 10}"
    torch = sys.modules.get("torch")  # only when a plugin imported it: torch is slow to import
    with contextlib.suppress(Exception):
        if torch is not None and torch.version.cuda:
            runtime["torch"] = str(torch.version.cuda)
    return {"driver": gpus[0][2] if len(gpus[0]) > 2 else None, "runtime": runtime}


def blas_info() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries loaded in this process and their threads (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency
        return []
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()]


def thread_env() -> dict[str, str]:
    """The environment variables that set thread counts and visible GPUs."""
    return {k: v for k, v in sorted(os.environ.items()) if k.endswith("_NUM_THREADS") or k == "CUDA_VISIBLE_DEVICES"}


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    import importlib.metadata

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(plugins: dict[str, str | None]) -> dict[str, Any]:
    """Everything about where a run ran that a reader of its numbers needs."""
    gpus = _nvidia_smi()
    git = git_info()
    return json_ready({
        "python": sys.version.split()[0],
        "packages": package_versions(
            ["seqbench", "numpy", "pluggy", "click", "matplotlib", "threadpoolctl", "cupy-cuda12x", "cupy-cuda13x",
             "torch"]
        ),
        "plugins": plugins,
        "git_commit": None if git is None else git["commit"] + ("-dirty" if git["dirty"] else ""),
        "git": git,
        "machine": machine_info(gpus),
        "cuda": cuda_info(gpus),
        "blas": blas_info(),
        "thread_env": thread_env(),
    }, "environment")
