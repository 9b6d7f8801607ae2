"""Per-video numbers of each row: where a model fails, not just its average.

A split's mIoU pools every pixel of every video, so one model can lead the table while failing
badly on a few videos; the per-video mIoU and VC the runner records show which. Worst videos
first, since those are what a reviewer looks for.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ovbench.leaderboard.quantities import run_with
from ovbench.leaderboard.records import Run
from ovbench.leaderboard.select import Row

KEYS = ("mIoU", "VC8", "VC16")


@dataclasses.dataclass(frozen=True)
class VideoScores:
    video: str
    frames: int | None
    scores: dict[str, float | None]  # KEYS -> fraction, None when the record has none


def per_video_run(row: Row) -> Run | None:
    return run_with(row.runs, "per_video")


def _score(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def video_scores(run: Run) -> list[VideoScores]:
    """Every video of the run, lowest mIoU first (videos without one last), then by name."""
    videos = [
        VideoScores(name, entry.get("frames"), {key: _score(entry, key) for key in KEYS})
        for name, entry in run.record["per_video"].items()
    ]
    return sorted(videos, key=lambda v: (v.scores["mIoU"] is None, v.scores["mIoU"] or 0.0, v.video))


def percent(value: float | None, missing: str) -> str:
    return missing if value is None or not math.isfinite(value) else f"{100 * value:.1f}"
