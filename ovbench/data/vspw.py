"""Read VSPW_480p from disk and convert its raw mask ids to the ids every metric uses.

The reader is lazy on purpose: VSPW has about 250k frames, so nothing is listed until asked
and only one frame is ever decoded at a time. Every failure a user can cause (a wrong root, a
missing list, a broken file) becomes a DataError that names the path, so a bad data set is
reported in one line instead of a traceback from PIL.
"""

from __future__ import annotations

import json
import struct
import zlib
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ovbench.errors import DataError
from ovbench.suggest import did_you_mean

NUM_CLASSES = 124
IGNORE = 255


def _conversion_lut() -> np.ndarray:
    lut = np.full(256, IGNORE, dtype=np.uint8)
    lut[1 : NUM_CLASSES + 1] = np.arange(NUM_CLASSES, dtype=np.uint8)
    lut.setflags(write=False)
    return lut


# raw 0 ("others") and 255 ("void") are ignored; k in 1..124 becomes k-1. Values 125..254 are
# not VSPW labels at all: they map to ignore here and `verify_vspw` reports them.
RAW_TO_CONVERTED: np.ndarray = _conversion_lut()


def convert_labels(raw: np.ndarray) -> np.ndarray:
    """Raw VSPW mask values -> converted ids (0..123, 255 = ignore), any shape."""
    return RAW_TO_CONVERTED[np.asarray(raw, dtype=np.uint8)]


@cache
def _class_names() -> tuple[str, ...]:
    text = resources.files("ovbench.data").joinpath("vspw_classes.json").read_text()
    return tuple(json.loads(text))


def load_class_names() -> list[str]:
    """The 124 class names in converted-id order (0 = wall ... 123 = train)."""
    return list(_class_names())


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


class VSPW:
    """One VSPW_480p root: `<root>/{train,val,test}.txt` and `<root>/data/<video>/{origin,mask}/`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: VSPW root not found")
        if not (self.root / "data").is_dir():
            raise DataError(f"{self.root}: not a VSPW root (no data/ folder)")
        self._videos: dict[str, list[str]] = {}
        self._frames: dict[str, list[str]] = {}

    def videos(self, subset: str) -> list[str]:
        """Video names listed in `<root>/<subset>.txt`, in file order.

        A name listed twice is kept once: evaluating it twice would weight it double and
        collide in per-video results (`verify_vspw` reports the duplicate).
        """
        if subset not in self._videos:
            self._videos[subset] = read_video_list(self.root, subset)
        return list(self._videos[subset])

    def frames(self, video: str) -> list[str]:
        """Sorted frame stems of `data/<video>/origin/*.jpg` (masks share the stem)."""
        if video not in self._frames:
            origin = self.frame_dir(video)
            if not origin.parent.is_dir():
                raise DataError(f"{origin.parent}: video folder not found")
            if not origin.is_dir():
                raise DataError(f"{origin}: frame folder not found")
            self._frames[video] = sorted(p.stem for p in origin.glob("*.jpg"))
        return list(self._frames[video])

    def frame_dir(self, video: str) -> Path:
        return self.root / "data" / video / "origin"

    def frame_path(self, video: str, stem: str) -> Path:
        return self.frame_dir(video) / f"{stem}.jpg"

    def mask_path(self, video: str, stem: str) -> Path:
        return self.root / "data" / video / "mask" / f"{stem}.png"

    def read_frame(self, video: str, stem: str) -> np.ndarray:
        """uint8 (H, W, 3) RGB."""
        return read_rgb(self.frame_path(video, stem))

    def frame_size(self, video: str, stem: str) -> tuple[int, int] | None:
        """(H, W) from the frame's header alone, or None (see `header_size`)."""
        return header_size(self.frame_path(video, stem))

    def read_mask(self, video: str, stem: str) -> np.ndarray:
        """uint8 (H, W) converted ids: 0..123, 255 = ignore."""
        return read_raw_mask(self.mask_path(video, stem), lut=RAW_TO_CONVERTED)
