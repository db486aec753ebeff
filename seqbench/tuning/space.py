"""The search space of a model: its declared ``search`` spaces, narrowed by ``--space``.

``--space KEY=LOW:HIGH`` searches a number between the bounds (on the declaration's scale;
``LOW:HIGH:log`` or ``:linear`` says otherwise), ``--space KEY=A,B,C`` searches among values, and
``--space KEY=VALUE`` fixes it (as ``--set`` does). ``MODEL.KEY`` scopes a key to one model.
Every bound and value is checked against the declaration, when there is one, before anything
runs. Optuna is imported only to make distributions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from seqbench.hyperparams import Param, ParamValueError, format_value


class SpaceError(ValueError):
    """A ``--space`` entry that a model's declarations do not allow (a usage error)."""


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: numbers in ``[low, high]`` (``log`` scale), or ``choices``."""

    name: str
    type: type
    low: Any = None
    high: Any = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension."""
        import optuna

        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(self.choices)
        if self.type is int:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.choices is not None:
            return ",".join(map(format_value, self.choices))
        return f"{format_value(self.low)}:{format_value(self.high)}{':log' if self.log else ''}"


def parse_entries(entries: Iterable[str]) -> dict[str, str]:
    """``KEY=SPEC`` texts (``--space``) as a mapping; a text without ``=`` is a SpaceError."""
    out = {}
    for item in entries:
        key, sep, spec = item.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise SpaceError(f"--space {item}: expected KEY=LOW:HIGH, KEY=A,B,... or KEY=VALUE")
        out[key.strip()] = spec.strip()
    return out


def model_space(model: str, declared: Mapping[str, Param], defaults: Mapping[str, Any],
                entries: Mapping[str, str]) -> tuple[dict[str, Dimension], dict[str, str]]:
    """``model``'s search space and the values ``--space`` fixes (as ``--set`` texts).

    Starts from the declared ``search`` spaces; ``entries`` (``KEY`` or ``MODEL.KEY`` for this
    model) replace or add dimensions. A key the model neither declares nor has a default for is
    a SpaceError, as is a bound or value its declaration does not allow."""
    space = {name: _declared_dimension(p, p.search) for name, p in declared.items() if p.search is not None}
    fixed: dict[str, str] = {}
    own = {k: v for k, v in entries.items() if "." not in k}
    own.update({k[len(model) + 1:]: v for k, v in entries.items() if k.startswith(f"{model}.")})
    for key, spec in own.items():
        if key == "seed":
            raise SpaceError(f"--space {key}=...: the seed is not a hyperparameter (tune --seed)")
        param = declared.get(key) or _untyped(key, defaults)
        if param is None:
            continue  # another model's key: checked by check_entries
        where = f"--space {key}={spec}" if key in entries else f"--space {model}.{key}={spec}"
        try:
            dim = _entry(param, spec)
        except ParamValueError as exc:
            raise SpaceError(f"{where}: {key} of {model} {exc}") from None
        if isinstance(dim, Dimension):
            space[key] = dim
        else:
            space.pop(key, None)
            fixed[key] = spec
    return space, fixed


def check_entries(entries: Mapping[str, str], takers: Mapping[str, set[str]]) -> None:
    """Refuse a ``--space`` key that no selected model takes (``takers``: model -> its keys)."""
    for key in entries:
        model = max((m for m in takers if key.startswith(f"{m}.")), key=len, default=None)
        name = key[len(model) + 1:] if model else key
        if model is not None and name not in takers[model]:
            raise SpaceError(f"--space {key}: model {model!r} has no parameter {name!r}; "
                             f"it has: {', '.join(sorted(takers[model]))}")
        if model is None and not any(key in keys for keys in takers.values()):
            raise SpaceError(f"--space {key}: no selected model has a parameter {key!r}")


def _declared_dimension(p: Param, search: tuple[Any, ...]) -> Dimension:
    """The dimension of ``p``'s declared ``search``: its values, or a numeric range's bounds."""
    if p.choices is not None or not p.numeric:
        return Dimension(p.name, p.type, choices=search)
    return Dimension(p.name, p.type, search[0], search[1], p.log)


def _untyped(key: str, defaults: Mapping[str, Any]) -> Param | None:
    """A declaration for a key an untyped plugin has a default for: its type, nothing more."""
    if key not in defaults or type(defaults[key]) not in (bool, int, float, str):
        return None
    return Param(key, type(defaults[key]), None)


def _entry(param: Param, spec: str) -> Dimension | str:
    """A dimension from ``LOW:HIGH[:log|:linear]`` or ``A,B,...``; a fixed value's text otherwise."""
    if "," in spec:
        values = tuple(dict.fromkeys(param.parse(v) for v in spec.split(",")))
        return Dimension(param.name, param.type, choices=values)
    parts = spec.split(":")
    if len(parts) == 1:
        param.parse(spec)
        return spec
    if not param.numeric or len(parts) > 3 or (len(parts) == 3 and parts[2] not in ("log", "linear")):
        raise ParamValueError(f"takes {'LOW:HIGH[:log|:linear]' if param.numeric else 'A,B,... or one value'}, "
                              f"got {spec!r}")
    low, high = param.parse(parts[0]), param.parse(parts[1])
    log = param.log if len(parts) == 2 else parts[2] == "log"
    if not low < high:
        raise ParamValueError(f"needs LOW < HIGH, got {spec!r}")
    if log and low <= 0:
        raise ParamValueError(f"on a log scale needs LOW > 0, got {spec!r}")
    return Dimension(param.name, param.type, low, high, log)
