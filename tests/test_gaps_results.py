"""The failure paths of the atomic write: a write that fails part way leaves the old file intact
and no temporary file behind."""

from __future__ import annotations

import os
import resource
import signal

import pytest

from seqbench import results as res

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
            res.atomic_write_bytes(old_file, NEW)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    _assert_old_file_intact(old_file)
    res.atomic_write_bytes(old_file, NEW)  # and without the limit it goes through
    assert old_file.read_bytes() == NEW


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_a_failure_before_the_rename_leaves_the_old_file(old_file, monkeypatch, where):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(res.os, where, fail)
    with pytest.raises(OSError, match="No space left"):
        res.atomic_write_json(old_file, {"a": 1})
    monkeypatch.undo()
    _assert_old_file_intact(old_file)


def test_an_interrupt_during_the_write_leaves_the_old_file(old_file, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(res.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        res.atomic_write_text(old_file, "new")
    monkeypatch.undo()
    _assert_old_file_intact(old_file)


def test_a_successful_write_replaces_the_file_whole_and_creates_its_directory(tmp_path):
    path = tmp_path / "deep" / "er" / "f.json"
    res.atomic_write_json(path, {"b": [1, 2.5], "a": None})
    assert path.read_text() == '{\n  "b": [\n    1,\n    2.5\n  ],\n  "a": null\n}\n'
    res.atomic_write_bytes(path, b"x")
    assert path.read_bytes() == b"x" and os.listdir(path.parent) == ["f.json"]


def test_json_writes_refuse_nan_before_touching_the_file(old_file):
    with pytest.raises(ValueError):
        res.atomic_write_json(old_file, {"loss": float("nan")})
    _assert_old_file_intact(old_file)


def test_temporary_names_are_hidden_beside_the_target_and_unique(tmp_path):
    target = tmp_path / "r.json"
    made = [res.create_temp(target) for _ in range(20)]
    for fd, _ in made:
        os.close(fd)
    names = [p.name for _, p in made]
    assert len(set(names)) == 20
    assert all(n.startswith(".r.json.") and n.endswith(".tmp") and p.parent == tmp_path for n, (_, p) in zip(names, made))
    fd, part = res.create_temp(target, ".part")
    os.close(fd)
    assert part.name.endswith(".part")
