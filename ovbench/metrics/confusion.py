"""Confusion matrix and the scores derived from it, as plain numpy functions.

Everything counts pixels as exact integers (int64), so that sums over frames, videos, processes
and machines are bit-identical however the work is split. Floats appear only in
`segmentation_scores`, computed once from the final matrix with the same array shapes as the
official VSPW script, so its mIoU is reproduced to the last bit.

The metrics run on the host, in numpy, like the official scripts and detectron2's evaluators:
`ovbench score` then never imports torch (2 s of its start-up), and a GPU run hands each batch's
uint8 labels to the host (a non-blocking copy, read a few batches later; see the runner). The
hot kernel (`pair_counts`) histograms (gt, pred) byte pairs into a 256x256 table keyed by the
raw byte values; class mapping and validation happen afterwards on the small table
(`fold_pairs`), never per pixel.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from ovbench.constants import IGNORE
from ovbench.errors import ConfigError, DataError
from ovbench.suggest import did_you_mean

CONVENTIONS = ("vspw", "mmseg")
PAIR_CELLS = 256 * 256


class LabelError(DataError, ValueError):
    """A label map or prediction has a value outside its range, or the wrong shape."""




def as_labels(x: Any, what: str, top: int = 255) -> np.ndarray:
    """Integer labels (a numpy array, or anything numpy reads: a CPU tensor) -> uint8 array
    (uint16 when `top` is 65535, for more than 255 classes).

    Values outside 0..top become top, a value no class index can take (num_classes <= top), so
    a prediction out of range is still caught where its pixel is counted; `check_byte_range`
    makes the mapping exact for ground truth.
    """
    try:
        a = np.asarray(x)
    except (TypeError, RuntimeError) as err:  # a tensor on an accelerator, an object
        raise LabelError(f"{what}: expected host integer labels (a numpy array), got {type(x).__name__} ({err})") from None
    dtype = np.uint8 if top == 255 else np.uint16
    if a.dtype == dtype:
        return a
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        raise LabelError(f"{what}: expected integer labels, got dtype {a.dtype}")
    if top != 255 and a.dtype == np.uint8:
        return a.astype(dtype)
    return np.where((a < 0) | (a > top), top, a).astype(dtype)


def label_frames(gt: Any, pred: Any, top: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and prediction of one frame (H,W) or consecutive frames (B,H,W) -> two
    uint8 (uint16 for `top` 65535) (B,H,W) arrays, checked: range, same shape, frames not empty."""
    check_byte_range(gt, "gt", top)
    g, p = as_labels(gt, "gt", top), as_labels(pred, "pred", top)
    if g.shape != p.shape or g.ndim not in (2, 3):
        raise LabelError(f"gt {tuple(g.shape)} and pred {tuple(p.shape)} must have the same shape, (H,W) or (B,H,W)")
    if g.ndim == 2:
        g, p = g[None], p[None]
    if not g.shape[1] or not g.shape[2]:
        raise LabelError(f"frames of {tuple(g.shape[1:])} pixels are empty")
    return g, p


def check_byte_range(x: np.ndarray, what: str, top: int = 255) -> None:
    """Raise LabelError naming a value outside 0..top (a no-op for uint8 input)."""
    a = np.asarray(x)
    if a.dtype == np.uint8 or a.size == 0 or a.dtype.kind not in "iu":
        return
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi > top:
        raise LabelError(f"{what}: value {lo if lo < 0 else hi} is outside 0..{top}")


@functools.lru_cache(maxsize=4)
def _alternate_bit_7(pixels: int) -> np.ndarray:
    """(pixels,) uint16: 0, 128, 0, 128, ..."""
    return (np.arange(pixels, dtype=np.uint16) & 1) << 7


