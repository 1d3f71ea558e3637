"""Config models: frozen dataclasses whose type hints are the schema, checked by one small walker.

Why not pydantic: it cost ~17 MiB and ~100 ms of import on every `agent check`.
This walker does what the config needs and no more: it coerces YAML values to
the annotated types, refuses unknown keys, and collects every problem at once
as (key path, what is wrong, value) so the engine can print
`FILE: key.path: what is wrong (got VALUE)`.

A model is a subclass of `Model` with annotated fields (it becomes a frozen,
keyword-only dataclass by itself). Converting a pydantic model:

    class DiskConfig(CheckConfig):                      # was: a BaseModel subclass; same annotations
        warning: Percent = 0.85                         # defaults are in the final type; field checks see them
        probes: int = Field(20, ge=5, le=2000)          # Field(default, alias=, ge=, gt=, le=, lt=, min_length=, pattern=)
        for_: Duration = Field(0.0, alias="for")        # YAML `for`, Python `for_`

        @field_check("critical")                        # was @field_validator (after), without @classmethod:
        def _not_below(cls, name, value, data): ...     #   data = fields validated so far; return the value, or raise ValueError
        @field_check("to", before=True)                 # was mode="before": gets the raw YAML value
        @model_check                                    # was @model_validator(mode="after"): (self) -> None; raise ValueError
        refused_keys = {"url": "why, and what to write instead"}   # keys refused with a message, value never shown

    DiskConfig.parse({"for": "0s"})                     # was model_validate; raises Invalid (a ConfigError)
    DiskConfig(for_=0)                                  # by field name, validated the same way

Raise `Refused` instead of ValueError when the value must not be echoed (a URL with a password).
Types understood: str, int, float, bool, Path, Any, Literal[...], X | None,
tuple[X, ...], list[X], dict[K, V], another Model, and Annotated[T, Parse(fn)]
(a parser of human units, as `Duration`) or Annotated[T, Limit(gt=0)] (bounds).
Floats must be finite, whole numbers within ±10**15, strings free of NUL.
"""

from __future__ import annotations

import urllib.parse

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Sequence

from agent.errors import ConfigError

_BAD = object()
"""A value that failed validation (its problem is already recorded)."""
_MUTABLE = (dict, list, set)
INT_LIMIT = 10**15
"""Whole numbers in a config are counts, ports and days: anything larger is a typo, not a setting."""
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    path: tuple
    message: str
    value: Any = _BAD
    """The offending value, shown as `(got VALUE)`; _BAD when it must not be shown."""

    def line(self, prefix: Sequence = ()) -> str:
        path = ".".join(str(part) for part in (*prefix, *self.path)) or "(top level)"
        return f"{path}: {self.message}" + ("" if self.value is _BAD else f" (got {show(self.value)})")


class Invalid(ConfigError):
    """Validation failed; `found` holds every problem, `problems` their lines without a file name."""

    def __init__(self, found: Sequence[Problem]):
        self.found = list(found)
        super().__init__([problem.line() for problem in self.found])


class Refused(ValueError):
    """A problem whose value must not be echoed (it may hold a secret)."""


def split_url(value: str, schemes: tuple[str, ...], expected: str) -> urllib.parse.SplitResult:
    """A service URL: one carrying a password is refused without being echoed (secrets only by reference),
    one of another scheme names the `expected` form."""
    parts = urllib.parse.urlsplit(value)
    if parts.password is not None:
        raise Refused("a password in the URL is not accepted: remove it and use password_env or password_file")
    if parts.scheme not in schemes:
        raise ValueError(f"unsupported scheme, expected {expected}")
    return parts


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclasses.dataclass(frozen=True, slots=True)
class Parse:
    """Annotated metadata: `fn` turns what the config says into the value (raising ValueError)."""

    fn: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Bounds:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    pattern: str | None = None

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                return f"String should have at least {self.min_length} character{'s' * (self.min_length != 1)}"
            if self.pattern is not None and not re.search(self.pattern, value):
                return f"String should match pattern '{self.pattern}'"
            return None
        for bound, ok, words in ((self.ge, lambda b: value >= b, "greater than or equal to"),
                                 (self.gt, lambda b: value > b, "greater than"),
                                 (self.le, lambda b: value <= b, "less than or equal to"),
                                 (self.lt, lambda b: value < b, "less than")):
            if bound is not None and not ok(bound):
                return f"Input should be {words} {bound}"
        return None


def Field(default: Any = dataclasses.MISSING, *, alias: str | None = None, ge: float | None = None,
          gt: float | None = None, le: float | None = None, lt: float | None = None,
          min_length: int | None = None, pattern: str | None = None) -> Any:
    """A field with a YAML name other than its own (`for`), or bounds."""
    metadata = {"alias": alias, "bounds": Bounds(ge, gt, le, lt, min_length, pattern)}
    if isinstance(default, _MUTABLE):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


Limit = Bounds
"""Bounds as Annotated metadata, e.g. `dict[str, Annotated[float, Limit(gt=0)]]`."""


