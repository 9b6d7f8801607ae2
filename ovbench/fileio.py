"""Atomic file writes and file hashes. Writes: the one way ovbench puts a record, a run state entry, a prediction file,
a cached embedding or a checkpoint on disk.

A reader (a leaderboard, a resume, another rank) sees the old file or the new one, never half
of one, even after kill -9 or a power cut: the bytes go to a temporary file in the same folder,
are flushed to disk, renamed over the target (the commit point), and the folder entry is
flushed too. The temporary file is created with mode 0o666 and the kernel applies the user's
umask, so files are shared as the user's other files are (mkstemp's 0600 would hide a
lab-mate's records from a leaderboard over a shared runs/ folder).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import IO, Any, Callable

from ovbench.errors import unwritable


def _create_temporary(path: Path) -> tuple[int, Path]:
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; some file systems cannot open a folder: nothing to do."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """`write` fills a binary file object; `path` then holds exactly what it wrote. A disk
    that refuses the file is an UnwritableError naming `path` (one line, exit 2)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = _create_temporary(path)
    except OSError as err:
        raise unwritable(path, err) from None
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        raise unwritable(path, err) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda out: out.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, payload: Any) -> None:
    """Strict JSON (NaN refused: a metric that does not apply is absent), one key per line."""
    write_text(path, json.dumps(payload, indent=1, allow_nan=False) + "\n")


def file_sha256(path: Path) -> str:
    """The file's sha256, computed once per version of the file: keyed by size and modification
    time too, so a long-lived process that sees a checkpoint rewritten in place hashes it again."""
    stat = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
