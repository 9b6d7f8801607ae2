"""What `run` and `score` share: the videos a split covers, the metric state for a split, and
turning that state into the record's metrics (seen/unseen/hIoU only when both kinds of class are
in the vocabulary, i.e. from ONE all-class confusion matrix)."""

from __future__ import annotations

from typing import Any

from ovbench.constants import VC_WINDOWS
from ovbench.metrics.accumulator import VideoSegMetrics
from ovbench.metrics.tc import TCMetrics
from ovbench.split import Split


def new_metrics(split: Split, min_video_frames: int | None, vc_convention: str = "official") -> VideoSegMetrics:
    return VideoSegMetrics(split.num_classes, split.gt_lut(), windows=VC_WINDOWS, min_video_frames=min_video_frames,
                           vc_convention=vc_convention)


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
            "seen": i < len(split.vocabulary) and split.vocabulary[i] in seen,
        }
        for i, name in enumerate(split.class_names)
    }
    return computed


def options_summary(convention: str, min_video_frames: int, vc_convention: str = "official") -> dict[str, Any]:
    """The metric options a record states. `vc_convention` is written only when it is not
    "official": every record made before the option existed is official, so a record without
    the key says "official" and an unchanged run keeps its record byte for byte."""
    summary = {"miou_convention": convention, "min_video_frames": min_video_frames, "vc_windows": list(VC_WINDOWS)}
    return summary if vc_convention == "official" else {**summary, "vc_convention": vc_convention}


def vc_convention_of(options: dict[str, Any]) -> str:
    """The VC convention of a record's (or a run fingerprint's) options; absent = official."""
    return options.get("vc_convention", "official")


def add_tc(computed: dict[str, Any], entries: dict[str, dict], num_classes: int) -> int:
    """Pool the TC entries saved with the videos (`entry["tc"]`) into `computed`: metrics.TC
    and per_video[name].TC; returns how many videos had one."""
    tc = TCMetrics(num_classes)
    for name in sorted(entries):
        if "tc" in entries[name]:
            tc.add_video(name, entries[name]["tc"])
    pooled = tc.compute()
    computed["metrics"].update(pooled["metrics"])
    for name, scores in pooled["per_video"].items():
        computed["per_video"][name].update({k: v for k, v in scores.items() if k == "TC"})
    return len(tc.videos)


def why_no_metrics(video_frames: list[int], min_video_frames: int) -> str:
    """Why a run or a score has no mIoU (every video too short for --min-video-frames, or no
    ground-truth pixel of the vocabulary): the one line instead of a record with no metrics."""
    longest = max(video_frames)
    if longest <= min_video_frames:
        return (f"no metric can be computed: --min-video-frames {min_video_frames} leaves out every evaluated video"
                f" (the longest of the {len(video_frames)} has {longest} frames)")
    return (f"no metric can be computed: no ground-truth pixel of the {len(video_frames)} evaluated videos"
            " is a class of the split's vocabulary")
