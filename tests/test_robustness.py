"""Nothing lost, nothing crashes: ``seqbench run`` against a hostile plugin, kills, concurrent runs,
broken files and failing disks (tests/hostile_plugin.py has the plugin)."""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import hostile_plugin
import pytest
from click.testing import CliRunner

from seqbench import fileio
from seqbench import results as res
from seqbench.cli import main
from seqbench.plugins import load_plugins

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def hostile(monkeypatch):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    return load_plugins(extra=[("hostile", hostile_plugin)])


def invoke(registry, *args):
    return CliRunner().invoke(main, ["run", *map(str, args)], obj={"registry": registry})


def one_line_error(result, *fragments: str) -> str:
    """The run's single ``Error:`` line, after checking there was no traceback."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def stored_pairs(out: Path) -> dict[tuple, dict]:
    pairs = json.loads((out / "results.json").read_text())["pairs"]
    keyed = {(p["model"], p["dataset"], p["seed"]): p for p in pairs}
    assert len(keyed) == len(pairs), "a pair is counted twice"
    return keyed


# --- values JSON cannot hold, plugins that exit ----------------------------------------------


def test_hostile_values_fail_their_own_pair_and_the_run_goes_on(hostile, tmp_path):
    out = tmp_path / "run"
    models = ["h-nan-default", "h-numpy-defaults", "h-numpy-memory", "h-exits", "h-nan-proba", "h-ok"]
    result = invoke(hostile, *[a for m in models for a in ("-m", m)], "-d", "y", "--out", out, "--no-plots")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    pairs = stored_pairs(out)
    status = {m: pairs[(m, "y", 0)]["status"] for m in models}
    assert status == {"h-nan-default": "failed", "h-numpy-defaults": "ok", "h-numpy-memory": "ok",
                      "h-exits": "failed", "h-nan-proba": "failed", "h-ok": "ok"}
    nan = pairs[("h-nan-default", "y", 0)]["reason"]
    assert "'hostile'" in nan and "defaults.lr" in nan and "NaN" in nan
    assert "SystemExit" in pairs[("h-exits", "y", 0)]["reason"]
    assert "'hostile'" in pairs[("h-nan-proba", "y", 0)]["reason"]
    numpy = pairs[("h-numpy-defaults", "y", 0)]["params"]
    assert numpy["lr"] == 0.5 and numpy["epochs"] == 2 and numpy["extra"] == [0, 1]
    assert pairs[("h-numpy-memory", "y", 0)]["timing"]["peak_device_bytes"] == 4096
    again = invoke(hostile, "--resume", out, "--no-plots")  # the failed pairs fail again, no crash
    assert again.exit_code == 1 and "Traceback" not in again.output
    assert [p["status"] for p in stored_pairs(out).values()].count("ok") == 3


def test_a_bytes_fingerprint_fails_that_dataset_only(hostile, tmp_path):
    out = tmp_path / "run"
    result = invoke(hostile, "-m", "h-ok", "-d", "bytes-fp", "-d", "y", "--out", out, "--no-plots")
    assert result.exit_code == 1 and "Traceback" not in result.output
    pairs = stored_pairs(out)
    bad = pairs[("h-ok", "bytes-fp", 0)]
    assert bad["status"] == "failed" and "'hostile'" in bad["reason"] and "fingerprint" in bad["reason"]
    assert pairs[("h-ok", "y", 0)]["status"] == "ok"


def test_set_nan_for_a_parameter_without_a_typed_default_is_refused(hostile, tmp_path):
    out = tmp_path / "run"
    one_line_error(invoke(hostile, "-m", "h-none-default", "-d", "y", "--set", "extra=NaN", "--out", out), "extra=NaN")
    result = invoke(hostile, "-m", "h-none-default", "-d", "y", "--set", "extra=[1, 2]", "--out", out, "--no-plots")
    assert result.exit_code == 0, result.output
    assert stored_pairs(out)[("h-none-default", "y", 0)]["params"]["extra"] == [1, 2]


def test_names_with_double_underscores_do_not_collide(hostile, tmp_path):
    out = tmp_path / "run"
    args = ("-m", "h-ok", "-m", "h-ok__x", "-d", "y", "-d", "x__y", "--out", out, "--no-plots")
    assert invoke(hostile, *args).exit_code == 0
    files = sorted((out / "pairs").iterdir())
    assert len(files) == 8  # 4 records and 4 prediction files
    first = stored_pairs(out)
    assert len(first) == 4
    assert {p["dataset_info"]["fingerprint"] for p in first.values()} == {"sha256:toy0", "sha256:toy1"}
    res.pair_path(out, first[("h-ok", "x__y", 0)]).unlink()  # as if killed before that record was written
    result = invoke(hostile, "--resume", out, "--no-plots")
    assert result.exit_code == 0, result.output
    started = [line for line in result.output.splitlines() if line.startswith("[")]
    assert len(started) == 1 and "h-ok x x__y" in started[0], result.output
    second = stored_pairs(out)
    assert set(second) == set(first)
    for key in first:
        if key != ("h-ok", "x__y", 0):
            assert second[key] == first[key]
        assert res.read_predictions(out, second[key]).shape == (2, 90)


# --- exit codes -------------------------------------------------------------------------------


def test_a_run_where_nothing_ran_has_its_own_exit_code(hostile, tmp_path):
    result = invoke(hostile, "-m", "h-unavailable", "-d", "y", "--out", tmp_path / "run", "--no-plots")
    assert result.exit_code == 3, result.output
    assert "nothing ran" in result.output
    mixed = invoke(hostile, "-m", "h-unavailable", "-m", "h-ok", "-d", "y", "--out", tmp_path / "mixed", "--no-plots")
    assert mixed.exit_code == 0, mixed.output


def test_run_help_documents_the_exit_codes():
    lines = [line.strip() for line in CliRunner().invoke(main, ["run", "--help"]).output.splitlines()]
    for code in ("0", "1", "2", "3", "130", "143"):
        assert any(line.startswith(f"{code} ") for line in lines[lines.index("Exit codes:"):]), code


# --- hyperparameter ranges of the built-in models ----------------------------------------------


@pytest.mark.parametrize("key, value, expected", [
    ("hidden", 0, "an integer >= 1"), ("threads", 1_000_000_000, "an integer >= 1 and <="),
    ("threads", 0, ">= 1 and <="),
    ("lr", 0.0, "a number > 0"), ("clip", -1.0, "a number >= 0"), ("lr_decay", 0.0, "a number > 0 and <= 1"),
    ("lr_decay", 1.5, "> 0 and <= 1"), ("momentum", 1.0, "a number >= 0 and < 1"), ("optimizer", "adamw", "adam"),
    ("lr_schedule", "step", "cosine"),
])
def test_built_in_models_check_their_hyperparameter_ranges(hostile, key, value, expected):
    from seqbench import DatasetInfo

    spec, info = hostile.models["rnn-cpu"], DatasetInfo("y", 6, 4, ("a", "b", "c"))
    params = {**spec.defaults(info), "seed": 0, "hidden": 4, key: value}
    with pytest.raises(ValueError) as raised:
        spec.build(info, params)
    assert str(raised.value).startswith(f"{key}={value}") and expected in str(raised.value)


def test_hidden_zero_is_refused_before_the_run_naming_the_parameter(hostile, tmp_path):
    out = tmp_path / "run"
    result = invoke(hostile, "-m", "rnn-cpu", "-d", "y", "--set", "hidden=0", "--out", out, "--no-plots")
    assert result.exit_code == 2
    assert "--set hidden=0 (hidden of rnn-cpu): must be an integer >= 1" in result.output
    assert not out.exists()


# --- files: permissions, temporary files, I/O errors, broken records ---------------------------


@pytest.mark.slow
def test_files_are_created_with_the_umasks_permissions(hostile, tmp_path):
    out = tmp_path / "run"
    old = os.umask(0o022)
    try:
        assert invoke(hostile, "-m", "h-ok", "-d", "y", "--out", out).exit_code == 0
    finally:
        os.umask(old)
    modes = {str(p.relative_to(out)): oct(stat.S_IMODE(p.stat().st_mode)) for p in out.rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {"0o644"}, modes
    assert (out / "plots").is_dir() and (out / "records.csv").is_file()


def test_resume_removes_stale_temporary_files(hostile, tmp_path):
    out = tmp_path / "run"
    assert invoke(hostile, "-m", "h-ok", "-d", "y", "--out", out, "--no-plots").exit_code == 0
    stale = [out / ".results.json.a1b2c3d4.tmp", out / "pairs" / ".h-ok+y+seed0.json.0a0b0c0d.tmp",
             out / ".summary.md.12345678.part"]  # as results.create_temp names them
    for path in stale:
        path.write_text("half")
    assert invoke(hostile, "--resume", out, "--no-plots").exit_code == 0
    assert not [p for p in stale if p.exists()]


@pytest.mark.parametrize("target", ["write_pair", "write_predictions"])
def test_a_full_disk_is_one_line_with_the_resume_hint(hostile, tmp_path, monkeypatch, target):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(res, target, full)
    out = tmp_path / "run"
    line = one_line_error(invoke(hostile, "-m", "h-ok", "-d", "y", "--out", out, "--no-plots"),
                          "No space left on device", f"--resume {out}")
    assert "pair" in line


def _finished_run(hostile, tmp_path) -> Path:
    out = tmp_path / "run"
    assert invoke(hostile, "-m", "h-ok", "-d", "y", "--seeds", "0,1", "--out", out, "--no-plots").exit_code == 0
    return out


def _edit_json(path: Path, edit) -> None:
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def _set(d: dict, path: str, value) -> dict:
    """A copy of ``d`` with the dotted ``path`` set to ``value``."""
    head, _, rest = path.partition(".")
    return {**d, head: _set(d[head], rest, value) if rest else value}


BROKEN_RESULTS = {
    "missing config": (lambda d: {k: v for k, v in d.items() if k != "config"}, "config"),
    "seeds of the wrong type": (lambda d: _set(d, "config.seeds", "0,1"), "seeds"),
    "models not a list": (lambda d: _set(d, "config.models", "h-ok"), "models"),
    "a future major schema": (lambda d: _set(d, "schema_version", "2.0"), "2.0"),
    "a garbled schema": (lambda d: _set(d, "schema_version", "one"), "schema"),
    "not an object": (lambda d: [], "object"),
    "pairs not a list": (lambda d: _set(d, "pairs", {}), "pairs"),
    "machine of the wrong type": (lambda d: _set(d, "environment.machine", "big"), "machine"),
}


@pytest.mark.parametrize("case", BROKEN_RESULTS)
def test_a_malformed_results_file_is_one_line_on_resume(hostile, tmp_path, case):
    out = _finished_run(hostile, tmp_path)
    edit, fragment = BROKEN_RESULTS[case]
    _edit_json(out / "results.json", edit)
    one_line_error(invoke(hostile, "--resume", out, "--no-plots"), "results.json", fragment)


BROKEN_PAIRS = {
    "not JSON": (None, "pair record"),
    "no model": (lambda d: {k: v for k, v in d.items() if k != "model"}, "model"),
    "seed as text": (lambda d: _set(d, "seed", "0"), "seed"),
    "unknown status": (lambda d: _set(d, "status", "great"), "status"),
    "a future major schema": (lambda d: _set(d, "schema_version", 2), "2"),
    "metrics of the wrong type": (lambda d: _set(d, "metrics", [1]), "metrics"),
    "a NaN accuracy": (lambda d: _set(d, "metrics.accuracy.accuracy", float("nan")), "NaN"),
}


@pytest.mark.parametrize("case", BROKEN_PAIRS)
def test_a_malformed_pair_record_is_one_line_on_resume(hostile, tmp_path, case):
    out = _finished_run(hostile, tmp_path)
    path = next((out / "pairs").glob("*seed1.json"))
    edit, fragment = BROKEN_PAIRS[case]
    if edit is None:
        path.write_text("{")
    else:
        _edit_json(path, edit)
    one_line_error(invoke(hostile, "--resume", out, "--no-plots"), path.name, fragment)


# --- provenance --------------------------------------------------------------------------------


def test_a_resume_on_other_data_is_refused_and_a_resume_appends_a_session(hostile, tmp_path):
    out, first, other = tmp_path / "run", tmp_path / "first", tmp_path / "other"
    assert invoke(hostile, "-m", "h-ok", "-d", "by-dir", "--seeds", "0,1", "--data-dir", first, "--out", out,
                  "--no-plots").exit_code == 0
    stored = json.loads((out / "results.json").read_text())
    res.pair_path(out, stored["pairs"][1]).unlink()
    one_line_error(invoke(hostile, "--resume", out, "--data-dir", other, "--no-plots"),
                   "by-dir", "sha256:other", "sha256:first")
    result = invoke(hostile, "--resume", out, "--no-plots")
    assert result.exit_code == 0, result.output
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["command"] == stored["command"] and resumed["environment"] == stored["environment"]
    assert resumed["config"] == stored["config"] and resumed["created"] == stored["created"]
    sessions = resumed["sessions"]
    assert [s["data_dir"] for s in sessions] == [str(first), str(first)]  # the refused resume left no session
    assert sessions[1]["started"] >= sessions[0]["started"] and sessions[1]["environment"]["machine"]["hostname"]
    assert {p["dataset_info"]["fingerprint"] for p in resumed["pairs"]} == {"sha256:first"}


def test_each_pair_carries_its_environment_and_parameter_count(hostile, tmp_path):
    out = tmp_path / "run"
    result = invoke(hostile, "-m", "h-ok", "-m", "rnn-cpu", "-d", "y", "--set", "hidden=4", "--set", "epochs=1",
                    "--out", out, "--no-plots")
    assert result.exit_code == 0, result.output
    pairs = stored_pairs(out)
    env = pairs[("rnn-cpu", "y", 0)]["environment"]
    assert env["machine"]["hostname"] and env["machine"]["cpu_count"] and env["packages"]["numpy"]
    assert {"internal_api", "num_threads", "version"} <= set(env["blas"][0])
    assert isinstance(env["thread_env"], dict) and "cuda" in env
    git = env["git"]
    assert git is None or (len(git["commit"]) == 40 and (git["diff_sha256"] is not None) == git["dirty"])
    # rnn: W_aa (4x4), W_ax (4x4), b_a (4) and the head W_ya (4x3), b_y (3)
    assert pairs[("rnn-cpu", "y", 0)]["num_parameters"] == 16 + 16 + 4 + 12 + 3
    assert pairs[("h-ok", "y", 0)]["num_parameters"] is None


def test_a_plugin_that_exits_while_loading_is_a_warning(monkeypatch, capsys):
    from helpers import fake_entry_point

    import seqbench.plugins as plugins_mod

    def load():
        raise SystemExit(2)

    monkeypatch.setattr(
        plugins_mod, "_entry_points", lambda: [fake_entry_point("quitter", "seqbench-quitter", "1", load)]
    )
    monkeypatch.delenv("SEQBENCH_LOAD_PLUGINS")
    registry = load_plugins()
    assert "rnn-cpu" in registry.models
    assert "plugin 'seqbench-quitter' failed to load: SystemExit: 2" in capsys.readouterr().err


# --- real processes: kills, SIGTERM, concurrent runs --------------------------------------------


@pytest.fixture
def hostile_env(tmp_path) -> dict[str, str]:
    """The environment of a ``seqbench`` subprocess that finds the hostile plugin by its entry point."""
    info = tmp_path / "site" / "seqbench_hostile-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seqbench-hostile\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[seqbench]\nhostile = hostile_plugin\n")
    path = [str(info.parent), str(TESTS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "SEQBENCH_LOAD_PLUGINS": "seqbench-hostile",
            "SEQBENCH_BLOCK_PLUGINS": "datasets"}


def spawn(env: dict[str, str], log: Path, *args, plots: bool = False) -> subprocess.Popen:
    """``seqbench run ARGS`` in a new process (``--no-plots`` unless ``plots``), its output to
    ``log``.out/.err; Ctrl-C (SIGINT) stops it as it would on a terminal."""
    return subprocess.Popen(
        [sys.executable, "-c", "from seqbench.cli import main; main()", "run", *map(str, args),
         *(() if plots else ("--no-plots",))],
        env=env, stdout=log.with_suffix(".out").open("w"), stderr=log.with_suffix(".err").open("w"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"exited {proc.returncode} before {path.name} appeared"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)


def holds_lock(out: Path, proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait until ``proc`` holds the run directory ``out``; False when it exits first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if (out / fileio.LOCK_FILE).read_text().strip() == str(proc.pid):
                return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


SLOW = ("-m", "h-slow", "-m", "h-ok", "-d", "y", "--seeds", "0,1")


@pytest.mark.slow
def test_killed_at_random_moments_and_resumed_nothing_lost_nothing_counted_twice(hostile_env, tmp_path):
    out, rng = tmp_path / "run", random.Random(2024)
    kills = []  # seconds after the start of each killed process
    for attempt in range(12):
        started = (out / "results.json").exists()
        args = ("--resume", out) if started else (*SLOW, "--out", out)
        proc = spawn(hostile_env, tmp_path / f"log{attempt}", *args)
        if len(kills) < 4:  # then let it finish
            moment = rng.uniform(0.3, 2.5)
            time.sleep(moment)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills.append(round(moment, 2))
        if proc.wait(timeout=120) == 0:
            break
    else:
        pytest.fail(f"the run never finished (killed at {kills})")
    assert kills  # the first run takes longer than any wait
    pairs = stored_pairs(out)
    assert set(pairs) == {(m, "y", s) for m in ("h-slow", "h-ok") for s in (0, 1)}
    assert all(p["status"] == "ok" for p in pairs.values())
    on_disk = [json.loads(p.read_text()) for p in (out / "pairs").glob("*.json")]
    assert sorted((r["model"], r["seed"]) for r in on_disk) == sorted((m, s) for m, _, s in pairs)
    assert len(list((out / "pairs").glob("*.pred.npy"))) == 4
    rows = list(csv.DictReader((out / "records.csv").open()))
    keys = [(r["model"], r["dataset"], r["seed"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)) and {k[:3] for k in keys} == {(m, "y", str(s)) for m, _, s in pairs}
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".part"))]


@pytest.mark.slow
def test_random_signals_during_a_quick_run_then_resume_lose_no_pair_and_no_plot(hostile_env, tmp_path):
    """Issue 26: SIGKILL, SIGTERM and SIGINT at random moments of a real --quick run with plots
    (training, writing a record, drawing), each followed by --resume, until one finishes."""
    out, rng = tmp_path / "run", random.Random(26)
    signals = rng.sample([signal.SIGKILL, signal.SIGTERM, signal.SIGINT] * 2, 6)
    sent = []  # (signal, seconds after the run took its directory) of each signal that found it running
    for attempt in range(25):
        started = (out / "results.json").exists()
        args = ("--resume", out) if started else (*SLOW, "--quick", "--out", out)
        proc = spawn(hostile_env, tmp_path / f"log{attempt}", *args, plots=True)
        if signals and holds_lock(out, proc):  # past the interpreter's start; then let it finish
            moment = rng.uniform(0.0, 4.0)
            time.sleep(moment)
            if proc.poll() is None:
                sig = signals.pop()
                proc.send_signal(sig)
                sent.append((sig.name, round(moment, 2)))
        code = proc.wait(timeout=120)
        if code == 0 and not signals:
            break
        # 130, 143: stopped by the signal's handler; -15, -2: the signal came as the process was exiting
        assert code in (0, -signal.SIGKILL, 130, 143, -signal.SIGTERM, -signal.SIGINT), \
            (code, (tmp_path / f"log{attempt}.err").read_text())
        assert "Traceback" not in (tmp_path / f"log{attempt}.err").read_text()
    else:
        pytest.fail(f"the run never finished (signals {sent})")
    assert {name for name, _ in sent} == {"SIGKILL", "SIGTERM", "SIGINT"}, sent
    pairs = stored_pairs(out)
    assert set(pairs) == {(m, "y", s) for m in ("h-slow", "h-ok") for s in (0, 1)}
    assert all(p["status"] == "ok" for p in pairs.values())
    assert len(list((out / "pairs").glob("*.json"))) == 4 and len(list((out / "pairs").glob("*.pred.npy"))) == 4
    rows = list(csv.DictReader((out / "records.csv").open()))
    keys = [(r["model"], r["dataset"], r["seed"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)) and {k[:3] for k in keys} == {(m, "y", str(s)) for m, _, s in pairs}
    expected = {f"{res.pair_stem(*key)}__{kind}.png" for key in pairs for kind in ("confusion", "curves")}
    expected |= {"summary.png", "curves__y.png", "confusion__h-slow+y.png", "confusion__h-ok+y.png",
                 "accuracy_vs_cost.png", "pairs_heatmap__y.png"}
    assert {p.name for p in (out / "plots").iterdir()} == expected, sent
    assert (out / "report.html").exists() and not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".part"))]


def test_sigterm_stops_the_run_with_the_resume_hint(hostile_env, tmp_path):
    out = tmp_path / "run"
    proc = spawn(hostile_env, tmp_path / "log", *SLOW, "--out", out)
    wait_for(out / "results.json", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    err = (tmp_path / "log.err").read_text()
    assert f"--resume {out}" in err and "Traceback" not in err
    assert not (out / fileio.LOCK_FILE).exists()


@pytest.mark.slow
def test_a_second_run_on_a_live_run_directory_is_refused(hostile_env, hostile, tmp_path):
    out = tmp_path / "run"
    proc = spawn(hostile_env, tmp_path / "log", *SLOW, "--out", out)
    try:
        wait_for(out / "results.json", proc)
        one_line_error(invoke(hostile, "--resume", out, "--no-plots"), "in use", f"pid {proc.pid}")
        one_line_error(invoke(hostile, *SLOW, "--out", out, "--no-plots"), "in use", f"pid {proc.pid}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert f"{proc.pid}" in (out / fileio.LOCK_FILE).read_text()  # the dead run's lock: stale
    result = invoke(hostile, "--resume", out, "--no-plots")
    assert result.exit_code == 0, result.output
    assert len(stored_pairs(out)) == 4


def test_two_runs_started_together_on_one_directory_one_is_refused(hostile_env, tmp_path):
    out = tmp_path / "run"
    procs = [spawn(hostile_env, tmp_path / f"log{i}", "-m", "h-ok", "-d", "y", "--out", out) for i in range(2)]
    codes = [p.wait(timeout=120) for p in procs]
    assert sorted(codes) == [0, 1], codes
    err = (tmp_path / f"log{codes.index(1)}.err").read_text()
    assert err.startswith("Error:") and ("in use" in err or "already holds a run" in err), err
    assert len(stored_pairs(out)) == 1
