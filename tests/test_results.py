"""seqbench.results: values at the JSON boundary, pair file names, old run directories, the run
lock, temporary files, and the provenance of a run."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from seqbench import provenance
from seqbench import results as res


# --- values ---------------------------------------------------------------------------------


def test_numpy_values_become_plain_json():
    value = {"a": np.float64(0.5), "b": np.int64(3), "c": np.arange(3), "d": (np.bool_(True), "x"),
             np.int32(7): np.str_("s"), "e": np.array([[1.5]], np.float32)}
    ready = res.json_ready(value)
    assert ready == {"a": 0.5, "b": 3, "c": [0, 1, 2], "d": [True, "x"], "7": "s", "e": [[1.5]]}
    assert type(ready["a"]) is float and type(ready["b"]) is int and type(ready["d"][0]) is bool
    assert type(ready["7"]) is str
    json.dumps(ready, allow_nan=False)


@pytest.mark.parametrize("value, message", [
    ({"lr": float("nan")}, "defaults.lr is NaN"),
    ({"x": [1, np.float32("inf")]}, "defaults.x[1] is infinity"),
    ({"fp": b"abc"}, "defaults.fp is bytes, which JSON cannot hold"),
    ({"f": object()}, "defaults.f is object"),
    ({(1, 2): 3}, "defaults has a key of type tuple"),
    ({"a": {"b": np.array([0.0, np.nan])}}, "defaults.a.b[1] is NaN"),
])
def test_values_json_cannot_hold_are_refused_naming_the_field(value, message):
    with pytest.raises(res.UnwritableValue, match=message.replace("[", r"\[").replace("]", r"\]")):
        res.json_ready(value, "defaults")


def test_loads_refuses_nan_and_infinity():
    for text in ('{"a": NaN}', '[Infinity]', '[-Infinity]'):
        with pytest.raises(ValueError, match="finite"):
            res.loads(text)


# --- pair file names ------------------------------------------------------------------------


def test_pair_stems_are_distinct_for_distinct_pairs():
    rng = random.Random(0)
    alphabet = "ab_-.+%/ é"
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))) for _ in range(400)}
    names |= {"h-ok", "x__y", "h-ok__x", "y", "a+b", "a%2Bb", "seed0"}
    pairs = [(m, d, s) for m in sorted(names)[:60] for d in sorted(names)[-60:] for s in (0, 1)]
    stems = {res.pair_stem(*p) for p in pairs}
    assert len(stems) == len(pairs)
    assert all("/" not in s and not s.startswith(".") for s in stems)
    assert res.pair_stem("h-ok", "x__y", 0) != res.pair_stem("h-ok__x", "y", 0)
    assert res.pair_stem("rnn-cpu", "mnist", 2) == "rnn-cpu+mnist+seed2"  # valid names stay readable


def _record(model: str, dataset: str, seed: int, status: str = "ok", finished: str = "2026-01-01T00:00:00+00:00"):
    return {"schema_version": 1, "model": model, "dataset": dataset, "seed": seed, "status": status, "reason": None,
            "params": {}, "dataset_info": {"fingerprint": "sha256:x"}, "history": [{}], "best_epoch": 1,
            "epochs_run": 1, "metrics": {"accuracy": {"accuracy": 0.5}}, "timing": {}, "finished": finished}


def test_a_run_directory_of_schema_1_0_reads_by_content(tmp_path):
    """1.0 named files <model>__<dataset>__seed<k>; its predictions are found where the record is that pair's."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    old = _record("rnn-cpu", "mnist", 0)
    (pairs / "rnn-cpu__mnist__seed0.json").write_text(json.dumps(old))
    np.save(pairs / "rnn-cpu__mnist__seed0.pred.npy", np.array([[1, 2], [1, 0]], np.int8))
    clash = _record("h-ok", "x__y", 0)  # 1.0 wrote it under the name that h-ok__x x y would have had
    (pairs / "h-ok__x__y__seed0.json").write_text(json.dumps(clash))
    np.save(pairs / "h-ok__x__y__seed0.pred.npy", np.array([[0], [0]], np.int8))
    read = res.read_pairs(tmp_path)
    assert read == {("rnn-cpu", "mnist", 0): old, ("h-ok", "x__y", 0): clash}
    assert res.read_predictions(tmp_path, old).tolist() == [[1, 2], [1, 0]]
    assert res.read_predictions(tmp_path, clash).tolist() == [[0], [0]]
    assert res.read_predictions(tmp_path, _record("h-ok__x", "y", 0)) is None  # not that pair's file


