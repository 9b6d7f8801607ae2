"""The run record: one JSON file per model x split x configuration.

Records are the only thing the leaderboard reads, so they must be self-describing (which
weights, which split definition, which data, which conventions), strictly valid JSON (no NaN:
a metric that does not apply is absent) and written atomically (a crash never leaves half a
file that a later table would read).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from typing import TYPE_CHECKING

from ovbench.errors import DataError

SCHEMA_VERSION = 1
METRIC_KEYS = ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "pAcc", "mAcc", "fwIoU", "VC8", "VC16", "TC")
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


RECORD_KINDS = ("run", "score")


_NUMBER = (int, float)


# section -> key -> accepted types of the fields readers use; null is allowed except for _NOT_NULL
_NOT_NULL = {("model", "id"), ("split", "name"), ("split", "protocol"), ("split", "hash"), ("dataset", "name"),
             ("dataset", "videos"), ("dataset", "frames")}


_OPTIONAL_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "model": {"id": (str,), "weights": (str,), "weights_sha256": (str,), "backbone": (str,), "random_init": (bool,),
              "parameters": (int,)},
    "split": {"name": (str,), "protocol": (str,), "hash": (str,)},
    "dataset": {"name": (str,), "videos": (int,), "frames": (int,), "skipped": (list,), "root": (str,)},
    "options": {"limit_videos": (int,), "batch_size": (int,), "min_video_frames": (int,), "partial": (bool,),
                "miou_convention": (str,), "save_predictions": (str,), "vc_convention": (str,), "tc": (dict,)},
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
    """DataError naming the first field of a structurally valid record (validate_record)
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
