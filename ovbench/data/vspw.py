"""Read VSPW_480p from disk and convert its raw mask ids to the ids every metric uses.

The reader is lazy on purpose: VSPW has about 250k frames, so nothing is listed until asked
and only one frame is ever decoded at a time. Every failure a user can cause (a wrong root, a
missing list, a broken file) becomes a DataError that names the path, so a bad data set is
reported in one line instead of a traceback from PIL.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from ovbench.constants import IGNORE
from ovbench.data.files import read_raw_mask
from ovbench.data.reader import ListedVideoFolders
from ovbench.errors import DataError

NUM_CLASSES = 124


def _conversion_lut() -> np.ndarray:
    lut = np.full(256, IGNORE, dtype=np.uint8)
    lut[1 : NUM_CLASSES + 1] = np.arange(NUM_CLASSES, dtype=np.uint8)
    lut.setflags(write=False)
    return lut


# raw 0 ("others") and 255 ("void") are ignored; k in 1..124 becomes k-1. Values 125..254 are
# not VSPW labels at all: they map to ignore here and `ovbench data verify` reports them.
RAW_TO_CONVERTED: np.ndarray = _conversion_lut()


@cache
def _class_names() -> tuple[str, ...]:
    text = resources.files("ovbench.data").joinpath("vspw_classes.json").read_text()
    return tuple(json.loads(text))


def load_class_names() -> list[str]:
    """The 124 class names in converted-id order (0 = wall ... 123 = train)."""
    return list(_class_names())


class VSPW(ListedVideoFolders):
    """One VSPW_480p root: `<root>/{train,val,test}.txt` and `<root>/data/<video>/{origin,mask}/`."""

    def __init__(self, root: str | Path):
        super().__init__(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: VSPW root not found")
        if not (self.root / "data").is_dir():
            raise DataError(f"{self.root}: not a VSPW root (no data/ folder)")

    @staticmethod
    def class_names() -> list[str]:
        return load_class_names()

    def frame_dir(self, video: str) -> Path:
        return self.root / "data" / video / "origin"

    def _missing_folder(self, video: str) -> str | None:
        origin = self.frame_dir(video)
        if not origin.parent.is_dir():
            return f"{origin.parent}: video folder not found"
        return None if origin.is_dir() else f"{origin}: frame folder not found"

    def mask_path(self, video: str, stem: str) -> Path:
        return self.root / "data" / video / "mask" / f"{stem}.png"

    def read_mask(self, video: str, stem: str) -> np.ndarray:
        """uint8 (H, W) converted ids: 0..123, 255 = ignore."""
        return read_raw_mask(self.mask_path(video, stem), lut=RAW_TO_CONVERTED)
