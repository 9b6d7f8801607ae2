"""Video consistency VC_n (VSPW), streamed one frame at a time, every window size in one pass.

The official script compares, for each window start, the n-1 later frames with the first one:
O(n) work per pixel per frame and the whole video in memory. Here each pixel carries how many
previous frames had the same label (capped at max(windows)-1), for the ground truth and for the
prediction. The window of n frames ending at the current frame has "gt unchanged" exactly where
gt_run >= n-1, and "gt and prediction unchanged" where both runs are >= n-1, so two pixel
counts per window size and frame answer it.

Official quirks kept: window starts 0..T-n-1 (the window ending at the last frame is dropped, so
a frame's windows are committed only when the next frame arrives), no ignore masking (void that
stays void counts as unchanged), windows with |G| = 0 are skipped. Each window's accuracy is
accumulated as the exact integer floor(|G and P| * 2**64 / |G|), so totals are bit-identical
however videos are split across processes.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ovbench.constants import VC_WINDOWS
from ovbench.errors import ConfigError
from ovbench.metrics.confusion import LabelError

MAX_WINDOW = 255  # runs are uint8 and capped at max(windows) - 1
FIXED_POINT_BITS = 64


def check_windows(windows: Iterable[int]) -> tuple[int, ...]:
    """Sorted distinct window sizes; ConfigError unless each is an integer in 1..MAX_WINDOW."""
    try:
        ws = tuple(sorted(set(windows)))
    except TypeError:
        raise ConfigError(f"VC windows must be a list of integers, got {windows!r}") from None
    if not ws or any(not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_WINDOW for n in ws):
        raise ConfigError(f"VC windows must be one or more integers in 1..{MAX_WINDOW}, got {windows!r}")
    return ws


class VideoConsistency:
    """Streaming VC_n of one video; memory independent of its length (two frames of runs)."""

    def __init__(self, windows: Iterable[int] = VC_WINDOWS):
        self.windows = check_windows(windows)
        self._cap = max(self.windows)
        self._labels: np.ndarray | None = None  # (2,H,W) gt and pred of the latest frame
        self._runs: np.ndarray | None = None  # (2,H,W) uint8 previous frames with the same label
        self._same: np.ndarray | None = None  # (2,H,W) scratch: 1 where the label did not change
        self._grow: np.ndarray | None = None  # (2,H,W) scratch: 1 where the run is below the cap
        self._latest: list[tuple[int, int]] = []  # the latest frame's (|G|, |G and P|) per window, not yet committed
        self._totals = {n: [0, 0] for n in self.windows}  # n -> [sum of accuracies * 2**64, windows]
        self.frames = 0

    def add_frame(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """One frame already checked by `label_frames` (uint8 (H,W)): commit the previous
        frame's windows, advance both run maps, count this frame's."""
        if self._runs is not None and self._runs.shape[1:] != gt.shape:
            raise LabelError(f"frame size {gt.shape} differs from the video's {tuple(self._runs.shape[1:])}")
        if self._runs is None:
            self._labels = np.stack([gt, pred])
            self._runs = np.zeros_like(self._labels)
            self._same, self._grow = np.empty_like(self._labels), np.empty_like(self._labels)
        else:
            self._commit()
            np.equal(self._labels[0], gt, out=self._same[0])
            np.equal(self._labels[1], pred, out=self._same[1])
            self._labels[0], self._labels[1] = gt, pred
            np.less(self._runs, self._cap - 1, out=self._grow)
            self._runs += self._grow
            self._runs *= self._same
        self._latest = [self._counts(n) for n in self.windows]
        self.frames += 1

    def _counts(self, n: int) -> tuple[int, int]:
        """(|G|, |G and P|) of the window of n frames ending at the latest frame."""
        if self.frames + 1 < n:  # no such window yet
            return 0, 0
        same = self._runs[0] >= n - 1
        gt_same = int(np.count_nonzero(same))
        same &= self._runs[1] >= n - 1
        return gt_same, int(np.count_nonzero(same))

    def _commit(self) -> None:
        """Fold the latest frame's windows: another frame follows, so none is the video's last."""
        for n, (gt_same, both) in zip(self.windows, self._latest):
            if gt_same:
                self._totals[n][0] += (both << FIXED_POINT_BITS) // gt_same
                self._totals[n][1] += 1

    def result(self) -> dict[int, tuple[int, int]]:
        """n -> (sum of window accuracies in units of 2**-64, number of windows with |G| > 0)."""
        return {n: (total, count) for n, (total, count) in self._totals.items()}