def pair_counts(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(256*256,) int64 histogram of the (gt, pred) byte pairs of two same-shaped uint8 arrays;
    cell gt*256 + pred. One uint16 code per pixel and one bincount: the fewest passes over the
    pixels numpy allows.

    Label maps come in long runs of one pair, and a histogram loop that adds to the same bin
    again and again waits on its own previous increment. When every prediction is below 128
    (VSPW's and VIPSeg's 124 classes), bit 7 of the code is free: setting it on every other
    pixel sends neighbours to two bins, which are added back together afterwards (18% faster
    on 480x853 frames)."""
    code = gt.astype(np.uint16)
    code <<= 8
    code |= pred
    flat = code.reshape(-1)
    if not flat.size or pred.max() >= 128:
        return np.bincount(flat, minlength=PAIR_CELLS)
    flat |= _alternate_bit_7(flat.size)
    halves = np.bincount(flat, minlength=PAIR_CELLS).reshape(256, 2, 128)
    counts = np.zeros((256, 256), dtype=np.int64)
    np.add(halves[:, 0], halves[:, 1], out=counts[:, :128])
    return counts.reshape(-1)


def fold_pairs(table: np.ndarray, row_class: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """(K,K) int64 confusion matrix from (summed) `pair_counts`.

    row_class (256,) int64 maps a gt byte to its class index, 255 = not counted. Raises
    LabelError naming the first prediction value >= num_classes found at a counted pixel.
    """
    pairs = table.reshape(256, 256)
    counted = row_class != IGNORE
    rows = pairs[counted]
    bad = np.flatnonzero(rows[:, num_classes:].sum(0))
    if bad.size:
        value = num_classes + int(bad[0])
        shown = f"{value}" if value < 255 else "255 (or outside 0..255)"
        raise LabelError(f"{where}: prediction value {shown} at a counted pixel is not a class index "
                         f"0..{num_classes - 1}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, row_class[counted], rows[:, :num_classes])
    return matrix


def check_num_classes(num_classes: int, limit: int = 255) -> None:
    """Classes are bytes and 255 is reserved for 'not counted', so 1..255 classes fit (1..65535
    with 16-bit labels, `limit` 65535)."""
    if not isinstance(num_classes, int) or not 1 <= num_classes <= limit:
        raise ConfigError(f"num_classes must be an integer in 1..{limit}, got {num_classes!r}")


def wide_pair_counts(rows: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """((K+1)*(K+1),) int64 histogram of (class, prediction) pairs for more than 255 classes:
    `rows` are gt class indices with K for 'not counted', a prediction outside 0..K-1 counts
    in column K (an error where its row is counted, `fold_wide` says)."""
    code = rows.astype(np.int64)
    code *= num_classes + 1
    code += np.minimum(pred, num_classes)
    return np.bincount(code.reshape(-1), minlength=(num_classes + 1) ** 2)


def fold_wide(table: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """(K,K) confusion matrix from summed `wide_pair_counts`; a prediction outside the classes
    at a counted pixel is a LabelError."""
    pairs = table.reshape(num_classes + 1, num_classes + 1)
    if pairs[:num_classes, num_classes].any():
        raise LabelError(f"{where}: a prediction value at a counted pixel is not a class index "
                         f"0..{num_classes - 1}")
    return np.ascontiguousarray(pairs[:num_classes, :num_classes])


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = IGNORE) -> np.ndarray:
    """M[gt, pred] (int64) over the pixels where gt != ignore_index.

    gt values must be < num_classes or ignore_index, pred values < num_classes where gt is
    counted; otherwise LabelError (a ValueError) names the value.
    """
    check_num_classes(num_classes)
    if not isinstance(ignore_index, int) or not 0 <= ignore_index <= 255:
        raise ConfigError(f"ignore_index must be an integer in 0..255, got {ignore_index!r}")
    check_byte_range(gt, "gt")
    g, p = as_labels(gt, "gt"), as_labels(pred, "pred")
    if g.shape != p.shape:
        raise LabelError(f"gt has shape {tuple(g.shape)} but pred has shape {tuple(p.shape)}")
    pairs = pair_counts(g, p)
    row_class = np.arange(256)
    row_class[num_classes:] = IGNORE
    row_class[ignore_index] = IGNORE
    present = pairs.reshape(256, 256).sum(1) > 0
    present[ignore_index] = False
    bad = np.flatnonzero(present[num_classes:])
    if bad.size:
        raise LabelError(f"gt value {num_classes + int(bad[0])} is neither a class index "
                         f"0..{num_classes - 1} nor ignore_index {ignore_index}")
    return fold_pairs(pairs, row_class, num_classes, "confusion_matrix")


def _mean(values: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """Mean over the defined entries of the last axis, summed over the full axis like the
    official nansum; NaN where nothing is defined."""
    count = defined.sum(-1)
    total = np.where(defined, values, 0.0).sum(-1)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


def iou_means(diag: np.ndarray, gt: np.ndarray, pred: np.ndarray, *, seen: np.ndarray | None = None,
              unseen: np.ndarray | None = None, convention: str = "vspw") -> dict[str, np.ndarray]:
    """The IoU family from per-class pixel counts (..., K): true positives, ground-truth
    pixels, predicted pixels. Leading axes are a batch (the leaderboard's bootstrap passes one
    row per resample), so every mIoU-type number in ovbench has this one definition.

    Returns "iou" (..., K), NaN where a class does not count under `convention`, and "mIoU"
    (...) plus, for the index arrays given, "mIoU_seen", "mIoU_unseen" and (both given) "hIoU";
    NaN where a mean has no class to average.
    """
    union = gt + pred - diag
    counts = gt > 0 if convention == "vspw" else union > 0
    iou = np.full(np.shape(diag), np.nan)
    np.divide(diag, union, out=iou, where=counts)
    means = {"iou": iou, "mIoU": _mean(iou, counts)}
    for key, idx in (("mIoU_seen", seen), ("mIoU_unseen", unseen)):
        if idx is not None:
            # contiguous, so that each row sums in the same order as a single matrix would
            means[key] = _mean(np.ascontiguousarray(iou[..., idx]), np.ascontiguousarray(counts[..., idx]))
    if seen is not None and unseen is not None:
        s, u = means["mIoU_seen"], means["mIoU_unseen"]
        both = s + u
        with np.errstate(divide="ignore", invalid="ignore"):
            means["hIoU"] = np.where(both > 0, 2 * s * u / both, np.where(np.isnan(both), np.nan, 0.0))
    return means


def _subset(indices: Sequence[int] | None, num_classes: int, name: str) -> np.ndarray | None:
    if indices is None:
        return None
    idx = np.asarray(list(indices), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ConfigError(f"{name} holds a class index outside 0..{num_classes - 1}")
    return idx


def segmentation_scores(M: np.ndarray, *, seen: Sequence[int] | None = None,
                        unseen: Sequence[int] | None = None, convention: str = "vspw") -> dict:
    """mIoU, pAcc, mAcc, fwIoU (and mIoU_seen, mIoU_unseen, hIoU) of a confusion matrix.

    convention "vspw" (= detectron2, the official VSPW script) averages IoU over the classes
    present in the ground truth; "mmseg" over the classes with a non-empty union, so a class
    predicted but absent from the ground truth counts as 0. per_class["iou"] follows the same
    convention (None where the class does not count), so mIoU is the mean of its numbers.
    A key that cannot be computed is absent, never NaN.
    """
    if convention not in CONVENTIONS:
        raise ConfigError(f"unknown mIoU convention {convention!r}{did_you_mean(str(convention), CONVENTIONS)}; "
                          f"choose one of {', '.join(CONVENTIONS)}")
    m = np.asarray(M).astype(np.int64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {m.shape}")
    k = m.shape[0]
    seen_idx, unseen_idx = _subset(seen, k, "seen"), _subset(unseen, k, "unseen")
    diag, row, col = np.diag(m), m.sum(1), m.sum(0)
    means = iou_means(diag, row, col, seen=seen_idx, unseen=unseen_idx, convention=convention)
    iou = means.pop("iou")
    present = row > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = diag / row
    defined = {key: float(value) for key, value in means.items() if not np.isnan(value)}
    scores: dict = {key: defined.pop(key) for key in ["mIoU"] if key in defined}  # keys in reading order
    total = int(row.sum())
    if total:
        scores["pAcc"] = float(diag.sum() / total)
        scores["mAcc"] = float(_mean(acc, present))
        scores["fwIoU"] = float(np.sum(row[present] / total * iou[present]))
    scores.update(defined)
    scores["per_class"] = {
        "iou": [None if np.isnan(v) else float(v) for v in iou],
        "acc": [float(v) if c else None for v, c in zip(acc, present)],
        "gt_pixels": [int(v) for v in row],
    }
    return scores
