"""COCO-Stuff 171 from COCO's `val2017.zip` / `train2017.zip` and COCO-Stuff's
`stuffthingmaps_trainval2017.zip` (659 MB, https://github.com/nightrome/cocostuff), unzipped as
that README says: images into `images/`, the maps into `annotations/`.

Labels as CAT-Seg's `prepare_coco_stuff.py`: a map's value is the COCO-Stuff id - 1 (0..181)
or 255; the 171 ids in use become 0..170 in ascending order, the 11 unused thing ids and 255
become 255. Images are kept as they are.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from ovbench.data.images import IGNORE_8, class_file
from ovbench.data.prepare.common import INVALID, Converted, Item, apply_table, find_folder, kept, lookup_table, read_png, require_folder

RELEASE = ("val2017.zip / train2017.zip (COCO) and stuffthingmaps_trainval2017.zip (COCO-Stuff, 659 MB), "
           "unzipped into images/ and annotations/")
KINDS = ("cocostuff171",)
NUM_STUFF_VALUES = 182


def items(raw: Path, kind: str, subset: str) -> list[Item]:
    base = find_folder(raw, ("cocostuff", "coco-stuff", "."), "COCO-Stuff")
    images = require_folder(base / "images" / f"{subset}2017", "COCO images")
    labels = require_folder(base / "annotations" / f"{subset}2017", "COCO-Stuff stuffthingmaps")
    return [Item(subset, p.stem, str(p), str(labels / f"{p.stem}.png")) for p in sorted(images.glob("*.jpg"))]


@cache
def _table() -> np.ndarray:
    used = {value: k for k, value in enumerate(class_file("cocostuff171")["stuff_ids"])}
    unused = {value: IGNORE_8 for value in range(NUM_STUFF_VALUES) if value not in used}
    return lookup_table(256, {**used, **unused, 255: IGNORE_8}, INVALID)


def convert(kind: str, item: Item) -> Converted:
    raw = read_png(item.label, "COCO-Stuff map", ("L", "P"))
    return Converted(kept(item.image, "COCO image"),
                     apply_table(raw, _table(), np.uint8, item.label, "COCO-Stuff map"))
