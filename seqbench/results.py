"""Results on disk: one JSON record per finished pair, and the run's ``results.json``.

Layout of a run directory::

    results.json                 the whole run, rewritten after every pair
    pairs/<model>+<dataset>+seed<k>.json       one record per pair, written when the pair ends
    pairs/<model>+<dataset>+seed<k>.pred.npy   its test labels and predicted labels
    records.csv, summary.md/.csv, per_class.md/.csv, timing.md/.csv, plots/*.png

The formats are JSON Schemas in ``seqbench/schema/`` (:data:`SCHEMA_VERSION`, "major.minor": a
reader reads every minor of its major). Every file is written atomically (a temporary file in the
same directory, then a rename) with the permissions the umask gives, so an interrupted run never
leaves a half-written file and never loses a finished pair. Records are keyed by their content
(model, dataset, seed), never by their file name: run directories of schema 1.0, whose files were
named ``<model>__<dataset>__seed<k>`` (ambiguous when a name holds ``__``), read the same.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, cast
from urllib.parse import quote

from seqbench.fileio import ResultsError as ResultsError  # raised here too; its callers import it from here
from seqbench.fileio import atomic_write_bytes, atomic_write_json
from seqbench.metrics import is_number
from seqbench.safe_text import warn
from seqbench.schema.types import RunResults

SCHEMA_VERSION = "1.1"
#: The major version this seqbench reads (all of its minors; the integer 1 of old runs is 1.0).
SCHEMA_MAJOR = 1
RESULTS_FILE = "results.json"
PAIRS_DIR = "pairs"
PREDICTIONS_SUFFIX = ".pred.npy"
DONE_STATUSES = ("ok", "diverged")
#: The folders of a run directory that seqbench creates and writes into.
OWN_DIRS = (PAIRS_DIR, "plots")
#: Longest name part (model or dataset, percent-encoded) in a file name: the files of a pair
#: (with their suffixes and temporary-file decorations) stay under the 255 bytes of NAME_MAX.
NAME_PART_MAX = 80

PairKey = tuple[str, str, int]


class UnwritableValue(ValueError):
    """A value that JSON cannot hold (NaN, bytes, an object), with the field it was found in."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


# --- the run directory ---------------------------------------------------------------------------


def run_dirs(run_dir: Path) -> list[Path]:
    """The run directory and the folders of it that seqbench writes (:data:`OWN_DIRS`)."""
    return [run_dir, *(run_dir / name for name in OWN_DIRS)]


def check_own_dirs(run_dir: Path) -> None:
    """Refuse a run directory whose ``pairs/`` or ``plots/`` is not a real folder (a symbolic
    link would send the run's files elsewhere)."""
    for path in run_dirs(run_dir)[1:]:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            what = "a symbolic link" if path.is_symlink() else "not a folder"
            raise ResultsError(f"{path} is {what}; seqbench writes only into folders it made: move it away")


# --- values at the boundary ------------------------------------------------------------------


def json_ready(value: Any, field: str = "") -> Any:
    """``value`` as plain JSON data: NumPy scalars and arrays become Python numbers and lists,
    tuples lists; NaN, infinity, bytes and other objects raise :class:`UnwritableValue` naming
    ``field`` (dotted path)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {_json_key(k, field): json_ready(v, _join(field, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, f"{field}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # a NumPy scalar or array
        return json_ready(value.tolist(), field)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("infinity" if value > 0 else "-infinity")
            raise UnwritableValue(f"{field or 'a value'} is {shown} (JSON holds only finite numbers)")
        return float(value)
    raise UnwritableValue(f"{field or 'a value'} is {type(value).__name__}, which JSON cannot hold")


def _json_key(key: Any, field: str) -> str:
    if isinstance(key, str):
        return str(key)
    if hasattr(key, "dtype") and hasattr(key, "item"):  # a NumPy scalar
        key = key.item()
    if _is_int(key):
        return str(key)
    raise UnwritableValue(f"{field or 'a mapping'} has a key of type {type(key).__name__}; JSON keys are text")


def _join(field: str, key: Any) -> str:
    return f"{field}.{key}" if field else str(key)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} (JSON holds only finite numbers)")


def loads(text: str) -> Any:
    """Parse JSON, refusing the ``NaN`` and ``Infinity`` that Python's parser would accept."""
    return json.loads(text, parse_constant=_reject_constant)


# --- pair files ------------------------------------------------------------------------------


