"""Small synthetic copies of the image benchmarks' raw releases, in their DOWNLOADED layouts,
for the tests, `data synth` and timing `data prepare` at realistic image sizes.

Each writer puts a few images of random block-shaped regions (with scattered single pixels, so
that a conversion off by one anywhere shows) in the release's own folders and encodings: the
ADE20K full release's RGB-coded `_seg.png`, VOC2010 JPEGs with PASCAL-Context `.mat` files and
a Detail `trainval_merged.json` of RLE annotations, Cityscapes `gtFine` labelIds, the
ADEChallengeData2016 folders, VOC2012 palette PNGs and COCO-Stuff stuffthingmaps. The values
include the ones a conversion must drop (ADE ids outside the 847, labelIds outside the 19,
unused COCO-Stuff ids, void). Everything is a function of the arguments (seeded).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ovbench.data.images import class_file

CELLS = 6  # regions per side
SPECKLE = 0.01  # share of pixels set to a random value of the pool


def regions(rng: np.random.Generator, height: int, width: int, pool: np.ndarray) -> np.ndarray:
    """(height, width) values of `pool`: blocks of a CELLS x CELLS grid plus scattered pixels,
    and every value of the pool once in the first pixels (when they are enough), so that each
    entry of a conversion table is exercised."""
    grid = rng.choice(pool, size=(CELLS, CELLS))
    rows = np.minimum(np.arange(height) * CELLS // height, CELLS - 1)
    cols = np.minimum(np.arange(width) * CELLS // width, CELLS - 1)
    values = grid[rows][:, cols]
    speckle = rng.random((height, width)) < SPECKLE
    values[speckle] = rng.choice(pool, size=int(speckle.sum()))
    if len(pool) <= values.size:
        values.flat[: len(pool)] = rng.permutation(pool)
    return values


def photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An RGB image with smooth gradients and noise (JPEG sizes like real photos')."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width, 1), y * 255 // max(height, 1), (x + y) * 127 // max(height + width, 1)], -1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _sizes(rng: np.random.Generator, count: int, height: int, width: int) -> list[tuple[int, int]]:
    """Image sizes around (height, width), some portrait, so that resize rules see both."""
    found = []
    for k in range(count):
        h, w = height + int(rng.integers(0, 9)), width + int(rng.integers(0, 9))
        found.append((w, h) if k % 3 == 2 else (h, w))
    return found


def _save_jpeg(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=90)


def _save_png(path: Path, values: np.ndarray, palette: list[int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(values)
    if palette is not None:
        img = img.convert("P") if img.mode != "L" else Image.frombytes("P", img.size, img.tobytes())
        img.putpalette(palette)
    img.save(path)


def write_ade_challenge(out: str | Path, *, images: int = 4, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """`ADEChallengeData2016/` with `images/validation` and `annotations/validation` (0..150)."""
    rng, base = np.random.default_rng(seed), Path(out) / "ADEChallengeData2016"
    for k, (h, w) in enumerate(_sizes(rng, images, height, width), 1):
        stem = f"ADE_val_{k:08d}"
        _save_jpeg(base / "images" / "validation" / f"{stem}.jpg", photo(rng, h, w))
        _save_png(base / "annotations" / "validation" / f"{stem}.png", regions(rng, h, w, np.arange(151)).astype(np.uint8))
    return Path(out)


def ade_full_pool() -> np.ndarray:
    """ADE class ids: the 847 selected, some that are not selected, and 0."""
    selected = class_file("ade847")["ade_ids"]
    others = sorted(set(range(1, 3200, 97)) - set(selected))[:12]
    return np.array([0, *selected, *others, 6000], dtype=np.int64)


def write_ade_full(out: str | Path, *, images: int = 4, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """`ADE20K_2021_17_01/images/ADE/validation/<scene>/ADE_val_*.jpg` with `_seg.png` beside
    (R = class // 256 * 10 + instance digit, G = class % 256, B = instance)."""
    rng, base = np.random.default_rng(seed), Path(out) / "ADE20K_2021_17_01" / "images" / "ADE" / "validation"
    pool = ade_full_pool()
    for k, (h, w) in enumerate(_sizes(rng, images, height, width), 1):
        folder = base / ("cultural" if k % 2 else "home_or_hotel") / f"scene_{k % 3}"
        classes = regions(rng, h, w, pool)
        instance = rng.integers(0, 10, size=(h, w))
        seg = np.stack([classes // 256 * 10 + instance, classes % 256, instance * 20], -1).astype(np.uint8)
        _save_jpeg(folder / f"ADE_val_{k:08d}.jpg", photo(rng, h, w))
        _save_png(folder / f"ADE_val_{k:08d}_seg.png", seg)
    (Path(out) / "ADE20K_2021_17_01" / "objects.txt").write_text("synthetic\n")
    return Path(out)


def _rle(image_id: int, category: int, region: np.ndarray) -> dict:
    from pycocotools import mask as rle_mask

    rle = rle_mask.encode(np.asfortranarray(region.astype(np.uint8)))
    return {"image_id": image_id, "category_id": int(category),
            "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode()}}


def _rle_annotations(rng: np.random.Generator, image_id: int, h: int, w: int, cells: list[int]) -> list[dict]:
    """The Detail JSON's RLE annotations of one image: overlapping speckled rectangles of
    non-PC-59 ids and one PC-59 id, then each id of `cells` in its own cell of a 4 x 4 grid,
    painted over them (so that the painting order matters and every id shows)."""
    found = []
    for category in (1, 100, 459, cells[0]):
        region = np.zeros((h, w), dtype=bool)
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        region[y0: y0 + int(rng.integers(2, h)), x0: x0 + int(rng.integers(2, w))] = True
        region |= rng.random((h, w)) < SPECKLE
        found.append(_rle(image_id, category, region))
    for cell, category in enumerate(cells):
        region = np.zeros((h, w), dtype=bool)
        y, x = cell // 4 * h // 4, cell % 4 * w // 4
        region[y + 1: y + h // 4 - 1, x + 1: x + w // 4 - 1] = True
        found.append(_rle(image_id, category, region))
    return found


def write_pascal_context(out: str | Path, *, images: int = 4, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """`VOCdevkit/VOC2010/` with `JPEGImages/`, `trainval/<id>.mat` (LabelMap 0..459) and a
    `trainval_merged.json` (val and train images; RLE annotations of PC-59 ids and others)."""
    from scipy.io import savemat

    rng, voc = np.random.default_rng(seed), Path(out) / "VOCdevkit" / "VOC2010"
    pc59 = class_file("pc59")["context_ids"]
    entries, annotations = [], []
    for k, (h, w) in enumerate(_sizes(rng, images + 1, height, width)):
        stem, phase = f"2008_{k:06d}", "train" if k == images else "val"
        _save_jpeg(voc / "JPEGImages" / f"{stem}.jpg", photo(rng, h, w))
        entries.append({"image_id": 1000 + k, "file_name": f"{stem}.jpg", "phase": phase, "height": h, "width": w})
        cells = [pc59[(15 * k + j) % len(pc59)] for j in range(15)]  # all 59 over four images
        annotations += _rle_annotations(rng, 1000 + k, h, w, cells)
        (voc / "trainval").mkdir(parents=True, exist_ok=True)
        savemat(voc / "trainval" / f"{stem}.mat", {"LabelMap": regions(rng, h, w, np.arange(460)).astype(np.uint16)})
    merged = {"images": entries, "annos_segmentation": annotations,
              "categories": [{"category_id": int(c), "name": f"class {c}"} for c in (1, 100, 459, *pc59)]}
    (voc / "trainval_merged.json").write_text(json.dumps(merged))
    return Path(out)


def voc_palette() -> list[int]:
    """The VOC colour map (bit-interleaved), 256 RGB triples."""
    palette = []
    for index in range(256):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r, g, b = r | (value & 1) << shift, g | (value >> 1 & 1) << shift, b | (value >> 2 & 1) << shift
            value >>= 3
        palette += [r, g, b]
    return palette


def write_voc2012(out: str | Path, *, images: int = 4, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """`VOCdevkit/VOC2012/` with JPEGImages, palette SegmentationClass PNGs (0..20, 255) and
    `ImageSets/Segmentation/val.txt`."""
    rng, voc = np.random.default_rng(seed), Path(out) / "VOCdevkit" / "VOC2012"
    stems = []
    for k, (h, w) in enumerate(_sizes(rng, images, height, width)):
        stem = f"2007_{k:06d}"
        stems.append(stem)
        _save_jpeg(voc / "JPEGImages" / f"{stem}.jpg", photo(rng, h, w))
        values = regions(rng, h, w, np.array([*range(21), 255])).astype(np.uint8)
        _save_png(voc / "SegmentationClass" / f"{stem}.png", values, voc_palette())
    listing = voc / "ImageSets" / "Segmentation" / "val.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"{s}\n" for s in stems))
    return Path(out)


def write_cityscapes(out: str | Path, *, images: int = 4, height: int = 32, width: int = 64, seed: int = 0) -> Path:
    """`leftImg8bit/val/<city>/*_leftImg8bit.png` and `gtFine/val/<city>/*_gtFine_labelIds.png`
    (labelIds 0..33)."""
    rng, base = np.random.default_rng(seed), Path(out)
    for k in range(images):
        city = ("frankfurt", "lindau", "munster")[k % 3]
        stem = f"{city}_{k:06d}_{19 * k:06d}"
        (base / "leftImg8bit" / "val" / city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(rng, height, width)).save(base / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png")
        _save_png(base / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png",
                  regions(rng, height, width, np.arange(34)).astype(np.uint8))
    return base


def write_cocostuff(out: str | Path, *, images: int = 4, height: int = 48, width: int = 64, seed: int = 0,
                    subsets: tuple[str, ...] = ("val",)) -> Path:
    """`images/<subset>2017/*.jpg` and `annotations/<subset>2017/*.png` (0..181 and 255)."""
    rng, base = np.random.default_rng(seed), Path(out)
    for subset in subsets:
        for k, (h, w) in enumerate(_sizes(rng, images, height, width), 1):
            stem = f"{k:012d}"
            _save_jpeg(base / "images" / f"{subset}2017" / f"{stem}.jpg", photo(rng, h, w))
            _save_png(base / "annotations" / f"{subset}2017" / f"{stem}.png",
                      regions(rng, h, w, np.array([*range(182), 255])).astype(np.uint8))
    return base


# kind -> the writer of its raw release
WRITERS = {"ade150": write_ade_challenge, "ade847": write_ade_full, "pc59": write_pascal_context,
           "pc459": write_pascal_context, "voc20": write_voc2012, "voc21": write_voc2012, "voc20b": write_voc2012,
           "cityscapes": write_cityscapes, "cocostuff171": write_cocostuff}
