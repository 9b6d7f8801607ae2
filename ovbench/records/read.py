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

from ovbench.errors import DataError
from ovbench.records.schema import METRIC_KEYS, RECORD_KINDS, check_fields, validate_record

# load_records' columns: identity, how the run was made, then the metrics (fractions)
COLUMNS = (
    "path", "kind", "created", "model", "weights", "weights_sha256", "random_init", "backbone", "args",
    "dataset", "protocol", "split", "split_version", "split_hash", "videos", "frames", "partial", "partial_reason",
    "miou_convention", "device", "precision", "processes", "batch_size", "fps_per_process", "fps_end_to_end",
    *METRIC_KEYS,
)


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


def random_parts(record: dict[str, Any]) -> list[str]:
    """The parts of otherwise trained weights that are random (`model.random_parts`; none in
    records written before ovbench said so)."""
    return list(record["model"].get("random_parts") or [])


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
    for key in ("partial", "random_init"):
        frame[key] = frame[key].astype(bool)
    for key in ("fps_per_process", "fps_end_to_end", *METRIC_KEYS):
        frame[key] = frame[key].astype("float64")
    return frame


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