def field_check(*names: str, before: bool = False) -> Callable:
    """Marks `fn(cls, name, value, data)` as a check of the named fields (data: the fields validated so far)."""
    def mark(fn: Callable) -> Callable:
        fn.__field_check__ = (names, before)
        return fn
    return mark


def model_check(fn: Callable) -> Callable:
    """Marks `fn(self)` as a check of the whole model, run once every field is valid."""
    fn.__model_check__ = True
    return fn


class Model:
    """Base of every config model: annotate fields, give defaults, add checks (see the module docstring)."""

    refused_keys: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if isinstance(value, _MUTABLE) and name in vars(cls).get("__annotations__", {}):
                setattr(cls, name, dataclasses.field(default_factory=lambda v=value: type(v)(v)))
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        cls._assign = cls.__dict__["__init__"]  # the dataclass's own __init__: sets fields, checks nothing
        del cls.__init__  # so that Model.__init__ (validating) is what callers get
        cls.__schema = None

    def __init__(self, **values: Any) -> None:
        """Builds a model from Python values by field name (`for_`), validated as from the config."""
        keys = {slot.name: slot.key for slot in self._schema().slots}
        problems: list[Problem] = []
        data = _fields(type(self), {keys.get(name, name): value for name, value in values.items()}, (), problems)
        if data is not _BAD:
            _finish(self, data, (), problems)
        if problems:
            raise Invalid(problems)

    @classmethod
    def parse(cls, data: Any) -> typing.Self:
        """The model for a YAML mapping; raises Invalid listing every problem."""
        problems: list[Problem] = []
        result = _walk(cls, data, (), problems)
        if problems:
            raise Invalid(problems)
        return result

    @classmethod
    def _schema(cls) -> _Schema:
        if cls.__dict__.get("_Model__schema") is None:
            cls.__schema = _Schema.of(cls)
        return cls.__schema


@dataclasses.dataclass(frozen=True)
class _Slot:
    name: str
    key: str
    tp: Any
    default: Any
    bounds: Bounds | None


@dataclasses.dataclass(frozen=True)
class _Schema:
    slots: tuple[_Slot, ...]
    before: dict[str, tuple[Callable, ...]]
    after: dict[str, tuple[Callable, ...]]
    model_checks: tuple[Callable, ...]

    @staticmethod
    def of(cls: type) -> _Schema:
        hints = typing.get_type_hints(cls, include_extras=True)
        slots = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            slots.append(_Slot(f.name, f.metadata.get("alias") or f.name, hints[f.name], default,
                               f.metadata.get("bounds")))
        before: dict[str, list] = {}
        after: dict[str, list] = {}
        model_checks = []
        seen = set()
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                fn = getattr(fn, "__func__", fn)
                if hasattr(fn, "__field_check__"):
                    names, is_before = fn.__field_check__
                    for name in names:
                        (before if is_before else after).setdefault(name, []).append(fn)
                elif getattr(fn, "__model_check__", False) and attr not in seen:
                    seen.add(attr)
                    model_checks.append(getattr(cls, attr))
        return _Schema(tuple(slots), {k: tuple(v) for k, v in before.items()},
                       {k: tuple(v) for k, v in after.items()}, tuple(model_checks))


def validate(tp: Any, data: Any) -> Any:
    """`data` as type `tp` (any type the walker understands); raises Invalid listing every problem."""
    problems: list[Problem] = []
    result = _walk(tp, data, (), problems)
    if problems:
        raise Invalid(problems)
    return result


def _walk(tp: Any, value: Any, path: tuple, problems: list[Problem]) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(tp)
        for extra in extras:
            if isinstance(extra, Parse):
                try:
                    value = extra.fn(value)
                except ValueError as exc:
                    problems.append(Problem(path, str(exc), _BAD if isinstance(exc, Refused) else value))
                    return _BAD
        result = _walk(base, value, path, problems)
        for extra in extras:
            if isinstance(extra, Bounds) and result is not _BAD:
                message = extra.problem(result)
                if message:
                    problems.append(Problem(path, message, value))
                    return _BAD
        return result
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Model):
        return _model(tp, value, path, problems)
    if origin in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        if value is None and len(options) < len(typing.get_args(tp)):
            return None
        if len(options) == 1:
            return _walk(options[0], value, path, problems)
        for option in options:  # several types: the first that takes the value, quietly
            attempt: list[Problem] = []
            result = _walk(option, value, path, attempt)
            if not attempt:
                return result
        problems.append(Problem(path, "Input is of none of the accepted types", value))
        return _BAD
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        words = [repr(c) for c in choices]
        expected = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
        problems.append(Problem(path, f"Input should be {expected}", value))
        return _BAD
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            problems.append(Problem(path, f"Input should be a valid {origin.__name__}", value))
            return _BAD
        item_type = typing.get_args(tp)[0]
        items = [_walk(item_type, item, path + (i,), problems) for i, item in enumerate(value)]
        return _BAD if _BAD in items else origin(items)
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(Problem(path, "Input should be a valid dictionary", value))
            return _BAD
        key_type, value_type = typing.get_args(tp)
        result, failed = {}, False
        for key, item in value.items():
            checked_key = _walk(key_type, key, path + (key, "[key]"), problems)
            checked = _walk(value_type, item, path + (key,), problems)
            failed = failed or checked_key is _BAD or checked is _BAD
            result[checked_key] = checked
        return _BAD if failed else result
    scalar = _SCALARS.get(tp)
    if scalar is None:
        raise TypeError(f"the config walker does not understand the type {tp!r}")
    try:
        return scalar(value)
    except ValueError as exc:
        problems.append(Problem(path, str(exc), value))
        return _BAD


