"""`data verify` for the COCO Panoptic layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ovbench.data.coco import SUBSETS as COCO_SUBSETS
from ovbench.data.coco import annotation_path, load_categories, parse_annotation, read_segment_png, semantic_from_segments
from ovbench.data.files import read_rgb
from ovbench.data.verify.report import VerifyReport
from ovbench.errors import DataError


def list_tasks(root: Path, report: VerifyReport) -> list[tuple]:
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


def check_task(root: str, stem: str, detail: tuple[str, dict], report: VerifyReport) -> None:
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
