"""Which run a table number is read from.

A row gathers one model's runs on the splits of one protocol. Seen, unseen and harmonic mIoU
are read from the all-class run because hIoU is only meaningful when S and U come from one
confusion matrix; separate seen-only / unseen-only runs are a fallback that the table marks.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from ovbench.leaderboard.records import Run

from ovbench.records.read import fps_per_process

FPS = "fps"  # end-to-end frames/s per process (records.fps_per_process), read together with env.device
# quantity -> (split form, key) sources in order of preference; the first is the same-run source.
QUANTITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "mIoU_seen": (("all", "mIoU_seen"), ("seen", "mIoU")),
    "mIoU_unseen": (("all", "mIoU_unseen"), ("unseen", "mIoU")),
    "hIoU": (("all", "hIoU"),),
    "mIoU": (("all", "mIoU"),),
    "pAcc": (("all", "pAcc"),),
    "mAcc": (("all", "mAcc"),),
    "fwIoU": (("all", "fwIoU"),),
    "VC8": (("all", "VC8"),),
    "VC16": (("all", "VC16"),),
    FPS: (("all", FPS), ("unseen", FPS), ("seen", FPS)),
}
# Keys whose 95% interval the video bootstrap can give.
INTERVAL_KEYS = ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU")


@dataclasses.dataclass(frozen=True)
class Value:
    value: float | None
    sources: tuple[Run, ...] = ()  # the runs the number was read from
    key: str | None = None  # its key in the run, when there is exactly one
    separate: bool = False  # comes from seen-only / unseen-only vocabulary runs

    @property
    def run(self) -> Run | None:
        return self.sources[0] if len(self.sources) == 1 else None


def run_for(runs: Sequence[Run], split: str) -> Run | None:
    """The row's run for a split form ("all") or a full split name."""
    return next((r for r in runs if r.form == split or r.split == split), None)


def run_with(runs: Sequence[Run], section: str) -> Run | None:
    """The first run whose record has a non-empty `section` ("per_class", "per_video"), the
    all-class run first: it is the one the table's main numbers come from."""
    ordered = [run_for(runs, form) for form in ("all", "unseen", "seen")] + list(runs)
    return next((run for run in ordered if run is not None and run.record[section]), None)


def read(run: Run, key: str) -> float | None:
    if key == FPS:
        value = fps_per_process(run.record)
    else:
        value = run.record["metrics"].get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def evaluate(runs: Sequence[Run], metric: str, split: str | None = None) -> Value:
    """The row's number for a layout column; Value(None) when no run provides it."""
    if split is not None:
        run = run_for(runs, split)
        value = read(run, metric) if run is not None else None
        return Value(value, (run,), metric) if run is not None and value is not None else Value(None)
    for rank, (form, key) in enumerate(QUANTITIES[metric]):
        run = run_for(runs, form)
        value = read(run, key) if run is not None else None
        if value is not None:
            return Value(value, (run,), key, separate=metric != FPS and rank > 0)
    return Value(None)  # never an hIoU from two runs: S and U must share one confusion matrix
