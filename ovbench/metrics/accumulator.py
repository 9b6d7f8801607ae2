"""The benchmark's metric state: one object fed video by video; each finished video is one
plain entry (`videos[name]`) that resumes and merges through `add_video`.

Everything it keeps is an exact integer (pixel counts, VC accuracies in fixed point), so a run
split across processes, resumed, or merged in any order gives bit-identical numbers; floats
are made once, in `compute`. A video reaches the totals only at `end_video`, so a video that
fails half-way can be dropped with `abort_video` and leaves no trace.
"""

from __future__ import annotations

import functools
from typing import Iterable, Sequence

import numpy as np

from ovbench.constants import IGNORE, VC_WINDOWS, WIDE_IGNORE
from ovbench.errors import ConfigError, DataError
from ovbench.metrics.confusion import (
    PAIR_CELLS,
    LabelError,
    check_num_classes,
    fold_pairs,
    fold_wide,
    label_frames,
    pair_counts,
    segmentation_scores,
    wide_pair_counts,
)
from ovbench.metrics.consistency import FIXED_POINT_BITS, VideoConsistency, check_windows
from ovbench.suggest import did_you_mean

VC_CONVENTIONS = ("official", "cffm")
CFFM_MIN_VIDEO_FRAMES = 16  # the CFFM family's VC_perclip.py skips videos of 16 frames or fewer


def resolve_min_video_frames(vc_convention: str, min_video_frames: int | None) -> int:
    """The frame count at or under which a video is left out: as given, else the convention's
    own (16 for "cffm", none for "official"); a bad convention or count is one ConfigError."""
    if vc_convention not in VC_CONVENTIONS:
        raise ConfigError(f"unknown VC convention {vc_convention!r}{did_you_mean(str(vc_convention), VC_CONVENTIONS)}; "
                          f"choose one of {', '.join(VC_CONVENTIONS)}")
    if min_video_frames is None:
        return CFFM_MIN_VIDEO_FRAMES if vc_convention == "cffm" else 0
    if not isinstance(min_video_frames, int) or isinstance(min_video_frames, bool) or min_video_frames < 0:
        raise ConfigError(f"min_video_frames must be an integer >= 0, got {min_video_frames!r}")
    return min_video_frames


def sparse_cells(matrix: np.ndarray) -> list[list[int]]:
    """[[gt, pred, count], ...] of the non-zero cells, row-major."""
    rows, cols = np.nonzero(matrix)
    return np.stack([rows, cols, matrix[rows, cols]], 1).tolist()


def dense_matrix(cells: list[list[int]], num_classes: int) -> np.ndarray:
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    if cells:
        a = np.asarray(cells, dtype=np.int64)
        m[a[:, 0], a[:, 1]] = a[:, 2]
    return m


def check_can_open(call: str, open_video: str | None, name: str, scored: dict, what: str = "") -> None:
    """Before a video is opened or added: no other one is open, and this one is not scored yet
    (scoring it twice would weight it double)."""
    if open_video is not None:
        raise RuntimeError(f"{call} while video {open_video!r} is still open")
    if name in scored:
        raise DataError(f"video {name}: {what}already scored")


def _vc_keys(vc: Iterable[Sequence[int]]) -> dict[str, float]:
    """{'VC8': ...} for the windows with at least one counted window."""
    return {f"VC{n}": total / (count << FIXED_POINT_BITS) for n, total, count in vc if count}


