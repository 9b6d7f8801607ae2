"""95% confidence intervals for mIoU and hIoU by resampling videos.

Videos, not pixels, are the independent units of VSPW, so the bootstrap draws videos with
replacement and recomputes the scores from the summed confusion matrices. Every IoU needs only
the diagonal, row sums and column sums of the confusion matrix, which are linear in the
per-video matrices, so all resamples are one matrix product: (resamples x videos) @ (videos x
classes), without building a class x class matrix per resample.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from ovbench.leaderboard.quantities import INTERVAL_KEYS

from ovbench.errors import DataError
from ovbench.metrics.confusion import iou_means, segmentation_scores

LEVEL = 0.95


def _counted_videos(record: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The videos in the record's confusion matrix: with `min_video_frames`, shorter videos are
    listed per video but left out of the total, so they are left out of resamples too."""
    minimum = int(record["options"].get("min_video_frames") or 0)
    videos = {}
    for name, entry in record["per_video"].items():
        if not isinstance(entry, dict):
            raise DataError(f"{source}: per_video[{name!r}] should be an object")
        if int(entry.get("frames", minimum + 1)) > minimum:
            videos[name] = entry
    return videos


def _video_sums(
    videos: dict[str, dict[str, Any]], classes: int, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-video diagonal, gt (row) and prediction (column) pixel counts (three (V, K) arrays)
    and the summed (K, K) confusion matrix."""
    diag, gt, pred = (np.zeros((len(videos), classes)) for _ in range(3))
    total = np.zeros((classes, classes), dtype=np.int64)
    for v, (name, entry) in enumerate(videos.items()):
        triples = np.asarray(entry.get("confusion", []), dtype=np.int64)
        if triples.size == 0:
            continue
        if triples.ndim != 2 or triples.shape[1] != 3:
            raise DataError(f"{source}: per_video[{name!r}].confusion should be [[gt, pred, count], ...]")
        g, p, count = triples.T
        if g.min() < 0 or p.min() < 0 or max(g.max(), p.max()) >= classes or count.min() < 0:
            raise DataError(
                f"{source}: per_video[{name!r}].confusion has a class index outside 0..{classes - 1}"
                " or a negative count"
            )
        gt[v] = np.bincount(g, weights=count, minlength=classes)
        pred[v] = np.bincount(p, weights=count, minlength=classes)
        same = g == p
        diag[v] = np.bincount(g[same], weights=count[same], minlength=classes)
        np.add.at(total, (g, p), count)
    return diag, gt, pred, total


def video_bootstrap(
    record: dict[str, Any], *, resamples: int = 1000, seed: int = 0, source: str = "record"
) -> dict[str, tuple[float, float]]:
    """Percentile intervals at LEVEL for the record's mIoU-type metrics (those of INTERVAL_KEYS
    it reports). Empty when the record has no per-video confusion matrices. A resample in which
    a score is undefined (say, no unseen-class pixels among the drawn videos) does not count
    towards that score's interval. DataError when the per-video matrices do not reproduce the
    record's own numbers: an interval around some other statistic would mislead."""
    videos = _counted_videos(record, source)
    if not videos:
        return {}
    diag, gt, pred, total = _video_sums(videos, len(record["per_class"]), source)
    seen = np.array([bool(entry.get("seen")) for entry in record["per_class"].values()], dtype=bool)
    convention = str(record["options"].get("miou_convention", "vspw"))
    whole = segmentation_scores(total, seen=np.flatnonzero(seen), unseen=np.flatnonzero(~seen), convention=convention)
    for key in INTERVAL_KEYS:
        if key in record["metrics"] and not abs(whole.get(key, np.nan) - record["metrics"][key]) <= 1e-6:
            raise DataError(
                f"{source}: its per-video confusion matrices give {key} {whole.get(key, np.nan):.6f} but the record"
                f" says {record['metrics'][key]:.6f}; no interval"
            )
    n = len(diag)
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    # how often each video was drawn in each resample: (resamples, n)
    weights = np.bincount((picks + n * np.arange(resamples)[:, None]).ravel(), minlength=resamples * n)
    weights = weights.reshape(resamples, n).astype(np.float64)
    split = {"seen": np.flatnonzero(seen), "unseen": np.flatnonzero(~seen)} if seen.any() and (~seen).any() else {}
    drawn = iou_means(weights @ diag, weights @ gt, weights @ pred, **split, convention=convention)
    tail = (1 - LEVEL) / 2
    intervals = {}
    for key in INTERVAL_KEYS:
        if key in record["metrics"] and key in drawn and not np.isnan(drawn[key]).all():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanquantile(drawn[key], [tail, 1 - tail])
            intervals[key] = (float(low), float(high))
    return intervals
