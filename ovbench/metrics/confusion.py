"""Confusion matrix and the scores derived from it, as plain functions.

Everything counts pixels as exact integers (int64) on whatever device the labels live on, so
that sums over frames, videos, processes and machines are bit-identical however the work is
split. Floats appear only in `segmentation_scores`, computed once from the final matrix with the
same array shapes as the official VSPW script, so its mIoU is reproduced to the last bit.

The hot kernel (`count_pairs`) histograms (gt, pred) byte pairs into a 256x256 table keyed by the
raw byte values; class mapping and validation happen afterwards on the small table
(`fold_pairs`), never per pixel.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

from ..data.vspw import IGNORE
from ..errors import ConfigError, DataError
from ..suggest import did_you_mean

CONVENTIONS = ("vspw", "mmseg")
PAIR_LANES = 2


class LabelError(DataError, ValueError):
    """A label map or prediction has a value outside its range, or the wrong shape."""


def as_labels(x: np.ndarray | torch.Tensor, device: torch.device | str, what: str) -> torch.Tensor:
    """Integer labels -> uint8 tensor on `device`, narrowed before the transfer.

    Values outside 0..255 become 255, a value no class index can take (num_classes <= 255), so a
    prediction out of range is still caught where its pixel is counted; `check_byte_range`
    makes the mapping exact for ground truth.
    """
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if not isinstance(t, torch.Tensor):
        raise LabelError(f"{what}: expected a numpy array or torch tensor, got {type(x).__name__}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise LabelError(f"{what}: expected integer labels, got dtype {t.dtype}")
    if t.dtype != torch.uint8:
        t = t.clamp(-1, 255).to(torch.uint8)  # -1 wraps to 255
    return t.to(device, non_blocking=True)


def check_byte_range(x: np.ndarray | torch.Tensor, what: str) -> None:
    """Raise LabelError naming a value outside 0..255 (a no-op for uint8 input)."""
    t = torch.as_tensor(x)
    if t.dtype == torch.uint8 or t.numel() == 0:
        return
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi > 255:
        raise LabelError(f"{what}: value {lo if lo < 0 else hi} is outside 0..255")


@functools.lru_cache(maxsize=8)
def lane_offsets(n: int, lanes: int, bins: int, device: torch.device) -> torch.Tensor:
    """(n,) pattern (i % lanes) * bins, int16 when the offset index fits it, else int32."""
    dtype = torch.int16 if lanes * bins <= 2**15 else torch.int32
    return (torch.arange(n, device=device) % lanes * bins).to(dtype)


def lane_counts(index: torch.Tensor, bins: int, lanes: int) -> torch.Tensor:
    """(lanes, bins) int64 counts of a flat index that already carries `lane_offsets`; the
    caller sums the lanes once, late.

    Label maps come in long runs of one value, so a plain histogram loop waits on its own
    previous increment of the same bin (store-to-load forwarding: several cycles per pixel).
    Sending consecutive pixels to separate copies ("lanes") of the histogram breaks that chain
    (about 2x faster on the CPU). CUDA uses index_add_: bincount there reads the maximum back
    to the host, a sync per call.
    """
    if index.device.type == "cpu":
        counts = torch.bincount(index, minlength=lanes * bins)
    else:
        counts = torch.zeros(lanes * bins, dtype=torch.int64, device=index.device)
        ones = torch.ones(1, dtype=torch.int64, device=index.device).expand(index.numel())
        counts.index_add_(0, index.to(torch.int32), ones)
    return counts.view(lanes, bins)


def pair_table(device: torch.device | str) -> torch.Tensor:
    """Zeroed (lanes, 256, 256) int64 accumulator for `count_pairs`."""
    return torch.zeros(PAIR_LANES, 256, 256, dtype=torch.int64, device=device)


def count_pairs(gt: torch.Tensor, pred: torch.Tensor, table: torch.Tensor, rows: int = 256) -> None:
    """Add the histogram of (gt, pred) byte pairs of two same-shaped uint8 tensors into `table`
    (from `pair_table`; cell [lane, gt, pred]).

    gt values >= rows-1 are all counted in row rows-1: the caller passes rows < 256 only when
    those gt values mean the same thing (for VSPW ids 124..255 are all void, so rows = 125).
    On the CPU, when every prediction is below 128 (always, for VSPW's 124 classes), pairs are
    indexed with stride 128. Both shrink the histogram: the index then fits int16 and the
    counts stay in cache. (On CUDA the prediction test would cost a host sync; bins are cheap.)
    """
    if not gt.numel():
        return
    stride = 128 if table.device.type == "cpu" and int(pred.max()) < 128 else 256
    if rows < 256:
        gt = gt.clamp(max=rows - 1)
    bins = rows * stride
    index = torch.add(lane_offsets(gt.numel(), PAIR_LANES, bins, table.device), gt.reshape(-1), alpha=stride)
    index.add_(pred.reshape(-1))
    table[:, :rows, :stride] += lane_counts(index, bins, PAIR_LANES).view(PAIR_LANES, rows, stride)


def fold_pairs(table: torch.Tensor, row_class: torch.Tensor, num_classes: int, where: str) -> torch.Tensor:
    """(K,K) int64 confusion matrix from a `pair_table`.

    row_class (256,) int64 maps a gt byte to its class index, 255 = not counted. Raises
    LabelError naming the first prediction value >= num_classes found at a counted pixel.
    """
    table = table.sum(0)
    counted = row_class != IGNORE
    rows = table[counted]
    bad = rows[:, num_classes:].sum(0).nonzero()
    if bad.numel():
        value = num_classes + int(bad[0, 0])
        shown = f"{value}" if value < 255 else "255 (or outside 0..255)"
        raise LabelError(f"{where}: prediction value {shown} at a counted pixel is not a class index "
                         f"0..{num_classes - 1}")
    matrix = torch.zeros(num_classes, 256, dtype=torch.int64, device=table.device)
    matrix.index_add_(0, row_class[counted], rows)
    return matrix[:, :num_classes].contiguous()


def check_num_classes(num_classes: int) -> None:
    """Classes are bytes and 255 is reserved for 'not counted', so 1..255 classes fit."""
    if not isinstance(num_classes, int) or not 1 <= num_classes <= 255:
        raise ConfigError(f"num_classes must be an integer in 1..255, got {num_classes!r}")


def confusion_matrix(gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE) -> torch.Tensor:
    """M[gt, pred] (int64, on gt's device) over the pixels where gt != ignore_index.

    gt values must be < num_classes or ignore_index, pred values < num_classes where gt is
    counted; otherwise LabelError (a ValueError) names the value.
    """
    check_num_classes(num_classes)
    if not isinstance(ignore_index, int) or not 0 <= ignore_index <= 255:
        raise ConfigError(f"ignore_index must be an integer in 0..255, got {ignore_index!r}")
    device = gt.device if isinstance(gt, torch.Tensor) else torch.device("cpu")
    check_byte_range(gt, "gt")
    g, p = as_labels(gt, device, "gt"), as_labels(pred, device, "pred")
    if g.shape != p.shape:
        raise LabelError(f"gt has shape {tuple(g.shape)} but pred has shape {tuple(p.shape)}")
    pairs = pair_table(device)
    count_pairs(g, p, pairs)
    row_class = torch.arange(256, device=device)
    row_class[num_classes:] = IGNORE
    row_class[ignore_index] = IGNORE
    present = pairs.sum((0, 2)) > 0
    present[ignore_index] = False
    bad = present[num_classes:].nonzero()
    if bad.numel():
        raise LabelError(f"gt value {num_classes + int(bad[0, 0])} is neither a class index "
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


def segmentation_scores(M: np.ndarray | torch.Tensor, *, seen: Sequence[int] | None = None,
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
    m = torch.as_tensor(M).cpu().numpy().astype(np.int64)
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
