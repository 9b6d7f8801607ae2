"""The data set kinds ovbench reads, and the one place a reader is opened.

A split names its kind (`"dataset"` in its file); runs, scoring and training open the data
through `open_dataset(kind, root)`, which checks the root's layout against the kind first, so
a VSPW root given for a VIPSeg split is one line, not a missing-file error three layers down.
Every reader offers the same small interface (`VideoDataset`): a new data set is one module,
one branch in `_reader`, its layout marker and its split file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ovbench.errors import ConfigError, DataError

KINDS = ("vspw", "vipseg", "coco")
TITLES = {"vspw": "VSPW_480p", "vipseg": "VIPSeg_720P", "coco": "COCO Panoptic"}
# What each layout's root holds (named in the error for a root of no known layout).
_MARKERS = {
    "vspw": "data/<video>/origin, data/<video>/mask",
    "vipseg": "images/<video>, panomasks/<video>",
    "coco": "annotations/panoptic_{train,val}2017.json",
}


@dataclass(frozen=True)
class VideoFrames:
    """One video of a split and the frames to evaluate."""

    name: str
    frames: tuple[str, ...]
    problem: str = ""  # why it has no frames to evaluate, when known (a missing folder)


class VideoDataset(Protocol):
    """What the runner, `score`, `data verify` and training read; a frame is (video, stem)."""

    root: Path

    def videos(self, subset: str) -> list[str]: ...
    def frames(self, video: str) -> list[str]: ...
    def frame_dir(self, video: str) -> Path: ...
    def frame_path(self, video: str, stem: str) -> Path: ...
    def mask_path(self, video: str, stem: str) -> Path: ...
    def read_frame(self, video: str, stem: str) -> np.ndarray: ...
    def frame_size(self, video: str, stem: str) -> tuple[int, int] | None: ...
    def read_mask(self, video: str, stem: str) -> np.ndarray: ...


def detect_kind(root: str | Path) -> str | None:
    """The kind whose layout `root` has, or None."""
    root = Path(root)
    if (root / "data").is_dir():
        return "vspw"
    if (root / "panomasks").is_dir() or (root / "images").is_dir():
        return "vipseg"
    if (root / "annotations").is_dir():
        return "coco"
    return None


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"data set {kind!r}: choose one of {', '.join(KINDS)}")
    return kind


def open_dataset(kind: str, root: str | Path) -> VideoDataset:
    """The reader for `kind` on `root`, after checking that `root` has that layout."""
    root = Path(root)
    title = TITLES[check_kind(kind)]
    if not root.is_dir():
        raise DataError(f"{root}: {title} root not found")
    found = detect_kind(root)
    if found is None:
        raise DataError(f"{root}: not a {title} root (expected {_MARKERS[kind]})")
    if found != kind:
        raise DataError(f"{root} is a {TITLES[found]} root, but this split needs {title} data: "
                        f"pass a {title} root with --data-root")
    return _reader(kind)(root)


def _reader(kind: str) -> type:
    if kind == "vspw":
        from .vspw import VSPW
        return VSPW
    if kind == "vipseg":
        from .vipseg import VIPSeg
        return VIPSeg
    from .coco import COCOPanoptic
    return COCOPanoptic


def class_names(kind: str) -> list[str]:
    """The names of the kind's classes in the order of its converted ids."""
    if check_kind(kind) == "coco":
        from .coco import load_categories
        return [c["name"] for c in load_categories()]
    from .vspw import load_class_names  # VIPSeg has VSPW's 124 classes in the same order
    return load_class_names()
