"""VC under the two named conventions, against plain references written here.

The references follow the scripts' arithmetic literally (a Python loop over the videos, the
window starts and the frames of each window, one float accuracy per window, nanmean over the
pooled windows): VSPW's VC_perclip.py ("official": a video counts for VC_n when it has more
than n frames) and the VC_perclip.py of CFFM / MRCFA / TV3S / OV2VSS ("cffm": videos of 16
frames or fewer are skipped before anything is counted, for mIoU, VC8 and VC16). A third
reference prints what DVIS++'s eval_vc_vspw.py prints for "VC16" (its list of window
accuracies is created once, outside the loop over 8 and 16): not a convention ovbench offers,
shown so the docs can say how far it is from the official VC16. Sources:
shared/reference/field.md sections 1.5, 1.6 and 2.1.
"""

import math

import numpy as np
import pytest

from ovbench.errors import ConfigError
from ovbench.metrics.accumulator import VideoSegMetrics

K = 5  # classes; gt uses converted ids 0..4 and 255 (void), the identity lut
LUT = list(range(K)) + [255] * (256 - K)


def window_accuracies(gts, preds, n):
    """The official windows of one video: starts 0..T-n-1, frames i+1..i+n-1 compared with i."""
    accs = []
    for i in range(len(gts) - n):
        gt_same = np.ones(gts[i].shape, bool)
        pred_same = np.ones(gts[i].shape, bool)
        for j in range(1, n):
            gt_same &= gts[i + j] == gts[i]
            pred_same &= preds[i + j] == preds[i]
        g = int(gt_same.sum())
        accs.append(int((gt_same & pred_same).sum()) / g if g else math.nan)
    return accs


def nanmean(values):
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None


def reference_vc(videos, n, skip_at_most):
    """VC_n over the videos with more than `skip_at_most` frames (and more than n: shorter ones
    have no window)."""
    pooled = []
    for gts, preds in videos.values():
        if len(gts) > skip_at_most:
            pooled += window_accuracies(gts, preds, n)
    return nanmean(pooled)


def reference_official(videos, n):
    return reference_vc(videos, n, skip_at_most=n)


def reference_cffm(videos, n):
    return reference_vc(videos, n, skip_at_most=16)


def reference_dvis_printed_vc16(videos):
    """DVIS++'s second printed number: one list, filled for n = 8 and then n = 16."""
    total_acc = []
    for n in (8, 16):
        for gts, preds in videos.values():
            if len(gts) > n:
                total_acc += window_accuracies(gts, preds, n)
    return nanmean(total_acc)


def walk(rng, frames, shape, values, change):
    out, cur = [], rng.choice(values, shape).astype(np.uint8)
    for _ in range(frames):
        cur = np.where(rng.random(shape) < change, rng.choice(values, shape), cur).astype(np.uint8)
        out.append(cur)
    return out


def random_videos(seed, lengths, shape=(5, 6)):
    rng = np.random.default_rng(seed)
    gt_values = np.array([*range(K), 255])
    return {f"v{i:02d}_{t}": (walk(rng, t, shape, gt_values, 0.04), walk(rng, t, shape, np.arange(K), 0.06))
            for i, t in enumerate(lengths)}


def adversarial_videos():
    """Hand-made worst cases: a 16-frame video that is perfect (dropped by cffm only), a
    17-frame one whose prediction flickers every frame (kept by both), a 9-frame one whose gt
    changes everywhere each frame (no counted window), and a void-only 20-frame video."""
    still = [np.full((4, 4), 2, np.uint8)] * 16
    flicker_gt = [np.full((4, 4), 1, np.uint8)] * 17
    flicker_pred = [np.full((4, 4), t % 2, np.uint8) for t in range(17)]
    moving = [np.full((4, 4), t % K, np.uint8) for t in range(9)]
    void = [np.full((4, 4), 255, np.uint8)] * 20
    return {"still16": (still, still), "flicker17": (flicker_gt, flicker_pred),
            "moving9": (moving, moving), "void20": (void, [np.zeros((4, 4), np.uint8)] * 20)}


def score(videos, **kwargs):
    metrics = VideoSegMetrics(K, LUT, **kwargs)
    for name, (gts, preds) in videos.items():
        metrics.begin_video(name)
        metrics.update(np.stack(gts), np.stack(preds))
        metrics.end_video()
    return metrics


def check_against(videos, got, reference):
    for n in (8, 16):
        want = reference(videos, n)
        if want is None:
            assert f"VC{n}" not in got
        else:
            assert got[f"VC{n}"] == pytest.approx(want, rel=1e-12, abs=1e-15), n


LENGTHS = [(9, 12, 16, 17, 30), (16, 16, 17), (10, 16), (17, 17, 40, 8, 3)]


@pytest.mark.parametrize("seed", range(len(LENGTHS)))
def test_official_and_cffm_match_their_scripts(seed):
    videos = random_videos(seed, LENGTHS[seed])
    check_against(videos, score(videos).compute()["metrics"], reference_official)
    check_against(videos, score(videos, vc_convention="cffm").compute()["metrics"], reference_cffm)


