"""The TC score's state (VSPW's TC_cal.py): confusion matrices of "prediction at t" against
"prediction at t+1 warped back to t", fed video by video, exact integers, no torch.

The flow and the warp live in `ovbench.metrics.temporal` (torch); this module only counts, so
merging TC entries saved by several processes, or re-scoring them, never imports torch.

As the script defines it: each frame pair adds one confusion matrix whose rows are the labels
predicted at t (the reference) and whose columns are the warped labels; TC is the mIoU of the
matrix summed over every pair of every video, averaged over the classes predicted at t (the
official VSPW mIoU rule, applied to this matrix). A video's own TC is the same number over its
pairs only. No ground truth is involved.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ovbench.constants import IGNORE
from ovbench.errors import ConfigError, DataError
from ovbench.metrics.accumulator import check_can_open, dense_matrix, sparse_cells
from ovbench.metrics.confusion import LabelError, as_labels, check_num_classes, fold_pairs, pair_counts, segmentation_scores
from ovbench.suggest import did_you_mean

OFFICIAL_SUBSET_VIDEOS = 100  # TC_cal.py scores `list_[:100]` of val.txt
TC_SUBSETS = ("all", "official100")


def tc_subset(video_names: Sequence[str], subset: str) -> list[str]:
    """The videos TC is computed on: every one, or ("official100") the first 100 in the order
    of the split list (val.txt), as TC_cal.py does."""
    if subset not in TC_SUBSETS:
        raise ConfigError(f"unknown TC subset {subset!r}{did_you_mean(str(subset), TC_SUBSETS)}; "
                          f"choose one of {', '.join(TC_SUBSETS)}")
    names = list(video_names)
    return names[:OFFICIAL_SUBSET_VIDEOS] if subset == "official100" else names


class TCMetrics:
    """Per-video and pooled pair confusion matrices over vocabulary indices 0..num_classes-1.

    Each finished video is one entry `videos[name] = {"pairs": int, "confusion": [[t, warped,
    count], ...]}` that `add_video` folds exactly as `end_video` did, in any order."""

    def __init__(self, num_classes: int):
        check_num_classes(num_classes)
        self.num_classes = num_classes
        self._row_class = np.arange(256, dtype=np.int64)
        self._row_class[num_classes:] = IGNORE
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.videos: dict[str, dict] = {}
        self._video: str | None = None
        self._pairs = 0
        self._table: np.ndarray | None = None

    def begin_video(self, name: str) -> None:
        check_can_open(f"begin_video({name!r})", self._video, name, self.videos, "TC ")
        self._video, self._pairs = name, 0
        self._table = np.zeros(256 * 256, dtype=np.int64)

    def add_pair(self, reference: np.ndarray, warped: np.ndarray) -> None:
        """One frame pair: the labels predicted at t and the labels at t+1 warped to t, (H,W)."""
        if self._video is None:
            raise RuntimeError("add_pair() without begin_video()")
        ref, wrp = as_labels(reference, "prediction"), as_labels(warped, "warped prediction")
        if ref.shape != wrp.shape or ref.ndim != 2:
            raise LabelError(f"video {self._video}, pair {self._pairs}: prediction {ref.shape} and warped "
                             f"{wrp.shape} must be the same (H,W)")
        self._table += pair_counts(ref, wrp)
        self._pairs += 1

    def end_video(self) -> None:
        """Validate the open video and fold it in (on error it stays open: abort it)."""
        if self._video is None:
            raise RuntimeError("end_video() without begin_video()")
        where = f"video {self._video} (TC)"
        bad_rows = np.flatnonzero(self._table.reshape(256, 256)[self.num_classes:].sum(1))
        if bad_rows.size:  # fold_pairs checks the warped side; the reference side is checked here
            raise LabelError(f"{where}: prediction value {self.num_classes + int(bad_rows[0])} is not a class "
                             f"index 0..{self.num_classes - 1}")
        matrix = fold_pairs(self._table, self._row_class, self.num_classes, where)
        self._fold(self._video, {"pairs": self._pairs, "confusion": sparse_cells(matrix)}, matrix)
        self.abort_video()

    def abort_video(self) -> None:
        self._video, self._table = None, None

    def add_video(self, name: str, entry: dict) -> None:
        """Fold a video's entry saved by another process or session."""
        check_can_open("add_video()", self._video, name, self.videos, "TC ")
        try:
            matrix = dense_matrix(entry["confusion"], self.num_classes)
            entry = {"pairs": int(entry["pairs"]), "confusion": entry["confusion"]}
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise DataError(f"video {name}: malformed TC entry ({type(err).__name__}: {err})") from None
        self._fold(name, entry, matrix)

    def _fold(self, name: str, entry: dict, matrix: np.ndarray) -> None:
        self.confusion += matrix
        self.videos[name] = entry

    def compute(self) -> dict:
        """{"metrics": {"TC"}, "per_video": {name: {"pairs", "TC"}}}; TC absent where no pair
        was counted (a one-frame video)."""
        def tc_of(matrix: np.ndarray) -> dict:
            scores = segmentation_scores(matrix, convention="vspw")
            return {"TC": scores["mIoU"]} if "mIoU" in scores else {}

        per_video = {name: {"pairs": entry["pairs"], **tc_of(dense_matrix(entry["confusion"], self.num_classes))}
                     for name, entry in sorted(self.videos.items())}
        return {"metrics": tc_of(self.confusion), "per_video": per_video}
