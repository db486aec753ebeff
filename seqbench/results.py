"""Results on disk: one JSON record per finished pair, and the run's ``results.json``.

Layout of a run directory::

    results.json                 the whole run (schema below), rewritten after every pair
    pairs/<model>__<dataset>__seed<k>.json   one record per pair, written when the pair ends
    summary.md/.csv, per_class.md/.csv, timing.md/.csv, plots/*.png   (seqbench.tables, .plots)

Every file is written atomically (temporary file in the same directory, then rename), so an
interrupted run never leaves a half-written file and never loses a finished pair.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
PAIRS_DIR = "pairs"
DONE_STATUSES = ("ok", "diverged")


class ResultsError(Exception):
    """A results directory or file cannot be read or written."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def pair_key(model: str, dataset: str, seed: int) -> str:
    return f"{model}__{dataset}__seed{seed}"


def pair_path(run_dir: Path, record: dict[str, Any], suffix: str = ".json") -> Path:
    """Where a pair's record (``.json``) or test predictions (``.pred.npy``) live."""
    return run_dir / PAIRS_DIR / f"{pair_key(record['model'], record['dataset'], record['seed'])}{suffix}"


def write_pair(run_dir: Path, record: dict[str, Any]) -> Path:
    path = pair_path(run_dir, record)
    atomic_write_json(path, record)
    return path


PREDICTIONS_SUFFIX = ".pred.npy"


def write_predictions(run_dir: Path, record: dict[str, Any], predictions: Any) -> Path:
    """Store a pair's ``(2, n_test)`` array of test labels and predicted labels beside its record."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(predictions), allow_pickle=False)
    path = pair_path(run_dir, record, PREDICTIONS_SUFFIX)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_predictions(run_dir: Path, record: dict[str, Any]) -> Any:
    """A pair's ``(labels, predictions)`` rows as a ``(2, n_test)`` array, or ``None`` when not stored."""
    import numpy as np

    path = pair_path(run_dir, record, PREDICTIONS_SUFFIX)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable predictions ({exc})") from None
    if arr.ndim != 2 or arr.shape[0] != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ResultsError(f"{path}: expected a (2, N) integer array, got shape {arr.shape} and dtype {arr.dtype}")
    return arr


def read_pairs(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The pair records of a run directory, by :func:`pair_key`."""
    records = {}
    for path in sorted((run_dir / PAIRS_DIR).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path}: unreadable pair record ({exc})") from None
        records[pair_key(record["model"], record["dataset"], record["seed"])] = record
    return records


def load_results(run_dir: str | Path) -> dict[str, Any]:
    """Read ``results.json`` from a run directory (or the file itself), checking its schema."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(results, dict) or results.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: unsupported results schema {results.get('schema_version') if isinstance(results, dict) else '?'}"
            f" (expected {SCHEMA_VERSION})"
        )
    return results


def git_commit(cwd: Path | None = None) -> str | None:
    """The current git commit of ``cwd`` (default: the source tree of seqbench), if any."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    try:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return commit
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


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


def _gpus() -> list[str]:
    """NVIDIA GPUs as ``nvidia-smi`` names them; empty where there is none (or no nvidia-smi)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def machine_info() -> dict[str, Any]:
    """The host: OS, CPU, core count, memory and GPUs (each pair also records its model's device)."""
    return {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "gpus": _gpus(),
        "hostname": platform.node(),
    }


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    import importlib.metadata

    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(plugins: dict[str, str | None]) -> dict[str, Any]:
    """Everything about where a run ran that a reader of its numbers needs."""
    return {
        "python": sys.version.split()[0],
        "packages": package_versions(
            ["seqbench", "numpy", "pluggy", "click", "matplotlib", "cupy-cuda12x", "cupy-cuda13x", "torch"]
        ),
        "plugins": plugins,
        "git_commit": git_commit(),
        "machine": machine_info(),
    }


def new_results(config: dict[str, Any], env: dict[str, Any], command: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": now_iso(),
        "updated": now_iso(),
        "command": command,
        "config": config,
        "environment": env,
        "pairs": [],
    }


def write_results(run_dir: Path, results: dict[str, Any]) -> Path:
    results["updated"] = now_iso()
    path = run_dir / RESULTS_FILE
    atomic_write_json(path, results)
    return path
