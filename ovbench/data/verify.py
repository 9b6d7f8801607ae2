"""Check a VSPW root before spending hours of GPU time on it.

A broken download (a missing video, a truncated jpg, a mask of the wrong size, masks saved as
RGB) otherwise shows up as a crash in the middle of a run or, worse, as silently wrong numbers.
`verify_vspw` reads every file once, frame by frame (memory stays flat on the full release), and
lists every defect it finds, one line each, instead of stopping at the first.
"""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ovbench.data.datasets import TITLES, VideoDataset, check_kind, detect_kind
from ovbench.data.vspw import NUM_CLASSES, VSPW, load_class_names, read_raw_mask, read_rgb
from ovbench.errors import DataError

_VALID_RAW = np.zeros(256, dtype=bool)
_VALID_RAW[: NUM_CLASSES + 1] = True
_VALID_RAW[255] = True
_NO_MASKS_SUBSET = "test"  # VSPW ships no test masks


@dataclass
class VerifyReport:
    """Problems (one line each, naming the file, video or frame) and how much was sound.

    Problems with a list (a missing split file, a duplicate line) or with the label file do not
    change the counts; a video is ok when none of its files has a problem, a frame when neither
    its jpg nor its mask has one.
    """

    root: Path
    problems: list[str] = field(default_factory=list)
    videos_ok: int = 0
    frames_ok: int = 0
    videos_total: int = 0
    frames_total: int = 0
    notes: list[str] = field(default_factory=list)  # known quirks that are not defects
    kind: str = "vspw"

    @property
    def ok(self) -> bool:
        return not self.problems

    def add_video(self, part: "VerifyReport") -> None:
        """Fold in one video's report (made by `check_video`, possibly in another process)."""
        self.problems += part.problems
        self.notes += part.notes
        self.videos_total += 1
        self.videos_ok += not part.problems
        self.frames_ok += part.frames_ok
        self.frames_total += part.frames_total


