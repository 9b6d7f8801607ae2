"""VideoSegMetrics: references, streaming, combining saved videos, aborting."""

import json

import numpy as np
import pytest
from reference_metrics import random_video, ref_confusion, ref_fixed_point, ref_scores, ref_vc

from ovbench.errors import ConfigError, DataError
from ovbench.metrics.accumulator import VideoSegMetrics
from ovbench.metrics.confusion import LabelError

K = 124
# vocabulary = 10 converted ids; the other ids (and void) are not counted in the confusion matrix
VOCAB = [3, 5, 7, 11, 13, 17, 19, 23, 29, 31]
LUT = np.full(256, 255, dtype=np.uint8)
LUT[VOCAB] = np.arange(len(VOCAB))
IDS = np.array(VOCAB + [2, 4, 200, 255, 255])  # gt ids drawn from these: some outside the vocabulary
SEEN, UNSEEN = list(range(6)), list(range(6, 10))


def make_videos(seed: int, lengths=(3, 8, 9, 17, 20, 12)) -> dict[str, tuple[list, list]]:
    rng = np.random.default_rng(seed)
    videos = {}
    for i, frames in enumerate(lengths):
        gts, preds = random_video(rng, frames, (6, 7), labels=len(IDS), change=0.06, void=0)
        videos[f"video{i:02d}"] = ([IDS[g].astype(np.uint8) for g in gts], [p % len(VOCAB) for p in preds])
    return videos


def feed(metrics: VideoSegMetrics, videos: dict, batch: int = 1) -> VideoSegMetrics:
    for name, (gts, preds) in videos.items():
        metrics.begin_video(name)
        for i in range(0, len(gts), batch):
            if batch == 1:
                metrics.update(gts[i], preds[i])
            else:
                metrics.update(np.stack(gts[i:i + batch]), np.stack(preds[i:i + batch]).astype(np.int64))
        metrics.end_video()
    return metrics


def new(**kwargs) -> VideoSegMetrics:
    return VideoSegMetrics(len(VOCAB), LUT, **kwargs)


def state(metrics: VideoSegMetrics) -> dict:
    """Everything the accumulator holds, as plain values."""
    return {"confusion": metrics.confusion.tolist(), "vc": metrics.vc, "videos": metrics.videos}


def ref_result(videos: dict, min_video_frames=0, windows=(8, 16), convention="vspw", seen=None, unseen=None):
    kept = [(g, p) for g, p in videos.values() if len(g) > min_video_frames]
    m = sum((ref_confusion(LUT[np.stack(g)], np.stack(p), len(VOCAB)) for g, p in kept),
            np.zeros((len(VOCAB),) * 2, dtype=np.int64))
    scores = ref_scores(m, seen, unseen, convention)
    return m, scores, {n: ref_vc(list(videos.values()), n) for n in windows}


@pytest.mark.parametrize("seed,convention,min_frames", [(0, "vspw", 0), (1, "mmseg", 0), (2, "vspw", 16)])
def test_matches_references(seed, convention, min_frames):
    videos = make_videos(seed)
    metrics = feed(new(min_video_frames=min_frames), videos)
    out = metrics.compute(seen_index=SEEN, unseen_index=UNSEEN, convention=convention)
    m, scores, vc = ref_result(videos, min_frames, convention=convention, seen=SEEN, unseen=UNSEEN)
    assert np.array_equal(metrics.confusion, m)
    per_class = scores.pop("per_class")
    assert set(out["metrics"]) == set(scores) | {f"VC{n}" for n in vc}
    for key, value in scores.items():
        assert abs(out["metrics"][key] - value) < 1e-12, key
    for n, value in vc.items():
        assert abs(out["metrics"][f"VC{n}"] - value) < 1e-12
        assert metrics.vc[n] == list(ref_fixed_point(list(videos.values()), n))
    assert out["per_class"]["gt_pixels"] == per_class["gt_pixels"]
    for name, (gts, preds) in videos.items():
        entry = out["per_video"][name]
        vm = ref_confusion(LUT[np.stack(gts)], np.stack(preds), len(VOCAB))
        assert entry["confusion"] == [[g, p, int(vm[g, p])] for g, p in zip(*np.nonzero(vm))]
        assert entry["frames"] == len(gts)
        assert abs(entry["mIoU"] - ref_scores(vm, convention=convention)["mIoU"]) < 1e-12
        for n in (8, 16):
            want = ref_vc([(gts, preds)], n)
            assert (f"VC{n}" in entry) == (want is not None)
            if want is not None:
                assert abs(entry[f"VC{n}"] - want) < 1e-12


def test_wide_vocabulary_and_predictions_above_127():
    rng = np.random.default_rng(12)
    lut = np.full(256, 255, dtype=np.uint8)
    lut[:200] = np.arange(200)
    videos = {"wide": ([rng.integers(120, 256, (5, 6)).astype(np.uint8) for _ in range(9)],
                       [rng.integers(0, 200, (5, 6)) for _ in range(9)])}
    metrics = feed(VideoSegMetrics(200, lut, windows=(2, 8)), videos)
    gts, preds = videos["wide"]
    assert np.array_equal(metrics.confusion, ref_confusion(lut[np.stack(gts)], np.stack(preds), 200))
    assert metrics.vc[2] == list(ref_fixed_point([(gts, preds)], 2))


