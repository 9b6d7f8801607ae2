"""Read VIPSeg_720P (VSPW's videos with panoptic labels) and convert its masks to semantic ids.

VIPSeg has VSPW's 124 classes in the same order, so a converted VIPSeg id is a converted VSPW
id and every VSPW split definition, metric and model applies unchanged. Its masks are 16-bit:
0 is void, a stuff pixel holds category + 1, a thing pixel (category + 1) * 100 + instance.
The conversion is the official `create_panoptic_video_labels.py`'s, including its handling of
the stray value 200 that a few masks hold (VIPSeg-Dataset issue #1): 200 // 100 - 1 = 1
("ceiling"). `data verify` reports those pixels so that nobody is surprised by them.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ovbench.constants import IGNORE
from ovbench.data.files import open_image
from ovbench.data.reader import ListedVideoFolders
from ovbench.data.vspw import NUM_CLASSES, load_class_names
from ovbench.errors import DataError

# 0-based ids of VIPSeg's 58 "thing" classes (panoVIPSeg_categories.json's isthing).
THING_IDS = frozenset((
    2, 4, 8, 10, 41, 43, 44, 46, 47, 48, 49, 50, 51, 52, 54, 55, 56, 60, 61, 62, 63, 64, 65, 72,
    74, 76, 77, 78, 79, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 95, 96, 97, 99, 100, 101, 102,
    106, 107, 108, 109, 114, 115, 116, 117, 118, 122, 123,
))
STRAY_VALUE = 200  # "should be 0" say the maintainers; the official conversion makes it class 1
_THING_FROM = 125  # values from here on are thing pixels: category = v // 100 - 1


def convert_panomask(values: np.ndarray) -> np.ndarray:
    """Panomask values -> uint8 converted ids (0..123, 255 = void), any shape.

    Values whose category would fall outside 0..123 cannot come from the official conversion
    without an index error there; they become void here and `data verify` reports them.
    """
    v = np.asarray(values).astype(np.int64)
    category = np.where(v < _THING_FROM, v, v // 100) - 1
    valid = (v > 0) & (category < NUM_CLASSES)
    return np.where(valid, category, IGNORE).astype(np.uint8)


def read_panomask(path: Path) -> np.ndarray:
    """A 16-bit (or 8-bit) panomask png -> int32 (H, W) raw values."""
    with open_image(path, "mask") as img:
        if img.mode not in ("I;16", "I;16B", "I;16L", "I", "L", "P"):
            raise DataError(f"{path}: mask must be a single-channel 16-bit png, got mode {img.mode}")
        return np.array(img).astype(np.int32)


class VIPSeg(ListedVideoFolders):
    """One VIPSeg_720P root: `{train,val,test}.txt`, `images/<video>/<frame>.jpg` and
    `panomasks/<video>/<frame>.png`."""

    def __init__(self, root: str | Path):
        super().__init__(root)
        if not (self.root / "images").is_dir():
            raise DataError(f"{self.root}: not a VIPSeg_720P root (no images/ folder)")

    @staticmethod
    def class_names() -> list[str]:
        return load_class_names()  # VSPW's 124 classes in the same order

    def frame_dir(self, video: str) -> Path:
        return self.root / "images" / video

    def mask_path(self, video: str, stem: str) -> Path:
        return self.root / "panomasks" / video / f"{stem}.png"

    def read_panoptic(self, video: str, stem: str) -> np.ndarray:
        """int32 (H, W) raw panomask values (category and instance)."""
        return read_panomask(self.mask_path(video, stem))

    def read_mask(self, video: str, stem: str) -> np.ndarray:
        """uint8 (H, W) converted ids: 0..123, 255 = void."""
        raw = self.read_panoptic(video, stem)
        if raw.size and 0 <= raw.min() and raw.max() <= 0xFFFF:  # every 8- and 16-bit png
            return _panomask_table()[raw]
        return convert_panomask(raw)


@functools.cache
def _panomask_table() -> np.ndarray:
    """`convert_panomask` of every 16-bit value, looked up per pixel: 2.6x faster than the
    arithmetic on a 720p mask (benchmarks/bench_vipseg_masks.py), the same ids by construction."""
    return convert_panomask(np.arange(0x10000))
