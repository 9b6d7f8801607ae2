"""ADE20K-847 from the full ADE20K release `ADE20K_2021_17_01` (several GB, after registration
at https://ade20k.csail.mit.edu/request_data/), unzipped.

As the peers' `prepare_ade20k_full_sem_seg.py` (OVSeg, CAT-Seg, FC-CLIP, GKC): the class of a
pixel is (R // 10) * 256 + G of its `_seg.png`; an image whose short side is above 512 is
resized to short side 512 (long side rounded), the image with cv2's bilinear rule and the class
map with cv2's nearest rule; the 847 selected ADE ids become their trainIds, every other id
(0 = not annotated included) the ignore value 65535; and the image is re-encoded as a JPEG of
PIL's default quality 75 even when not resized, since that is what the peers' models see.
The images are found by walking `images/ADE/validation/` (no need to unpickle the index).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from ovbench.data.images import IGNORE_16, class_file
from ovbench.data.prepare.common import Converted, Item, apply_table, find_folder, lookup_table, read_png, require_folder
from ovbench.errors import ConfigError, DataError

RELEASE = "ADE20K_2021_17_01 (full ADE20K, registration at https://ade20k.csail.mit.edu/request_data/), unzipped"
KINDS = ("ade847",)
FOLDERS = {"val": "validation", "train": "training"}
SHORT_SIDE = 512
MAX_CLASS = 26 * 256  # (R // 10) * 256 + G < 26 * 256 for 8-bit R, G


@cache
def id_table() -> np.ndarray:
    """ADE class id -> A-847 trainId, 65535 elsewhere."""
    ids = class_file("ade847")["ade_ids"]
    return lookup_table(MAX_CLASS, {ade: train for train, ade in enumerate(ids)}, IGNORE_16)


def items(raw: Path, kind: str, subset: str) -> list[Item]:
    base = find_folder(raw, ("ADE20K_2021_17_01/images/ADE", "images/ADE", "ADE"), "ADE20K_2021_17_01 images/ADE")
    folder = require_folder(base / FOLDERS[subset], "ADE20K images")
    prefix = "ADE_val_" if subset == "val" else "ADE_train_"
    return [Item(subset, p.stem, str(p), str(p.with_name(f"{p.stem}_seg.png")))
            for p in sorted(folder.rglob(f"{prefix}*.jpg"), key=lambda p: p.name)]


def target_size(height: int, width: int) -> tuple[int, int] | None:
    """(height, width) after the peers' resize rule, None when the image is kept."""
    if width >= height > SHORT_SIDE:
        return SHORT_SIDE, round(width / float(height) * SHORT_SIDE)
    if height >= width > SHORT_SIDE:
        return round(height / float(width) * SHORT_SIDE), SHORT_SIDE
    return None


def _cv2():
    try:
        import cv2
    except ImportError:
        raise ConfigError("preparing ade847 needs OpenCV (its resize rules are the peers'): "
                          "pip install opencv-python-headless") from None
    cv2.setNumThreads(1)
    return cv2


def class_mask(seg: np.ndarray) -> np.ndarray:
    """int32 ADE class ids of a `_seg.png`'s pixels."""
    return (seg[..., 0] // 10).astype(np.int32) * 256 + seg[..., 1].astype(np.int32)


def convert(kind: str, item: Item) -> Converted:
    try:
        with Image.open(item.image) as img:
            image = np.asarray(img)
    except FileNotFoundError:
        raise DataError(f"{item.image}: ADE20K image missing") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{item.image}: cannot read ADE20K image: {e}") from None
    labels = class_mask(read_png(item.label, "ADE20K _seg.png", ("RGB", "RGBA")))
    if labels.shape != image.shape[:2]:
        raise DataError(f"{item.label}: {labels.shape[1]}x{labels.shape[0]} but its image is "
                        f"{image.shape[1]}x{image.shape[0]}")
    size = target_size(*labels.shape)
    if size is not None:
        cv2 = _cv2()
        image = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
        labels = cv2.resize(labels, size[::-1], interpolation=cv2.INTER_NEAREST)
    return Converted(image, apply_table(labels, id_table(), np.uint16, item.label, "ADE20K class"))
