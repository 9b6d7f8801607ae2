"""ADE20K-150 from the SceneParsing release `ADEChallengeData2016.zip` (~0.9 GB, a direct
download from http://data.csail.mit.edu/places/ADEchallenge/), unzipped.

Labels as detectron2's `prepare_ade20k_sem_seg.py` (and mmseg's reduce_zero_label): the raw
8-bit value v becomes v - 1, so 0 ("other") wraps to the ignore value 255. Images are kept as
they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ovbench.data.prepare.common import INVALID, Converted, Item, apply_table, find_folder, kept, lookup_table, read_png, require_folder

RELEASE = "ADEChallengeData2016.zip (SceneParsing, ~0.9 GB, http://data.csail.mit.edu/places/ADEchallenge/), unzipped"
KINDS = ("ade150",)
FOLDERS = {"val": "validation", "train": "training"}
TABLE = lookup_table(256, {0: 255, **{v: v - 1 for v in range(1, 151)}}, INVALID)


def items(raw: Path, kind: str, subset: str) -> list[Item]:
    base = find_folder(raw, ("ADEChallengeData2016", "."), "ADEChallengeData2016")
    images = require_folder(base / "images" / FOLDERS[subset], "ADEChallengeData2016 images")
    labels = require_folder(base / "annotations" / FOLDERS[subset], "ADEChallengeData2016 annotations")
    return [Item(subset, p.stem, str(p), str(labels / f"{p.stem}.png")) for p in sorted(images.glob("*.jpg"))]


def convert(kind: str, item: Item) -> Converted:
    raw = read_png(item.label, "ADE20K annotation", ("L", "P"))
    return Converted(kept(item.image, "ADE20K image"),
                     apply_table(raw, TABLE, np.uint8, item.label, "ADE20K annotation"))
