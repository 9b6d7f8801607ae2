"""confusion_matrix and segmentation_scores against the literal references and hand-made cases."""

import math

import numpy as np
import pytest
import torch  # a CPU tensor is accepted as numpy reads it
from reference_metrics import random_video, ref_confusion, ref_scores

from ovbench.errors import ConfigError, DataError
from ovbench.metrics.confusion import LabelError, confusion_matrix, iou_means, segmentation_scores


def assert_scores_close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if key == "per_class":
            assert got[key]["gt_pixels"] == value["gt_pixels"]
            for name in ("iou", "acc"):
                for g, w in zip(got[key][name], value[name]):
                    assert (g is None) == (w is None)
                    assert w is None or abs(g - w) < 1e-12
        else:
            assert isinstance(got[key], float) and abs(got[key] - value) < 1e-12, key


@pytest.mark.parametrize("seed,k", [(0, 3), (1, 7), (2, 124), (3, 124), (4, 200)])
def test_confusion_matches_reference(seed, k):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, k, (3, 17, 23)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.2] = 255
    pred = rng.integers(0, k, gt.shape).astype(np.uint8)
    want = ref_confusion(gt, pred, k)
    for g, p in [(gt, pred), (torch.from_numpy(gt), torch.from_numpy(pred).long())]:
        m = confusion_matrix(g, p, k)
        assert m.dtype == np.int64 and m.shape == (k, k)
        assert np.array_equal(m, want)
    one_frame = confusion_matrix(gt[0], pred[0].astype(np.int64), k)
    assert np.array_equal(one_frame, ref_confusion(gt[0], pred[0], k))


def test_confusion_hand_case_and_ignore_index():
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 7]])  # 7 sits on a void pixel: not counted, no error
    assert confusion_matrix(gt, pred, 3).tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    # ignore_index=0: class-0 pixels drop out, 255 is then a bad gt value
    with pytest.raises(LabelError, match="gt value 255"):
        confusion_matrix(gt, pred, 3, ignore_index=0)
    assert confusion_matrix(gt[:, :2], pred[:, :2], 3, ignore_index=0).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_confusion_rejects_bad_values():
    gt = np.array([[0, 5]], dtype=np.uint8)
    with pytest.raises(LabelError, match="gt value 5"):
        confusion_matrix(gt, np.zeros_like(gt), 3)
    with pytest.raises(LabelError, match="value -2"):
        confusion_matrix(np.array([[0, -2]]), np.zeros((1, 2), dtype=np.int64), 3)
    with pytest.raises(LabelError, match="prediction value 9"):
        confusion_matrix(np.array([[0, 1]]), np.array([[0, 9]]), 3)
    with pytest.raises(LabelError, match="prediction value 255 \\(or outside"):
        confusion_matrix(np.array([[0, 1]]), np.array([[0, 300]]), 3)
    with pytest.raises(LabelError, match="prediction value 255 \\(or outside"):
        confusion_matrix(np.array([[0, 1]]), np.array([[-1, 0]]), 3)
    with pytest.raises(LabelError, match="shape"):
        confusion_matrix(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 3)
    with pytest.raises(LabelError, match="integer"):
        confusion_matrix(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.float32), 3)
    with pytest.raises(ConfigError):
        confusion_matrix(gt, gt, 256)
    assert issubclass(LabelError, ValueError) and issubclass(LabelError, DataError)


