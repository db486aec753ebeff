"""Typed hyperparameters: what a model, dataset or metric takes, declared once.

A :class:`Param` gives a hyperparameter's name, type, default, the values it allows (bounds or
choices), the default search space of ``seqbench tune`` and a one-line description. From it the
harness checks ``--set`` and ``--config`` values before anything runs, ``seqbench list models
--params`` shows it, and ``seqbench tune`` builds its search space.

Written here rather than with pydantic or attrs validators: the checks are a handful of bounds,
and the same declaration must also say how Optuna searches it, which neither knows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The types a hyperparameter may have.
TYPES: tuple[type, ...] = (bool, int, float, str)
_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a text"}


class ParamValueError(ValueError):
    """A value a :class:`Param` does not allow; the message says what it allows."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    ``type`` is ``bool``, ``int``, ``float`` or ``str``. ``choices`` lists the allowed values, or
    ``ge``/``gt``/``le``/``lt`` bound a number (inclusive/exclusive). ``search`` is the default
    space of ``seqbench tune``: ``(low, high)`` for a number (on a log scale when ``log``), a
    tuple of values otherwise (the choices, or ``(False, True)``); ``None``: not searched unless
    the user asks (``--space``). ``help`` is one line for ``seqbench list models --params``.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    search: tuple[Any, ...] | None = None
    log: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise TypeError(f"hyperparameter {self.name!r}: type must be one of bool, int, float, str")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.search is not None:
            object.__setattr__(self, "search", tuple(self.search))
        where = f"hyperparameter {self.name!r}"
        if self.default is not None:
            self._declared(self.default, f"{where}: its default")
        if self.search is not None:
            if self.numeric and self.choices is None:
                if len(self.search) != 2 or not self.search[0] < self.search[1]:
                    raise ValueError(f"{where}: search must be (low, high) with low < high, got {self.search}")
                if self.log and self.search[0] <= 0:
                    raise ValueError(f"{where}: a log-scale search needs low > 0, got {self.search[0]}")
            elif not self.search:
                raise ValueError(f"{where}: search must list at least one value")
            for value in self.search:
                self._declared(value, f"{where}: its search space")

    def _declared(self, value: Any, what: str) -> None:
        try:
            self.check(value)
        except ParamValueError as exc:
            raise ValueError(f"{what} {value!r}: {exc}") from None

    @property
    def numeric(self) -> bool:
        """Whether values are numbers (``int`` or ``float``)."""
        return self.type in (int, float)

    def allowed(self) -> str:
        """What the parameter allows, for people: ``an integer >= 1``, ``one of adam, sgd``."""
        if self.choices is not None:
            return "one of " + ", ".join(map(format_value, self.choices))
        bounds = [
            f"{op} {format_value(b)}"
            for op, b in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if b is not None
        ]
        return _TYPE_WORDS[self.type] + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value: Any) -> Any:
        """``value`` as this parameter's type (an integral number for an ``int``, any number for a
        ``float``); :class:`ParamValueError` when it is not allowed."""
        value = self._typed(value)
        if self.choices is not None and value not in self.choices:
            raise ParamValueError(f"must be {self.allowed()}")
        if self.numeric and not (
            (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt)
        ):
            raise ParamValueError(f"must be {self.allowed()}")
        return value

    def _typed(self, value: Any) -> Any:
        wrong = ParamValueError(f"must be {self.allowed()}")
        if self.type is bool:
            if not isinstance(value, bool):
                raise wrong
            return value
        if self.type is str:
            if not isinstance(value, str):
                raise wrong
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong
        if self.type is int:
            if value != int(value):
                raise wrong
            return int(value)
        return float(value)

    def parse(self, text: str) -> Any:
        """The value of ``text`` (as ``--set`` gives it), checked."""
        text = text.strip()
        if self.type is bool:
            low = text.lower()
            value: Any = (
                True if low in {"1", "true", "yes", "on"} else False if low in {"0", "false", "no", "off"} else text
            )
        elif self.type is str:
            value = text
        else:
            try:
                value = int(text) if self.type is int else float(text)
            except ValueError:
                value = text
        return self.check(value)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``seqbench list models --params --json``."""
        return {"name": self.name, "type": self.type.__name__, "default": self.default, "help": self.help,
                "allowed": self.allowed(), "choices": list(self.choices) if self.choices is not None else None,
                **{b: getattr(self, b) for b in ("ge", "gt", "le", "lt")},
                "search": list(self.search) if self.search is not None else None, "log": self.log}


def format_value(value: Any) -> str:
    """A value as ``--set`` would take it: ``true``, ``0.001``, ``adam``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def by_name(params: Iterable[Param], owner: str) -> dict[str, Param]:
    """``params`` by name; a name declared twice is a ValueError naming ``owner``."""
    out: dict[str, Param] = {}
    for p in params:
        if not isinstance(p, Param):
            raise TypeError(f"{owner}: params must be seqbench.Param declarations, got {type(p).__name__}")
        if p.name in out:
            raise ValueError(f"{owner}: hyperparameter {p.name!r} is declared twice")
        out[p.name] = p
    return out


def declared_defaults(params: Iterable[Param]) -> dict[str, Any]:
    """The declared defaults of ``params`` (those that have one)."""
    return {p.name: p.default for p in params if p.default is not None}


def check_values(values: Mapping[str, Any], declared: Mapping[str, Param]) -> None:
    """Refuse a value of ``values`` that its declaration does not allow (a ParamValueError naming it)."""
    for key, value in values.items():
        if key in declared:
            try:
                declared[key].check(value)
            except ParamValueError as exc:
                raise ParamValueError(f"{key}={format_value(value)}: {exc}") from None
