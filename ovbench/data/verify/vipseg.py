"""`data verify` for the VIPSeg_720P layout.

Same contract as every layout's check (verify/report.py): every defect one line naming its file, the counts of sound
videos and frames, nothing stops at the first problem. Known quirks that are not defects (the
stray value 200 in a few VIPSeg masks) are notes with their pixel counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ovbench.constants import IGNORE
from ovbench.data.files import open_image
from ovbench.data.verify.report import VerifyReport, listed_videos, read_frame_and_mask
from ovbench.data.vipseg import STRAY_VALUE, THING_IDS, VIPSeg, convert_panomask, read_panomask
from ovbench.data.vspw import load_class_names
from ovbench.errors import DataError

_VIPSEG_MASKED = ("train", "val")  # test frames have no masks (and no images after the 720p step)


def list_tasks(root: Path, report: VerifyReport) -> list[tuple]:
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


def check_task(root: str, video: str, needs_masks: bool, report: VerifyReport) -> None:
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
    with open_image(path, "mask") as img:
        if img.mode in ("L", "P"):  # values above 255 (every thing instance) cannot be held
            report.problems.append(f"{path}: an 8-bit png; VIPSeg panomasks are 16-bit (thing values"
                                   " (category + 1) * 100 + instance are lost in 8 bits)")
    bad = np.unique(values[(convert_panomask(values) == IGNORE) & (values != 0)])  # void by the conversion, not 0
    if bad.size:
        report.problems.append(f"{path}: mask values {', '.join(map(str, bad[:5].tolist()))} are no VIPSeg "
                               f"category (category + 1 for stuff, (category + 1) * 100 + instance for things)")
    stray = int((values == STRAY_VALUE).sum())
    if stray:
        report.notes.append(f"{path}: {stray} pixel(s) hold the stray value {STRAY_VALUE} "
                            f"(VIPSeg-Dataset issue #1); read as class 1 ceiling, as the official conversion does")