def test_adversarial_videos():
    videos = adversarial_videos()
    official = score(videos).compute()["metrics"]
    cffm = score(videos, vc_convention="cffm").compute()["metrics"]
    check_against(videos, official, reference_official)
    check_against(videos, cffm, reference_cffm)
    # official VC8: still16's 8 windows at 1.0, flicker17's 9 at 0.0, void20's 12 at 1.0
    assert official["VC8"] == pytest.approx(20 / 29)
    assert cffm["VC8"] == pytest.approx(12 / 21)  # still16 is dropped
    assert official["VC16"] == cffm["VC16"] == pytest.approx(4 / 5)  # flicker17: 1 window, void20: 4


def test_exactly_16_frames_is_dropped_and_17_is_kept():
    videos = random_videos(7, (16, 17))
    sixteen = {k: v for k, v in videos.items() if len(v[0]) == 16}
    seventeen = {k: v for k, v in videos.items() if len(v[0]) == 17}
    cffm = score(videos, vc_convention="cffm").compute()["metrics"]
    assert cffm["VC8"] == pytest.approx(reference_official(seventeen, 8))
    assert "VC8" not in score(sixteen, vc_convention="cffm").compute()["metrics"]
    assert score(sixteen).compute()["metrics"]["VC8"] == pytest.approx(reference_official(sixteen, 8))


def test_cffm_drops_short_videos_from_miou_as_well():
    videos = random_videos(3, (12, 20))
    cffm = score(videos, vc_convention="cffm")
    only_long = score({k: v for k, v in videos.items() if len(v[0]) > 16})
    assert cffm.min_video_frames == 16
    assert np.array_equal(cffm.confusion, only_long.confusion)
    assert cffm.compute()["metrics"] == only_long.compute()["metrics"]


def test_cffm_follows_an_explicit_min_video_frames():
    videos = random_videos(4, (10, 12, 25))
    got = score(videos, vc_convention="cffm", min_video_frames=11).compute()["metrics"]
    check_against(videos, got, lambda v, n: reference_vc(v, n, skip_at_most=max(11, n)))


def test_official_is_unchanged_by_the_convention_argument():
    """The default is today's behaviour: min_video_frames limits mIoU only, VC pools every video."""
    videos = random_videos(5, (9, 12, 16, 17, 30))
    for min_frames in (0, 16):
        plain = score(videos, min_video_frames=min_frames)
        named = score(videos, min_video_frames=min_frames, vc_convention="official")
        assert plain.compute() == named.compute()
        check_against(videos, plain.compute()["metrics"], reference_official)


def test_entries_merge_across_conventions():
    """A video's entry does not depend on the convention, so an official run's entries re-scored
    as cffm give exactly the cffm numbers (the convention belongs to the totals, not the entry)."""
    videos = random_videos(6, (9, 16, 17, 33))
    official = score(videos)
    rebuilt = VideoSegMetrics(K, LUT, vc_convention="cffm")
    for name, entry in reversed(official.videos.items()):
        rebuilt.add_video(name, entry)
    direct = score(videos, vc_convention="cffm")
    assert rebuilt.videos == direct.videos == official.videos
    assert rebuilt.compute() == direct.compute()
    assert rebuilt.vc == direct.vc != official.vc


def test_dvis_printed_vc16_is_not_the_official_vc16():
    """What DVIS++'s eval_vc_vspw.py prints as VC16 is the pool of the VC8 and VC16 windows,
    which ovbench's exact totals give too; it is higher than VC16 whenever VC8 is."""
    videos = random_videos(8, (20, 24, 40, 17, 30))
    metrics = score(videos)
    got = metrics.compute()["metrics"]
    printed = reference_dvis_printed_vc16(videos)
    (sum8, count8), (sum16, count16) = metrics.vc[8], metrics.vc[16]
    assert printed == pytest.approx((sum8 + sum16) / ((count8 + count16) << 64), rel=1e-12)
    assert got["VC8"] > printed > got["VC16"]


def test_unknown_convention_is_one_config_error():
    with pytest.raises(ConfigError, match="unknown VC convention 'cfm'.*cffm"):
        VideoSegMetrics(K, LUT, vc_convention="cfm")


def converted(raw):
    """VSPW's conversion: 0 ("others") -> 255, k -> k-1, 255 stays."""
    return [np.where(r == 0, 255, np.where(r == 255, 255, r.astype(np.int64) - 1)).astype(np.uint8) for r in raw]


def test_raw_and_converted_gt_differ_only_where_raw_0_meets_255():
    """VSPW's and DVIS++'s VC scripts read raw masks; ovbench (and the CFFM family) convert.
    Without raw 0 the conversion is one-to-one and VC is the same; a region that flips between
    "others" and void changes in the raw masks but stays ignore (255) once converted."""
    rng = np.random.default_rng(12)
    raw = walk(rng, 20, (5, 6), np.array([1, 2, 3, 4, 255]), 0.05)
    preds = walk(rng, 20, (5, 6), np.arange(K), 0.05)
    ours = score({"v": (converted(raw), preds)}).compute()["metrics"]
    check_against({"v": (raw, preds)}, ours, reference_official)  # no raw 0: identical

    flip = [np.where(np.arange(6) < 2, 0 if t % 2 else 255, r).astype(np.uint8) for t, r in enumerate(raw)]
    ours = score({"v": (converted(flip), preds)}).compute()["metrics"]
    raw_script = reference_official({"v": (flip, preds)}, 8)
    assert ours["VC8"] != pytest.approx(raw_script)
    check_against({"v": (converted(flip), preds)}, ours, reference_official)