def test_scores_hand_computed():
    # gt rows, pred columns; class 2 is predicted but absent from the ground truth
    m = np.array([[3, 1, 0],
                  [1, 2, 1],
                  [0, 0, 0]])
    s = segmentation_scores(m)
    iou0, iou1 = 3 / (4 + 4 - 3), 2 / (4 + 3 - 2)
    assert s["mIoU"] == pytest.approx((iou0 + iou1) / 2, abs=1e-15)
    assert s["pAcc"] == pytest.approx(5 / 8)
    assert s["mAcc"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert s["fwIoU"] == pytest.approx(0.5 * iou0 + 0.5 * iou1)
    assert s["per_class"] == {"iou": [pytest.approx(iou0), pytest.approx(iou1), None],
                              "acc": [0.75, 0.5, None], "gt_pixels": [4, 4, 0]}
    mm = segmentation_scores(m, convention="mmseg")  # class 2: union 1, IoU 0, counted
    assert mm["mIoU"] == pytest.approx((iou0 + iou1 + 0) / 3)
    assert mm["per_class"]["iou"][2] == 0.0
    assert mm["fwIoU"] == s["fwIoU"] and mm["mAcc"] == s["mAcc"]


def test_scores_seen_unseen_hiou_from_one_matrix():
    m = np.diag([4, 2, 0, 1])
    m[0, 1] = 4  # class 0 IoU 0.5, class 1 IoU 1/3, class 3 IoU 1, class 2 absent
    s = segmentation_scores(m, seen=[0, 1], unseen=[2, 3])
    assert s["mIoU_seen"] == pytest.approx((0.5 + 2 / 6) / 2)
    assert s["mIoU_unseen"] == 1.0
    su, u = s["mIoU_seen"], 1.0
    assert s["hIoU"] == pytest.approx(2 * su * u / (su + u))
    s = segmentation_scores(m, seen=[0, 1], unseen=[2])  # unseen class has no gt: no mIoU_unseen, no hIoU
    assert "mIoU_seen" in s and "mIoU_unseen" not in s and "hIoU" not in s
    z = np.array([[0, 3], [0, 2]])  # class 0 present, never right: IoU 0 on both sides
    s = segmentation_scores(z, seen=[0], unseen=[0])
    assert s["mIoU_seen"] == s["mIoU_unseen"] == s["hIoU"] == 0.0
    with pytest.raises(ConfigError):
        segmentation_scores(m, seen=[4])


def test_scores_absent_keys_never_nan():
    s = segmentation_scores(np.zeros((3, 3), dtype=np.int64), seen=[0], unseen=[1])
    assert set(s) == {"per_class"}
    assert s["per_class"] == {"iou": [None] * 3, "acc": [None] * 3, "gt_pixels": [0, 0, 0]}
    # only predictions, no gt pixels: impossible from confusion_matrix, but still no NaN
    assert set(segmentation_scores(np.zeros((2, 2)), convention="mmseg")) == {"per_class"}
    with pytest.raises(ConfigError, match="did you mean mmseg"):
        segmentation_scores(np.eye(2), convention="mmsegg")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("convention", ["vspw", "mmseg"])
def test_scores_match_reference(seed, convention):
    rng = np.random.default_rng(seed)
    k = [5, 12, 124][seed % 3]
    m = rng.integers(0, 50, (k, k)) * (rng.random((k, k)) < 0.3)
    m[rng.random(k) < 0.3] = 0  # classes absent from the gt, some still predicted
    m[:, rng.random(k) < 0.2] = 0
    seen = sorted(rng.choice(k, k // 2, replace=False).tolist())
    unseen = [c for c in range(k) if c not in seen]
    got = segmentation_scores(torch.from_numpy(m), seen=seen, unseen=unseen, convention=convention)
    assert_scores_close(got, ref_scores(m, seen, unseen, convention))


@pytest.mark.parametrize("convention", ["vspw", "mmseg"])
def test_iou_means_rows_of_a_batch_equal_their_own_matrices(convention):
    """The leaderboard's bootstrap scores its resamples as the rows of one batch: each row must
    give exactly what its own confusion matrix gives, and what the reference gives."""
    rng = np.random.default_rng(0)
    k = 40  # more than numpy's 8-wide unrolled sums, so that summation order shows in the last bit
    seen, unseen = list(range(0, k, 2)), list(range(1, k, 2))
    matrices = []
    for trial in range(24):
        m = rng.integers(0, 10**6, (k, k)) * (rng.random((k, k)) < 0.3)
        m[trial % k] = 0  # a class without gt pixels (maybe predicted)
        if trial % 8 == 0:
            m[unseen] = 0  # no unseen gt: mIoU_unseen and hIoU undefined
        if trial % 8 == 1:
            m[np.arange(k), np.arange(k)] = 0  # every IoU 0: hIoU 0, not undefined
        matrices.append(m)
    stack = np.stack(matrices).astype(np.float64)
    batch = iou_means(np.diagonal(stack, axis1=1, axis2=2), stack.sum(2), stack.sum(1),
                      seen=np.array(seen), unseen=np.array(unseen), convention=convention)
    for row, m in enumerate(matrices):
        single = segmentation_scores(m, seen=seen, unseen=unseen, convention=convention)
        want = ref_scores(m, seen, unseen, convention)
        for key in ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU"):
            assert (key in single) == (key in want), key
            if key in single:
                assert batch[key][row] == single[key], (key, row)
                assert batch[key][row] == pytest.approx(want[key], abs=1e-12)
            else:
                assert np.isnan(batch[key][row]), (key, row)


@pytest.mark.parametrize("seed", range(3))
def test_miou_bit_identical_to_official_formula(seed):
    """The official script: nansum(IoU * present) / present.sum() over the float matrix."""
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 10**6, (124, 124)) * (rng.random((124, 124)) < 0.1)
    m[rng.random(124) < 0.2] = 0
    h = m.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.diag(h) / (h.sum(1) + h.sum(0) - np.diag(h))
        acc = np.diag(h) / h.sum(1)
    present = h.sum(1) > 0
    s = segmentation_scores(m)
    assert s["mIoU"] == np.nansum(iou * present) / present.sum()
    assert s["mAcc"] == np.nanmean(acc)
    freq = h.sum(1) / h.sum()
    assert s["fwIoU"] == (freq[freq > 0] * iou[freq > 0]).sum()
    assert s["pAcc"] == np.diag(h).sum() / h.sum()


def test_random_video_pixels_through_confusion_and_scores():
    rng = np.random.default_rng(7)
    gts, preds = random_video(rng, 5, (9, 11), labels=6, void=0.3)
    m = confusion_matrix(np.stack(gts), np.stack(preds), 6)
    want = ref_confusion(np.stack(gts), np.stack(preds), 6)
    assert np.array_equal(m, want)
    assert_scores_close(segmentation_scores(m), ref_scores(want))
    assert not any(isinstance(v, float) and math.isnan(v) for v in segmentation_scores(m).values())


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (3, 5), (24, 43)])
@pytest.mark.parametrize("top", [1, 127, 128, 200])
def test_pair_counts_with_long_runs_odd_sizes_and_predictions_either_side_of_128(shape, top):
    """Constant frames, stripes and noise; predictions up to `top` (below 128 the pairs are
    counted in two interleaved halves): every cell as the literal count."""
    from ovbench.metrics.confusion import pair_counts

    rng = np.random.default_rng(top)
    frames = [np.full(shape, top - 1, np.uint8), (np.arange(np.prod(shape)).reshape(shape) % 3 * (top - 1) // 2).astype(np.uint8),
              rng.integers(0, top, shape).astype(np.uint8)]
    for gt in (np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8), rng.integers(0, 256, shape).astype(np.uint8)):
        for pred in frames:
            want = np.zeros((256, 256), np.int64)
            for g, p in zip(gt.reshape(-1), pred.reshape(-1)):
                want[g, p] += 1
            assert np.array_equal(pair_counts(gt, pred).reshape(256, 256), want)
