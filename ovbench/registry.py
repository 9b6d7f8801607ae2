"""Where model ids are resolved to adapter classes.

Three ways in, one namespace: the `@register_model` decorator (for modules a user imports with
`--plugin`), lazy "module:attr" targets, and the "ovbench.models" entry-point group (how the
built-in adapters and any installed package announce theirs). Nothing is imported until a model
is asked for, so `ovbench ls models` stays fast and a broken plugin breaks only itself.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from typing import Callable, TypeVar

from .api import SegmentationModel
from .errors import ConfigError
from .suggest import did_you_mean

ENTRY_POINT_GROUP = "ovbench.models"

M = TypeVar("M", bound=type[SegmentationModel])

_classes: dict[str, type[SegmentationModel]] = {}
_lazy: dict[str, str] = {}
_entry_points_loaded = False


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: make the adapter available as `--model name`."""

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, SegmentationModel)):
            raise TypeError(f"@register_model({name!r}) must decorate a SegmentationModel subclass")
        existing = _classes.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ConfigError(
                f"model id {name!r} is registered twice: {_where(existing)} and {_where(cls)}"
            )
        _classes[name] = cls
        cls.model_id = name  # type: ignore[attr-defined]
        return cls

    return decorate


def register_lazy(name: str, target: str) -> None:
    """Announce `name` as "package.module:ClassName", imported only when used."""
    if name in _lazy and _lazy[name] != target:
        raise ConfigError(f"model id {name!r} is registered twice: {_lazy[name]} and {target}")
    _lazy[name] = target


def _where(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        register_lazy(ep.name, ep.value)


def load_plugin(module: str) -> None:
    """Import a user's module so that its `@register_model` decorators run: a module name
    (looked up on sys.path, then in the current folder, as `python -m` would) or a .py file."""
    path = Path(module)
    if path.suffix == ".py":
        if not path.is_file():
            raise ConfigError(f"plugin file {path} does not exist")
        name = f"ovbench_plugin_{path.stem}"  # never shadows a real module (a plugin called tqdm.py)
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))  # its sibling modules import as usual
        sys.modules[name] = loaded  # dataclasses look their module up here
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[name]
            raise
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if not (err.name and module.startswith(err.name)):
            raise
        if "" in sys.path or os.getcwd() in sys.path:
            raise ConfigError(f"plugin module {module!r} not found (is it on PYTHONPATH or installed?)") from None
        sys.path.insert(0, os.getcwd())  # the `ovbench` script, unlike `python -m`, does not look here
        load_plugin(module)


def available_models() -> list[str]:
    _load_entry_points()
    return sorted(set(_classes) | set(_lazy))


def get_model_class(name: str) -> type[SegmentationModel]:
    """Resolve a model id, importing its module on first use."""
    _load_entry_points()
    if name in _classes:
        return _classes[name]
    if name not in _lazy:
        raise ConfigError(f"unknown model {name!r}{did_you_mean(name, available_models())}; see `ovbench ls models`")
    module_name, _, attr = _lazy[name].partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, attr) if attr else None
    if not (isinstance(cls, type) and issubclass(cls, SegmentationModel)):
        raise ConfigError(f"model {name!r} points at {_lazy[name]!r}, which is not a SegmentationModel class")
    _classes.setdefault(name, cls)
    if getattr(cls, "model_id", name) != name:
        # the same class under a second id (an entry point alias): keep both ids usable
        _classes[name] = cls
    return cls
