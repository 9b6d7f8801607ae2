"""What every release's conversion shares: the unit of work, reading raw files with one-line
errors, finding the release's folders, and lookup tables from raw values to class ids."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from ovbench.errors import DataError

INVALID = -1  # a lookup-table entry for a raw value the release never holds


class Item(NamedTuple):
    """One image to prepare: where its raw image and label are, plus what the label needs
    besides its file (PC-59: the image's annotations from the merged JSON)."""

    subset: str
    stem: str
    image: str
    label: str
    extra: tuple = ()


class Converted(NamedTuple):
    """A prepared image (the raw file, kept as it is, or pixels to re-encode as JPEG) and its
    label array of class ids."""

    image: Path | np.ndarray
    label: np.ndarray


def read_bytes(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} missing") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read {what} ({e.strerror})") from None


def kept(path: str | Path, what: str) -> Path:
    """A raw image the layout keeps as it is (checked to exist now, linked or copied later)."""
    if not Path(path).is_file():
        raise DataError(f"{path}: {what} missing")
    return Path(path)


def read_png(path: str | Path, what: str, modes: tuple[str, ...]) -> np.ndarray:
    """A raw PNG's values (palette indices for mode P); a missing or damaged file, or one of
    another mode, is a DataError naming it."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in modes:
                raise DataError(f"{path}: {what} of mode {img.mode}, expected {' or '.join(modes)}")
            return np.array(img)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} missing") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: cannot read {what}: {e}") from None


def find_folder(raw: Path, candidates: tuple[str, ...], what: str) -> Path:
    """The first of `raw/<candidate>` that is a folder (the user may give the release's
    folder or the one above it); none is a DataError naming what was looked for."""
    for candidate in candidates:
        if (raw / candidate).is_dir():
            return raw / candidate
    looked = ", ".join(str(raw / c) for c in candidates)
    raise DataError(f"{raw}: no {what} folder (looked for {looked})")


def require_folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: {what} folder missing")
    return path


def lookup_table(size: int, pairs: dict[int, int], rest: int, dtype: type = np.int32) -> np.ndarray:
    """raw value -> class id: `pairs` as given, every other value `rest` (INVALID: a value
    that must not occur)."""
    table = np.full(size, rest, dtype=dtype)
    table[list(pairs)] = list(pairs.values())
    return table


def apply_table(raw: np.ndarray, table: np.ndarray, dtype: type, path: str, what: str) -> np.ndarray:
    """Class ids of raw values; a value outside the table or marked INVALID is a DataError
    naming the file and the value."""
    byte_table = raw.dtype == np.uint8 and table.size >= 256  # then every value has an entry
    if raw.size and not byte_table and int(raw.max()) >= table.size:
        raise DataError(f"{path}: {what} value {int(raw.max())} is not one of the release's values")
    out = table[raw]
    if table.min() == INVALID and out.size and out.min() == INVALID:
        bad = np.unique(raw[out == INVALID])
        raise DataError(f"{path}: {what} value {int(bad[0])} is not one of the release's values")
    return out.astype(dtype, copy=False)
