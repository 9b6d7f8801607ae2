"""Making and writing records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ovbench import __version__
from ovbench.fileio import write_json
from ovbench.records.provenance import git_info, now
from ovbench.records.schema import SCHEMA_VERSION, validate_record


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


def record_stem(model: dict[str, Any], split_name: str, run: dict[str, Any]) -> str:
    """File stem shared by a run's record, its resumable state and its saved predictions: the
    model id, the split and a hash of the whole run (its fingerprint: model, data, videos,
    options), so a run with other data or options never replaces or blocks another."""
    safe_model = "".join(c if c.isalnum() or c in "-_." else "-" for c in model["id"])
    return f"{safe_model}__{split_name}__{content_sha256(run)[:8]}"


def write_record(record: dict[str, Any], out_dir: str | Path, stem: str) -> Path:
    """Validate and write `record` as `out_dir/stem.json` (atomically)."""
    validate_record(record)
    path = Path(out_dir) / f"{stem}.json"
    write_json(path, record)
    return path
