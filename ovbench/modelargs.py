"""A model's typed `--model-args`: the dataclass an adapter declares them in, the parsing of
"k=v,..." (or a mapping) into it with every bad key or value refused by name, and what
`ovbench ls models -v` says about each: its type, its default and the comment written next to
it in the adapter's source, so that nobody has to trigger errors to learn which arguments exist."""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Mapping

from ovbench.errors import ConfigError
from ovbench.suggest import did_you_mean

_COMMENTED_FIELD = re.compile(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", re.MULTILINE)


@dataclass
class ArgInfo:
    name: str
    type: str
    default: str  # "required" when the field has none
    comment: str


def model_arguments(args_cls: type[ModelArgs]) -> list[ArgInfo]:
    hints = typing.get_type_hints(args_cls)
    comments = _field_comments(args_cls)
    return [
        ArgInfo(field.name, _type_name(hints[field.name]), _default(field), comments.get(field.name, ""))
        for field in dataclasses.fields(args_cls)
    ]


def _type_name(annotation: object) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\b(typing|pathlib)\.", "", str(annotation)).replace("NoneType", "None")


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return "none" if field.default is None else str(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return str(field.default_factory())  # type: ignore[misc]
    return "required"


def _field_comments(args_cls: type) -> dict[str, str]:
    """`name: type = default  # comment` lines of the class and its dataclass bases (a subclass's
    comment wins); classes whose source is not available give none."""
    comments: dict[str, str] = {}
    for klass in reversed(args_cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        comments.update(_COMMENTED_FIELD.findall(source))
    return comments


@dataclasses.dataclass
class ModelArgs:
    """Typed `--model-args`. Subclass it as a dataclass; each field is one `key=value`.
    Bound a number with `Annotated[int, Range(min=1)]` (or `PositiveInt`), so a bad value is
    refused naming the argument before the model is built."""


@dataclasses.dataclass(frozen=True)
class Range:
    """Inclusive bounds of a numeric model argument, declared with typing.Annotated."""

    min: float | None = None
    max: float | None = None

    def check(self, key: str, value: float) -> None:
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            low = "-inf" if self.min is None else f"{self.min:g}"
            high = "inf" if self.max is None else f"{self.max:g}"
            raise ConfigError(f"model argument {key}={value}: must be in {low}..{high}")


PositiveInt = Annotated[int, Range(min=1)]  # sizes, counts, strides


def _coerce(key: str, raw: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        value = _coerce(key, raw, base)
        for bound in extras:
            if isinstance(bound, Range) and value is not None:
                bound.check(key, value)
        return value
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if raw.lower() in ("none", "null", ""):
            return None
        return _coerce(key, raw, options[0])
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if raw not in allowed:
            raise ConfigError(f"model argument {key}={raw!r}: expected one of {', '.join(map(str, allowed))}")
        return raw
    if annotation is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"model argument {key}={raw!r}: expected true or false")
    if annotation in (int, float):
        try:
            value = annotation(raw)
        except ValueError:
            raise ConfigError(f"model argument {key}={raw!r}: expected {annotation.__name__}") from None
        if not math.isfinite(value):
            raise ConfigError(f"model argument {key}={raw!r}: expected a finite number")
        return value
    if annotation is Path:
        return Path(raw).expanduser()
    return raw


def parse_pairs(spec: str | None) -> dict[str, str]:
    """"k=v,k2=v2" -> {"k": "v", "k2": "v2"}; values may contain "=" but not ","."""
    items: dict[str, str] = {}
    for pair in (spec or "").split(","):
        if not pair.strip():
            continue
        if "=" not in pair:
            raise ConfigError(f"model argument {pair.strip()!r} is not key=value")
        key, value = (part.strip() for part in pair.split("=", 1))
        if not key or key in items:
            raise ConfigError(f"model argument {pair.strip()!r}: " + ("no key before '='" if not key else f"{key} is given twice"))
        items[key] = value
    return items


def parse_model_args(args_cls: type[ModelArgs], spec: str | Mapping[str, Any] | None) -> ModelArgs:
    """Build the model's typed arguments from "k=v,k2=v2" (or a mapping), naming any bad key."""
    if isinstance(spec, Mapping):
        items = {k: v if isinstance(v, str) else str(v) for k, v in spec.items()}
    else:
        items = parse_pairs(spec)
    hints = typing.get_type_hints(args_cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(args_cls)}
    values = {}
    for key, raw in items.items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise ConfigError(f"unknown model argument {key!r}{did_you_mean(key, fields)}; known: {known}")
        values[key] = _coerce(key, raw, hints[key])
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"missing model argument(s): {', '.join(missing)}")
    return args_cls(**values)


def args_to_dict(args: ModelArgs) -> dict[str, Any]:
    """JSON-ready view of the arguments for the run record."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(args).items()}
