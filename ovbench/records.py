"""Reading run records as data: the fields tables and scripts rely on, type-checked, with defaults.

Records come from several ovbench versions and from other people's folders, and a hand-edited
one can hold anything. Every reader (the leaderboard, `load_records`) goes through the checks
and accessors here, so a string where a number belongs is one note naming the file and the
field instead of a traceback in some renderer, and a field an older ovbench did not write
(`timing.processes`, `options.batch_size`, `options.limit_videos`) has one documented default.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Iterator

from .errors import DataError
from .results import METRIC_KEYS, validate_record

RECORD_KINDS = ("run", "score")
# load_records' columns: identity, how the run was made, then the metrics (fractions)
COLUMNS = (
    "path", "kind", "created", "model", "weights", "weights_sha256", "random_init", "backbone", "args",
    "dataset", "protocol", "split", "split_version", "split_hash", "videos", "frames", "partial", "partial_reason",
    "miou_convention", "device", "precision", "processes", "batch_size", "fps_per_process", "fps_end_to_end",
    *METRIC_KEYS,
)
_NUMBER = (int, float)
# section -> key -> accepted types of the fields readers use; null is allowed except for _NOT_NULL
_NOT_NULL = {("model", "id"), ("split", "name"), ("split", "protocol"), ("split", "hash"), ("dataset", "name"),
             ("dataset", "videos"), ("dataset", "frames")}
_OPTIONAL_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "model": {"id": (str,), "weights": (str,), "weights_sha256": (str,), "backbone": (str,), "random_init": (bool,)},
    "split": {"name": (str,), "protocol": (str,), "hash": (str,)},
    "dataset": {"name": (str,), "videos": (int,), "frames": (int,), "skipped": (list,), "root": (str,)},
    "options": {"limit_videos": (int,), "batch_size": (int,), "min_video_frames": (int,), "partial": (bool,),
                "miou_convention": (str,), "save_predictions": (str,)},
    "timing": {"frames": (int,), "seconds": _NUMBER, "fps_end_to_end": _NUMBER, "fps_model": _NUMBER,
               "processes": (int,), "fps_per_process_end_to_end": _NUMBER},
    "env": {"device": (str,), "precision": (str,), "torch": (str,)},
}


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not a count
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, kinds)


def check_fields(record: dict[str, Any], source: str) -> None:
    """DataError naming the first field of a structurally valid record (results.validate_record)
    whose type is not what readers expect."""

    def fail(field: str, value: Any, expected: str) -> None:
        raise DataError(f"{source}: {field} = {json.dumps(value)[:60]} should be {expected}")

    for section, fields in _OPTIONAL_FIELDS.items():
        block = record.get(section)
        if block is None and section == "timing":
            continue  # score records have no timing
        if not isinstance(block, dict):
            fail(section, block, "an object")
        for key, kinds in fields.items():
            if block.get(key) is None and (section, key) in _NOT_NULL:
                fail(f"{section}.{key}", None, " or ".join(k.__name__ for k in kinds))
            if block.get(key) is not None and not _is(block[key], kinds):
                fail(f"{section}.{key}", block[key], " or ".join(k.__name__ for k in kinds))
    processes = (record.get("timing") or {}).get("processes")
    if processes is not None and processes < 1:
        fail("timing.processes", processes, "at least 1")
    for i, skipped in enumerate(record["dataset"].get("skipped") or []):
        if not isinstance(skipped, dict):
            fail(f"dataset.skipped[{i}]", skipped, "an object with video and error")
    for name, entry in record["per_class"].items():
        for key in ("iou", "acc"):
            if entry[key] is not None and not _is(entry[key], _NUMBER):
                fail(f"per_class[{name!r}].{key}", entry[key], "a number or null")
        if not _is(entry["gt_pixels"], (int,)):
            fail(f"per_class[{name!r}].gt_pixels", entry["gt_pixels"], "an integer")
        if entry.get("seen") is not None and not isinstance(entry["seen"], bool):
            fail(f"per_class[{name!r}].seen", entry["seen"], "true or false")
    for name, entry in record["per_video"].items():
        if not isinstance(entry, dict):
            fail(f"per_video[{name!r}]", entry, "an object")
        if entry.get("frames") is not None and not _is(entry["frames"], (int,)):
            fail(f"per_video[{name!r}].frames", entry["frames"], "an integer")
        for key in METRIC_KEYS:
            if entry.get(key) is not None and not _is(entry[key], _NUMBER):
                fail(f"per_video[{name!r}].{key}", entry[key], "a number or null")
        confusion = entry.get("confusion", [])
        if not isinstance(confusion, list) or not all(
            isinstance(t, list) and len(t) == 3 and all(_is(n, (int,)) for n in t) for t in confusion
        ):
            fail(f"per_video[{name!r}].confusion", confusion, "a list of [gt, pred, count] integers")


def processes(record: dict[str, Any]) -> int:
    """How many processes ran side by side (torchrun ranks, --shard jobs); 1 when not recorded."""
    return int((record.get("timing") or {}).get("processes") or 1)


def batch_size(record: dict[str, Any]) -> int | None:
    """The batch size, from the options or, when every session of the run agreed on one, from
    the sessions (a run resumed with another batch size has none)."""
    value = record["options"].get("batch_size")
    if value is not None:
        return int(value)
    sessions = (record.get("run") or {}).get("sessions") or []
    sizes = {s.get("batch_size") for s in sessions if isinstance(s, dict)}
    return int(sizes.pop()) if len(sizes) == 1 and None not in sizes and isinstance(next(iter(sizes)), int) else None


def fps_per_process(record: dict[str, Any]) -> float | None:
    """End-to-end frames/s of one process (one GPU, or one CPU process): the record's total
    divided by the processes that ran side by side, so a 2-process torchrun is not "2x faster"."""
    timing = record.get("timing") or {}
    if timing.get("fps_per_process_end_to_end") is not None:  # measured: frames / busy time of all processes
        return float(timing["fps_per_process_end_to_end"])
    value = timing.get("fps_end_to_end")
    if value is None:
        return None
    return float(value) / processes(record)


def random_init(record: dict[str, Any]) -> bool:
    """Whether the model ran with random (untrained) weights: `model.random_init`, or for a
    record that does not say, a weights source of "none" (what WeightsInfo reports then)."""
    model = record["model"]
    if model.get("random_init") is not None:
        return bool(model["random_init"])
    return str(model.get("weights") or "").lower() in ("none", "random")


def partial_reasons(record: dict[str, Any]) -> list[str]:
    """Why a record does not cover its whole split (empty when it does): `--limit-videos`,
    videos skipped on errors, or a `merge --partial`."""
    reasons = []
    limit = record["options"].get("limit_videos")
    if limit:
        reasons.append(f"--limit-videos {limit}")
    if record["options"].get("partial"):
        reasons.append("merged with --partial")
    skipped = record["dataset"].get("skipped") or []
    if skipped:
        reasons.append(f"{len(skipped)} of {len(skipped) + int(record['dataset']['videos'])} videos skipped")
    return reasons


def _looks_like_record(payload: Any) -> bool:
    return isinstance(payload, dict) and ("schema_version" in payload or payload.get("kind") in RECORD_KINDS)


def _json_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for found in sorted(path.rglob("*.json")):
        # the runner's resumable state and saved predictions live beside the records
        if not any(part.endswith((".state", ".predictions")) for part in found.relative_to(path).parts[:-1]):
            yield found


def read_records(path: str | Path, *, strict: bool = False) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Every valid run record in a file or under a folder (recursively), with notes naming each
    record left out and why. Other JSON beside records (layouts, caches) is passed over; with
    `strict` the first invalid record raises DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    found: list[tuple[Path, dict[str, Any]]] = []
    notes: list[str] = []
    ignored = 0
    for file in _json_files(path):
        try:
            try:
                payload = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise DataError(f"{file}: not a readable JSON file ({err})") from None
            if not _looks_like_record(payload):
                ignored += 1
                continue
            validate_record(payload, str(file))
            check_fields(payload, str(file))
            found.append((file, payload))
        except DataError as err:
            if strict:
                raise
            notes.append(f"skipped invalid record {err}")
    if ignored and not found:
        notes.append(f"ignored {ignored} JSON file(s) under {path} that are not run records")
    return found, notes


def record_row(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """One record as a flat row: identity columns, then every metric (NaN when absent)."""
    model, split, dataset, env = record["model"], record["split"], record["dataset"], record["env"]
    reasons = partial_reasons(record)
    row = {
        "path": str(path), "kind": record["kind"], "created": record["created"],
        "model": model["id"], "weights": model.get("weights"), "weights_sha256": model.get("weights_sha256"),
        "random_init": random_init(record), "backbone": model.get("backbone"),
        "args": json.dumps(model.get("args") or {}, sort_keys=True),
        "dataset": dataset["name"], "protocol": split["protocol"], "split": split["name"],
        "split_version": split["version"], "split_hash": split["hash"],
        "videos": dataset["videos"], "frames": dataset["frames"],
        "partial": bool(reasons), "partial_reason": "; ".join(reasons),
        "miou_convention": record["options"].get("miou_convention"),
        "device": env.get("device"), "precision": env.get("precision"),
        "processes": processes(record), "batch_size": batch_size(record),
        "fps_per_process": fps_per_process(record),
        "fps_end_to_end": (record.get("timing") or {}).get("fps_end_to_end"),
    }
    row.update({key: record["metrics"].get(key, math.nan) for key in METRIC_KEYS})
    return row


def load_records(path: str | Path, *, strict: bool = False):
    """Run records under a folder (or one record file) as a pandas DataFrame, one row per record:
    identity columns (model, weights, split, data set, device, ...) and the metrics as fractions
    (NaN when a record does not report one). Invalid records are left out with a warning naming
    the file, or raise DataError with `strict`."""
    import pandas as pd

    found, notes = read_records(path, strict=strict)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    frame = pd.DataFrame([record_row(file, record) for file, record in found], columns=COLUMNS)
    frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
    for key in ("split_version", "videos", "frames", "processes"):
        frame[key] = frame[key].astype("int64")
    frame["batch_size"] = frame["batch_size"].astype("Int64")
    for key in ("fps_per_process", "fps_end_to_end", *METRIC_KEYS):
        frame[key] = frame[key].astype("float64")
    return frame


