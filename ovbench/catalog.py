"""What `ovbench ls models -v` says about a model: each `--model-args` key with its type, its
default and the comment written next to it in the adapter's source (where an adapter author
already explains it), so that nobody has to trigger errors to learn which arguments exist."""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from dataclasses import dataclass

from .api import ModelArgs

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