def name_part(name: str) -> str:
    """``name`` for a file name: percent-encoded (never ``+`` nor ``/``, so ``+`` can join parts), and at
    most :data:`NAME_PART_MAX` characters: a longer one is cut and ends in ``~`` and a hash of the whole."""
    encoded = quote(str(name), safe="._-")
    if len(encoded) <= NAME_PART_MAX:
        return encoded
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:16]
    return f"{encoded[:NAME_PART_MAX - 17]}~{digest}"


def pair_stem(model: str, dataset: str, seed: int) -> str:
    """The stem of a pair's files: ``<model>+<dataset>+seed<k>``, names as :func:`name_part` gives.

    Valid names never contain ``+`` (and any other name has it encoded), so two pairs never
    share a stem; a long name's hash keeps it apart from another with the same start.
    """
    return f"{name_part(model)}+{name_part(dataset)}+seed{int(seed)}"


def pair_key(model: str, dataset: str, seed: int) -> str:
    """A label ``<model>__<dataset>__seed<k>``, the pair file stem of schema 1.0.

    Ambiguous when a name holds ``__``: name files with :func:`pair_stem`.
    """
    return f"{model}__{dataset}__seed{seed}"


def key_of(record: Mapping[str, Any]) -> PairKey:
    return record["model"], record["dataset"], record["seed"]


def pair_path(run_dir: Path, record: Mapping[str, Any], suffix: str = ".json") -> Path:
    """Where a pair's record (``.json``) or test predictions (``.pred.npy``) live."""
    return run_dir / PAIRS_DIR / f"{pair_stem(*key_of(record))}{suffix}"


def write_pair(run_dir: Path, record: dict[str, Any]) -> Path:
    path = pair_path(run_dir, record)
    atomic_write_json(path, record)
    return path


def write_predictions(run_dir: Path, record: dict[str, Any], predictions: Any) -> Path:
    """Store a pair's ``(2, n_test)`` array of test labels and predicted labels beside its record."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(predictions), allow_pickle=False)
    path = pair_path(run_dir, record, PREDICTIONS_SUFFIX)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _predictions_path(run_dir: Path, record: Mapping[str, Any]) -> Path | None:
    """The predictions file of a pair: its own name, or the 1.0 name when that record is this pair's."""
    path = pair_path(run_dir, record, PREDICTIONS_SUFFIX)
    if path.exists():
        return path
    legacy = run_dir / PAIRS_DIR / pair_key(*key_of(record))
    try:
        same = key_of(loads(legacy.with_suffix(".json").read_text())) == key_of(record)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return legacy.with_name(legacy.name + PREDICTIONS_SUFFIX) if same else None


def read_predictions(run_dir: Path, record: Mapping[str, Any]) -> Any:
    """A pair's ``(labels, predictions)`` rows as a ``(2, n_test)`` array, or ``None`` when not stored."""
    import numpy as np

    path = _predictions_path(run_dir, record)
    if path is None:
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable predictions ({exc})") from None
    if arr.ndim != 2 or arr.shape[0] != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ResultsError(f"{path}: expected a (2, N) integer array, got shape {arr.shape} and dtype {arr.dtype}")
    return arr


def read_pairs(run_dir: Path) -> dict[PairKey, dict[str, Any]]:
    """The valid pair records of a run directory, by (model, dataset, seed).

    Where two files hold one pair (a rerun of a failed pair of an old run), the finished one
    wins, then the later.
    """
    records: dict[PairKey, dict[str, Any]] = {}
    for path in sorted((run_dir / PAIRS_DIR).glob("*.json")):
        try:
            record = loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{path}: unreadable pair record ({exc}); move it away to rerun that pair") from None
        check_pair(record, f"{path}:")
        key = key_of(record)
        if key not in records or _rank(record) >= _rank(records[key]):
            records[key] = record
    return records


def _rank(record: dict[str, Any]) -> tuple[bool, str]:
    return record["status"] in DONE_STATUSES, str(record.get("finished") or record.get("started") or "")


# --- reading and checking --------------------------------------------------------------------


