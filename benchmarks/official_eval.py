"""The official VSPW evaluation, written as plainly as its scripts, for timing comparisons only.

The official `evaluation.sh` runs three separate processes, each reading every mask again:
`mIoU` (confusion matrix with np.bincount over the non-ignored pixels of every frame),
`VC 8` and `VC 16` (per video, every frame in memory; for each window start i in 0..T-n-1 the
pixels whose gt and whose prediction equal frame i's in all n-1 later frames). Facts from
/work/shared/reference/vspw.md; predictions are converted VSPW ids 0..123 (PRED/<video>/<frame>.png).

    python benchmarks/official_eval.py miou VSPW_ROOT PRED_ROOT
    python benchmarks/official_eval.py vc N VSPW_ROOT PRED_ROOT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

NUM_CLASSES = 124


def read_gt(path: Path) -> np.ndarray:
    """Raw VSPW mask -> converted ids: 0 -> 255, id -> id - 1, 254 -> 255."""
    gt = np.array(Image.open(path)).astype(np.uint8)
    gt[gt == 0] = 255
    gt = gt - 1
    gt[gt == 254] = 255
    return gt


def frames(root: Path, pred_root: Path) -> list[tuple[str, list[tuple[Path, Path]]]]:
    videos = [line.strip() for line in (root / "val.txt").read_text().splitlines() if line.strip()]
    out = []
    for video in videos:
        masks = sorted((root / "data" / video / "mask").glob("*.png"))
        out.append((video, [(mask, pred_root / video / mask.name) for mask in masks]))
    return out


def fast_hist(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    k = (a >= 0) & (a < n)
    return np.bincount(n * a[k].astype(int) + b[k], minlength=n**2).reshape(n, n)


def miou(root: Path, pred_root: Path) -> None:
    hist = np.zeros((NUM_CLASSES, NUM_CLASSES))
    for _, pairs in frames(root, pred_root):
        for mask, pred in pairs:
            gt = read_gt(mask)
            prediction = np.array(Image.open(pred))
            hist += fast_hist(gt.flatten(), prediction.flatten(), NUM_CLASSES)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    iou[hist.sum(1) == 0] = np.nan  # classes absent from the ground truth do not count
    print(f"mIoU {float(np.nanmean(iou))!r}")


def vc(n: int, root: Path, pred_root: Path) -> None:
    accs = []
    for _, pairs in frames(root, pred_root):
        gts = [read_gt(mask) for mask, _ in pairs]
        preds = [np.array(Image.open(pred)) for _, pred in pairs]
        for i in range(len(gts) - n):
            global_common = np.ones(gts[0].shape)
            pred_global_common = np.ones(gts[0].shape)
            for j in range(1, n):
                common = gts[i] == gts[i + j]
                global_common = np.logical_and(global_common, common)
                pred_common = preds[i] == preds[i + j]
                pred_global_common = np.logical_and(pred_global_common, pred_common)
            with np.errstate(divide="ignore", invalid="ignore"):
                accs.append(np.sum(np.logical_and(global_common, pred_global_common)) / np.sum(global_common))
    print(f"VC{n} {float(np.nanmean(accs))!r}")


if __name__ == "__main__":
    if sys.argv[1] == "miou":
        miou(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        vc(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
