"""Small synthetic data sets in the VIPSeg_720P and COCO Panoptic layouts.

The scenes are the VSPW generator's (`generate_frames`), written in each layout's own encoding,
so tests and docs exercise the real conversions: VIPSeg's 16-bit panomasks with thing
instances, stuff ids, void and the stray value 200; COCO's RGB-encoded segment ids (large ids,
so that all three channels matter), crowd segments and unlabeled pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ovbench.data.coco import load_categories, write_panoptic_png
from ovbench.data.synthetic.scenes import (
    JPEG_QUALITY,
    STAMP_FILE,
    SynthFrame,
    check_args,
    generate_frames,
    generator_stamp,
    write_video_tree,
)
from ovbench.data.vipseg import STRAY_VALUE, THING_IDS
from ovbench.data.vspw import load_class_names

# Synthetic pool class (converted VSPW id) -> a COCO Panoptic category id of the same kind.
COCO_OF_POOL = {
    28: 187, 21: 197, 0: 199, 34: 144, 66: 184, 35: 155, 32: 159, 15: 193, 18: 149, 13: 190,
    60: 1, 48: 3, 62: 18, 11: 11, 57: 37, 76: 33, 80: 44, 90: 62, 89: 67, 102: 85, 112: 73,
    114: 72, 92: 63, 49: 6,
}
STRAY_PATCH = 3  # a 3x3 patch of value 200 in the first frame of the first val video


def vipseg_values(frame: SynthFrame) -> np.ndarray:
    """VSPW raw ids + instances -> VIPSeg panomask values (uint16)."""
    raw = frame.raw.astype(np.int64)
    out = np.where((raw >= 1) & (raw <= 124), raw, 0)  # "others" and void are VIPSeg's void
    things = np.isin(raw - 1, list(THING_IDS)) & (frame.instance >= 0) & (out > 0)
    out[things] = raw[things] * 100 + frame.instance[things]
    return out.astype(np.uint16)


def write_synthetic_vipseg(out: str | Path, *, videos: int = 8, frames: int | None = None,
                           height: int = 60, width: int = 106, seed: int = 0) -> Path:
    """A VIPSeg_720P-layout tree under `out` (new or empty); arguments as write_synthetic_vspw."""
    out = Path(out)
    stray_at = ("1001_synth_000_0", "00000001")  # the first frame of the first video (a val one)

    def save(frame: SynthFrame, stem: str) -> None:
        values = vipseg_values(frame)
        if (frame.video, stem) == stray_at:
            values[:STRAY_PATCH, :STRAY_PATCH] = STRAY_VALUE
        Image.fromarray(frame.image).save(out / "images" / frame.video / f"{stem}.jpg", quality=JPEG_QUALITY)
        Image.fromarray(values).save(out / "panomasks" / frame.video / f"{stem}.png")

    write_video_tree(out, ("images/{video}", "panomasks/{video}"), save,
                     videos=videos, frames=frames, height=height, width=width, seed=seed)
    categories = [{"id": k, "name": n, "isthing": int(k in THING_IDS)} for k, n in enumerate(load_class_names())]
    (out / "panoVIPSeg_categories.json").write_text(json.dumps(categories, indent=1) + "\n")
    stamp = generator_stamp(videos=videos, frames=frames, height=height, width=width, seed=seed)
    (out / STAMP_FILE).write_text(json.dumps({"dataset": "vipseg", **stamp}) + "\n")
    return out


def _coco_segments(frame: SynthFrame, rng: np.random.Generator, crowd: bool) -> tuple[np.ndarray, list[dict]]:
    """(segment id map, segments_info): stuff by class, things by instance, 0 unlabeled; the
    first thing segment is a crowd region when `crowd`."""
    keys = np.where(frame.instance >= 0, 1000 + frame.instance.astype(np.int64), frame.raw.astype(np.int64))
    keys[(frame.raw == 0) | (frame.raw == 255)] = -1
    present = [int(k) for k in np.unique(keys) if k >= 0]
    ids = rng.choice((1 << 24) - 1, size=len(present), replace=False) + 1  # no 128 MB arange per image
    segment_ids = np.zeros(keys.shape, dtype=np.int64)
    info, crowd_left = [], crowd
    for key, seg_id in zip(present, ids.tolist()):
        region = keys == key
        cls = frame.scene.things[key - 1000].cls if key >= 1000 else key - 1
        segment_ids[region] = seg_id
        ys, xs = np.nonzero(region)
        is_crowd = key >= 1000 and crowd_left
        crowd_left &= not is_crowd
        info.append({"id": seg_id, "category_id": COCO_OF_POOL[cls], "iscrowd": int(is_crowd),
                     "area": int(region.sum()),
                     "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]})
    return segment_ids, info


def write_synthetic_coco(out: str | Path, *, images: int = 8, height: int = 60, width: int = 106,
                         seed: int = 0) -> Path:
    """A COCO Panoptic-layout tree under `out`: half the images (at least one) in val2017, the
    rest in train2017; every third image has a crowd segment."""
    out = Path(out)
    check_args(out, images, 1, height, width)
    rng = np.random.default_rng([seed, 2017])
    entries: dict[str, dict[str, list]] = {s: {"images": [], "annotations": []} for s in ("val", "train")}
    for i, frame in enumerate(generate_frames(videos=images, frames=1, height=height, width=width, seed=seed)):
        subset, image_id = frame.subset, 1000 + i
        stem = f"{image_id:012d}"
        for folder in (out / f"{subset}2017", out / "annotations" / f"panoptic_{subset}2017"):
            folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame.image).save(out / f"{subset}2017" / f"{stem}.jpg", quality=JPEG_QUALITY)
        segment_ids, info = _coco_segments(frame, rng, crowd=i % 3 == 0)
        write_panoptic_png(out / "annotations" / f"panoptic_{subset}2017" / f"{stem}.png", segment_ids)
        entries[subset]["images"].append({"id": image_id, "file_name": f"{stem}.jpg", "height": height, "width": width})
        entries[subset]["annotations"].append({"image_id": image_id, "file_name": f"{stem}.png", "segments_info": info})
    categories = [dict(c) for c in load_categories()]
    for subset, entry in entries.items():
        text = json.dumps({**entry, "categories": categories})
        (out / "annotations" / f"panoptic_{subset}2017.json").write_text(text + "\n")
    stamp = generator_stamp(videos=images, frames=1, height=height, width=width, seed=seed)
    (out / STAMP_FILE).write_text(json.dumps({"dataset": "coco", **stamp}) + "\n")
    return out
