"""What a run has finished, kept on disk so that nothing measured is lost.

A run's state is a folder. Each finished video is one small file (`videos/<video>.json`: its
metric entry and the time it took), each skipped video one more (`skipped/<video>.json`), each
process of each session one (`sessions/<session>-r<rank>.json`: where and how it ran); all are
written atomically once, and the rename is the commit point. So kill -9, Ctrl-C or a full disk at
any moment leaves every finished video on disk and nothing half-written; a resume lists the
folder; torchrun's ranks and `--shard` jobs write their own files side by side; the record is
made from the folder(s), by the same code whatever produced them. An exclusive lock per shard
keeps a second copy of the same command (a double submit, a SLURM requeue) out.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ovbench.errors import ConfigError, DataError
from ovbench.fileio import write_json
from ovbench.locks import this_process, try_lock
from ovbench.records.provenance import now
from ovbench.split import Split, load_split, protocol_file

FINGERPRINT = "fingerprint.json"
SPLIT = "split.json"  # the run's split definition, so a merge needs neither the user's file nor its path
FINISHED, SKIPPED, SESSIONS = "videos", "skipped", "sessions"


def new_session_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Session:
    """One process of one session: where and how it ran."""

    session: str
    rank: int
    text_seconds: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)  # environment: host, device, cores, libraries
    settings: dict[str, Any] = field(default_factory=dict)  # command, batch size, workers, processes, start


@dataclass
class VideoResult:
    """One finished (`metrics` set) or skipped (`error` set) video, and the file it came from.
    `seconds` and `model_seconds` are the wall and model time the video took in its process."""

    video: str
    session: str
    rank: int
    seconds: float
    model_seconds: float
    metrics: dict[str, Any] | None = None
    error: str | None = None
    source: str = ""
    peak_memory: dict[str, int] | None = None  # the process's peaks so far: host_bytes, gpu_bytes (CUDA)

    def payload(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "source"}


@dataclass
class StateContents:
    sessions: list[Session]
    finished: list[VideoResult]
    skipped: list[VideoResult]


class RunLock:
    """An exclusive lock on one shard of a run (`ovbench.locks`: released by the kernel when the
    process dies, never held by its workers), naming its holder for the next comer."""

    def __init__(self, directory: Path, shard: int):
        self.path = directory / f"lock-{shard}"
        self.handle: IO[str] | None = None

    def acquire(self) -> str | None:
        """None once held, else the one line saying who holds it (or why it cannot be taken)."""
        try:
            self.handle, holder = try_lock(self.path, this_process(since=now()))
        except OSError as err:
            return _unwritable(self.path, err)
        if self.handle is None:
            return (f"{self.path.parent} is in use by {holder}; wait for it to finish or stop it"
                    " (this command resumes the run once it is free)")
        return None

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing drops the lock
            self.handle = None


def _unwritable(path: Path, err: OSError) -> str:
    """The line for a state that cannot be written; it promises kept work only where there is some."""
    line = f"cannot write the run state at {path}: {err.strerror or err}"
    try:
        kept = any(any(folder.glob(f"{FINISHED}/*.json")) for folder in (path.parent, path.parent.parent))
    except OSError:
        kept = False
    return line + ("; what was finished is kept there" if kept else "")


def _write(path: Path, payload: Any) -> None:
    try:
        write_json(path, payload)
    except OSError as err:  # a full or read-only disk, --out naming a file
        raise ConfigError(_unwritable(path, err)) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise DataError(f"{path}: cannot read run state ({err.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: damaged run state file ({err}); move it away to redo what it held") from None


def _result(path: Path, kind: str) -> VideoResult:
    payload = _read_json(path)
    try:
        result = VideoResult(**payload, source=str(path))
        if (result.metrics is None) == (kind == FINISHED) or result.video != path.stem:
            raise TypeError("wrong kind of entry")
    except TypeError as err:
        raise DataError(f"{path}: not an ovbench run state entry ({err}); move it away to redo that video") from None
    return result


def changed_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The top-level keys where two run fingerprints differ, for an error that says what."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))

class RunState:
    def __init__(self, directory: Path):
        self.directory = directory

    def prepare(self, fingerprint: dict[str, Any], overwrite: bool, split: Split | None = None) -> None:
        """Start fresh or check that the folder belongs to the same command. Call with the lock
        held: `overwrite` empties the folder but keeps the lock files."""
        if overwrite and self.directory.exists():
            for entry in self.directory.iterdir():
                if not entry.name.startswith("lock-"):
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        marker = self.directory / FINGERPRINT
        if marker.is_file():
            previous = self.fingerprint()
            if previous != json.loads(json.dumps(fingerprint)):
                changed = changed_keys(previous, fingerprint)
                raise ConfigError(
                    f"{self.directory} holds a run made with different settings ({', '.join(changed)});"
                    " rerun with --overwrite to start over, or use another --out"
                )
            return
        if split is not None:
            _write(self.directory / SPLIT, protocol_file(split))
        _write(marker, fingerprint)

    def fingerprint(self) -> dict[str, Any]:
        marker = self.directory / FINGERPRINT
        if not marker.is_file():
            raise DataError(f"{self.directory} is not an ovbench run state folder (no {FINGERPRINT})")
        fingerprint = _read_json(marker)
        if not isinstance(fingerprint, dict):
            raise DataError(f"{marker}: damaged run state file (not a JSON object); rerun with --overwrite")
        return fingerprint

    def split(self) -> Split:
        """The run's split: the copy kept in the state, else (older states) where it came from."""
        fingerprint = self.fingerprint()
        copy = self.directory / SPLIT
        split = load_split(f"{copy}#{fingerprint['split']['name']}" if copy.is_file() else fingerprint["split"]["source"])
        if split.hash != fingerprint["split"]["hash"]:
            raise ConfigError(f"split {split.name} changed since the run started ({fingerprint['split']['hash']} -> {split.hash})")
        return split

    def contents(self) -> StateContents:
        contents = StateContents([], [], [])
        for path in sorted((self.directory / SESSIONS).glob("*.json")):
            try:
                contents.sessions.append(Session(**_read_json(path)))
            except TypeError as err:
                raise DataError(f"{path}: not an ovbench session file ({err})") from None
        contents.finished += [_result(p, FINISHED) for p in sorted((self.directory / FINISHED).glob("*.json"))]
        contents.skipped += [_result(p, SKIPPED) for p in sorted((self.directory / SKIPPED).glob("*.json"))]
        return contents

    def done_videos(self) -> set[str]:
        """Finished videos, from the file names alone (a resume needs no more)."""
        return {p.stem for p in (self.directory / FINISHED).glob("*.json")}

    def is_finished(self, video: str) -> bool:
        return (self.directory / FINISHED / f"{video}.json").is_file()

    def save_session(self, session: Session) -> None:
        _write(self.directory / SESSIONS / f"{session.session}-r{session.rank}.json", session.__dict__)

    def save_result(self, result: VideoResult) -> None:
        """Commit one video: finished (its skipped entry, if an earlier session left one, goes)
        or skipped."""
        kind = FINISHED if result.metrics is not None else SKIPPED
        _write(self.directory / kind / f"{result.video}.json", result.payload())
        if kind == FINISHED:
            (self.directory / SKIPPED / f"{result.video}.json").unlink(missing_ok=True)
