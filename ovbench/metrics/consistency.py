"""Video consistency VC_n (VSPW), streamed one frame at a time, every window size in one pass.

The official script compares, for each window start, the n-1 later frames with the first one:
O(n) work per pixel per frame and the whole video in memory. Here each pixel carries how many
previous frames had the same label (capped at max(windows)-1), for the ground truth and for the
prediction. The window of n frames ending at the current frame has "gt unchanged" exactly where
gt_run >= n-1, and "gt and prediction unchanged" where both runs are >= n-1; one histogram of
the pair (gt_run, pred_run) per frame therefore answers every n at once.

Official quirks kept: window starts 0..T-n-1 (the window ending at the last frame is dropped, so
a frame's windows are committed only when the next frame arrives), no ignore masking (void that
stays void counts as unchanged), windows with |G| = 0 are skipped. Each window's accuracy is
accumulated as the exact integer floor(|G and P| * 2**64 / |G|), so totals are bit-identical
however videos are split across processes.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from ovbench.errors import ConfigError
from ovbench.metrics.confusion import LabelError, as_labels, check_byte_range, lane_counts, lane_offsets

MAX_WINDOW = 181  # the (gt_run, pred_run) pair index must fit int16: 181*181 < 2**15
MAX_LANES = 8  # histogram lanes for the pair index (see confusion.lane_counts)
CHUNK = 64  # frames whose histograms are buffered before they are folded into the totals
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


def fixed_point_accuracy(hits: torch.Tensor, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """floor(hits * 2**64 / total) as two int64 words (high, low) with value high*2**32 + low.

    Exact integer arithmetic on the device (no host sync), valid while total < 2**31.
    """
    total = total.clamp(min=1)
    high = (hits << 32) // total
    low = (((hits << 32) - high * total) << 32) // total
    return high, low


class VideoConsistency:
    """Streaming VC_n of one video; memory independent of its length."""

    def __init__(self, windows: Iterable[int] = (8, 16), device: torch.device | str = "cpu"):
        self.windows = check_windows(windows)
        self.device = torch.device(device)
        self._cap = max(self.windows)
        self._bins = self._cap * self._cap
        self._lanes = max(1, min(MAX_LANES, 2**15 // self._bins))  # the pair index stays int16
        self._starts = torch.tensor(self.windows, device=self.device) - 1
        self._labels: torch.Tensor | None = None  # (2,H,W) gt and pred of the latest frame
        self._previous: torch.Tensor | None = None  # same for the frame before (scratch)
        self._runs: torch.Tensor | None = None  # (2,H,W) uint8 previous frames with the same label
        self._same: torch.Tensor | None = None  # (2,H,W) 1 where the label did not change
        self._code: torch.Tensor | None = None  # (H*W,) int16 scratch: lane + gt_run*cap + pred_run
        self._pending: list[torch.Tensor] = []  # per-frame (lanes, cap*cap) run-pair counts not yet committed
        zeros = torch.zeros(len(self.windows), dtype=torch.int64, device=self.device)
        self._high, self._low, self._count = zeros, zeros.clone(), zeros.clone()
        self.frames = 0

    def update(self, gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor) -> None:
        """Consume one frame (H,W) or consecutive frames (B,H,W); gt in converted ids."""
        check_byte_range(gt, "gt")
        g, p = as_labels(gt, self.device, "gt"), as_labels(pred, self.device, "pred")
        if g.shape != p.shape or g.dim() not in (2, 3):
            raise LabelError(f"gt {tuple(g.shape)} and pred {tuple(p.shape)} must have the same shape, "
                             "(H,W) or (B,H,W)")
        if g.dim() == 2:
            g, p = g.unsqueeze(0), p.unsqueeze(0)
        if g.shape[1] * g.shape[2] >= 2**31:
            raise LabelError(f"frames of {tuple(g.shape[1:])} pixels are too large (2**31 at most)")
        if self._runs is not None and self._runs.shape[1:] != g.shape[1:]:
            raise LabelError(f"frame size {tuple(g.shape[1:])} differs from the video's "
                             f"{tuple(self._runs.shape[1:])}")
        for b in range(g.shape[0]):
            self._step(g[b], p[b])

    def _step(self, gt: torch.Tensor, pred: torch.Tensor) -> None:
        """Advance both run maps to this frame and histogram the pair (gt_run, pred_run)."""
        if self._runs is None:
            self._labels = torch.stack([gt, pred])
            self._previous = torch.empty_like(self._labels)
            self._runs = torch.zeros_like(self._labels)
            self._same = torch.empty_like(self._labels)  # uint8: a uint8*uint8 multiply is the fast one
            self._code = torch.empty(gt.numel(), dtype=torch.int16, device=self.device)
        else:
            self._labels, self._previous = self._previous, self._labels
            self._labels[0].copy_(gt)
            self._labels[1].copy_(pred)
            torch.eq(self._labels, self._previous, out=self._same)
            self._runs.add_(1).clamp_(max=self._cap - 1).mul_(self._same)
        if self.frames + 1 < self.windows[0]:  # no window ends this early: every count is 0
            self._push(torch.zeros(self._lanes, self._bins, dtype=torch.int64, device=self.device))
        else:
            offsets = lane_offsets(gt.numel(), self._lanes, self._bins, self.device)
            torch.add(offsets, self._runs[0].view(-1), alpha=self._cap, out=self._code)
            self._code.add_(self._runs[1].view(-1))
            self._push(lane_counts(self._code, self._bins, self._lanes))
        self.frames += 1

    def _push(self, row: torch.Tensor) -> None:
        self._pending.append(row)
        if len(self._pending) > CHUNK:
            self._commit_all_but_last()

    def _commit_all_but_last(self) -> None:
        """Fold every pending frame except the latest, whose window may be the video's last."""
        hist = torch.stack(self._pending[:-1]).sum(1).view(-1, self._cap, self._cap)
        self._pending = self._pending[-1:]
        both = hist.flip(1).cumsum(1).flip(1).flip(2).cumsum(2).flip(2)  # pixels with gt_run>=a, pred_run>=b
        gt_same = both[:, self._starts, 0]
        both_same = both[:, self._starts, self._starts]
        high, low = fixed_point_accuracy(both_same, gt_same)
        valid = gt_same > 0
        self._high += (high * valid).sum(0)
        self._low += (low * valid).sum(0)
        self._count += valid.sum(0)

    def result(self) -> dict[int, tuple[int, int]]:
        """n -> (sum of window accuracies in units of 2**-64, number of windows with |G| > 0)."""
        if len(self._pending) > 1:
            self._commit_all_but_last()
        high, low, count = (t.tolist() for t in (self._high, self._low, self._count))
        return {n: ((h << 32) + lo, c) for n, h, lo, c in zip(self.windows, high, low, count)}