def _model(cls: type[Model], value: Any, path: tuple, problems: list[Problem]) -> Any:
    if not isinstance(value, dict):
        problems.append(Problem(path, "Input should be a valid dictionary", value))
        return _BAD
    data = _fields(cls, value, path, problems)
    if data is _BAD:
        return _BAD
    instance = object.__new__(cls)
    return instance if _finish(instance, data, path, problems) else _BAD


def _fields(cls: type[Model], value: dict, path: tuple, problems: list[Problem]) -> Any:
    """The validated field values of a model from a YAML mapping, or _BAD with every problem recorded."""
    schema = cls._schema()
    count = len(problems)
    data: dict[str, Any] = {}
    for slot in schema.slots:
        where = path + (slot.key,)
        if slot.key not in value:
            if slot.default is dataclasses.MISSING:
                problems.append(Problem(where, "required key is missing"))
            else:  # a default is trusted to have its type; the field's checks still see it
                _field(cls, slot, slot.default, slot.default, where, data, problems)
            continue
        raw = shown = value[slot.key]
        try:
            for fn in schema.before.get(slot.name, ()):
                raw = fn(cls, slot.name, raw, data)
        except ValueError as exc:
            problems.append(Problem(where, str(exc), _BAD if isinstance(exc, Refused) else shown))
            continue
        checked = _walk(slot.tp, raw, where, problems)
        if checked is _BAD:
            continue
        message = slot.bounds.problem(checked) if slot.bounds and checked is not None else None
        if message:
            problems.append(Problem(where, message, shown))
            continue
        _field(cls, slot, checked, shown, where, data, problems)
    known = {slot.key for slot in schema.slots}
    for key in value:
        if key in cls.refused_keys:
            problems.append(Problem(path + (key,), cls.refused_keys[key]))
        elif key not in known:  # its value is not echoed: a mistyped key may hold a secret
            problems.append(Problem(path + (key,), "unknown key"))
    return _BAD if len(problems) > count else data


def _finish(instance: Model, data: dict[str, Any], path: tuple, problems: list[Problem]) -> bool:
    """Sets the fields, then runs the model's own checks (about the whole section: no value echoed)."""
    type(instance)._assign(instance, **data)
    for check in type(instance)._schema().model_checks:
        try:
            check(instance)
        except ValueError as exc:
            problems.append(Problem(path, str(exc)))
            return False
    return True


def _field(cls: type[Model], slot: _Slot, value: Any, shown: Any, where: tuple, data: dict[str, Any],
           problems: list[Problem]) -> None:
    """Runs the field's own checks; stores the value in `data`, or records the problem."""
    try:
        for fn in cls._schema().after.get(slot.name, ()):
            value = fn(cls, slot.name, value, data)
    except ValueError as exc:
        problems.append(Problem(where, str(exc), _BAD if isinstance(exc, Refused) else shown))
        return
    data[slot.name] = value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _int(value: Any) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number == int(number)):
                raise ValueError("Input should be a valid integer, unable to parse string as an integer") from None
            value = int(number)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Input should be a finite number")
        if value != int(value):
            raise ValueError("Input should be a valid integer, got a number with a fractional part")
        value = int(value)
    if not isinstance(value, int):
        raise ValueError("Input should be a valid integer")
    if not -INT_LIMIT <= value <= INT_LIMIT:
        raise ValueError(f"Input should be {'less' if value > 0 else 'greater'} than or equal to "
                         f"{INT_LIMIT if value > 0 else -INT_LIMIT}")
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("Input should be a valid number, unable to parse string as a number") from None
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise ValueError("Input should be a finite number") from None
    else:
        raise ValueError("Input should be a valid number")
    if not math.isfinite(number):
        raise ValueError("Input should be a finite number")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, (int, str)):
        raise ValueError("Input should be a valid boolean, unable to interpret input")
    raise ValueError("Input should be a valid boolean")


def _path(value: Any) -> Path:
    if not isinstance(value, (str, Path)):
        raise ValueError("Input should be a valid path")
    return Path(_str(str(value)))


_SCALARS: dict[Any, Callable[[Any], Any]] = {str: _str, int: _int, float: _float, bool: _bool, Path: _path}