class VideoSegMetrics:
    """Confusion matrix (vocabulary indices) + VC_n over a set of videos.

    gt is given in the data set's converted ids (0..C-1 of its kind, 255 = void; 16-bit with 65535 above 255 classes); `gt_lut` (256,) maps them to
    vocabulary indices (255 = not counted) for the confusion matrix, while VC compares the
    converted ids themselves. pred holds vocabulary indices. Videos with at most
    `min_video_frames` frames are left out of the total confusion matrix (the common "skip
    videos of 16 frames or fewer" variant is 16).

    `vc_convention` says which videos the VC totals pool: "official" (VSPW's VC_perclip.py:
    every video with more than n frames) or "cffm" (the VC_perclip.py of CFFM, MRCFA, TV3S and
    OV2VSS: only the videos kept for mIoU, so `min_video_frames`, 16 unless given, applies to
    VC8 and VC16 too). A video's entry is the same under both (its own frames, confusion and
    window sums); only the folding into the totals differs, so entries saved under one
    convention merge into an accumulator of the other and give that convention's numbers.
    """

    def __init__(self, num_classes: int, gt_lut: Sequence[int] | np.ndarray, *,
                 windows: Iterable[int] = VC_WINDOWS, min_video_frames: int | None = None,
                 vc_convention: str = "official"):
        lut = [int(v) for v in np.asarray(gt_lut).reshape(-1)]
        self.wide = len(lut) == 65536  # 16-bit labels: more than 255 classes (A-847, PC-459)
        ignore = WIDE_IGNORE if self.wide else IGNORE
        if len(lut) == 256 and isinstance(num_classes, int) and num_classes > 255:
            raise ConfigError(f"{num_classes} classes need 16-bit labels: a gt_lut of 65536 entries")
        check_num_classes(num_classes, ignore)
        if len(lut) not in (256, 65536) or any(not (0 <= v < num_classes or v == ignore) for v in lut):
            raise ConfigError(f"gt_lut must have 256 entries (65536 for over 255 classes), each a class index "
                              f"0..{num_classes - 1} or {ignore}")
        min_video_frames = resolve_min_video_frames(vc_convention, min_video_frames)
        self.num_classes = num_classes
        self.gt_lut = lut
        self.windows = check_windows(windows)
        self.min_video_frames = min_video_frames
        self.vc_convention = vc_convention
        self._row_class = np.asarray(lut, dtype=np.int64)
        if self.wide:  # gt id -> class index, num_classes where not counted
            self._row_class = np.where(self._row_class == WIDE_IGNORE, num_classes, self._row_class).astype(np.uint16)
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.vc = {n: [0, 0] for n in self.windows}  # n -> [sum of accuracies * 2**64, windows]
        self.videos: dict[str, dict] = {}
        self._video: str | None = None
        self._frames = 0
        self._pairs: np.ndarray | None = None
        self._consistency: VideoConsistency | None = None

    # one video at a time -------------------------------------------------------------------
    def begin_video(self, name: str) -> None:
        check_can_open(f"begin_video({name!r})", self._video, name, self.videos)
        self._video, self._frames = name, 0
        self._pairs = np.zeros((self.num_classes + 1) ** 2 if self.wide else PAIR_CELLS, dtype=np.int64)
        self._consistency = VideoConsistency(self.windows)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """One frame (H,W) or consecutive frames (B,H,W) of the open video (host arrays)."""
        if self._video is None:
            raise RuntimeError("update() without begin_video()")
        try:
            if self.wide:
                self._update_wide(gt, pred)
                return
            g, p = label_frames(gt, pred)
            for gt_frame, pred_frame in zip(g, p):  # both passes while the frame is in cache
                self._consistency.add_frame(gt_frame, pred_frame)
                self._pairs += pair_counts(gt_frame, pred_frame)
                self._frames += 1
        except LabelError as e:
            raise LabelError(f"video {self._video}, frame {self._frames}: {e}") from None

    def _update_wide(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """16-bit ids: the gt table is applied per pixel (65536 entries would make the pair
        table 2^32 cells), pairs counted over (K+1) x (K+1) cells."""
        g, p = label_frames(gt, pred, WIDE_IGNORE)
        for gt_frame, pred_frame in zip(g, p):
            self._consistency.add_frame(gt_frame, pred_frame)
            self._pairs += wide_pair_counts(self._row_class[gt_frame], pred_frame, self.num_classes)
            self._frames += 1

    def end_video(self) -> None:
        """Validate the video and fold it into the totals (on error it stays open: abort it)."""
        if self._video is None:
            raise RuntimeError("end_video() without begin_video()")
        fold = fold_wide if self.wide else functools.partial(fold_pairs, row_class=self._row_class)
        matrix = fold(self._pairs, num_classes=self.num_classes, where=f"video {self._video}")
        vc = self._consistency.result()
        entry = {"frames": self._frames, "confusion": sparse_cells(matrix),
                 "vc": [[n, total, count] for n, (total, count) in vc.items()]}
        self._fold(self._video, entry, matrix, vc)  # everything that can fail is done
        self.abort_video()

    def abort_video(self) -> None:
        """Forget the open video (if any) entirely."""
        self._video = None
        self._pairs = self._consistency = None

    def add_video(self, name: str, entry: dict) -> None:
        """Fold a video finished elsewhere (its `videos[name]` entry, saved by another process or
        session), exactly as `end_video` folded it there."""
        check_can_open("add_video()", self._video, name, self.videos)
        try:
            vc = {n: (total, count) for n, total, count in entry["vc"]}
            matrix = dense_matrix(entry["confusion"], self.num_classes)
            entry = {**entry, "frames": int(entry["frames"])}
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise DataError(f"video {name}: malformed metric entry ({type(err).__name__}: {err})") from None
        if sorted(vc) != sorted(self.windows):
            raise ConfigError(f"video {name}: VC windows {sorted(vc)}, expected {sorted(self.windows)}")
        self._fold(name, entry, matrix, vc)

    def _fold(self, name: str, entry: dict, matrix: np.ndarray, vc: dict[int, tuple[int, int]]) -> None:
        kept = entry["frames"] > self.min_video_frames
        if kept:
            self.confusion += matrix
        if kept or self.vc_convention == "official":
            for n, (total, count) in vc.items():
                self.vc[n][0] += total
                self.vc[n][1] += count
        self.videos[name] = entry

    # results ---------------------------------------------------------------------------------
    def compute(self, *, seen_index: Sequence[int] | None = None, unseen_index: Sequence[int] | None = None,
                convention: str = "vspw") -> dict:
        """{"metrics": {mIoU, pAcc, mAcc, fwIoU, [mIoU_seen, mIoU_unseen, hIoU], VC<n>...},
        "per_class": {"iou", "acc", "gt_pixels"}, "per_video": {name: {frames, mIoU, VC<n>, confusion}}};
        keys that cannot be computed are absent."""
        metrics = segmentation_scores(self.confusion, seen=seen_index, unseen=unseen_index, convention=convention)
        per_class = metrics.pop("per_class")
        metrics.update(_vc_keys([n, *self.vc[n]] for n in self.windows))
        per_video = {}
        for name in sorted(self.videos):
            entry = self.videos[name]
            scores = segmentation_scores(dense_matrix(entry["confusion"], self.num_classes), convention=convention)
            per_video[name] = {"frames": entry["frames"],
                               **({"mIoU": scores["mIoU"]} if "mIoU" in scores else {}),
                               **_vc_keys(entry["vc"]), "confusion": entry["confusion"]}
        return {"metrics": metrics, "per_class": per_class, "per_video": per_video}
