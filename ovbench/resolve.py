"""One rule for "is this a built-in name or a user's file?", shared by every option that takes
either (splits, table layouts, GKC configs and checkpoints, CLIP weights, plugins).

The rule: a value with a path separator, a leading `.` or `~`, or a known file suffix is a path.
Any other value is a built-in name, except that a value which is no built-in name but names an
existing file is that file. A path is resolved against the current folder and returned absolute
and canonical, so `./mine.json` and `mine.json` are the same thing and stay the same after a
`cd`. A name that is neither gets a one-line error with close names, so a typo is never
reported as a missing file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Collection

from ovbench.errors import ConfigError, OvbenchError
from ovbench.suggest import did_you_mean

FILE_SUFFIXES = frozenset({".json", ".py", ".pt", ".pth", ".bin", ".safetensors"})


def names_a_file(value: str, builtins: Collection[str] | None = None) -> bool:
    """Whether `value` is a user's file under the rule above. Given the built-in names, a bare
    word that is none of them but an existing file counts as a file too."""
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    if any(sep in value for sep in separators) or value.startswith((".", "~")):
        return True
    if Path(value).suffix.lower() in FILE_SUFFIXES:
        return True
    return builtins is not None and value not in builtins and Path(value).is_file()


def user_file(value: str, what: str, error: type[OvbenchError] = ConfigError) -> Path:
    """The canonical absolute path (links and `..` resolved) of a user's existing file, or one
    line naming it as written, made absolute."""
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise error(f"{what} {path} {problem}")
    return path.resolve()


def builtin_names(folder: Path, suffix: str) -> list[str]:
    """The names of the package-data files `folder/*suffix` (folder may be an importlib resource)."""
    if not folder.is_dir():
        return []
    return sorted(entry.name[: -len(suffix)] for entry in folder.iterdir() if entry.name.endswith(suffix))


def builtin_file(
    name: str, folder: Path, suffix: str, what: str, error: type[OvbenchError] = ConfigError
) -> Path:
    """The package-data file `folder/name+suffix`, or one line listing the close and known names."""
    known = builtin_names(folder, suffix)
    if name not in known:
        raise error(
            f"unknown {what} {name!r}{did_you_mean(name, known)}; built-in: {', '.join(known) or 'none'},"
            f" or give a {suffix} file"
        )
    return folder / f"{name}{suffix}"


def resolve(value: str, folder: Path, suffix: str, what: str, error: type[OvbenchError] = ConfigError) -> Path:
    """A built-in name (a file `name+suffix` in the package-data `folder`) or a user's file,
    under the module's rule; always an absolute path to an existing file."""
    if names_a_file(value, builtin_names(folder, suffix)):
        return user_file(value, f"{what} file", error)
    return builtin_file(value, folder, suffix, what, error)


def split_fragment(value: str) -> tuple[str, str]:
    """`file.json#name` -> ("file.json", "name"); a value without `#` has an empty fragment."""
    head, _, fragment = value.partition("#")
    return head, fragment


def cache_root() -> Path:
    """$OVBENCH_CACHE, else the user cache dir ($XDG_CACHE_HOME/ovbench or ~/.cache/ovbench)."""
    if os.environ.get("OVBENCH_CACHE"):
        root = Path(os.environ["OVBENCH_CACHE"]).expanduser()
        if root.exists() and not root.is_dir():
            raise ConfigError(f"OVBENCH_CACHE={root} is a file; it must name a folder (made if missing)")
        return root
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ovbench"
