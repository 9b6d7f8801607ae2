"""Slow references that follow the VSPW metric definitions literally (docs: shared/reference/vspw.md).

Written independently of ovbench.metrics (python loops over pixels, classes and windows) so the
fast code is checked against the definition, not against itself.
"""

from __future__ import annotations

import math

import numpy as np


def ref_confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore: int = 255) -> np.ndarray:
    """M[g, p] += 1 for every pixel whose gt is not ignore."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    for g, p in zip(np.asarray(gt).ravel().tolist(), np.asarray(pred).ravel().tolist()):
        if g != ignore:
            m[g, p] += 1
    return m


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ref_scores(m: np.ndarray, seen=None, unseen=None, convention: str = "vspw") -> dict:
    """Scores of a confusion matrix, one class at a time; absent keys where undefined."""
    k = m.shape[0]
    total = int(m.sum())
    iou, acc, counted = [], [], []
    for c in range(k):
        row, col, tp = int(m[c, :].sum()), int(m[:, c].sum()), int(m[c, c])
        union = row + col - tp
        counts = row > 0 if convention == "vspw" else union > 0
        iou.append(tp / union if counts else None)
        acc.append(tp / row if row > 0 else None)
        counted.append(counts)
    out: dict = {}
    miou = _mean([v for v in iou if v is not None])
    if miou is not None:
        out["mIoU"] = miou
    if total:
        out["pAcc"] = sum(int(m[c, c]) for c in range(k)) / total
        out["mAcc"] = _mean([a for a in acc if a is not None])
        fw = 0.0
        for c in range(k):
            row = int(m[c, :].sum())
            if row:
                fw += row / total * (int(m[c, c]) / (row + int(m[:, c].sum()) - int(m[c, c])))
        out["fwIoU"] = fw
    parts = {}
    for key, idx in (("mIoU_seen", seen), ("mIoU_unseen", unseen)):
        if idx is not None:
            v = _mean([iou[c] for c in idx if iou[c] is not None])
            if v is not None:
                out[key] = parts[key] = v
    if len(parts) == 2:
        s, u = parts["mIoU_seen"], parts["mIoU_unseen"]
        out["hIoU"] = 0.0 if s + u == 0 else 2 * s * u / (s + u)
    out["per_class"] = {"iou": iou, "acc": acc, "gt_pixels": [int(m[c, :].sum()) for c in range(k)]}
    return out


def ref_window_counts(gts: list[np.ndarray], preds: list[np.ndarray], n: int) -> list[tuple[int, int]]:
    """Official VC windows of one video: starts i in range(T - n), frames i+1..i+n-1 compared with
    frame i; per window (|G and P|, |G|). Videos with T <= n give no windows."""
    counts = []
    for i in range(len(gts) - n):
        g_same = np.ones(gts[0].shape, dtype=bool)
        p_same = np.ones(gts[0].shape, dtype=bool)
        for j in range(1, n):
            g_same &= gts[i] == gts[i + j]
            p_same &= preds[i] == preds[i + j]
        counts.append((int((g_same & p_same).sum()), int(g_same.sum())))
    return counts


def ref_window_accuracies(gts: list[np.ndarray], preds: list[np.ndarray], n: int) -> list[float]:
    """acc_i = |G_i and P_i| / |G_i|; nan where the gt changes at every pixel (0/0)."""
    return [hits / total if total else math.nan for hits, total in ref_window_counts(gts, preds, n)]


def ref_fixed_point(videos: list[tuple[list[np.ndarray], list[np.ndarray]]], n: int) -> tuple[int, int]:
    """(sum of floor(|G and P| * 2**64 / |G|) over windows with |G| > 0, their number)."""
    counts = [c for gts, preds in videos for c in ref_window_counts(gts, preds, n) if c[1]]
    return sum((hits << 64) // total for hits, total in counts), len(counts)


def ref_vc(videos: list[tuple[list[np.ndarray], list[np.ndarray]]], n: int) -> float | None:
    """VC_n pooled over all windows of all videos (np.nanmean); None when no window counts."""
    accs = [a for gts, preds in videos for a in ref_window_accuracies(gts, preds, n)]
    return float(np.nanmean(accs)) if any(not math.isnan(a) for a in accs) else None


def random_video(rng: np.random.Generator, frames: int, shape=(6, 8), labels: int = 4, change: float = 0.1,
                 void: float = 0.1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """uint8 gt (values < labels, or 255 = void) and predictions (< labels) that each change at
    about `change` of the pixels per frame, so VC windows are neither empty nor trivial."""
    def walk(values: np.ndarray) -> list[np.ndarray]:
        out, cur = [], rng.choice(values, shape).astype(np.uint8)
        for _ in range(frames):
            flip = rng.random(shape) < change
            cur = np.where(flip, rng.choice(values, shape), cur).astype(np.uint8)
            out.append(cur)
        return out

    gt_values = np.arange(labels)
    if void:
        gt_values = np.append(gt_values, [255] * max(1, round(void * labels)))
    return walk(gt_values), walk(np.arange(labels))
