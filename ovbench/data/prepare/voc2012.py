"""PASCAL VOC 2012 (PAS-20, PAS-21, PAS-20b) from `VOCtrainval_11-May-2012.tar` (~2 GB,
host.robots.ox.ac.uk), unpacked to `VOCdevkit/VOC2012/`.

The 1449 images of `ImageSets/Segmentation/val.txt`, labels from `SegmentationClass/<id>.png`
(palette indices: 0 background, 1..20 the classes, 255 the void band), as FC-CLIP reads them:
PAS-20 (CAT-Seg, SAN, OVSeg, FC-CLIP) drops the background, 0 -> 255 and k -> k - 1;
PAS-21 (FC-CLIP) keeps the indices, background scored as class 0;
PAS-20b (CAT-Seg) makes the background class 20, k -> k - 1. Void stays 255 in all three.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ovbench.data.prepare.common import INVALID, Converted, Item, apply_table, find_folder, kept, lookup_table, read_bytes, read_png
from ovbench.errors import DataError

RELEASE = "VOCtrainval_11-May-2012.tar (PASCAL VOC 2012, ~2 GB, host.robots.ox.ac.uk), unpacked"
KINDS = ("voc20", "voc21", "voc20b")
_CLASSES = range(1, 21)
TABLES = {
    "voc20": lookup_table(256, {0: 255, 255: 255, **{k: k - 1 for k in _CLASSES}}, INVALID),
    "voc21": lookup_table(256, {0: 0, 255: 255, **{k: k for k in _CLASSES}}, INVALID),
    "voc20b": lookup_table(256, {0: 20, 255: 255, **{k: k - 1 for k in _CLASSES}}, INVALID),
}


def items(raw: Path, kind: str, subset: str) -> list[Item]:
    voc = find_folder(raw, ("VOCdevkit/VOC2012", "VOC2012", "."), "VOCdevkit/VOC2012")
    listing = voc / "ImageSets" / "Segmentation" / f"{subset}.txt"
    text = read_bytes(listing, "VOC2012 segmentation list").decode("utf-8", "replace")
    stems = [line.strip() for line in text.splitlines() if line.strip()]
    if len(set(stems)) != len(stems):
        raise DataError(f"{listing}: an image is listed twice")
    return [Item(subset, stem, str(voc / "JPEGImages" / f"{stem}.jpg"),
                 str(voc / "SegmentationClass" / f"{stem}.png")) for stem in stems]


def convert(kind: str, item: Item) -> Converted:
    raw = read_png(item.label, "VOC2012 SegmentationClass png", ("P", "L"))
    return Converted(kept(item.image, "VOC2012 image"),
                     apply_table(raw, TABLES[kind], np.uint8, item.label, "VOC2012 label"))