def parse_schema_version(value: Any) -> tuple[int, int]:
    """``(major, minor)`` of a ``schema_version``: ``"1.1"``, or the integer 1 of old runs (1.0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, 0
    match = re.fullmatch(r"(\d+)\.(\d+)", value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"schema_version {value!r} is not 'major.minor'")
    return int(match[1]), int(match[2])


def check_schema_version(value: Any, where: str) -> None:
    try:
        major, _ = parse_schema_version(value)
    except ValueError as exc:
        raise ResultsError(f"{where} {exc}") from None
    if major != SCHEMA_MAJOR:
        raise ResultsError(
            f"{where} results schema {value} is not readable by this seqbench (it reads {SCHEMA_MAJOR}.x);"
            f" use the seqbench that wrote it"
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "text"),
    "int": (_is_int, "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "strs": (_is_list_of(lambda x: isinstance(x, str)), "a list of names"),
    "seeds": (_is_list_of(lambda x: _is_int(x) and x >= 0), "a list of integers 0 or more"),
    "text_map": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()), "an object of texts"),
}


# The loader's field checks are read from the JSON Schemas, the one description of the format:
# each property's type, down through the objects the schema describes (a field's properties, and
# the values of its other keys), the statuses, and what an ok pair must have. They are a small
# subset of JSON Schema, checked here with one-line messages rather than with jsonschema (a
# test-only dependency; tests/test_schema.py validates the committed runs with it in full). What
# the schema holds but these do not check (numbers, minimums, the items of lists of objects) is
# the readers' to check. The strict load refuses a field of the wrong type; the lenient one
# (report, compare) drops it with a warning, so that readers can trust every field they get.


class _Field(NamedTuple):
    """The check of one property, read from its schema node."""

    kind: str  # of _TYPES
    nullable: bool  # the schema allows null
    fields: dict[str, _Field]  # an object's properties, checked in turn
    values: _Field | None  # an object's other keys (its additionalProperties)


class _Checks(NamedTuple):
    """The checked fields of a pair record and of a results file, and what a pair's status allows."""

    pair: dict[str, _Field]
    statuses: tuple[str, ...]
    ok_needs: list[str]
    results: dict[str, _Field]  # config and environment with their fields; not the pairs


@functools.cache
def _checks() -> _Checks:
    """The checks, read from the schemas once, when a record is first checked."""
    from seqbench import schema

    pair, results = schema.load("pair"), schema.load("results")
    defs = pair["$defs"]
    return _Checks(
        pair=_fields(pair["properties"], defs, ("schema_version", "model", "dataset", "seed", "status")),
        statuses=tuple(pair["properties"]["status"]["enum"]),
        ok_needs=list(pair["allOf"][0]["then"]["required"]),  # the "then" of status ok
        results=_fields(results["properties"], defs, ("schema_version", "pairs")),
    )


def _fields(properties: dict[str, Any], defs: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, _Field]:
    """The checked properties of an object in the schema, by name."""
    return {name: field for name, node in properties.items() if name not in skip and (field := _field(node, defs))}


def _field(node: dict[str, Any], defs: dict[str, Any]) -> _Field | None:
    """The check of a schema node (``$ref`` into ``defs`` followed); None for one these checks
    leave to others."""
    if "$ref" in node:
        node = defs[node["$ref"].rpartition("/")[2]]
    kind = _kind(node)
    if kind is None:
        return None
    nullable = "null" in node["type"]  # a type name, or a list of them (_kind found one)
    if kind != "dict":
        return _Field(kind, nullable, {}, None)
    extra = node.get("additionalProperties")
    values = _field(extra, defs) if isinstance(extra, dict) else None
    return _Field(kind, nullable, _fields(node.get("properties", {}), defs), values)


def _kind(node: dict[str, Any]) -> str | None:
    """The :data:`_TYPES` kind of a schema property; None for one these checks leave to others
    (a number: readers check it finite; an enum; the schema version)."""
    types = node.get("type")
    names = {types} if isinstance(types, str) else set(types or ()) - {"null"}
    if len(names) != 1:
        return None
    name = names.pop()
    if name == "array":
        items = node.get("items", {})
        if items.get("type") == "string":
            return "strs"
        return "seeds" if items.get("type") == "integer" and items.get("minimum") == 0 else "list"
    if name == "object":
        return "text_map" if node.get("additionalProperties") == {"type": "string"} else "dict"
    return {"string": "str", "integer": "int", "boolean": "bool", "number": None}[name]


class _Mismatch(NamedTuple):
    """A field whose value is not of its schema type: where it is, its dotted path and what is wrong."""

    parent: dict[str, Any]
    name: str
    path: str
    problem: str  # "must be text, not int"; "" for a null where the schema allows none


