"""`data verify` for the VIPSeg_720P and COCO Panoptic layouts (VSPW's is in verify.py).

Same contract as VSPW's check: every defect one line naming its file, the counts of sound
videos and frames, nothing stops at the first problem. Known quirks that are not defects (the
stray value 200 in a few VIPSeg masks) are notes with their pixel counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ovbench.data.coco import SUBSETS as COCO_SUBSETS
from ovbench.data.coco import (annotation_path, load_categories, parse_annotation, read_segment_png,
                               semantic_from_segments)
from ovbench.data.verify import VerifyReport, listed_videos, read_frame_and_mask
from ovbench.data.vipseg import STRAY_VALUE, THING_IDS, VIPSeg, convert_panomask, read_panomask
from ovbench.data.vspw import IGNORE, load_class_names, read_rgb
from ovbench.errors import DataError

_VIPSEG_MASKED = ("train", "val")  # test frames have no masks (and no images after the 720p step)


def list_vipseg(root: Path, report: VerifyReport) -> list[tuple]:
    try:
        data = VIPSeg(root)
    except DataError as e:
        report.problems.append(str(e))
        return []
    _check_vipseg_categories(root / "panoVIPSeg_categories.json", report)
    seen_in: dict[str, str] = {}
    return [("vipseg", str(root), video, True)
            for subset in _VIPSEG_MASKED for video in listed_videos(data, subset, seen_in, report)]


def _check_vipseg_categories(path: Path, report: VerifyReport) -> None:
    """The optional category file must agree with the built-in names and thing flags."""
    if not path.exists():
        return
    try:
        found = {int(c["id"]): (c["name"], bool(c["isthing"])) for c in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError) as e:
        report.problems.append(f"{path}: cannot read the category list: {e}")
        return
    expected = {k: (n, k in THING_IDS) for k, n in enumerate(load_class_names())}
    diffs = [f"id {k}: {found.get(k)} (expected {v})" for k, v in expected.items() if found.get(k) != v]
    if diffs or len(found) != len(expected):
        report.problems.append(f"{path}: differs from VIPSeg's 124 categories: {'; '.join(diffs[:5])}")


def check_vipseg_video(root: str, video: str, needs_masks: bool, report: VerifyReport) -> None:
    data = VIPSeg(root)
    try:
        stems = data.frames(video)
    except DataError as e:
        report.problems.append(str(e))
        return
    if not stems:
        report.problems.append(f"{data.frame_dir(video)}: empty video (no .jpg frames)")
    mask_dir = data.mask_path(video, "x").parent
    orphans = sorted({p.stem for p in mask_dir.glob("*.png")}.difference(stems))
    if orphans:
        report.problems.append(f"{mask_dir}: {len(orphans)} mask(s) without a frame: {', '.join(orphans[:5])}")
    for stem in stems:
        before = len(report.problems)
        _check_vipseg_frame(data, video, stem, report)
        report.frames_total += 1
        report.frames_ok += len(report.problems) == before


def _check_vipseg_frame(data: VIPSeg, video: str, stem: str, report: VerifyReport) -> None:
    path = data.mask_path(video, stem)
    values = read_frame_and_mask(data.frame_path(video, stem), path, path.is_file(), True, read_panomask, report)
    if values is None:
        return
    bad = np.unique(values[(convert_panomask(values) == IGNORE) & (values != 0)])  # void by the conversion, not 0
    if bad.size:
        report.problems.append(f"{path}: mask values {', '.join(map(str, bad[:5].tolist()))} are no VIPSeg "
                               f"category (category + 1 for stuff, (category + 1) * 100 + instance for things)")
    stray = int((values == STRAY_VALUE).sum())
    if stray:
        report.notes.append(f"{path}: {stray} pixel(s) hold the stray value {STRAY_VALUE} "
                            f"(VIPSeg-Dataset issue #1); read as class 1 ceiling, as the official conversion does")


def list_coco(root: Path, report: VerifyReport) -> list[tuple]:
    """Images of every subset whose annotation file or image folder exists."""
    tasks = []
    subsets = [s for s in COCO_SUBSETS if annotation_path(root, s).exists() or (root / f"{s}2017").is_dir()]
    if not subsets:
        report.problems.append(f"{root / 'annotations'}: no panoptic_{{train,val}}2017.json")
    for subset in subsets:
        path = annotation_path(root, subset)
        try:
            data = json.loads(path.read_text())
            annotations = {Path(a["file_name"]).stem: a for a in data["annotations"]}
            categories = data.get("categories", [])
        except FileNotFoundError:
            report.problems.append(f"{path}: annotation file missing")
            continue
        except (OSError, ValueError, KeyError, TypeError) as e:
            report.problems.append(f"{path}: cannot read annotations: {e}")
            continue
        _check_coco_categories(path, categories, report)
        tasks += [("coco", str(root), stem, (subset, ann)) for stem, ann in annotations.items()]
    return tasks


def _check_coco_categories(path: Path, categories: list, report: VerifyReport) -> None:
    known = {c["id"]: c["name"] for c in load_categories()}
    for c in categories:
        if not isinstance(c, dict):
            report.problems.append(f"{path}: category entry {c!r} is not an object")
        elif known.get(c.get("id")) != c.get("name"):
            report.problems.append(f"{path}: category {c.get('id')} {c.get('name')!r} is not one of the 133 "
                                   f"COCO Panoptic categories")


def check_coco_image(root: str, stem: str, detail: tuple[str, dict], report: VerifyReport) -> None:
    subset, ann = detail
    report.frames_total += 1
    before = len(report.problems)
    png = Path(root) / "annotations" / f"panoptic_{subset}2017" / ann["file_name"]
    frame = None
    try:
        frame = read_rgb(Path(root) / f"{subset}2017" / f"{stem}.jpg")
    except DataError as e:
        report.problems.append(str(e))
    try:
        segments = parse_annotation(ann, f"{annotation_path(Path(root), subset)} image {ann.get('image_id')} ({ann.get('file_name')})")
        ids = read_segment_png(png)
        semantic_from_segments(ids, segments, str(png))
    except DataError as e:
        report.problems.append(str(e))
    else:
        if frame is not None and frame.shape[:2] != ids.shape:
            report.problems.append(f"{png}: png is {ids.shape[1]}x{ids.shape[0]} but the "
                                   f"image is {frame.shape[1]}x{frame.shape[0]} (width x height)")
        absent = np.setdiff1d(segments.ids, ids)
        if absent.size:
            report.problems.append(f"{png}: segment id(s) {', '.join(map(str, absent[:5].tolist()))} "
                                   f"of the JSON are not in the png")
    report.frames_ok += len(report.problems) == before
