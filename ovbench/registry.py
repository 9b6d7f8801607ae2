"""Where model ids are resolved to adapter classes.

Two ways in, one namespace: the `@register_model` decorator (for modules a user imports with
`--plugin`) and the "ovbench.models" entry-point group of lazy "module:Class" targets (how the
built-in adapters and any installed package announce theirs). An id belongs to one class: a
plugin cannot take an installed id, and conflicting installed ids are named, not half-loaded. Nothing is imported until a model
is asked for, so `ovbench ls models` stays fast and a broken plugin breaks only itself.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from typing import Callable, TypeVar

from ovbench.api import SegmentationModel
from ovbench.errors import ConfigError
from ovbench.resolve import names_a_file, user_file
from ovbench.suggest import did_you_mean

ENTRY_POINT_GROUP = "ovbench.models"
BUILTIN_PACKAGE = "ovbench."  # entry points into ovbench itself are the built-in ids
PLUGIN_PREFIX = "ovbench_plugin_"  # module names given to --plugin files

M = TypeVar("M", bound=type[SegmentationModel])

_classes: dict[str, type[SegmentationModel]] = {}
_lazy: dict[str, str] = {}
_conflicts: dict[str, str] = {}  # model id -> why it cannot be used, or why a claim was ignored
_entry_points_loaded = False


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: make the adapter available as `--model name`."""

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, SegmentationModel)):
            raise TypeError(f"@register_model({name!r}) must decorate a SegmentationModel subclass")
        _load_entry_points()
        if name in _lazy and not _is_target(cls, _lazy[name]):
            raise ConfigError(
                f"model id {name!r} belongs to {_lazy[name]}; {_where(cls)} cannot register under it (choose another id)"
            )
        existing = _classes.get(name)
        if existing is not None and _where(existing) != _where(cls):
            raise ConfigError(f"model id {name!r} is registered twice: {_where(existing)} and {_where(cls)}")
        _classes[name] = cls
        cls.model_id = name  # type: ignore[attr-defined]
        return cls

    return decorate


def _where(cls: type) -> str:
    """module:Class, and the file for a plugin, whose module name alone says little."""
    where = f"{cls.__module__}:{cls.__qualname__}"
    module = sys.modules.get(cls.__module__)
    if cls.__module__.startswith(PLUGIN_PREFIX) and getattr(module, "__file__", None):
        where += f" ({module.__file__})"
    return where


def _is_target(cls: type, target: str) -> bool:
    """Whether `cls` is what the entry point "package.module:Class" names, without importing it
    (the decorator runs while that module is being imported): same class name, defined in that
    module or below it (a package re-exporting its adapter)."""
    module, _, attr = target.partition(":")
    return cls.__qualname__ == attr and (cls.__module__ == module or cls.__module__.startswith(module + "."))


def _claimant(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{ep.value} (from {dist.name})" if dist is not None else ep.value


def _load_entry_points() -> None:
    """Announce every installed adapter. A third-party entry point that claims a built-in id is
    ignored; two third-party ones that claim one id make that id unusable. Either way the
    conflict is named (`ovbench ls models`, or when the id is asked for) and every other id works."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    claims: dict[str, list[importlib.metadata.EntryPoint]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        same_id = claims.setdefault(ep.name, [])
        if all(ep.value != other.value for other in same_id):  # one package seen twice is no conflict
            same_id.append(ep)
    for name, eps in claims.items():
        builtin = [ep for ep in eps if ep.value.startswith(BUILTIN_PACKAGE)]
        if len(eps) == 1 or len(builtin) == 1:
            _lazy[name] = (builtin or eps)[0].value
        if len(eps) > 1 and len(builtin) == 1:
            others = ", ".join(_claimant(ep) for ep in eps if ep is not builtin[0])
            _conflicts[name] = f"built-in model id {name!r} is also claimed by {others}: ignored"
        elif len(eps) > 1:
            _conflicts[name] = f"model id {name!r} is claimed by {' and '.join(map(_claimant, eps))}; uninstall all but one"


def registry_notes() -> list[str]:
    """Conflicts found among installed adapters, one line each, for `ovbench ls models`."""
    _load_entry_points()
    return [_conflicts[name] for name in sorted(_conflicts)]


def load_plugin(module: str) -> None:
    """Import a user's module so that its `@register_model` decorators run: a module name
    (looked up on sys.path, then in the current folder, as `python -m` would) or a .py file."""
    if names_a_file(module):
        path = user_file(module, "plugin file")
        # never shadows a real module (a plugin called tqdm.py), nor another folder's model.py
        name = f"{PLUGIN_PREFIX}{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
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
    return sorted(set(_classes) | set(_lazy) | set(_conflicts))


def get_model_class(name: str) -> type[SegmentationModel]:
    """Resolve a model id, importing its module on first use."""
    _load_entry_points()
    if name in _classes:
        return _classes[name]
    if name in _conflicts and name not in _lazy:
        raise ConfigError(_conflicts[name])
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
