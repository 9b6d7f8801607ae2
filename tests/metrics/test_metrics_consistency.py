"""VideoConsistency (streaming VC_n) against literal official windows, exactly."""

import numpy as np
import pytest
from reference_metrics import random_video, ref_fixed_point, ref_window_accuracies

from ovbench.errors import ConfigError
from ovbench.metrics.confusion import LabelError, label_frames
from ovbench.metrics.consistency import VideoConsistency


def feed(vc: VideoConsistency, gt: np.ndarray, pred: np.ndarray) -> None:
    """One frame (H,W) or consecutive frames (B,H,W), checked as the accumulator checks them."""
    for g, p in zip(*label_frames(gt, pred)):
        vc.add_frame(g, p)


def stream(gts, preds, windows, batches=(1,)):
    """Feed a video in batches of the given sizes (cycled) and return the result."""
    vc = VideoConsistency(windows)
    i, k = 0, 0
    while i < len(gts):
        b = batches[k % len(batches)]
        if b == 1:
            feed(vc, gts[i], preds[i])
        else:
            feed(vc, np.stack(gts[i:i + b]), np.stack(preds[i:i + b]))
        i, k = i + b, k + 1
    return vc.result()


@pytest.mark.parametrize("seed", range(6))
def test_matches_official_windows_exactly(seed):
    rng = np.random.default_rng(seed)
    windows = [(8, 16), (1, 2, 3, 5), (3, 20)][seed % 3]
    for frames in (3, 9, 17, 24):
        video = random_video(rng, frames, (5, 7), labels=3, change=0.08)
        got = stream(*video, windows, batches=(1, 3, 2))
        for n in windows:
            assert got[n] == ref_fixed_point([video], n), (frames, n)


def test_long_video_crosses_the_commit_chunk():
    rng = np.random.default_rng(11)
    video = random_video(rng, 150, (4, 5), labels=2, change=0.03)
    got = stream(*video, (2, 8, 16), batches=(1, 7, 64, 5))
    assert got == {n: ref_fixed_point([video], n) for n in (2, 8, 16)}


@pytest.mark.parametrize("batches", [(1,), (2,), (5,), (30,), (4, 1, 9)])
def test_streaming_equals_all_at_once(batches):
    rng = np.random.default_rng(5)
    gts, preds = random_video(rng, 30, (6, 9), labels=3, change=0.05)
    assert stream(gts, preds, (8, 16), batches) == stream(gts, preds, (8, 16), (30,))


def test_video_lengths_around_n():
    rng = np.random.default_rng(2)
    gts, preds = random_video(rng, 10, (5, 5), labels=2, change=0.0)  # static: every window counts
    for frames, windows8 in [(7, 0), (8, 0), (9, 1), (10, 2)]:
        got = stream(gts[:frames], preds[:frames], (8,))
        assert got[8] == (windows8 * 2**64, windows8)  # static: every accuracy is exactly 1


def test_hand_case():
    """3x1 pixels, n = 2, T = 4: windows start 0, 1, 2 minus the last one -> starts 0 and 1.
    start 0 (frames 0,1): gt same at px 0,1; pred same at px 0 -> 1/2.
    start 1 (frames 1,2): gt same at px 0,1,2; pred same at px 0,2 -> 2/3.
    start 2 (frames 2,3) would be 0/1 but is the skipped last window."""
    gt = [np.array([[1], [2], [3]]), np.array([[1], [2], [4]]), np.array([[1], [2], [4]]), np.array([[9], [9], [9]])]
    pred = [np.array([[1], [2], [3]]), np.array([[1], [5], [3]]), np.array([[1], [2], [3]]), np.array([[1], [2], [3]])]
    total, count = stream(gt, pred, (2,))[2]
    assert count == 2
    assert total == (2**64) // 2 + (2 * 2**64) // 3
    assert total / (count << 64) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_gt_never_changes_pred_changes_every_frame():
    gts = [np.zeros((4, 4), np.uint8)] * 12
    preds = [np.full((4, 4), t % 2, np.uint8) for t in range(12)]
    assert stream(gts, preds, (2, 8)) == {2: (0, 10), 8: (0, 4)}


def test_void_that_stays_void_counts_as_unchanged():
    gts = [np.full((3, 3), 255, np.uint8)] * 10
    preds = [np.ones((3, 3), np.uint8)] * 10
    assert stream(gts, preds, (8,)) == {8: (2 * 2**64, 2)}
    accs = ref_window_accuracies(gts, preds, 8)
    assert accs == [1.0, 1.0]


def test_gt_changing_everywhere_gives_no_window():
    """|G| = 0 in every window: the official nan windows are excluded, so nothing counts."""
    gts = [np.full((2, 3), t, np.uint8) for t in range(12)]
    preds = [np.zeros((2, 3), np.uint8)] * 12
    assert stream(gts, preds, (2, 8)) == {2: (0, 0), 8: (0, 0)}
    assert all(np.isnan(ref_window_accuracies(gts, preds, 2)))


def test_constant_prediction_is_perfectly_consistent():
    rng = np.random.default_rng(3)
    gts, _ = random_video(rng, 20, (6, 6), labels=3, change=0.05)
    total, count = stream(gts, [np.zeros((6, 6), np.uint8)] * 20, (8,))[8]
    assert count > 0 and total == count * 2**64


def test_input_errors():
    with pytest.raises(ConfigError):
        VideoConsistency(())
    with pytest.raises(ConfigError):
        VideoConsistency((0, 8))
    with pytest.raises(ConfigError):
        VideoConsistency((8, 256))
    vc = VideoConsistency((2,))
    with pytest.raises(LabelError, match="same shape"):
        feed(vc, np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    feed(vc, np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(LabelError, match="differs"):
        feed(vc, np.zeros((3, 2), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(LabelError, match="outside 0..255"):
        feed(vc, np.full((2, 2), 256), np.zeros((2, 2), np.uint8))


def test_the_largest_window_and_runs_at_their_cap():
    """Runs are uint8 capped at max(windows) - 1: a video longer than the largest window, with
    pixels that never change, must neither overflow nor lose a window."""
    rng = np.random.default_rng(7)
    gts, preds = random_video(rng, 262, (2, 3), labels=2, change=0.002)
    got = stream(gts, preds, (3, 255), batches=(1, 40))
    assert got == {n: ref_fixed_point([(gts, preds)], n) for n in (3, 255)}
    assert got[255][1] > 0


def test_an_empty_frame_is_a_label_error():
    for shape in ((0, 4), (3, 0)):
        with pytest.raises(LabelError, match="empty"):
            feed(VideoConsistency((2,)), np.zeros(shape, np.uint8), np.zeros(shape, np.uint8))
