"""A release given as its downloaded archive (`ADEChallengeData2016.zip`,
`VOCtrainval_11-May-2012.tar`, ...) is unpacked once into the root being prepared, under
`.release/`, and read from there; it is removed when the root is finished (the images kept as
they are stay, as hard links). Releases of several downloads (PASCAL Context, Cityscapes,
COCO-Stuff) are given as the folder they were unpacked into."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from ovbench.errors import DataError

UNPACKED = ".release"
_DONE = ".unpacked"
SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_archive(raw: Path) -> bool:
    return raw.is_file() and raw.name.lower().endswith(SUFFIXES)


def unpack(archive: Path, out: Path) -> Path:
    """The folder holding the archive's contents (unpacked now, or by an earlier run that
    finished unpacking); a damaged archive is a DataError naming it."""
    folder = out / UNPACKED
    if (folder / _DONE).is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a half-unpacked folder from an interruption
    folder.mkdir(parents=True)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as unzipped:
                unzipped.extractall(folder)
        else:
            with tarfile.open(archive) as untarred:
                untarred.extractall(folder, filter="data")
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as e:
        raise DataError(f"{archive}: cannot unpack the release archive: {e}") from None
    (folder / _DONE).write_text("")
    return folder


def remove_unpacked(out: Path) -> None:
    shutil.rmtree(out / UNPACKED, ignore_errors=True)