def test_a_pair_rerun_under_the_new_name_wins_over_its_failed_old_record(tmp_path):
    (tmp_path / "pairs").mkdir()
    failed = {**_record("m", "d", 0, "failed"), "metrics": None}
    (tmp_path / "pairs" / "m__d__seed0.json").write_text(json.dumps(failed))
    ok = {**_record("m", "d", 0, finished="2026-01-02T00:00:00+00:00"), "schema_version": "1.1"}
    res.write_pair(tmp_path, ok)
    assert res.read_pairs(tmp_path) == {("m", "d", 0): ok}


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        res.atomic_write_text(tmp_path / "sub" / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sub" / "f.txt").stat().st_mode) == mode
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.txt"]


def test_stale_temporary_files_are_removed_and_young_ones_kept(tmp_path):
    (tmp_path / "mnist").mkdir()
    old, young, data = tmp_path / "mnist" / ".a.gz.0a1b2c3d.part", tmp_path / "mnist" / ".b.gz.4e5f6a7b.part", tmp_path / "mnist" / "c.gz"
    for path in (old, young, data):
        path.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert res.remove_stale_temp([tmp_path / "mnist"], older_than=3600) == [old]
    assert young.exists() and data.exists()


HOLD = """
import sys, time
from pathlib import Path
from seqbench import provenance
from seqbench import results as res
with res.run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_the_run_lock_refuses_a_second_holder_and_a_dead_holders_lock_is_stale(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        with pytest.raises(res.ResultsError, match=f"in use by another seqbench run \\(pid {proc.pid}\\)"):
            with res.run_lock(tmp_path):
                pass
    finally:
        proc.kill()
        proc.wait()
    assert (tmp_path / res.LOCK_FILE).read_text() == f"{proc.pid}\n"  # left by the killed holder
    with res.run_lock(tmp_path):
        assert (tmp_path / res.LOCK_FILE).read_text() == f"{os.getpid()}\n"
        with pytest.raises(res.ResultsError, match="in use"):  # flock: a second descriptor, even ours
            with res.run_lock(tmp_path):
                pass
    assert not (tmp_path / res.LOCK_FILE).exists()


# --- provenance -----------------------------------------------------------------------------


def test_the_environment_names_blas_threads_and_git(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    env = provenance.environment({"plug": "1.0"})
    assert env["thread_env"]["OMP_NUM_THREADS"] == "1" and env["thread_env"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["blas"] and env["blas"][0]["num_threads"] >= 1
    assert env["packages"]["threadpoolctl"] and env["plugins"] == {"plug": "1.0"}
    if env["git"] is not None:
        assert env["git_commit"].startswith(env["git"]["commit"])
        assert env["git_commit"].endswith("-dirty") == env["git"]["dirty"]


def test_git_info_hashes_the_diff_of_a_dirty_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f").write_text("a\n")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    clean = provenance.git_info(tmp_path)
    assert clean["dirty"] is False and clean["diff_sha256"] is None and len(clean["commit"]) == 40
    (tmp_path / "f").write_text("b\n")
    dirty = provenance.git_info(tmp_path)
    (tmp_path / "f").write_text("c\n")
    assert dirty["dirty"] and len(dirty["diff_sha256"]) == 64
    assert provenance.git_info(tmp_path)["diff_sha256"] != dirty["diff_sha256"]
    assert provenance.git_commit(tmp_path) == clean["commit"] + "-dirty"


def test_gpu_driver_and_cuda_runtimes_where_there_is_a_gpu(monkeypatch, tmp_path):
    """No GPU here: a stand-in nvidia-smi and CuPy."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H200, 143771 MiB, 550.54.15'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(runtimeGetVersion=lambda: 12040)))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    env = provenance.environment({})
    assert env["machine"]["gpus"] == ["NVIDIA H200, 143771 MiB"]
    assert env["cuda"]["driver"] == "550.54.15" and env["cuda"]["runtime"]["cupy"] == "12.4"


def test_no_gpu_no_cuda(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi, no git
    env = provenance.environment({})
    assert env["machine"]["gpus"] == [] and env["cuda"] is None and env["git"] is None


def test_a_resume_keeps_the_first_session_of_a_1_0_run():
    stored = {"schema_version": 1, "created": "t0", "command": "seqbench run --all", "environment": {"python": "3"},
              "config": {"data_dir": "/d"}, "pairs": [{"model": "m"}]}
    session = res.new_session("seqbench run --resume r", "/e", {"python": "3.11"})
    resumed = res.resumed_results(stored, session)
    assert resumed["schema_version"] == res.SCHEMA_VERSION and resumed["pairs"] == []
    assert resumed["command"] == "seqbench run --all" and resumed["environment"] == {"python": "3"}
    assert resumed["sessions"] == [
        {"started": "t0", "command": "seqbench run --all", "data_dir": "/d", "environment": {"python": "3"}}, session
    ]
