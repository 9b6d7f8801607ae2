"""The one kind of lock ovbench takes: an exclusive POSIX record lock (`fcntl.lockf`) on a lock
file, held by the process that took it.

A record lock belongs to the process: worker processes forked from it (DataLoader workers)
do not inherit it, and the kernel drops it the moment the holder dies, so after a kill -9 the
next command gets in at once. (An `flock` is shared by every descriptor copy, and forked
workers kept a killed run's lock for seconds.) The file keeps a line naming its holder for
the next comer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import IO, Iterator


def try_lock(path: Path, holder: str) -> tuple[IO[str] | None, str]:
    """(the open, locked file, "") or (None, who holds it); `holder` is written into the file
    once it is held. OSError when the file cannot be made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # EAGAIN or EACCES: another process holds it
        handle.seek(0)
        held_by = handle.read().strip() or "another process"
        handle.close()
        return None, held_by
    handle.truncate(0)
    handle.write(f"{holder}\n")
    handle.flush()
    return handle, ""


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Wait for the lock on `path`, hold it for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def this_process(since: str) -> str:
    return f"process {os.getpid()} on {socket.gethostname()} since {since}"
