"""PASCAL Context 59 and 459 from VOC2010 and the PASCAL-Context annotations.

Downloads: `VOCtrainval_03-May-2010.tar` (~1.3 GB, host.robots.ox.ac.uk), unpacked to
`VOCdevkit/VOC2010/`; the Detail API's `trainval_merged.json` (the val image list and the PC-59
annotations) and, for PC-459, PASCAL-Context's `trainval.tar.gz`
(https://cs.stanford.edu/~roozbeh/pascal-context/) unpacked to `trainval/<id>.mat`, both put
in `VOC2010/` (or beside `VOCdevkit/`). The val images are the JSON's `phase == "val"` ones.

PC-59 as the Detail API's `getMask` (SAN, FC-CLIP, CAT-Seg, GKC): the image's segmentation
annotations painted in the JSON's order, each with its category id, on zeros; then the k-th
smallest of the 59 ids becomes class k and everything else (0 included) 255.
PC-459 as FC-CLIP's `prepare_pascal_ctx_full_sem_seg.py`: the `.mat` file's uint16 `LabelMap`
value v becomes v - 1, and 0 (if any) the ignore value 65535.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from ovbench.data.images import IGNORE_8, class_file
from ovbench.data.prepare.common import INVALID, Converted, Item, apply_table, find_folder, kept, lookup_table
from ovbench.errors import DataError

RELEASE = ("VOCtrainval_03-May-2010.tar (VOC2010, ~1.3 GB) unpacked, with the Detail API's trainval_merged.json "
           "and (PC-459) PASCAL-Context's trainval.tar.gz unpacked, both in VOCdevkit/VOC2010/")
KINDS = ("pc59", "pc459")
NUM_CONTEXT = 459


def _voc2010(raw: Path) -> Path:
    return find_folder(raw, ("VOCdevkit/VOC2010", "VOC2010", "."), "VOCdevkit/VOC2010")


def _beside(voc: Path, name: str, what: str) -> Path:
    for place in (voc, voc.parent, voc.parent.parent):
        if (place / name).exists():
            return place / name
    raise DataError(f"{voc / name}: {what} missing (looked in {voc}, {voc.parent} and {voc.parent.parent})")


def val_annotations(path: Path) -> dict[str, tuple[int, int, tuple]]:
    """Stem -> (height, width, ((category id, RLE), ...) in the JSON's order) of the val images
    (parsed once per version of the file: PC-59 and PC-459 both read it)."""
    try:
        stat = path.stat()
    except OSError as e:
        raise DataError(f"{path}: cannot read the Detail annotations ({e.strerror})") from None
    return _parse_annotations(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _parse_annotations(path: Path, mtime_ns: int, size: int) -> dict[str, tuple[int, int, tuple]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: cannot read the Detail annotations: {e}") from None
    try:
        images = {im["image_id"]: im for im in data["images"] if im["phase"] == "val"}
        painted: dict[int, list] = {key: [] for key in images}
        for ann in data["annos_segmentation"]:
            if ann["image_id"] in painted:
                painted[ann["image_id"]].append((int(ann["category_id"]), ann["segmentation"]))
        return {Path(im["file_name"]).stem: (int(im["height"]), int(im["width"]), tuple(painted[key]))
                for key, im in images.items()}
    except (KeyError, TypeError) as e:
        raise DataError(f"{path}: not a Detail trainval_merged.json (missing {e})") from None


def items(raw: Path, kind: str, subset: str) -> list[Item]:
    voc = _voc2010(raw)
    images = voc / "JPEGImages"
    if not images.is_dir():
        raise DataError(f"{images}: VOC2010 JPEGImages folder missing")
    annotations = val_annotations(_beside(voc, "trainval_merged.json", "Detail trainval_merged.json"))
    if kind == "pc59":
        return [Item(subset, stem, str(images / f"{stem}.jpg"), "trainval_merged.json", annotations[stem])
                for stem in sorted(annotations)]
    mats = _beside(voc, "trainval", "PASCAL-Context trainval folder (trainval.tar.gz)")
    return [Item(subset, stem, str(images / f"{stem}.jpg"), str(mats / f"{stem}.mat")) for stem in sorted(annotations)]


def paint(height: int, width: int, annotations: tuple, where: str) -> np.ndarray:
    """int32 category ids: each annotation's RLE painted over the ones before it."""
    from pycocotools import mask as rle_mask

    canvas = np.zeros((height, width), dtype=np.int32)
    for category, rle in annotations:
        try:
            if isinstance(rle.get("counts"), list):
                rle = rle_mask.frPyObjects(rle, *rle["size"])
            region = rle_mask.decode(rle)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: a segmentation of category {category} cannot be decoded: {e}") from None
        if region.shape != canvas.shape:
            raise DataError(f"{where}: a segmentation is {region.shape[1]}x{region.shape[0]}, "
                            f"the image {width}x{height}")
        canvas[region != 0] = category
    return canvas


@cache
def _pc59_table() -> np.ndarray:
    ids = class_file("pc59")["context_ids"]
    return lookup_table(NUM_CONTEXT + 1, {context: k for k, context in enumerate(ids)}, IGNORE_8)


_PC459_TABLE = lookup_table(NUM_CONTEXT + 1, {0: 65535, **{v: v - 1 for v in range(1, NUM_CONTEXT + 1)}}, INVALID)


def _label_map(path: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        found = loadmat(path)["LabelMap"]
    except FileNotFoundError:
        raise DataError(f"{path}: PASCAL-Context .mat file missing") from None
    except KeyError:
        raise DataError(f"{path}: no LabelMap in this .mat file") from None
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"{path}: cannot read the .mat file: {e}") from None
    return np.asarray(found)


def convert(kind: str, item: Item) -> Converted:
    image = kept(item.image, "VOC2010 image")
    if kind == "pc59":
        where = f"trainval_merged.json image {item.stem}"
        painted = paint(*item.extra[:2], item.extra[2], where)
        return Converted(image, apply_table(painted, _pc59_table(), np.uint8, where, "category id"))
    label_map = _label_map(item.label)
    if label_map.dtype.kind not in "ui" or label_map.ndim != 2 or (label_map.size and label_map.min() < 0):
        raise DataError(f"{item.label}: LabelMap is not a 2-D map of non-negative integers")
    return Converted(image, apply_table(label_map, _PC459_TABLE, np.uint16, item.label, "LabelMap"))
