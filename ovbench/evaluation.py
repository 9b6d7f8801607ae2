"""What `run` and `score` share: the videos a split covers, the metric state for a split, and
turning that state into the record's metrics (seen/unseen/hIoU only when both kinds of class are
in the vocabulary, i.e. from ONE all-class confusion matrix)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .data.datasets import VideoDataset, VideoFrames
from .errors import DataError
from .metrics.accumulator import VideoSegMetrics
from .splits import Split

VC_WINDOWS = (8, 16)


def list_videos(data: VideoDataset, split: Split, limit: int | None = None, *, broken_ok: bool = False) -> list[VideoFrames]:
    """The split's videos and their frames. With `broken_ok` a video whose folder is missing is
    listed without frames and with the `problem` (the runner skips and names it, as it does a
    video with an unreadable frame: one missing folder must not stop a run of thousands)."""
    names = data.videos(split.subset)
    if limit is not None:
        names = names[:limit]
    if not names:
        raise DataError(f"{data.root}: the {split.subset} subset lists no videos")
    return [_video(data, name, broken_ok) for name in names]


def _video(data: VideoDataset, name: str, broken_ok: bool) -> VideoFrames:
    try:
        return VideoFrames(name, tuple(data.frames(name)))
    except DataError as err:
        if not broken_ok:
            raise
        return VideoFrames(name, (), problem=str(err))


def _file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # a missing or unreadable file: its video is skipped, and named, later
        return 0


def data_identity(data: VideoDataset, videos: list[VideoFrames]) -> dict[str, Any]:
    """What the data is, not where: video names, frame counts and the bytes of their frames and
    masks, so a re-encoded or re-converted data set is another run while a moved one (another
    root path, another node's mount) still resumes and merges. Asked through the reader's
    paths, so it holds for every data set kind."""
    lines = []
    for video in videos:
        size = sum(_file_bytes(data.frame_path(video.name, f)) + _file_bytes(data.mask_path(video.name, f)) for f in video.frames)
        lines.append(f"{video.name}:{len(video.frames)}:{size}")
    return {"sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(), "names": [v.name for v in videos]}


def new_metrics(split: Split, min_video_frames: int) -> VideoSegMetrics:
    return VideoSegMetrics(len(split.vocabulary), split.gt_lut(), windows=VC_WINDOWS, min_video_frames=min_video_frames)


def compute_for_split(metrics: VideoSegMetrics, split: Split, convention: str) -> dict[str, Any]:
    mixed = bool(split.seen_index() and split.unseen_index())
    computed = metrics.compute(
        seen_index=split.seen_index() if mixed else None,
        unseen_index=split.unseen_index() if mixed else None,
        convention=convention,
    )
    seen = set(split.seen)
    per_class = computed["per_class"]
    computed["per_class"] = {
        name: {
            "iou": per_class["iou"][i],
            "acc": per_class["acc"][i],
            "gt_pixels": int(per_class["gt_pixels"][i]),
            "seen": split.vocabulary[i] in seen,
        }
        for i, name in enumerate(split.class_names)
    }
    return computed


def options_summary(convention: str, min_video_frames: int) -> dict[str, Any]:
    return {"miou_convention": convention, "min_video_frames": min_video_frames, "vc_windows": list(VC_WINDOWS)}
