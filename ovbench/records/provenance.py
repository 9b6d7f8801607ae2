"""Where a number came from: the code (git), the machine (CPU, cores, libraries) and the moment."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True).stdout.strip()


def _is_ovbench_checkout(folder: Path) -> bool:
    """The repository git found must be ovbench's own: installed in a venv inside another
    project's repository, the package folder belongs to that project."""
    try:
        text = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r'^\[project\]\s*^name\s*=\s*"ovbench"\s*$', text, re.M) is not None  # tomllib: Python 3.11+


@functools.cache
def git_info(here: Path = Path(__file__).resolve().parent) -> dict[str, Any] | None:
    """The commit (and whether the checkout had uncommitted changes) of the ovbench checkout
    that runs, when it runs from one; None from a wheel or from another project's repository."""
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], here))
        if not _is_ovbench_checkout(top):
            return None
        commit = _git(["rev-parse", "HEAD"], here)
        dirty = _git(["status", "--porcelain", "--untracked-files=no"], here)
        # uncommitted edits are part of what made a number: two different ones are two runs
        changes = hashlib.sha256(_git(["diff", "HEAD"], here).encode()).hexdigest() if dirty else None
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty), **({"diff_sha256": changes} if changes else {})}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


LIBRARIES = {"numpy": "numpy", "pillow": "pillow", "open_clip": "open_clip_torch"}  # torch: its own key


def usable_cores() -> int:
    """Cores this process may run on: affinity and cpusets (SLURM, containers) included,
    unlike os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _version(distribution: str) -> str | None:
    """The installed version of a distribution, from its metadata (nothing is imported)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: torch.device | str, precision: str, threads: int) -> dict[str, Any]:
    """Where a process ran and with what: a run resumed on another machine says so. `threads`:
    the compute threads the process used (torch's for a run, the decoders for `score`).
    torch is imported only for a CUDA device's name: `score` never loads it (its record gives
    the installed torch's version from the package metadata, without the local build tag)."""
    kind = str(device).split(":")[0]
    on_cuda = kind == "cuda"
    if on_cuda:
        import torch

        cuda = {"device": torch.cuda.get_device_name(torch.device(device)), "cuda": torch.version.cuda}
    return {
        "torch": sys.modules["torch"].__version__ if "torch" in sys.modules else _version("torch") or "not installed",
        "host": socket.gethostname(),
        "device": cuda["device"] if on_cuda else _cpu_name(),
        "device_type": kind,
        "cores": usable_cores(),
        "precision": precision,
        "python": platform.python_version(),
        "threads": threads,
        **({"cuda": cuda["cuda"]} if on_cuda else {}),
        "libraries": {name: _version(distribution) for name, distribution in LIBRARIES.items()},
    }


def now(timespec: str = "seconds") -> str:
    """The one timestamp format of records, states and locks: ISO 8601 in UTC."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec=timespec)
