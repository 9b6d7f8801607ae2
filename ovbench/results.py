"""The run record: one JSON file per model x split x configuration.

Records are the only thing the leaderboard reads, so they must be self-describing (which
weights, which split definition, which data, which conventions), strictly valid JSON (no NaN:
a metric that does not apply is absent) and written atomically (a crash never leaves half a
file that a later table would read).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata
import json
import math
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

from . import __version__
from .errors import DataError
from .fileio import write_json

SCHEMA_VERSION = 1
METRIC_KEYS = ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "pAcc", "mAcc", "fwIoU", "VC8", "VC16")
_REQUIRED = {
    "schema_version": int,
    "ovbench_version": str,
    "kind": str,
    "created": str,
    "model": dict,
    "split": dict,
    "dataset": dict,
    "options": dict,
    "metrics": dict,
    "per_class": dict,
    "per_video": dict,
    "env": dict,
}
_REQUIRED_NESTED = {
    "model": ("id",),
    "split": ("name", "protocol", "version", "hash", "vocabulary_size"),
    "dataset": ("name", "videos", "frames"),
}


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


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_record(
    *,
    kind: str,
    model: dict[str, Any],
    split: dict[str, Any],
    dataset: dict[str, Any],
    options: dict[str, Any],
    computed: dict[str, Any],
    timing: dict[str, Any] | None,
    env: dict[str, Any],
) -> dict[str, Any]:
    """Assemble a record from the parts the runner or scorer measured."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ovbench_version": __version__,
        "kind": kind,
        "git": git_info(),
        "created": now(),
        "model": model,
        "split": split,
        "dataset": dataset,
        "options": options,
        "metrics": computed["metrics"],
        "per_class": computed["per_class"],
        "per_video": computed["per_video"],
        "timing": timing,
        "env": env,
    }


def content_sha256(payload: Any) -> str:
    """sha256 of a JSON-able value, independent of key order (a run's fingerprint)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _short_hash(payload: Any) -> str:
    return content_sha256(payload)[:8]


def config_id(model: dict[str, Any]) -> str:
    """Short, stable id of a model configuration, so different configs get different files."""
    return _short_hash({"id": model["id"], "args": model.get("args", {}), "weights": model.get("weights_sha256")})


def record_stem(model: dict[str, Any], split_name: str, run: dict[str, Any] | None = None) -> str:
    """File stem shared by a run's record, its resumable state and its saved predictions.
    With `run` (a run's fingerprint: model, data, videos, options) the id covers all of it, so
    a run with other data or options never replaces or blocks another."""
    safe_model = "".join(c if c.isalnum() or c in "-_." else "-" for c in model["id"])
    return f"{safe_model}__{split_name}__{config_id(model) if run is None else _short_hash(run)}"


def record_filename(record: dict[str, Any]) -> str:
    return record_stem(record["model"], record["split"]["name"]) + ".json"


def validate_record(record: Any, source: str = "record") -> None:
    """Raise DataError naming the first problem; a valid record can be tabulated blindly."""

    def fail(problem: str) -> None:
        raise DataError(f"{source}: {problem}")

    if not isinstance(record, dict):
        fail("not a JSON object")
    for key, kind in _REQUIRED.items():
        if key not in record:
            fail(f"missing key {key!r}")
        if not isinstance(record[key], kind):
            fail(f"{key!r} should be {kind.__name__}")
    if record["schema_version"] > SCHEMA_VERSION:
        fail(f"schema_version {record['schema_version']} is newer than this ovbench ({SCHEMA_VERSION}); upgrade ovbench")
    for section, keys in _REQUIRED_NESTED.items():
        for key in keys:
            if key not in record[section]:
                fail(f"missing key {section}.{key}")
    if not isinstance(record["split"]["version"], int) or isinstance(record["split"]["version"], bool):
        fail("split.version should be an integer")
    if not isinstance(record["model"].get("args", {}), dict):
        fail("model.args should be an object")
    try:
        _dt.datetime.fromisoformat(record["created"])
    except ValueError:
        fail(f"created = {record['created']!r} is not an ISO date-time")
    for key, value in record["metrics"].items():
        if key not in METRIC_KEYS:
            fail(f"unknown metric {key!r}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not 0 <= value <= 1:
            fail(f"metric {key} = {value!r} is not a fraction in [0, 1]")
    for name, entry in record["per_class"].items():
        if not isinstance(entry, dict) or not {"iou", "acc", "gt_pixels"} <= entry.keys():
            fail(f"per_class[{name!r}] needs iou, acc and gt_pixels")


def load_record(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    except ValueError as err:  # not JSON, or not UTF-8 text
        raise DataError(f"{path}: not valid JSON ({err})") from None
    validate_record(record, str(path))
    return record


def write_record(record: dict[str, Any], out_dir: str | Path, stem: str | None = None) -> Path:
    validate_record(record)
    path = Path(out_dir) / (f"{stem}.json" if stem else record_filename(record))
    write_json(path, record)
    return path


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_summary(record: dict[str, Any]) -> str:
    """The few lines a researcher reads in the terminal after a run."""
    metrics = record["metrics"]
    lines = [
        f"model {record['model']['id']}  split {record['split']['name']} (v{record['split']['version']},"
        f" {record['split']['vocabulary_size']} classes)  data {record['dataset']['name']}"
        f" ({_count(record['dataset']['videos'], 'video')}, {_count(record['dataset']['frames'], 'frame')})",
        "  ".join(f"{key} {100 * metrics[key]:.1f}" for key in METRIC_KEYS if key in metrics),
    ]
    from .records import fps_per_process, partial_reasons, processes, random_init  # records reads this module's schema

    timing = record.get("timing")
    if timing:
        count = processes(record)
        per_process = f" ({fps_per_process(record):.1f} per process of {count})" if count > 1 else ""
        lines.append(
            f"{timing['frames']} frames in {timing['seconds']:.1f} s: {timing['fps_end_to_end']:.1f} frames/s end to end{per_process},"
            f" {timing['fps_model']:.1f} model only ({record['env']['device']}, {record['env']['precision']})"
        )
    skipped = record["dataset"].get("skipped") or []
    if skipped:
        lines.append(f"SKIPPED {len(skipped)} video(s): " + "; ".join(f"{s['video']}: {s['error']}" for s in skipped[:5]))
    if random_init(record):
        lines.append("RANDOM WEIGHTS (untrained): a smoke test, not a result of the method")
    reasons = partial_reasons(record)
    if reasons:
        lines.append("PARTIAL RUN (" + "; ".join(reasons) + "): the leaderboard leaves it out unless --include-partial")
    return "\n".join(lines)
