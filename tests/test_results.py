"""seqbench.results: values at the JSON boundary, pair file names, old run directories, the run
lock, temporary files, and the provenance of a run, and
the failure paths of the atomic write."""

from __future__ import annotations

import json
import os
import random
import re
import resource
import signal
import stat
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from seqbench import fileio, provenance, schema
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
        fileio.atomic_write_text(tmp_path / "sub" / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sub" / "f.txt").stat().st_mode) == mode
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.txt"]


def test_stale_temporary_files_are_removed_and_young_ones_kept(tmp_path):
    (tmp_path / "mnist").mkdir()
    old, young, data = (
        tmp_path / "mnist" / ".a.gz.0a1b2c3d.part",
        tmp_path / "mnist" / ".b.gz.4e5f6a7b.part",
        tmp_path / "mnist" / "c.gz",
    )
    for path in (old, young, data):
        path.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert fileio.remove_stale_temp([tmp_path / "mnist"], older_than=3600) == [old]
    assert young.exists() and data.exists()


HOLD = """
import sys, time
from pathlib import Path
from seqbench import fileio
with fileio.run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_the_run_lock_refuses_a_second_holder_and_a_dead_holders_lock_is_stale(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        with (pytest.raises(res.ResultsError, match=f"in use by another seqbench run \\(pid {proc.pid}\\)"),
              fileio.run_lock(tmp_path)):
            pass
    finally:
        proc.kill()
        proc.wait()
    assert (tmp_path / fileio.LOCK_FILE).read_text() == f"{proc.pid}\n"  # left by the killed holder
    with fileio.run_lock(tmp_path):
        assert (tmp_path / fileio.LOCK_FILE).read_text() == f"{os.getpid()}\n"
        # flock: a second descriptor, even ours
        with pytest.raises(res.ResultsError, match="in use"), fileio.run_lock(tmp_path):
            pass
    assert not (tmp_path / fileio.LOCK_FILE).exists()


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
    cupy = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(runtimeGetVersion=lambda: 12040))
    )
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
    resumed = res.resumed_results(res.migrate(stored), session)
    assert resumed["schema_version"] == res.SCHEMA_VERSION and resumed["pairs"] == []
    assert resumed["command"] == "seqbench run --all" and resumed["environment"] == {"python": "3"}
    assert resumed["sessions"] == [
        {"started": "t0", "command": "seqbench run --all", "data_dir": "/d", "environment": {"python": "3"}}, session
    ]


def test_a_resume_writes_this_seqbench_s_schema_version_over_a_newer_minor():
    """A run written by a newer 1.x is read as it is (unknown fields kept), but what the resume
    writes is this version's format, so the file says so."""
    stored = {"schema_version": "1.9", "created": "t0", "future_field": 1, "sessions": [], "pairs": []}
    resumed = res.resumed_results(res.migrate(stored), res.new_session("seqbench run --resume r", "/e", {}))
    assert resumed["schema_version"] == res.SCHEMA_VERSION != "1.9"
    assert resumed["future_field"] == 1


# --- a write that fails part way --------------------------------------------------------------
# The failure paths of the atomic write: a write that fails part way leaves the old file intact
# and no temporary file behind.


OLD = b"old contents\n" * 20  # 260 bytes
NEW = b"new contents, longer than the file size limit\n" * 200  # 9,400 bytes


def _assert_old_file_intact(path):
    assert path.read_bytes() == OLD
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_bytes(OLD)
    return path


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE and SIGXFSZ (POSIX)")
def test_a_write_that_fails_part_way_leaves_the_old_file(old_file):
    """The disk fills up (the file size limit is reached) half way through the new contents."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError):
            fileio.atomic_write_bytes(old_file, NEW)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    _assert_old_file_intact(old_file)
    fileio.atomic_write_bytes(old_file, NEW)  # and without the limit it goes through
    assert old_file.read_bytes() == NEW


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_a_failure_before_the_rename_leaves_the_old_file(old_file, monkeypatch, where):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, where, fail)
    with pytest.raises(OSError, match="No space left"):
        fileio.atomic_write_json(old_file, {"a": 1})
    monkeypatch.undo()
    _assert_old_file_intact(old_file)


def test_an_interrupt_during_the_write_leaves_the_old_file(old_file, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write_text(old_file, "new")
    monkeypatch.undo()
    _assert_old_file_intact(old_file)


def test_a_successful_write_replaces_the_file_whole_and_creates_its_directory(tmp_path):
    path = tmp_path / "deep" / "er" / "f.json"
    fileio.atomic_write_json(path, {"b": [1, 2.5], "a": None})
    assert path.read_text() == '{\n  "b": [\n    1,\n    2.5\n  ],\n  "a": null\n}\n'
    fileio.atomic_write_bytes(path, b"x")
    assert path.read_bytes() == b"x" and os.listdir(path.parent) == ["f.json"]


def test_json_writes_refuse_nan_before_touching_the_file(old_file):
    with pytest.raises(ValueError):
        fileio.atomic_write_json(old_file, {"loss": float("nan")})
    _assert_old_file_intact(old_file)


def test_temporary_names_are_hidden_beside_the_target_and_unique(tmp_path):
    target = tmp_path / "r.json"
    made = [fileio.create_temp(target) for _ in range(20)]
    for fd, _ in made:
        os.close(fd)
    names = [p.name for _, p in made]
    assert len(set(names)) == 20
    assert all(
        n.startswith(".r.json.") and n.endswith(".tmp") and p.parent == tmp_path
        for n, (_, p) in zip(names, made, strict=True)
    )
    fd, part = fileio.create_temp(target, ".part")
    os.close(fd)
    assert part.name.endswith(".part")


# --- the run's results.json and which record of a pair wins (found by mutation testing) ------------


def test_new_results_hold_the_session_and_no_pairs():
    session = res.new_session("seqbench run -m x", "/data", {"python": "3.11"})
    results = res.new_results({"seeds": [0]}, session)
    assert results == {"schema_version": res.SCHEMA_VERSION, "created": session["started"],
                       "updated": session["started"], "command": "seqbench run -m x", "config": {"seeds": [0]},
                       "environment": {"python": "3.11"}, "sessions": [session], "pairs": []}


def test_a_resume_of_a_run_with_sessions_appends_one():
    first = res.new_session("seqbench run", "/d", {"python": "3"})
    second = res.new_session("seqbench run --resume r", "/e", {"python": "3.1"})
    stored = {**res.new_results({"data_dir": "/d"}, first), "pairs": [{"model": "m"}]}
    stored["sessions"].append(second)
    third = res.new_session("seqbench run --resume r", "/f", {"python": "3.2"})
    resumed = res.resumed_results(stored, third)
    assert resumed["sessions"] == [first, second, third] and resumed["pairs"] == []
    assert stored["sessions"] == [first, second]  # the stored results are not changed


def test_write_results_stamps_the_update_and_writes_json(tmp_path):
    results = {"updated": "long ago", "pairs": []}
    path = res.write_results(tmp_path, results)
    assert path == tmp_path / "results.json" and results["updated"][:2] == "20" and "T" in results["updated"]
    assert json.loads(path.read_text()) == results


def _rec(status, finished=None, started=None, seed=0):
    done = status in ("ok", "diverged")
    return {"schema_version": "1.1", "model": "m", "dataset": "d", "seed": seed, "status": status, "reason": None,
            "params": {}, "dataset_info": {"fingerprint": "sha256:x"}, "history": [{}] if done else None,
            "best_epoch": 1 if done else None, "epochs_run": 1 if done else None,
            "metrics": {"accuracy": {"accuracy": 0.5}} if status == "ok" else None, "timing": {} if done else None,
            "finished": finished, "started": started}


@pytest.mark.parametrize("first, second, winner", [
    (("failed", "2026-01-03"), ("ok", "2026-01-01"), 1),  # a finished record beats a later failure
    (("ok", "2026-01-01"), ("failed", "2026-01-03"), 0),
    (("diverged", "2026-01-01"), ("skipped", "2026-01-02"), 0),  # diverged is finished too
    (("ok", "2026-01-01"), ("ok", "2026-01-02"), 1),  # then the later wins
    (("ok", "2026-01-02"), ("ok", "2026-01-01"), 0),
    (("failed", None, "2026-01-05"), ("failed", "2026-01-04"), 0),  # 'started' where not finished
    (("ok", "2026-01-01"), ("ok", "2026-01-01"), 1),  # a tie: the file read last
    (("ok", "2026-01-01"), ("ok", None), 0),  # a record with no time is older than any with one
])
def test_which_record_of_a_pair_wins(tmp_path, first, second, winner):
    (tmp_path / "pairs").mkdir()
    records = [_rec(*first), _rec(*second)]
    for name, record in zip(("a", "b"), records, strict=True):  # read in file-name order: a, then b
        record["params"] = {"file": name}  # told apart where all else ties
        (tmp_path / "pairs" / f"{name}.json").write_text(json.dumps(record))
    assert res.read_pairs(tmp_path) == {("m", "d", 0): records[winner]}


def test_an_unreadable_pair_record_names_its_file(tmp_path):
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "m+d+seed0.json").write_text('{"model": NaN}')
    with pytest.raises(res.ResultsError, match=r"m\+d\+seed0.json: unreadable pair record .*move it away"):
        res.read_pairs(tmp_path)


def test_a_pair_record_that_fails_its_check_names_its_file(tmp_path):
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "x.json").write_text(json.dumps({**_rec("ok", "2026-01-01"), "status": "great"}))
    with pytest.raises(res.ResultsError, match=r"pairs/x\.json: m x d seed 0: status 'great' is not one of"):
        res.read_pairs(tmp_path)


def test_stale_temporary_files_go_by_default_and_other_hidden_files_stay(tmp_path):
    (tmp_path / "sub").mkdir()
    temp, part = tmp_path / ".results.json.ab12cd34.tmp", tmp_path / "sub" / ".f.0123abcd.part"
    keep = [tmp_path / ".seqbench.lock", tmp_path / ".hidden.json", tmp_path / "visible.tmp",
            tmp_path / ".results.json.ab12.tmp", tmp_path / ".f.part"]  # not named as seqbench names its own
    for path in [temp, part, *keep]:
        path.write_text("x")
    assert sorted(fileio.remove_stale_temp([tmp_path, tmp_path / "sub"])) == sorted([temp, part])  # even just written
    assert all(path.exists() for path in keep) and not temp.exists() and not part.exists()


def test_json_ready_names_a_top_level_value_and_refuses_other_array_likes():
    import array

    with pytest.raises(res.UnwritableValue, match=r"^a value is NaN"):
        res.json_ready(float("nan"))
    with pytest.raises(res.UnwritableValue, match=r"^lr is infinity"):
        res.json_ready({"lr": float("inf")})
    with pytest.raises(res.UnwritableValue, match=r"^x is array, which JSON cannot hold"):
        res.json_ready({"x": array.array("i", [1])})  # has tolist() but is not NumPy


def test_non_finite_values_and_bad_keys_are_described():
    with pytest.raises(res.UnwritableValue, match=r"^a value is -infinity"):
        res.json_ready(float("-inf"))
    with pytest.raises(res.UnwritableValue, match=r"^a value is object, which JSON cannot hold"):
        res.json_ready(object())
    with pytest.raises(res.UnwritableValue, match=r"^a mapping has a key of type tuple; JSON keys are text"):
        res.json_ready({(1, 2): 3})


def test_predictions_are_never_pickled(tmp_path):
    import numpy as np

    record = {"model": "m", "dataset": "d", "seed": 0}
    with pytest.raises(ValueError):
        res.write_predictions(tmp_path, record, np.array([[1, None]], dtype=object))
    path = res.pair_path(tmp_path, record, res.PREDICTIONS_SUFFIX)
    path.parent.mkdir(exist_ok=True)
    np.save(path, np.array([[1, 2], [3, 4]], dtype=object), allow_pickle=True)
    with pytest.raises(res.ResultsError, match=r"\.pred\.npy: unreadable predictions \("):
        res.read_predictions(tmp_path, record)


@pytest.mark.parametrize("array, shown", [("int3", r"shape \(3, 4\) and dtype int64"),
                                          ("float", r"shape \(2, 4\) and dtype float64")])
def test_predictions_must_be_two_integer_rows(tmp_path, array, shown):
    import numpy as np

    record = {"model": "m", "dataset": "d", "seed": 0}
    value = np.zeros((3, 4), np.int64) if array == "int3" else np.zeros((2, 4))
    res.write_predictions(tmp_path, record, value)
    with pytest.raises(res.ResultsError, match=f"expected a \\(2, N\\) integer array, got {shown}"):
        res.read_predictions(tmp_path, record)


def test_schema_versions_read_and_refused():
    assert res.parse_schema_version(1) == (1, 0) and res.parse_schema_version("1.2") == (1, 2)
    assert res.parse_schema_version("12.30") == (12, 30)
    with pytest.raises(ValueError, match=r"schema_version 'one' is not 'major\.minor'"):
        res.parse_schema_version("one")
    with pytest.raises(res.ResultsError, match=r"^x: schema_version 'one' is not 'major\.minor'"):
        res.check_schema_version("one", "x:")
    with pytest.raises(
        res.ResultsError, match=r"^x: results schema 2.0 is not readable by this seqbench \(it reads 1.x\)"
    ):
        res.check_schema_version("2.0", "x:")


def test_a_temporary_name_already_taken_is_skipped(tmp_path, monkeypatch):
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(fileio.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".f.json.aaaa.tmp").write_text("someone else's")
    fd, tmp = fileio.create_temp(tmp_path / "f.json")
    os.close(fd)
    assert tmp.name == ".f.json.bbbb.tmp" and (tmp_path / ".f.json.aaaa.tmp").read_text() == "someone else's"


def test_load_results_is_lenient_by_default_and_names_the_file(tmp_path):
    from results_factory import make_pair, make_results, write_run

    run = write_run(tmp_path / "run", make_results([make_pair()]))
    path = run / "results.json"
    path.write_text(path.read_text().replace('"ece": 0.01', '"ece": NaN'))
    assert res.load_results(run)["pairs"][0]["metrics"]["calibration"]["ece"] != 0.01  # NaN read
    with pytest.raises(res.ResultsError, match="finite"):
        res.load_results(run, strict=True)
    with pytest.raises(res.ResultsError, match=f"^{tmp_path / 'none'}: no such results file$"):
        res.load_results(tmp_path / "none")
    path.write_text("{not json")
    with pytest.raises(res.ResultsError, match=f"^{path}: not a readable results file"):
        res.load_results(path)
    path.write_text('{"schema_version": "1.1"}')
    with pytest.raises(res.ResultsError, match=f"^{path}:"):
        res.load_results(run)


# --- the checks of records read back from disk: each way a record is refused, and its message ------


def _good_pair(**changes):
    from results_factory import make_pair

    pair = make_pair()
    pair.update(changes)
    return pair


W = "rnn-cpu x mnist seed 0:"  # how a message names the pair, after where it was read


def _spoil(path, value):
    """A good pair with the field at ``path`` (dotted) set to ``value`` (deleted when ``...``)."""
    pair = _good_pair()
    *parents, last = path.split(".")
    obj = pair
    for key in parents:
        obj = obj[key]
    if value is ...:
        del obj[last]
    else:
        obj[last] = value
    return pair


@pytest.mark.parametrize("path, value, message", [
    ("model", ..., "pair record lacks model, dataset or seed"),
    ("dataset", ..., "pair record lacks model, dataset or seed"),
    ("seed", ..., "pair record lacks model, dataset or seed"),
    ("schema_version", "2.0", "results schema 2.0 is not readable by this seqbench (it reads 1.x);"
                              " use the seqbench that wrote it"),
    ("schema_version", "one", "schema_version 'one' is not 'major.minor'"),
    ("model", 3, "model and dataset must be names and seed an integer"),
    ("dataset", None, "model and dataset must be names and seed an integer"),
    ("seed", True, "model and dataset must be names and seed an integer"),
    ("seed", "0", "model and dataset must be names and seed an integer"),
    ("status", "done", f"{W} status 'done' is not one of ok, diverged, skipped, failed"),
    ("status", ..., f"{W} status None is not one of ok, diverged, skipped, failed"),
    ("reason", 5, f"{W} reason must be text, not int"),
    ("params", [], f"{W} params must be an object, not list"),
    ("best_epoch", 4.0, f"{W} best_epoch must be an integer, not float"),
    ("best_epoch", False, f"{W} best_epoch must be an integer, not bool"),
    ("history", {}, f"{W} history must be a list, not dict"),
    ("params", None, f"{W} an ok pair needs params"),
    ("metrics", None, f"{W} an ok pair needs metrics"),
    ("timing", ..., f"{W} an ok pair needs timing"),
    ("epochs_run", None, f"{W} an ok pair needs epochs_run"),
    ("metrics.calibration", 0.01, f"{W} metrics.calibration must be an object, not float"),
    ("metrics.accuracy.accuracy", 1.5, f"{W} metrics.accuracy.accuracy must be a number in [0, 1], not 1.5"),
    ("metrics.accuracy.accuracy", -0.1, f"{W} metrics.accuracy.accuracy must be a number in [0, 1], not -0.1"),
    ("metrics.accuracy.accuracy", "0.9", f"{W} metrics.accuracy.accuracy must be a number in [0, 1], not '0.9'"),
    ("timing.train_seconds", "12", f"{W} timing.train_seconds must be a number, not str"),
    ("timing.inference_repeats_seconds", [0.5, "x"],
     f"{W} timing.inference_repeats_seconds must be a number, not list"),
    ("history", [{"epoch": 1}, 3], f"{W} history must be a list of objects"),
    ("dataset_info.fingerprint", 7, f"{W} dataset_info.fingerprint must be text, not int"),
    ("dataset_info.n_test", "many", f"{W} dataset_info.n_test must be an integer, not str"),
    ("metrics.confusion.matrix", 3, f"{W} metrics.confusion.matrix must be a list, not int"),
])
def test_check_pair_refuses_each_broken_field_with_its_message(path, value, message):
    from seqbench.results import ResultsError, check_pair

    with pytest.raises(ResultsError) as exc:
        check_pair(_spoil(path, value), "pairs/x.json:")
    assert str(exc.value).startswith("pairs/x.json: ") and str(exc.value).endswith(message)
    if message.startswith(W):  # named once, after where
        assert str(exc.value) == f"pairs/x.json: {message}"


def _typed_properties(properties, skip=()):
    """The schema's properties of one JSON type (null aside): what the loader's checks read from it."""
    for name, node in properties.items():
        types = {node["type"]} if isinstance(node.get("type"), str) else set(node.get("type", ())) - {"null"}
        if name not in skip and "$ref" not in node and len(types) == 1 and types != {"number"}:
            yield name, types.pop()


_WRONG = {"string": 7, "integer": "7", "boolean": "yes", "object": [], "array": {}}


@pytest.mark.parametrize("name, kind", list(_typed_properties(
    schema.load("pair")["properties"], ("schema_version", "model", "dataset", "seed"))))
def test_check_pair_refuses_a_wrong_type_in_every_field_the_schema_types(name, kind):
    """The checks come from the schema: a field it types (stopped_early, worker, ...) is checked without
    a list of fields in results.py."""
    from seqbench.results import ResultsError, check_pair

    with pytest.raises(ResultsError, match=f"^w {W} {name} must be "):
        check_pair(_good_pair(**{name: _WRONG[kind]}), "w")


@pytest.mark.parametrize("name, kind",
                         list(_typed_properties(schema.load("results")["properties"]["config"]["properties"])))
def test_check_results_refuses_a_wrong_type_in_every_config_field_the_schema_types(name, kind):
    results = _good_results()
    results["config"][name] = _WRONG[kind]
    with pytest.raises(res.ResultsError, match=f"^r.json: config.{name} must be "):
        res.check_results(results, "r.json:")


@pytest.mark.parametrize("record, message", [
    ([], "pairs/x.json: a pair record must be an object, not list"),
    ("pair", "pairs/x.json: a pair record must be an object, not str"),
])
def test_check_pair_refuses_what_is_not_an_object(record, message):
    from seqbench.results import ResultsError, check_pair

    with pytest.raises(ResultsError, match=f"^{message}$"):
        check_pair(record, "pairs/x.json:")


@pytest.mark.parametrize("status", ["skipped", "failed", "diverged"])
def test_check_pair_accepts_good_records_and_unfinished_ones_without_results(status):
    from results_factory import make_pair

    from seqbench.results import check_pair

    check_pair(_good_pair(), "w")
    check_pair(_good_pair(schema_version=1, timing={"epoch_seconds_mean": None}, metrics={"accuracy": {"accuracy": 1}}),
               "w")
    check_pair(_good_pair(metrics={"accuracy": {"accuracy": 0}}, dataset_info={"fingerprint": None}), "w")
    check_pair(make_pair(status=status, reason="r"), "w")  # params etc. may be null when not ok
    check_pair(make_pair(status=status, reason="r") | {"params": None, "history": None}, "w")


def _good_results(pairs=None):
    from results_factory import make_pair, make_results

    return make_results(pairs if pairs is not None else [make_pair(), make_pair(seed=1)])


def _broken_results(change):
    results = _good_results()
    change(results)
    return results


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(schema_version="9.0"), "r.json: results schema 9.0 is not readable by this seqbench"),
    (lambda r: r.pop("schema_version"), "r.json: schema_version None is not 'major.minor'"),
    (lambda r: r.update(pairs={}), "r.json: pairs must be a list, not dict"),
    (lambda r: r.pop("pairs"), "r.json: pairs must be a list, not NoneType"),
    (lambda r: r["pairs"].append(3), "r.json: pair #2 of the results file lacks model, dataset or seed"),
    (lambda r: r["pairs"][1].pop("seed"), "r.json: pair #1 of the results file lacks model, dataset or seed"),
    (lambda r: r["pairs"][0].pop("model"), "r.json: pair #0 of the results file lacks model, dataset or seed"),
    (lambda r: r["pairs"][0].pop("dataset"), "r.json: pair #0 of the results file lacks model, dataset or seed"),
    (lambda r: r["pairs"][1].update(schema_version="3.1"), "r.json: pair #1: results schema 3.1 is not readable"),
])
def test_check_results_refuses_even_when_lenient(change, message):
    from seqbench.results import ResultsError, check_results

    for strict in (False, True):
        with pytest.raises(ResultsError) as exc:
            check_results(_broken_results(change), "r.json:", strict)
        assert str(exc.value).startswith(message)


@pytest.mark.parametrize("change, message", [
    (lambda r: r["pairs"][1].update(status="done"), "r.json: pair #1: rnn-cpu x mnist seed 1: status 'done' is not"),
    (lambda r: r["pairs"][1].update(seed=0), "r.json: rnn-cpu x mnist seed 0 is there twice"),
    (lambda r: r.pop("config"), "r.json: lacks config (the run's selection)"),
    (lambda r: r.update(config=[]), "r.json: config must be an object, not list"),
    (lambda r: r["config"].pop("seeds"), "r.json: config lacks seeds"),
    (lambda r: r["config"].update(quick="no"), "r.json: config.quick must be true or false, not str"),
    (lambda r: r.update(command=["seqbench"]), "r.json: command must be text, not list"),
    (lambda r: r.update(sessions={}), "r.json: sessions must be a list, not dict"),
    (lambda r: r.update(sessions=[{}, "s"]), "r.json: sessions must be a list of objects"),
    (lambda r: r["environment"].update(machine="ci"), "r.json: environment.machine must be an object, not str"),
    (lambda r: r["environment"].update(packages=[]), "r.json: environment.packages must be an object, not list"),
    (lambda r: r["environment"].update(git=1), "r.json: environment.git must be an object, not int"),
])
def test_check_results_strict_checks_every_field(change, message):
    from seqbench.results import ResultsError, check_results

    results = _broken_results(change)
    check_results(results, "r.json:", strict=False)  # lenient: readers check what they read
    with pytest.raises(ResultsError) as exc:
        check_results(results, "r.json:")  # strict by default
    assert str(exc.value).startswith(message)


def test_check_results_accepts_good_runs():
    from results_factory import make_pair

    from seqbench.results import check_results

    for results in (_good_results(), _good_results([]),
                    _good_results([make_pair(), make_pair("gru-cpu"), make_pair(dataset="cifar10")])):
        check_results(results, "r.json:")
    check_results(_good_results() | {"environment": None, "sessions": [{}]}, "r.json:")


def test_records_without_a_schema_version_are_read_as_1_0():
    from seqbench.results import check_pair, check_results

    old = _good_pair()
    del old["schema_version"]
    check_pair(old, "w")
    check_results(_good_results([old]), "r.json:")
    check_results(_good_results([old]), "r.json:", strict=False)


def test_check_pair_lists_every_missing_field_of_an_ok_pair():
    from seqbench.results import ResultsError, check_pair

    with pytest.raises(ResultsError, match=f"^w {W} an ok pair needs params, metrics$"):
        check_pair(_good_pair(params=None, metrics=None), "w")


@pytest.mark.parametrize("results, kind", [([], "list"), (None, "NoneType")])
def test_check_results_refuses_what_is_not_an_object(results, kind):
    from seqbench.results import ResultsError, check_results

    with pytest.raises(ResultsError, match=f"^r.json: a results file must be an object, not {kind}$"):
        check_results(results, "r.json:")


# --- list fields, load_results' strictness, a session's fields (found by mutation testing) ----------


@pytest.mark.parametrize("field, value, message", [
    ("models", ["rnn-cpu", 3], "r.json: config.models must be a list of names, not list"),
    ("datasets", "mnist", "r.json: config.datasets must be a list of names, not str"),
    ("seeds", [0, -1], "r.json: config.seeds must be a list of integers 0 or more, not list"),
    ("seeds", [0, True], "r.json: config.seeds must be a list of integers 0 or more, not list"),
])
def test_list_fields_of_the_config_check_every_item(field, value, message):
    results = _good_results()
    results["config"][field] = value
    with pytest.raises(res.ResultsError, match=f"^{message}$"):
        res.check_results(results, "r.json:")
    results["config"][field] = []  # an empty list is a list of anything
    res.check_results(results, "r.json:")


@pytest.mark.parametrize("value", [{"lr": 0.1}, {"lr": None}, {"lr": ["0.1"]}])
def test_an_object_of_texts_checks_every_value(value):
    """config.overrides (and a pair's metric_errors, the environment's thread_env): each value text."""
    results = _good_results()
    results["config"]["overrides"] = value
    with pytest.raises(res.ResultsError, match=r"^r\.json: config\.overrides must be an object of texts, not dict$"):
        res.check_results(results, "r.json:")
    results["config"]["overrides"] = {"lr": "0.1"}
    res.check_results(results, "r.json:")


def test_load_results_passes_its_strictness_to_the_checks(tmp_path):
    from results_factory import write_run

    results = _good_results()
    results["config"]["quick"] = "no"  # a wrong type, not a NaN: only the strict check refuses it
    run = write_run(tmp_path / "run", results)
    assert "quick" not in res.load_results(run)["config"]  # lenient: dropped, with a warning
    assert "quick" not in res.load_results(run, strict=False)["config"]
    with pytest.raises(res.ResultsError, match=f"^{run / 'results.json'}: config.quick must be true or false"):
        res.load_results(run, strict=True)


RESULTS = "results.json"


def _spoiled_run(tmp_path, path, value):
    from results_factory import write_run

    results = _good_results()
    *parents, last = path.split(".")
    obj = results
    for key in parents:
        obj = obj[int(key)] if isinstance(obj, list) else obj.setdefault(key, {})
    obj[last] = value
    return write_run(tmp_path / "run", results)


@pytest.mark.parametrize("path, value, field, message", [
    ("config.protocol", "fast", "config.protocol", "must be an object, not str"),
    ("config", ["seeds"], "config", "must be an object, not list"),
    ("config.tuned.models.gru-cpu", 3, "config.tuned.models.gru-cpu", "must be an object, not int"),
    ("environment.machine", "box", "environment.machine", "must be an object, not str"),
    ("environment.machine.cpu_count", "8", "environment.machine.cpu_count", "must be an integer, not str"),
    ("environment.packages.numpy", 2, "environment.packages.numpy", "must be text, not int"),
    ("pairs.0.dataset_info.n_test", "many", "pair #0: rnn-cpu x mnist seed 0: dataset_info.n_test",
     "must be an integer, not str"),
    ("pairs.1.metrics.confusion.matrix", 3, "pair #1: rnn-cpu x mnist seed 1: metrics.confusion.matrix",
     "must be a list, not int"),
    ("pairs.0.metrics.per_class", [], "pair #0: rnn-cpu x mnist seed 0: metrics.per_class",
     "must be an object, not list"),
    ("pairs.0.metrics.calibration", 0.5, "pair #0: rnn-cpu x mnist seed 0: metrics.calibration",
     "must be an object, not float"),
    ("pairs.0.environment.machine.gpus", "none", "pair #0: rnn-cpu x mnist seed 0: environment.machine.gpus",
     "must be a list of names, not str"),
])
def test_a_lenient_load_drops_a_field_of_the_wrong_type_with_one_warning(tmp_path, capsys, path, value, field,
                                                                         message):
    """What report and compare read is of its schema type: a field that is not is left out, and
    the warning names the file and the field; the strict load (resume) still refuses it."""
    run = _spoiled_run(tmp_path, path, value)
    results = res.load_results(run)
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [f"seqbench: warning: {run / RESULTS}: {field} {message}: ignored"]
    *parents, last = path.split(".")
    obj = results
    for key in parents:
        obj = obj[int(key)] if isinstance(obj, list) else obj[key]
    assert last not in obj
    assert results["pairs"][0]["model"] == "rnn-cpu" and results["pairs"][1]["metrics"]["accuracy"]
    with pytest.raises(res.ResultsError, match=f"^{re.escape(f'{run / RESULTS}: {field} {message}')}$"):
        res.load_results(run, strict=True)


def test_a_lenient_load_drops_a_null_where_the_schema_has_none_silently(tmp_path, capsys):
    run = _spoiled_run(tmp_path, "environment.machine", None)
    results = res.load_results(run)
    assert "machine" not in results["environment"] and capsys.readouterr().err == ""
    assert res.load_results(run, strict=True)["environment"]["machine"] is None  # strict lets nulls through


def test_a_lenient_load_of_a_good_run_changes_nothing(tmp_path, capsys):
    from results_factory import write_run

    results = _good_results()
    results["pairs"][0]["metrics"]["confusion"] = {"labels": ["0", "1"], "matrix": [[3, 1], [0, 4]]}
    run = write_run(tmp_path / "run", results)
    assert res.load_results(run) == res.load_results(run, strict=True) == json.loads(json.dumps(results))
    assert capsys.readouterr().err == ""


def test_a_session_holds_exactly_its_fields():
    session = res.new_session("seqbench run", "/data", {"python": "3"})
    assert session == {"started": session["started"], "command": "seqbench run", "data_dir": "/data",
                       "environment": {"python": "3"}}


# --- the run lock: its file, its messages, and a lock file removed under it ------------------------


def test_the_lock_file_gets_the_permissions_the_umask_gives(tmp_path):
    old = os.umask(0o022)
    try:
        with fileio.run_lock(tmp_path):
            assert (tmp_path / fileio.LOCK_FILE).stat().st_mode & 0o777 == 0o644
            assert (tmp_path / fileio.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    finally:
        os.umask(old)
    assert not (tmp_path / fileio.LOCK_FILE).exists()


def test_a_lock_in_a_missing_directory_is_one_clear_line(tmp_path):
    with pytest.raises(res.ResultsError) as exc, fileio.run_lock(tmp_path / "gone"):
        pass
    assert str(exc.value) == f"cannot write to output directory {tmp_path / 'gone'}: No such file or directory"


@pytest.mark.parametrize("content, shown", [
    (b"", "?"),
    (b"  \n", "?"),
    (b"4242\n", "4242"),
    (b"\xff\xfe42", "\ufffd\ufffd42"),  # not UTF-8: shown replaced, never an error
    (b"1" * 40, "1" * 32),  # a long file: its first 32 bytes
])
def test_a_held_lock_names_its_holder(tmp_path, content, shown):
    import fcntl

    path = tmp_path / fileio.LOCK_FILE
    path.write_bytes(content)
    holder = os.open(path, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: flock refuses us too
    try:
        with pytest.raises(res.ResultsError) as exc, fileio.run_lock(tmp_path):
            pass
    finally:
        os.close(holder)
    assert str(exc.value) == f"{tmp_path} is in use by another seqbench run (pid {shown}); wait for it to end"
    assert path.read_bytes() == content  # the holder's file is left alone


def test_a_lock_file_removed_before_it_is_locked_is_made_again(tmp_path):
    import fcntl

    path = tmp_path / fileio.LOCK_FILE
    calls = []

    class Racing:
        """fcntl whose first lock comes after the holder removed the file."""
        LOCK_EX, LOCK_NB = fcntl.LOCK_EX, fcntl.LOCK_NB

        @staticmethod
        def flock(fd, op):
            calls.append(os.fstat(fd).st_ino)
            if len(calls) == 1:
                path.unlink()
            fcntl.flock(fd, op)

    open_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    fd = fileio._acquire(path, Racing)
    try:
        assert len(calls) == 2 and os.fstat(fd).st_ino == path.stat().st_ino
        if open_before is not None:  # the first descriptor was closed
            assert len(os.listdir("/proc/self/fd")) == open_before + 1
    finally:
        os.close(fd)


def test_a_config_lists_every_field_it_lacks():
    results = _good_results()
    del results["config"]["models"], results["config"]["seeds"]
    with pytest.raises(res.ResultsError, match=r"^r\.json: config lacks models, seeds$"):
        res.check_results(results, "r.json:")