def verify_dataset(root: str | Path, kind: str | None = None, workers: int = 1,
                   progress: bool | None = None) -> VerifyReport:
    """Check a root of `kind` (recognised from its layout when None). Videos are decoded in
    `workers` processes; the report is the same for any number of them (ordered results)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root not found")
    kind = kind or detect_kind(root)
    if kind is None:
        raise DataError(f"{root}: neither a VSPW_480p, a VIPSeg_720P nor a COCO root (use --dataset to say which)")
    report = VerifyReport(root, kind=check_kind(kind))
    tasks = _checker(kind)[0](root, report)
    _run_tasks(report, tasks, workers, progress)
    return report


def verify_vspw(root: str | Path, subsets: tuple[str, ...] = ("train", "val", "test")) -> VerifyReport:
    """Check the split lists of `subsets`, every listed video, frame and mask, and the label file."""
    report = VerifyReport(Path(root))
    _run_tasks(report, _list_vspw(Path(root), report, subsets), workers=1, progress=False)
    return report


def _run_tasks(report: VerifyReport, tasks: list[tuple], workers: int, progress: bool | None) -> None:
    """One task per video: (kind, root, video, detail); the detail is what the kind's check
    needs besides the files (VSPW, VIPSeg: whether masks are required; COCO: the image's
    annotation, so that workers never parse the whole annotation file)."""
    from tqdm import tqdm

    disable = None if progress is None else not progress  # None: a bar only on a terminal
    with tqdm(total=len(tasks), unit="video", disable=disable, leave=False) as bar:
        if workers > 1 and len(tasks) > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for part in pool.imap(check_video, tasks, chunksize=4):  # in order: same report
                    report.add_video(part)
                    bar.update(1)
        else:
            for task in tasks:
                report.add_video(check_video(task))
                bar.update(1)


def check_video(task: tuple) -> VerifyReport:
    """A report of one video alone; a module-level function, so that a pool can run it."""
    kind, root, video, detail = task
    part = VerifyReport(Path(root), kind=kind)
    _checker(kind)[1](root, video, detail, part)
    return part


def _list_vspw(root: Path, report: VerifyReport, subsets: tuple[str, ...] = ("train", "val", "test")) -> list[tuple]:
    try:
        data = VSPW(root)
    except DataError as e:
        report.problems.append(str(e))
        return []
    _check_label_file(data.root / "label_num_dic_final.json", report)
    seen_in: dict[str, str] = {}
    return [("vspw", str(root), video, subset != _NO_MASKS_SUBSET)
            for subset in subsets for video in listed_videos(data, subset, seen_in, report)]


def _check_vspw_video(root: str, video: str, needs_masks: bool, report: VerifyReport) -> None:
    _check_video(VSPW(root), video, needs_masks, report)


def listed_videos(data: VideoDataset, subset: str, seen_in: dict[str, str], report: VerifyReport) -> list[str]:
    """Videos of one list not yet checked under another list; list defects go to the report."""
    path = data.root / f"{subset}.txt"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        report.problems.append(f"{path}: split list missing")
        return []
    except (OSError, UnicodeDecodeError) as e:
        report.problems.append(f"{path}: cannot read split list: {e}")
        return []
    first_line: dict[str, int] = {}
    fresh = []
    for number, line in enumerate(lines, 1):
        video = line.strip()
        if not video:
            continue
        if video in first_line:
            report.problems.append(f"{path}:{number}: video {video} listed again "
                                   f"(first on line {first_line[video]})")
            continue
        first_line[video] = number
        if video in seen_in:
            report.problems.append(f"{path}:{number}: video {video} is also listed in "
                                   f"{seen_in[video]}.txt (the lists must not overlap)")
            continue
        seen_in[video] = subset
        fresh.append(video)
    return fresh


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


def read_frame_and_mask(frame_path: Path, mask_path: Path, has_mask: bool, needs_masks: bool,
                        read_mask: Callable[[Path], np.ndarray], report: VerifyReport) -> np.ndarray | None:
    """Read a frame and its mask, reporting what is wrong with either or with their sizes; the
    mask (None when absent or unreadable) is for the layout's own value checks."""
    frame = None
    try:
        frame = read_rgb(frame_path)
    except DataError as e:
        report.problems.append(str(e))
    if not has_mask:
        if needs_masks:
            report.problems.append(f"{frame_path}: frame without mask ({mask_path.name} missing)")
        return None
    try:
        mask = read_mask(mask_path)
    except DataError as e:
        report.problems.append(str(e))
        return None
    if frame is not None and frame.shape[:2] != mask.shape:
        report.problems.append(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but the frame "
                               f"is {frame.shape[1]}x{frame.shape[0]} (width x height)")
    return mask


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


def format_report(report: VerifyReport, max_problems: int = 20) -> str:
    """A readable summary: verdict, counts, and the first `max_problems` problems."""
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    lines = [f"{TITLES[report.kind]} check of {report.root}: {verdict}",
             f"  videos ok: {report.videos_ok}/{report.videos_total}",
             f"  frames ok: {report.frames_ok}/{report.frames_total}"]
    if report.problems:
        lines.append("  problems:")
        lines += [f"  - {p}" for p in report.problems[:max_problems]]
        if len(report.problems) > max_problems:
            lines.append(f"  ... and {len(report.problems) - max_problems} more")
    if report.notes:
        lines.append("  notes:")
        lines += [f"  - {n}" for n in report.notes[:max_problems]]
        if len(report.notes) > max_problems:
            lines.append(f"  ... and {len(report.notes) - max_problems} more")
    return "\n".join(lines)



def _checker(kind: str) -> tuple[Callable, Callable]:
    """(list the videos to check, check one video) for a kind."""
    if kind == "vspw":
        return _list_vspw, _check_vspw_video
    from ovbench.data import verify_panoptic as panoptic  # it builds on this module

    if kind == "vipseg":
        return panoptic.list_vipseg, panoptic.check_vipseg_video
    return panoptic.list_coco, panoptic.check_coco_image
