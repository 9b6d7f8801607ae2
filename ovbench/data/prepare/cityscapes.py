"""Cityscapes (19 classes) from `leftImg8bit_trainvaltest.zip` (~11 GB) and
`gtFine_trainvaltest.zip` (~241 MB), after registration at https://www.cityscapes-dataset.com,
unzipped into one folder (`leftImg8bit/`, `gtFine/`).

Labels: `*_gtFine_labelIds.png` through cityscapesScripts' labelId -> trainId table, every
labelId outside the 19 -> 255; this is what the official evaluator scores (it reads labelIds
and ignores the `ignoreInEval` labels). Images are the original 8-bit PNGs, kept as they are.
An image is named `<city>_<sequence>_<frame>`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from ovbench.data.images import IGNORE_8, class_file
from ovbench.data.prepare.common import Converted, Item, apply_table, find_folder, kept, lookup_table, read_png, require_folder
from ovbench.errors import DataError

RELEASE = "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip (Cityscapes, registration at cityscapes-dataset.com), unzipped"
KINDS = ("cityscapes",)
IMAGE_TAIL = "_leftImg8bit.png"
LABEL_TAIL = "_gtFine_labelIds.png"


def items(raw: Path, kind: str, subset: str) -> list[Item]:
    base = find_folder(raw, ("cityscapes", "."), "Cityscapes")
    images = require_folder(base / "leftImg8bit" / subset, "Cityscapes leftImg8bit")
    labels = require_folder(base / "gtFine" / subset, "Cityscapes gtFine")
    found = []
    for path in sorted(images.glob(f"*/*{IMAGE_TAIL}"), key=lambda p: p.name):
        stem = path.name[: -len(IMAGE_TAIL)]
        found.append(Item(subset, stem, str(path), str(labels / path.parent.name / f"{stem}{LABEL_TAIL}")))
    if not found:
        raise DataError(f"{images}: no <city>/*{IMAGE_TAIL} images")
    return found


@cache
def _table() -> np.ndarray:
    label_ids = class_file("cityscapes")["label_ids"]
    return lookup_table(256, {label: train for train, label in enumerate(label_ids)}, IGNORE_8)


def convert(kind: str, item: Item) -> Converted:
    raw = read_png(item.label, "Cityscapes labelIds png", ("L", "P"))
    return Converted(kept(item.image, "Cityscapes image"),
                     apply_table(raw, _table(), np.uint8, item.label, "labelId"))
