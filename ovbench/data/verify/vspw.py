"""Check a VSPW root before spending hours of GPU time on it.

A broken download (a missing video, a truncated jpg, a mask of the wrong size, masks saved as
RGB) otherwise shows up as a crash in the middle of a run or, worse, as silently wrong numbers.
It reads every file once, frame by frame (memory stays flat on the full release), and
lists every defect it finds, one line each, instead of stopping at the first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ovbench.data.files import read_raw_mask
from ovbench.data.verify.report import VerifyReport, listed_videos, read_frame_and_mask
from ovbench.data.vspw import NUM_CLASSES, VSPW, load_class_names
from ovbench.errors import DataError

_VALID_RAW = np.zeros(256, dtype=bool)
_VALID_RAW[: NUM_CLASSES + 1] = True
_VALID_RAW[255] = True
_NO_MASKS_SUBSET = "test"  # VSPW ships no test masks


def list_tasks(root: Path, report: VerifyReport, subsets: tuple[str, ...] = ("train", "val", "test")) -> list[tuple]:
    try:
        data = VSPW(root)
    except DataError as e:
        report.problems.append(str(e))
        return []
    _check_label_file(data.root / "label_num_dic_final.json", report)
    seen_in: dict[str, str] = {}
    return [("vspw", str(root), video, subset != _NO_MASKS_SUBSET)
            for subset in subsets for video in listed_videos(data, subset, seen_in, report)]


def check_task(root: str, video: str, needs_masks: bool, report: VerifyReport) -> None:
    _check_video(VSPW(root), video, needs_masks, report)


def _check_video(data: VSPW, video: str, needs_masks: bool, report: VerifyReport) -> None:
    try:
        stems = data.frames(video)
    except DataError as e:
        report.problems.append(str(e))
        return
    mask_dir = data.root / "data" / video / "mask"
    masks = {p.stem for p in mask_dir.glob("*.png")}
    if not stems:
        report.problems.append(f"{mask_dir.parent / 'origin'}: empty video (no .jpg frames)")
    no_mask_dir = needs_masks and not mask_dir.is_dir()
    if no_mask_dir:  # reported once for the video, not once per frame
        report.problems.append(f"{mask_dir}: mask folder missing ({len(stems)} frames without masks)")
    orphans = sorted(masks.difference(stems))
    if orphans:
        shown = ", ".join(f"{s}.png" for s in orphans[:5])
        more = f" and {len(orphans) - 5} more" if len(orphans) > 5 else ""
        report.problems.append(f"{mask_dir}: {len(orphans)} mask(s) without a frame: {shown}{more}")
    for stem in stems:
        report.frames_total += 1
        before = len(report.problems)
        _check_frame(data, video, stem, stem in masks, needs_masks and not no_mask_dir, report)
        report.frames_ok += len(report.problems) == before and not no_mask_dir


def _check_frame(data: VSPW, video: str, stem: str, has_mask: bool, needs_masks: bool,
                 report: VerifyReport) -> None:
    mask = read_frame_and_mask(data.frame_path(video, stem), data.mask_path(video, stem), has_mask,
                               needs_masks, read_raw_mask, report)
    if mask is None:
        return
    mask_path = data.mask_path(video, stem)
    present = np.bincount(mask.ravel(), minlength=256) > 0
    bad = np.flatnonzero(present & ~_VALID_RAW)
    if bad.size:
        report.problems.append(f"{mask_path}: mask values {', '.join(map(str, bad.tolist()))} "
                               f"outside 0..{NUM_CLASSES} and 255")


def _check_label_file(path: Path, report: VerifyReport) -> None:
    """The optional name -> raw id file must agree with the built-in class names."""
    if not path.exists():
        return
    try:
        found = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        report.problems.append(f"{path}: cannot read: {e}")
        return
    if not isinstance(found, dict):
        report.problems.append(f"{path}: expected a JSON object name -> id")
        return
    expected = {"others": "0", **{n: str(k + 1) for k, n in enumerate(load_class_names())}}
    diffs = [f"{n} missing" for n in expected if n not in found]
    diffs += [f"unknown name {n}" for n in found if n not in expected]
    diffs += [f"{n} -> {found[n]!r} (expected {expected[n]!r})"
              for n in expected if n in found and str(found[n]) != expected[n]]
    if diffs:
        more = f"; and {len(diffs) - 5} more" if len(diffs) > 5 else ""
        report.problems.append(f"{path}: differs from the built-in class names: "
                               f"{'; '.join(diffs[:5])}{more}")
