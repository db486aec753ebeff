"""The results schema: the JSON Schemas against a real quick run and the committed runs,
"major.minor" versions, and records.csv."""

from __future__ import annotations

import csv
import json
import subprocess
import typing
from pathlib import Path

import hostile_plugin
import pytest
from click.testing import CliRunner

from seqbench import fileio, schema
from seqbench import results as res
from seqbench.cli import main
from seqbench.plugins import load_plugins
from seqbench.records import COLUMNS
from seqbench.schema import types

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")

REPO = Path(__file__).resolve().parents[1]


def validators():
    """Validators of results.json and of a pair record; the results schema refers to the pair schema."""
    schemas = [schema.load("results"), schema.load("pair")]
    for s in schemas:
        jsonschema.Draft202012Validator.check_schema(s)
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in schemas
    )
    return [jsonschema.Draft202012Validator(s, registry=registry) for s in schemas]


@pytest.mark.slow
def test_the_schema_validates_a_real_quick_run_and_its_resume(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("hostile", hostile_plugin)])
    out = tmp_path / "run"
    models = ["h-ok", "rnn-cpu", "h-unavailable", "h-exits", "h-diverges"]
    args = ["run", *[a for m in models for a in ("-m", m)], "-d", "y", "-d", "x__y", "--seeds", "0,1", "--quick",
            "--set", "hidden=4", "--out", str(out), "--no-plots"]
    assert CliRunner().invoke(main, args, obj={"registry": registry}).exit_code == 1  # h-exits failed
    next((out / "pairs").glob("h-ok+y+seed1.json")).unlink()
    CliRunner().invoke(main, ["run", "--resume", str(out), "--no-plots"], obj={"registry": registry})

    results_validator, pair_validator = validators()
    results = json.loads((out / "results.json").read_text())
    results_validator.validate(results)
    assert results["schema_version"] == res.SCHEMA_VERSION == "1.1" and len(results["sessions"]) == 2
    assert all(s["executor"] == {"kind": "sequential"} and s["wall_seconds"] > 0 for s in results["sessions"])
    assert {p["status"] for p in results["pairs"]} == {"ok", "skipped", "failed", "diverged"}
    records = sorted((out / "pairs").glob("*.json"))
    assert len(records) == len(results["pairs"]) == 20
    for path in records:
        pair_validator.validate(json.loads(path.read_text()))
    assert res.load_results(out, strict=True) == results


def test_the_schema_rejects_what_readers_refuse():
    results_validator, pair_validator = validators()
    pair = {"schema_version": "1.1", "model": "m", "dataset": "d", "seed": 0, "status": "ok", "reason": None}
    assert not pair_validator.is_valid(pair)  # an ok pair without its numbers
    for bad in ({"seed": "0"}, {"status": "great"}, {"schema_version": "2.0"}, {"schema_version": 2}):
        assert not pair_validator.is_valid({**pair, "status": "skipped", **bad}), bad
    assert pair_validator.is_valid({**pair, "status": "skipped", "schema_version": 1})
    assert not results_validator.is_valid({"schema_version": "1.1", "pairs": []})
    skipped = {**pair, "status": "skipped"}
    assert pair_validator.is_valid({**skipped, "worker": {"address": "tcp://127.0.0.1:1", "host": "h", "pid": 7}})
    assert not pair_validator.is_valid({**skipped, "worker": {"address": "tcp://127.0.0.1:1"}})