def _mismatches(obj: dict[str, Any], fields: dict[str, _Field], values: _Field | None = None,
                prefix: str = "") -> Iterator[_Mismatch]:
    """The fields of ``obj`` (and of the objects in it) that do not match their checks, in the
    schema's order; the objects that match are looked into."""
    names = [*fields, *(name for name in obj if name not in fields)] if values else list(fields)
    for name in names:
        field = fields.get(name, values)
        if field is None or name not in obj:
            continue
        value = obj[name]
        check, expected = _TYPES[field.kind]
        if value is None:
            if not field.nullable:
                yield _Mismatch(obj, name, f"{prefix}{name}", "")
        elif not check(value):
            yield _Mismatch(obj, name, f"{prefix}{name}", f"must be {expected}, not {type(value).__name__}")
        elif isinstance(value, dict) and (field.fields or field.values):
            yield from _mismatches(value, field.fields, field.values, f"{prefix}{name}.")


def _check_fields(obj: dict[str, Any], fields: dict[str, _Field], where: str, prefix: str = "") -> None:
    """Refuse the first field of the wrong type (null is let through: an unfinished pair leaves fields empty)."""
    for mismatch in _mismatches(obj, fields, prefix=prefix):
        if mismatch.problem:
            raise ResultsError(f"{where} {mismatch.path} {mismatch.problem}")


def _drop(obj: dict[str, Any], fields: dict[str, _Field], where: str) -> None:
    """Drop each field of ``obj`` that does not match its check, warning of each of the wrong type."""
    for mismatch in _mismatches(obj, fields):
        del mismatch.parent[mismatch.name]
        if mismatch.problem:
            warn(f"{where} {mismatch.path} {mismatch.problem}: ignored")


def check_pair(record: Any, where: str) -> None:
    """Refuse a pair record that readers could not use, with one line starting ``where``."""
    if not isinstance(record, dict):
        raise ResultsError(f"{where} a pair record must be an object, not {type(record).__name__}")
    if not all(k in record for k in ("model", "dataset", "seed")):
        raise ResultsError(f"{where} pair record lacks model, dataset or seed")
    check_schema_version(record.get("schema_version", 1), where)
    if not (isinstance(record["model"], str) and isinstance(record["dataset"], str) and _is_int(record["seed"])):
        raise ResultsError(f"{where} model and dataset must be names and seed an integer")
    where = f"{where} {record['model']} x {record['dataset']} seed {record['seed']}:"
    checks = _checks()
    if record.get("status") not in checks.statuses:
        raise ResultsError(f"{where} status {record.get('status')!r} is not one of {', '.join(checks.statuses)}")
    _check_fields(record, checks.pair, where)
    if record["status"] == "ok":
        missing = [k for k in checks.ok_needs if record.get(k) is None]
        if missing:
            raise ResultsError(f"{where} an ok pair needs {', '.join(missing)}")
    # Nested values every reader relies on that the checks above leave alone (numbers, the
    # items of a list): the accuracy, the timings, the history.
    accuracy = (record.get("metrics") or {}).get("accuracy", {}).get("accuracy")
    if accuracy is not None and not (is_number(accuracy) and 0 <= accuracy <= 1):
        raise ResultsError(f"{where} metrics.accuracy.accuracy must be a number in [0, 1], not {accuracy!r}")
    for name, value in (record.get("timing") or {}).items():
        if not (value is None or is_number(value) or _is_list_of(is_number)(value)):
            raise ResultsError(f"{where} timing.{name} must be a number, not {type(value).__name__}")
    if not all(isinstance(h, dict) for h in record.get("history") or []):
        raise ResultsError(f"{where} history must be a list of objects")


def check_config(config: Any, where: str) -> None:
    """Refuse a run configuration without its selection, or with fields of the wrong type."""
    if not isinstance(config, dict):
        raise ResultsError(f"{where} config must be an object, not {type(config).__name__}")
    missing = [k for k in ("models", "datasets", "seeds") if k not in config]
    if missing:
        raise ResultsError(f"{where} config lacks {', '.join(missing)}")
    _check_fields(config, _checks().results["config"].fields, where, "config.")


def check_results(results: Any, where: str, strict: bool = True) -> None:
    """Refuse a ``results.json`` that readers could not use, with one line starting ``where``.

    Not ``strict``: only its schema version and a list of pairs that name their model, dataset
    and seed (report and compare check the fields they read themselves).
    """
    if not isinstance(results, dict):
        raise ResultsError(f"{where} a results file must be an object, not {type(results).__name__}")
    check_schema_version(results.get("schema_version"), where)
    pairs = results.get("pairs")
    if not isinstance(pairs, list):
        raise ResultsError(f"{where} pairs must be a list, not {type(pairs).__name__}")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not all(k in pair for k in ("model", "dataset", "seed")):
            raise ResultsError(f"{where} pair #{i} of the results file lacks model, dataset or seed")
        check_schema_version(pair.get("schema_version", 1), f"{where} pair #{i}:")
    if strict:
        _check_results_fields(results, where)


