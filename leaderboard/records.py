"""Finding run records under a results folder.

A results folder also holds other JSON (layouts, caches, a user's notes), so only files that
say they are run records are read as such; a run record that fails validation is reported by
name rather than silently dropped, because a missing row is easy to miss in a paper table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

from ovbench.errors import DataError
from ovbench.records.read import partial_reasons, read_records

# Split names end in the vocabulary they were scored with; the leaderboard reads columns by it.
SPLIT_FORMS = ("train_seen", "unseen", "seen", "all")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What makes two records the same table row: the same model, weights and arguments."""

    id: str
    weights: str
    weights_sha256: str
    args: str  # canonical JSON of model.args

    @classmethod
    def of(cls, record: dict[str, Any]) -> "ModelConfig":
        model = record["model"]
        return cls(
            id=str(model["id"]),
            weights=str(model.get("weights") or "none"),
            weights_sha256=str(model.get("weights_sha256") or ""),
            args=json.dumps(model.get("args") or {}, sort_keys=True),
        )

    def args_dict(self) -> dict[str, Any]:
        return json.loads(self.args)


@dataclasses.dataclass(frozen=True)
class Run:
    """One valid run record and where it was found."""

    path: Path
    record: dict[str, Any]
    created: dt.datetime
    covers_less: str = ""  # set by select.mark_subsets: names a run of the same setup with more videos

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.of(self.record)

    @property
    def split(self) -> str:
        return str(self.record["split"]["name"])

    @property
    def protocol(self) -> str:
        return str(self.record["split"]["protocol"])

    @property
    def dataset(self) -> str:
        return str(self.record["dataset"]["name"])

    @property
    def form(self) -> str:
        """Which vocabulary the split scores ("all", "seen", "unseen", "train_seen"), or the
        split name itself for a split that follows no naming convention."""
        name, protocol = self.split, self.protocol
        if name.startswith(protocol + "_") and name[len(protocol) + 1 :] in SPLIT_FORMS:
            return name[len(protocol) + 1 :]
        return next((form for form in SPLIT_FORMS if name.endswith("_" + form)), name)

    @property
    def skipped_videos(self) -> list[dict[str, Any]]:
        return list(self.record["dataset"].get("skipped") or [])

    @property
    def partial(self) -> list[str]:
        """Why the run does not cover its whole split; empty for a complete run."""
        return partial_reasons(self.record) + ([self.covers_less] if self.covers_less else [])

    @property
    def videos(self) -> frozenset[str]:
        """The videos the run evaluated or tried (skipped ones included)."""
        skipped = {str(s.get("video")) for s in self.skipped_videos}
        return frozenset(self.record["per_video"]) | skipped


def parse_created(value: Any, source: str) -> dt.datetime:
    """`created` as an aware time (a naive one is taken as UTC), so runs sort newest first."""
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{source}: created {value!r} is not an ISO 8601 time") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def find_runs(results: Path, *, strict: bool = False) -> tuple[list[Run], list[str]]:
    """Every valid run record under `results` (recursively), plus notes naming the records
    that were skipped and why. With `strict`, the first invalid record raises DataError."""
    if not results.is_dir():
        raise DataError(f"--results {results}: no such folder")
    found, notes = read_records(results, strict=strict)
    runs = []
    for path, record in found:
        try:
            runs.append(Run(path, record, parse_created(record["created"], str(path))))
        except DataError as err:
            if strict:
                raise
            notes.append(f"skipped invalid record {err}")
    return runs, notes