def committed_runs() -> list[Path]:
    """The committed runs' results.json (runs in progress in this checkout are not committed)."""
    try:
        out = subprocess.run(["git", "ls-files", "results/*results.json"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(REPO.glob("results/**/results.json"))
    return [REPO / line for line in sorted(out.splitlines())]


@pytest.mark.parametrize("path", committed_runs(), ids=lambda p: p.parent.name)
def test_committed_runs_of_schema_1_0_still_read_migrate_and_validate(path):
    results_validator, pair_validator = validators()
    results = res.load_results(path, strict=True)
    results_validator.validate(results)
    assert res.parse_schema_version(results["schema_version"]) >= (1, 1) and results["sessions"]  # migrated
    pairs = res.read_pairs(path.parent)
    assert set(pairs) <= {res.key_of(p) for p in results["pairs"]}
    for record in pairs.values():
        pair_validator.validate(record)


def test_a_committed_1_0_run_migrates_to_1_1_with_its_first_session():
    path = REPO / "results" / "mnist-gru-cpu" / "results.json"
    stored = json.loads(path.read_text())
    assert stored["schema_version"] == 1 and "sessions" not in stored
    first = {"started": stored["created"], "command": stored["command"], "data_dir": stored["config"]["data_dir"],
             "environment": stored["environment"]}
    assert res.load_results(path) == {**stored, "schema_version": "1.1", "sessions": [first]}
    assert json.loads(path.read_text()) == stored  # read, not rewritten


def test_a_committed_1_1_run_is_read_as_it_is():
    path = REPO / "results" / "fashion-mnist-cpu-s0" / "results.json"
    stored = json.loads(path.read_text())
    assert stored["schema_version"] == "1.1"
    assert res.load_results(path) == stored


@pytest.mark.parametrize("version, parsed", [(1, (1, 0)), ("1.0", (1, 0)), ("1.1", (1, 1)), ("1.12", (1, 12)),
                                             ("2.0", (2, 0))])
def test_schema_versions_are_major_minor(version, parsed):
    assert res.parse_schema_version(version) == parsed


@pytest.mark.parametrize("version", ["1", "1.1.0", "one", None, 1.5, True])
def test_malformed_schema_versions_are_refused(version):
    with pytest.raises(ValueError):
        res.parse_schema_version(version)


def test_older_and_newer_minors_read_a_future_major_is_one_line(tmp_path):
    doc = {"schema_version": 1, "created": "x", "updated": "x", "command": "c", "environment": {},
           "config": {"models": ["m"], "datasets": ["d"], "seeds": [0]}, "pairs": []}
    for version, read_as in ((1, "1.1"), ("1.0", "1.1"), ("1.1", "1.1"), ("1.7", "1.7")):  # 1.0 is migrated
        fileio.atomic_write_json(tmp_path / "results.json", {**doc, "schema_version": version})
        assert res.load_results(tmp_path, strict=True)["schema_version"] == read_as
    fileio.atomic_write_json(tmp_path / "results.json", {**doc, "schema_version": "2.0"})
    with pytest.raises(
        res.ResultsError, match=r"results schema 2\.0 is not readable by this seqbench \(it reads 1\.x\)"
    ):
        res.load_results(tmp_path)


def test_the_schemas_ship_with_the_package():
    from importlib import resources

    files = {p.name for p in resources.files("seqbench.schema").iterdir()}
    assert {"results.schema.json", "pair.schema.json"} <= files
    assert '"seqbench.schema" = ["*.json"]' in (REPO / "pyproject.toml").read_text()


def test_records_csv_is_tidy_and_matches_the_records(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQBENCH_BLOCK_PLUGINS", "datasets")
    registry = load_plugins(extra=[("hostile", hostile_plugin)])
    out = tmp_path / "run"
    args = ["run", "-m", "h-ok", "-m", "h-unavailable", "-d", "y", "--seeds", "0,1", "--out", str(out), "--no-plots"]
    assert CliRunner().invoke(main, args, obj={"registry": registry}).exit_code == 0
    with (out / "records.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames[:len(COLUMNS)]) == COLUMNS
        assert all(name.startswith("param.") for name in reader.fieldnames[len(COLUMNS):])
        rows = list(reader)
    results = json.loads((out / "results.json").read_text())
    pairs = {(p["model"], p["dataset"], str(p["seed"])): p for p in results["pairs"]}
    assert {(r["model"], r["dataset"], r["seed"]) for r in rows} == {k for k, p in pairs.items() if p["status"] == "ok"}
    values = {(r["seed"], r["metric"]): (float(r["value"]), r["unit"]) for r in rows}
    assert len(values) == len(rows)  # one row per pair and metric
    ok = pairs[("h-ok", "y", "0")]
    assert values[("0", "accuracy")] == (ok["metrics"]["accuracy"]["accuracy"], "fraction")
    assert values[("0", "per_class.macro.f1")] == (ok["metrics"]["per_class"]["macro"]["f1"], "fraction")
    assert values[("0", "epoch_seconds_median")] == (ok["timing"]["epoch_seconds_median"], "s")
    assert values[("0", "inference_samples_per_second")][1] == "samples/s"
    assert {r["run"] for r in rows} == {"run"} and {r["commit"] for r in rows} == {
        ok["environment"]["git_commit"] or ""
    }


# --- the typed records mirror the schemas ------------------------------------------------------------


def _resolve(node, pair_schema):
    """``node`` with its ``$ref`` followed (every reference of both schemas points into the pair
    schema), and a ``oneOf`` of one object and null taken as the object."""
    while True:
        if "$ref" in node:
            target = pair_schema
            for part in filter(None, node["$ref"].partition("#")[2].split("/")):
                target = target[part]
            node = target
        elif "oneOf" in node and len(objects := [n for n in node["oneOf"] if n.get("type") != "null"]) == 1:
            node = objects[0]
        else:
            return node


def _typed_parts(hint):
    """The TypedDicts in a type hint, each with how the schema reaches it: directly, as a list's
    ``items`` or as a mapping's ``additionalProperties``."""
    if typing.is_typeddict(hint):
        yield (), hint
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    for i, arg in enumerate(args):
        step = ("items",) if origin is list else ("additionalProperties",) if origin is dict and i == 1 else ()
        if origin in (list, dict) and not step:
            continue
        for path, td in _typed_parts(arg):
            yield (*step, *path), td


def _agree(td, node, pair_schema, where):
    """Every TypedDict reachable from ``td`` has exactly its schema object's properties and required keys."""
    node = _resolve(node, pair_schema)
    keys, props = td.__required_keys__ | td.__optional_keys__, node.get("properties", {})
    names = set(props)
    assert keys == names, f"{where}: type only {sorted(keys - names)}, schema only {sorted(names - keys)}"
    assert td.__required_keys__ == set(node.get("required", [])), f"{where}: required keys differ"
    hints = typing.get_type_hints(td)
    for key in keys:
        prop = _resolve(props[key], pair_schema)
        parts = list(_typed_parts(hints[key]))
        if "properties" in prop:
            assert parts, f"{where}.{key}: the schema describes its fields, the type does not"
        for path, inner in parts:
            sub = prop
            for step in path:
                sub = _resolve(sub[step], pair_schema)
            _agree(inner, sub, pair_schema, f"{where}.{key}")


def test_the_typed_records_have_exactly_the_schemas_fields():
    pair_schema = schema.load("pair")
    _agree(types.PairRecord, pair_schema, pair_schema, "pair")
    _agree(types.RunResults, schema.load("results"), pair_schema, "results")