def test_vc_compares_converted_ids_not_vocabulary_indices():
    """Ids 2 and 4 are both outside the vocabulary (255 in the LUT), yet a change 2 -> 4 is a
    change of the ground truth for VC."""
    gts = [np.full((2, 2), 2 if t < 5 else 4, np.uint8) for t in range(10)]
    preds = [np.zeros((2, 2), np.uint8)] * 10
    out = feed(new(windows=(2,)), {"v": (gts, preds)}).compute()
    assert out["metrics"] == {"VC2": 1.0}  # window 4-5 has |G| = 0; the other 7 are perfect
    assert feed(new(windows=(2,)), {"v": (gts, preds)}).vc[2] == [7 * 2**64, 7]


@pytest.mark.parametrize("batch", [2, 5, 64])
def test_batches_equal_frame_by_frame(batch):
    videos = make_videos(3)
    one = feed(new(), videos)
    other = feed(new(), videos, batch)
    assert state(one) == state(other)
    assert one.compute() == other.compute()


def test_videos_split_across_processes_combine_bit_identically_in_any_order():
    videos = make_videos(4)
    names = list(videos)
    whole = feed(new(), videos)
    parts = [feed(new(), {n: videos[n] for n in names[:3]}), feed(new(), {n: videos[n] for n in names[3:]})]
    for order in (names, list(reversed(names))):
        combined = new()
        for name in order:
            combined.add_video(name, next(part.videos[name] for part in parts if name in part.videos))
        assert json.dumps(state(combined), sort_keys=True) == json.dumps(state(whole), sort_keys=True)
        assert combined.compute(seen_index=SEEN, unseen_index=UNSEEN) == whole.compute(seen_index=SEEN, unseen_index=UNSEEN)


def test_min_video_frames_skips_short_videos_for_miou_only():
    videos = make_videos(6)
    skip = feed(new(min_video_frames=16), videos)
    keep = feed(new(), videos)
    long_only = feed(new(), {n: v for n, v in videos.items() if len(v[0]) > 16})
    assert np.array_equal(skip.confusion, long_only.confusion)
    assert not np.array_equal(skip.confusion, keep.confusion)
    assert skip.vc == keep.vc
    assert skip.compute()["per_video"] == keep.compute()["per_video"]


def test_abort_video_leaves_no_trace():
    videos = make_videos(7)
    clean = state(feed(new(), videos))
    metrics = new()
    for name, (gts, preds) in videos.items():
        metrics.begin_video("broken")
        metrics.update(gts[0], preds[0])
        metrics.abort_video()
        feed(metrics, {name: (gts, preds)})
    assert state(metrics) == clean
    # a prediction out of the vocabulary at a counted pixel fails at end_video; abort cleans up
    metrics.begin_video("bad")
    gt = np.full((2, 2), VOCAB[0], np.uint8)
    metrics.update(gt, np.array([[0, 0], [0, 10]]))
    with pytest.raises(LabelError, match="video bad: prediction value 10"):
        metrics.end_video()
    metrics.abort_video()
    assert state(metrics) == clean
    # ... but is fine where the gt is not counted (void, or an id outside the vocabulary)
    ok = feed(new(), {"fine": ([np.array([[255, 2]], np.uint8)], [np.array([[200, 99]])])})
    assert ok.compute()["per_video"]["fine"] == {"frames": 1, "confusion": []}


def test_absent_keys_and_errors():
    empty = new().compute()
    assert empty["metrics"] == {} and empty["per_video"] == {}
    short = feed(new(), make_videos(8, lengths=(10,)))
    out = short.compute()
    assert "VC16" not in out["metrics"] and "VC8" in out["metrics"]
    assert set(out["per_video"]["video00"]) == {"frames", "mIoU", "VC8", "confusion"}
    metrics = new()
    with pytest.raises(RuntimeError):
        metrics.update(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    metrics.begin_video("a")
    with pytest.raises(RuntimeError):
        metrics.add_video("b", {"frames": 1, "confusion": [], "vc": [[8, 0, 0], [16, 0, 0]]})
    with pytest.raises(LabelError, match="video a, frame 0"):
        metrics.update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    metrics.abort_video()
    with pytest.raises(DataError, match="already scored"):
        short.begin_video("video00")
    with pytest.raises(ConfigError):
        VideoSegMetrics(3, [0] * 255)
    with pytest.raises(ConfigError):
        VideoSegMetrics(3, [5] * 256)


def test_videos_added_from_saved_entries_equal_the_stream():
    """How a run's record is made: each finished video's entry, saved on its own (JSON), folded
    in any order, gives the streamed accumulator's state exactly, min_video_frames included."""
    videos = make_videos(9)
    for min_frames in (0, 16):
        whole = feed(new(min_video_frames=min_frames), videos)
        saved = {name: json.loads(json.dumps(entry)) for name, entry in whole.videos.items()}
        rebuilt = new(min_video_frames=min_frames)
        for name in reversed(list(saved)):
            rebuilt.add_video(name, saved[name])
        assert state(rebuilt) == state(whole)
        assert rebuilt.compute(seen_index=SEEN, unseen_index=UNSEEN) == whole.compute(seen_index=SEEN, unseen_index=UNSEEN)
    with pytest.raises(DataError, match="already scored"):
        rebuilt.add_video("video00", saved["video00"])
    with pytest.raises(DataError, match="video x: malformed metric entry"):
        new().add_video("x", {"frames": 1, "confusion": [[0, 99, 1]], "vc": []})
    with pytest.raises(ConfigError, match="VC windows"):
        new(windows=(8,)).add_video("video00", saved["video00"])