def _check_results_fields(results: dict[str, Any], where: str) -> None:
    seen: set[PairKey] = set()
    for i, pair in enumerate(results["pairs"]):
        check_pair(pair, f"{where} pair #{i}:")
        if key_of(pair) in seen:
            raise ResultsError(f"{where} {pair['model']} x {pair['dataset']} seed {pair['seed']} is there twice")
        seen.add(key_of(pair))
    if "config" not in results:
        raise ResultsError(f"{where} lacks config (the run's selection)")
    check_config(results["config"], where)
    _check_fields(results, _checks().results, where)
    if not all(isinstance(s, dict) for s in results.get("sessions") or []):
        raise ResultsError(f"{where} sessions must be a list of objects")


def load_results(run_dir: str | Path, strict: bool = False) -> RunResults:
    """Read ``results.json`` from a run directory (or the file itself), checked by :func:`check_results`
    and brought to the current minor by :func:`migrate`.

    ``strict`` (what ``--resume`` needs) also refuses NaN and every field of the wrong type.
    Otherwise (report, compare) a field of the wrong type is dropped, with a warning naming the
    file and the field (:func:`drop_mismatches`), so that what the readers get is of its type.
    """
    path = Path(run_dir)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        text = path.read_text()
        results = loads(text) if strict else json.loads(text)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: not a readable results file ({exc})") from None
    check_results(results, f"{path}:", strict)
    if not strict:
        drop_mismatches(results, f"{path}:")
    return migrate(results)


def drop_mismatches(results: dict[str, Any], where: str) -> None:
    """Drop every field of ``results`` (checked leniently) and of its pairs whose value is not of
    its schema type, with a warning line starting ``where`` for each (a null where the schema
    allows none goes silently: it says no more than the field's absence)."""
    checks = _checks()
    _drop(results, checks.results, where)
    for i, pair in enumerate(results["pairs"]):
        _drop(pair, checks.pair, f"{where} pair #{i}: {pair['model']} x {pair['dataset']} seed {pair['seed']}:")


def migrate(results: dict[str, Any]) -> RunResults:
    """``results`` (checked) in the shape of the current minor; the one place where older minors
    are brought up to date, called by :func:`load_results` only.

    1.0 -> 1.1: the run gets its first session from its stored ``created``, ``command``,
    ``config.data_dir`` and ``environment``. Its pair records need nothing: what 1.1 added to a
    pair (``num_parameters``, the environment's ``git``, ``cuda``, ``blas``, ``thread_env``) is
    optional, so they keep the version of the seqbench that wrote them. A newer minor is read as
    it is (readers ignore the fields they do not know).
    """
    if parse_schema_version(results["schema_version"]) >= (1, 1):
        return as_record(results)
    first = {
        "started": results.get("created"), "command": results.get("command"),
        "data_dir": (results.get("config") or {}).get("data_dir"), "environment": results.get("environment"),
    }
    return as_record({**results, "schema_version": "1.1", "sessions": [first]})


def as_record(results: dict[str, Any]) -> RunResults:
    """``results`` typed for the readers: checked by :func:`check_results` (when loaded), or built to
    the schema by a writer (which the tests validate against it)."""
    return cast("RunResults", results)


def new_session(command: str, data_dir: str, env: dict[str, Any]) -> dict[str, Any]:
    """One process's part of a run: its command, data directory, environment and start."""
    return {"started": now_iso(), "command": command, "data_dir": data_dir, "environment": env}


def new_results(config: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": session["started"],
        "updated": session["started"],
        "command": session["command"],
        "config": config,
        "environment": session["environment"],
        "sessions": [session],
        "pairs": [],
    }


def resumed_results(stored: RunResults, session: dict[str, Any]) -> dict[str, Any]:
    """``stored`` (as :func:`load_results` gives it) continued by ``session``: its command,
    environment and config are kept, the session appended."""
    sessions = stored.get("sessions") or []
    return {**stored, "schema_version": SCHEMA_VERSION, "sessions": [*sessions, session], "pairs": []}


def write_results(run_dir: Path, results: dict[str, Any]) -> Path:
    results["updated"] = now_iso()
    path = run_dir / RESULTS_FILE
    atomic_write_json(path, results)
    return path
