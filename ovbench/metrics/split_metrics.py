"""What `run` and `score` share: the videos a split covers, the metric state for a split, and
turning that state into the record's metrics (seen/unseen/hIoU only when both kinds of class are
in the vocabulary, i.e. from ONE all-class confusion matrix)."""

from __future__ import annotations

from typing import Any

from ovbench.constants import VC_WINDOWS
from ovbench.metrics.accumulator import VideoSegMetrics
from ovbench.split import Split


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


def why_no_metrics(video_frames: list[int], min_video_frames: int) -> str:
    """Why a run or a score has no mIoU (every video too short for --min-video-frames, or no
    ground-truth pixel of the vocabulary): the one line instead of a record with no metrics."""
    longest = max(video_frames)
    if longest <= min_video_frames:
        return (f"no metric can be computed: --min-video-frames {min_video_frames} leaves out every evaluated video"
                f" (the longest of the {len(video_frames)} has {longest} frames)")
    return (f"no metric can be computed: no ground-truth pixel of the {len(video_frames)} evaluated videos"
            " is a class of the split's vocabulary")
