"""What a run has finished, kept on disk so that nothing measured is lost.

A run's state is a folder of part files. Every process of every session writes its own part
(finished videos' metric states, skipped videos, timing) and rewrites it atomically after each
video; it never touches another's. Resuming reads the union of parts to know which videos are
done, and the record is the merge of all parts. The same mechanism serves a crash, a Ctrl-C, a
different process count on resume, and `--shard i/n` jobs merged later.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, DataError
from .fileio import write_atomic, write_json
from .splits import Split, load_split

FINGERPRINT = "fingerprint.json"
SPLIT = "split.json"  # the run's split definition, so a merge needs neither the user's file nor its path


def split_definition(split: Split) -> dict[str, Any]:
    """A split file defining exactly `split` (the same hash when loaded back)."""
    kind = "unseen" if split.vocabulary == split.unseen else "seen" if split.vocabulary == split.seen else "all"
    return {
        "protocol": split.protocol,
        "version": split.version,
        "provenance": split.provenance,
        "unseen": list(split.unseen),
        "splits": {split.name: {"subset": split.subset, "vocabulary": kind}},
    }


@dataclass
class Part:
    """One process's contribution in one session."""

    session: str
    rank: int
    metrics: dict[str, Any] | None = None
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0
    text_seconds: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        return self.__dict__.copy()


def new_session_id() -> str:
    return uuid.uuid4().hex[:12]


class RunState:
    def __init__(self, directory: Path):
        self.directory = directory

    def prepare(self, fingerprint: dict[str, Any], overwrite: bool, split: Split | None = None) -> None:
        """Start fresh or check that the folder belongs to the same command."""
        if overwrite and self.directory.exists():
            shutil.rmtree(self.directory)
        marker = self.directory / FINGERPRINT
        if marker.is_file():
            previous = json.loads(marker.read_text())
            if previous != json.loads(json.dumps(fingerprint)):
                changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
                raise ConfigError(
                    f"{self.directory} holds a run made with different settings ({', '.join(changed)});"
                    " rerun with --overwrite to start over, or use another --out"
                )
            return
        if split is not None:
            write_json(self.directory / SPLIT, split_definition(split))
        write_json(marker, fingerprint)

    def split(self) -> Split:
        """The run's split: the copy kept in the state, else (older states) where it came from."""
        fingerprint = self.fingerprint()
        copy = self.directory / SPLIT
        split = load_split(f"{copy}#{fingerprint['split']['name']}" if copy.is_file() else fingerprint["split"]["source"])
        if split.hash != fingerprint["split"]["hash"]:
            raise ConfigError(f"split {split.name} changed since the run started ({fingerprint['split']['hash']} -> {split.hash})")
        return split

    def fingerprint(self) -> dict[str, Any]:
        marker = self.directory / FINGERPRINT
        if not marker.is_file():
            raise DataError(f"{self.directory} is not an ovbench run state folder (no {FINGERPRINT})")
        return json.loads(marker.read_text())

    def parts(self) -> list[Part]:
        found = []
        for path in sorted(self.directory.glob("part-*.pt")):
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # a torn write cannot happen (atomic rename); a foreign file can
                raise DataError(f"{path}: unreadable run state ({err})") from None
            found.append(Part(**payload))
        return found

    def done_videos(self) -> set[str]:
        return {video for part in self.parts() for video in part.done}

    def save(self, part: Part) -> None:
        path = self.directory / f"part-{part.session}-r{part.rank}.pt"
        write_atomic(path, lambda out: torch.save(part.to_payload(), out))
