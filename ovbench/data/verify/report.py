"""What every layout's check shares: the report, running one task per video in worker processes, the split lists, a frame and its mask."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ovbench.data.files import read_rgb
from ovbench.data.kinds import data_kind
from ovbench.data.reader import VideoDataset
from ovbench.errors import DataError


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


def run_tasks(report: VerifyReport, tasks: list[tuple], workers: int, progress: bool | None) -> None:
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
    data_kind(kind).load("verifier").check_task(root, video, detail, part)
    return part


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


def format_report(report: VerifyReport, max_problems: int = 20) -> str:
    """A readable summary: verdict, counts, and the first `max_problems` problems."""
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    lines = [f"{data_kind(report.kind).title} check of {report.root}: {verdict}",
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
