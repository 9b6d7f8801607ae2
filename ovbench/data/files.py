"""Reading the files every layout is made of: images, label PNGs and video lists, each failure one line naming the file."""

from __future__ import annotations

import struct
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ovbench.errors import DataError
from ovbench.suggest import did_you_mean

# What PIL raises on a file that is missing, not an image, truncated or internally broken.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
                 Image.DecompressionBombError)


@contextmanager
def open_image(path: Path, what: str) -> Iterator[Image.Image]:
    try:
        with Image.open(path) as img:
            img.load()
            yield img
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except _IMAGE_ERRORS as e:
        raise DataError(f"{path}: cannot read {what}: {e}") from None


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3) RGB."""
    with open_image(path, "frame") as img:
        return np.array(img if img.mode == "RGB" else img.convert("RGB"))


def read_raw_mask(path: Path, what: str = "mask", lut: np.ndarray | None = None) -> np.ndarray:
    """Decode a label png (a mask, or a prediction) to its raw uint8 (H, W) values (palette
    images give their indices), or to lut[value] for a (256,) uint8 `lut`: PIL's table lookup
    is several times faster than numpy's fancy indexing, which would cost as much as the decode."""
    with open_image(path, what) as img:
        if img.mode not in ("L", "P"):
            raise DataError(f"{path}: {what} must be single-channel 8-bit (mode L or P), "
                            f"got mode {img.mode}")
        return np.array(img if lut is None else img.point(lut.tolist()))


def read_video_list(root: Path, subset: str) -> list[str]:
    """Video names in `<root>/<subset>.txt`, in file order, each once (VSPW and VIPSeg)."""
    path = root / f"{subset}.txt"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lists = [p.stem for p in root.glob("*.txt")]
        raise DataError(f"{path}: split list not found{did_you_mean(subset, lists)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read split list: {e}") from None
    return list(dict.fromkeys(s for s in map(str.strip, lines) if s))


def header_size(path: Path) -> tuple[int, int] | None:
    """(H, W) from an image's header alone; None where it cannot be read (reading the image
    later says why)."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except _IMAGE_ERRORS:
        return None
