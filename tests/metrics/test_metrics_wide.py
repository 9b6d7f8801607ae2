"""VideoSegMetrics with more than 255 classes (A-847, PC-459): 16-bit ground truth with 65535
as ignore, predictions above 255, a 65536-entry gt table; the confusion matrix equals a count
made pixel by pixel in plain Python, and merges like the byte path's."""

import numpy as np
import pytest

from ovbench.errors import ConfigError
from ovbench.metrics.accumulator import VideoSegMetrics
from ovbench.metrics.confusion import LabelError

K = 847


def identity_table():
    table = np.full(65536, 65535, dtype=np.int64)
    table[:K] = np.arange(K)
    return table


def frames(seed):
    """Two 24x40 frames: classes all over 0..846 (most above 255), some ignore, predictions
    often right, often another class."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, K, size=(2, 24, 40)).astype(np.uint16)
    gt[:, :3] = 65535
    pred = np.where(rng.random(gt.shape) < 0.5, gt, rng.integers(0, K, size=gt.shape)).astype(np.int64)
    pred[:, :3] = 5000  # not a class, but at ignored pixels: not counted
    return gt, pred


def literal_count(gt, pred):
    counts = {}
    for g, p in zip(gt.reshape(-1).tolist(), pred.reshape(-1).tolist()):
        if g != 65535:
            counts[(g, p)] = counts.get((g, p), 0) + 1
    return counts


def test_the_confusion_matrix_is_the_literal_count():
    gt, pred = frames(0)
    metrics = VideoSegMetrics(K, identity_table())
    metrics.begin_video("image")
    metrics.update(gt, pred)
    metrics.end_video()
    found = {(int(r), int(c)): int(metrics.confusion[r, c]) for r, c in zip(*np.nonzero(metrics.confusion))}
    assert found == literal_count(gt, pred)
    assert metrics.confusion.shape == (K, K) and metrics.confusion[300:].sum() > 0


def test_a_gt_table_maps_16_bit_ids():
    """A table other than the identity: gt id 1000 + k -> class k, the rest not counted."""
    table = np.full(65536, 65535, dtype=np.int64)
    table[1000:1000 + K] = np.arange(K)
    gt, pred = frames(1)
    metrics = VideoSegMetrics(K, table)
    metrics.begin_video("image")
    metrics.update(np.where(gt == 65535, 7, gt + 1000).astype(np.uint16), pred)  # 7: not counted
    metrics.end_video()
    found = {(int(r), int(c)): int(metrics.confusion[r, c]) for r, c in zip(*np.nonzero(metrics.confusion))}
    assert found == literal_count(gt, pred)


def test_entries_merge_and_scores_cover_every_class():
    parts = []
    for seed in (2, 3):
        metrics = VideoSegMetrics(K, identity_table())
        metrics.begin_video(f"image{seed}")
        metrics.update(*frames(seed))
        metrics.end_video()
        parts.append(metrics)
    merged = VideoSegMetrics(K, identity_table())
    for part in parts:
        for name, entry in part.videos.items():
            merged.add_video(name, entry)
    np.testing.assert_array_equal(merged.confusion, parts[0].confusion + parts[1].confusion)
    scores = merged.compute()
    assert len(scores["per_class"]["iou"]) == K and 0 < scores["metrics"]["mIoU"] < 1


def test_a_prediction_outside_the_classes_at_a_counted_pixel_fails():
    gt, pred = frames(4)
    pred[0, 10, 10] = K
    metrics = VideoSegMetrics(K, identity_table())
    metrics.begin_video("image")
    metrics.update(gt, pred)
    with pytest.raises(LabelError, match="not a class index 0..846"):
        metrics.end_video()


def test_gt_outside_16_bits_and_a_short_table_are_refused():
    metrics = VideoSegMetrics(K, identity_table())
    metrics.begin_video("image")
    with pytest.raises(LabelError, match="outside 0..65535"):
        metrics.update(np.full((2, 2), 70000), np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ConfigError, match="847 classes need 16-bit labels"):
        VideoSegMetrics(K, np.arange(256) % 200)
