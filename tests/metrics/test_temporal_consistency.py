"""TC (VSPW's TC_cal.py) against a plain numpy reference, and the RAFT side offline.

The reference follows the script's definition literally (shared/reference/field.md 2.2): for
every pixel of frame t, the position x + u is scaled to [-1, 1] with W-1 (and H-1), turned
back into a source pixel the way grid_sample does with align_corners=False, rounded to the
nearest (half to even), and read from the prediction at t+1, 0 where it falls outside; then
per class c predicted at t, IoU = |t == c and warped == c| / |t == c or warped == c| over the
pixels of every pair pooled, and TC is the mean over those classes.
RAFT runs with random weights the tests make (weights cannot be downloaded here).
"""

import hashlib
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_large, raft_small

from ovbench.api import WeightsInfo
from ovbench.errors import ConfigError
from ovbench.metrics.tc import TCMetrics, tc_subset
from ovbench.metrics.temporal import RaftFlow, TemporalConsistency, padded_images, warp_nearest

torch.set_num_threads(1)
K = 6


def reference_warp(next_pred, flow):
    h, w = next_pred.shape
    out = np.zeros((h, w), np.uint8)
    f32 = np.float32
    for y in range(h):
        for x in range(w):
            gx = f32(2.0) * (f32(x) + flow[0, y, x]) / f32(max(w - 1, 1)) - f32(1.0)
            gy = f32(2.0) * (f32(y) + flow[1, y, x]) / f32(max(h - 1, 1)) - f32(1.0)
            sx = int(np.rint(((gx + f32(1)) * f32(w) - f32(1)) / f32(2)))
            sy = int(np.rint(((gy + f32(1)) * f32(h) - f32(1)) / f32(2)))
            if 0 <= sx < w and 0 <= sy < h:
                out[y, x] = next_pred[sy, sx]
    return out


def reference_tc(pairs):
    """pairs: [(pred_t, warped)]; the mean IoU over the classes predicted at t, pooled."""
    inter, union, present = {}, {}, set()
    for ref, warped in pairs:
        for c in range(K):
            a, b = ref == c, warped == c
            inter[c] = inter.get(c, 0) + int((a & b).sum())
            union[c] = union.get(c, 0) + int((a | b).sum())
            if a.any():
                present.add(c)
    return sum(inter[c] / union[c] for c in present) / len(present)


def random_case(rng, frames, shape, max_flow):
    preds = [rng.integers(0, K, shape).astype(np.uint8) for _ in range(frames)]
    flows = [rng.uniform(-max_flow, max_flow, (2, *shape)).astype(np.float32) for _ in range(frames - 1)]
    return preds, flows


def tc_with_flows(videos):
    """ovbench's warp + TCMetrics, given each video's predictions and flows."""
    metrics = TCMetrics(K)
    for name, (preds, flows) in videos.items():
        metrics.begin_video(name)
        warped = warp_nearest(torch.from_numpy(np.stack(preds[1:])), torch.from_numpy(np.stack(flows)))
        for ref, w in zip(preds, warped.numpy()):
            metrics.add_pair(ref, w)
        metrics.end_video()
    return metrics.compute()


@pytest.mark.parametrize("seed", range(4))
def test_warp_and_tc_match_the_reference_on_random_flows(seed):
    rng = np.random.default_rng(seed)
    videos = {f"v{i}": random_case(rng, int(rng.integers(2, 5)), (7, 11), max_flow=[0.6, 3, 12][i % 3])
              for i in range(3)}
    got = tc_with_flows(videos)
    pairs = {name: [(p[t], reference_warp(p[t + 1], f[t])) for t in range(len(f))] for name, (p, f) in videos.items()}
    for name, (preds, flows) in videos.items():
        warped = warp_nearest(torch.from_numpy(np.stack(preds[1:])), torch.from_numpy(np.stack(flows))).numpy()
        assert np.array_equal(warped, np.stack([w for _, w in pairs[name]]))
        assert got["per_video"][name] == {"pairs": len(flows), "TC": pytest.approx(reference_tc(pairs[name]), rel=1e-12)}
    assert got["metrics"]["TC"] == pytest.approx(reference_tc([p for v in pairs.values() for p in v]), rel=1e-12)


def test_adversarial_flows():
    """Zero flow on odd and even sizes (the half-pixel quirk sends the last row of an even
    height and the last column of an even width outside the frame), whole-pixel and half-pixel
    shifts, and a flow out of the frame (reads class 0)."""
    rng = np.random.default_rng(9)
    for shape in [(5, 7), (6, 8)]:
        pred = rng.integers(1, K, shape).astype(np.uint8)
        for flow_value in (0.0, 1.0, -2.0, 0.5, 50.0):
            flow = np.full((2, *shape), flow_value, np.float32)
            got = warp_nearest(torch.from_numpy(pred[None]), torch.from_numpy(flow[None]))[0].numpy()
            assert np.array_equal(got, reference_warp(pred, flow)), (shape, flow_value)
    still = warp_nearest(torch.from_numpy(pred[None]), torch.zeros((1, 2, *pred.shape)))[0].numpy()
    assert not still[-1].any() and not still[:, -1].any() and np.array_equal(still[:-1, :-1], pred[:-1, :-1])
    out = warp_nearest(torch.from_numpy(pred[None]), torch.full((1, 2, *pred.shape), 50.0))[0].numpy()
    assert not out.any()  # everything sampled outside: 0, a real class, as the script does
    # zero flow on the even width: the last column reads 0, a class never predicted at t, which
    # lowers the IoU of the classes it replaces but is not averaged in itself
    zero = np.zeros((2, *pred.shape), np.float32)
    got = tc_with_flows({"v": ([pred, pred], [zero])})["metrics"]["TC"]
    assert got == pytest.approx(reference_tc([(pred, reference_warp(pred, zero))]), rel=1e-12)
    assert got < 1


def test_entries_merge_exactly_in_any_order():
    rng = np.random.default_rng(3)
    videos = {f"v{i}": random_case(rng, 4, (6, 9), 2.0) for i in range(4)}
    whole, one = TCMetrics(K), TCMetrics(K)
    for name, (preds, flows) in videos.items():
        one.begin_video(name)
        warped = warp_nearest(torch.from_numpy(np.stack(preds[1:])), torch.from_numpy(np.stack(flows))).numpy()
        for ref, w in zip(preds, warped):
            one.add_pair(ref, w)
        one.end_video()
    for name in reversed(list(one.videos)):
        whole.add_video(name, one.videos[name])
    assert np.array_equal(whole.confusion, one.confusion)
    assert whole.compute() == one.compute() == tc_with_flows(videos)


def test_prediction_out_of_the_vocabulary_is_refused():
    metrics = TCMetrics(K)
    metrics.begin_video("v")
    metrics.add_pair(np.full((3, 3), K, np.uint8), np.zeros((3, 3), np.uint8))
    with pytest.raises(Exception, match=f"prediction value {K} is not a class index"):
        metrics.end_video()


def test_official_subset_is_the_first_100_in_list_order():
    names = [f"{i:04d}_video" for i in range(130, 0, -1)]  # list order, not sorted order
    assert tc_subset(names, "official100") == names[:100]
    assert tc_subset(names[:40], "official100") == names[:40]
    assert tc_subset(names, "all") == names
    with pytest.raises(ConfigError, match="unknown TC subset"):
        tc_subset(names, "first100")


def moving_video(frames, shape=(128, 133)):
    """A textured image sliding 2 px right per frame, and a prediction that moves with it."""
    rng = np.random.default_rng(0)
    h, w = shape
    texture = rng.integers(0, 256, (h, w + 2 * frames, 3)).astype(np.uint8)
    labels = (np.arange(w + 2 * frames) // 17 % K).astype(np.uint8)
    images = np.stack([texture[:, 2 * (frames - t):2 * (frames - t) + w] for t in range(frames)])
    preds = np.stack([np.broadcast_to(labels[2 * (frames - t):2 * (frames - t) + w], shape) for t in range(frames)])
    return images, preds


@pytest.fixture(scope="module")
def raft_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_large_random.pth"
    torch.save(raft_large().state_dict(), path)
    return path


def test_tiny_run_from_a_local_file_matches_the_reference(raft_file, monkeypatch):
    """raft_large with random weights saved to a file, on frames of the synthetic sample's size;
    the TC of the flows it computed equals the reference's on the same flows."""
    flow = RaftFlow.from_file(raft_file)
    assert flow.weights.sha256 == hashlib.sha256(raft_file.read_bytes()).hexdigest()
    computed, compute_flows = [], RaftFlow.pair_flows
    monkeypatch.setattr(RaftFlow, "pair_flows", lambda self, frames: computed.append(compute_flows(self, frames)) or computed[-1])
    images, preds = moving_video(3, shape=(120, 214))  # padded to 128 rows
    tc = TemporalConsistency(K, flow, batch_pairs=1)
    tc.begin_video("moving")
    tc.update(images[:1], preds[:1])
    tc.update(images[1:], preds[1:])
    tc.end_video()
    got = tc.metrics.compute()
    flows = torch.cat(computed).numpy()
    assert flows.shape == (2, 2, 120, 214)
    pairs = [(preds[t], reference_warp(preds[t + 1], flows[t])) for t in range(2)]
    assert got["per_video"]["moving"]["pairs"] == 2
    assert got["metrics"]["TC"] == pytest.approx(reference_tc(pairs), rel=1e-12)


def test_own_loop_equals_torchvisions_forward():
    torch.manual_seed(1)
    model = raft_small().eval()
    images, _ = moving_video(3)
    ours = RaftFlow(model, "cpu", WeightsInfo(source="none", random_init=True)).pair_flows(torch.from_numpy(images))
    padded, (rows, cols) = padded_images(torch.from_numpy(images))
    with torch.no_grad():
        theirs = model(padded[:-1], padded[1:], num_flow_updates=20)[-1][..., rows, cols]
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert padded.shape[-2:] == (128, 136) and (cols.start, cols.stop) == (1, 134)  # 3 columns: 1 left, 2 right
    small, (rows, cols) = padded_images(torch.zeros((1, 120, 853, 3), dtype=torch.uint8))
    assert small.shape[-2:] == (128, 856) and (rows.start, rows.stop) == (4, 124)


def test_random_weights_only_when_asked(raft_file):
    torch.manual_seed(123)
    random = RaftFlow.load("none")
    torch.manual_seed(456)  # the random weights do not depend on the caller's generator
    assert random.describe() == {"model": "torchvision raft_small", "weights": "none", "sha256": None,
                                 "random_init": True, "flow_updates": 20}
    assert all(torch.equal(a, b) for a, b in zip(random.model.state_dict().values(),
                                                  RaftFlow.load("None").model.state_dict().values()))
    loaded = RaftFlow.load(str(raft_file))
    assert loaded.describe()["random_init"] is False and loaded.describe()["sha256"] == loaded.weights.sha256


def test_missing_weights_file_is_one_line(tmp_path):
    missing = tmp_path / "raft_large_C_T_V1-22a6c225.pth"
    with pytest.raises(ConfigError) as err:
        RaftFlow.from_file(missing)
    message = str(err.value)
    assert "\n" not in message and str(missing) in message
    assert "raft_large_C_T_V1-22a6c225.pth from download.pytorch.org" in message


def test_wrong_weights_file_is_one_line(tmp_path):
    wrong = tmp_path / "small.pth"
    torch.save(raft_small().state_dict(), wrong)
    with pytest.raises(ConfigError, match="not a raft_large state dict") as err:
        RaftFlow.from_file(wrong)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("batch_pairs", [1, 2])
def test_flow_memory_does_not_grow_with_video_length(batch_pairs, monkeypatch):
    """Every flow RaftFlow returns is watched through a weak reference; each time a pair is
    counted, the frames of flow still alive are summed. The peak must not depend on the
    video's length and must stay within one batch."""
    torch.manual_seed(2)
    flow = RaftFlow(raft_small(), "cpu", WeightsInfo(source="none", random_init=True))
    made, alive_at_each_pair = [], []
    compute_flows, count_pair = RaftFlow.pair_flows, TCMetrics.add_pair

    def watched_flows(self, frames):
        flows = compute_flows(self, frames)
        made.append(weakref.ref(flows))
        return flows

    def watched_pair(self, reference, warped):
        alive_at_each_pair.append(sum(len(f()) for f in made if f() is not None))
        count_pair(self, reference, warped)

    monkeypatch.setattr(RaftFlow, "pair_flows", watched_flows)
    monkeypatch.setattr(TCMetrics, "add_pair", watched_pair)
    peaks = {}
    for frames in (3, 9):
        images, preds = moving_video(frames, shape=(128, 128))
        alive_at_each_pair.clear()
        tc = TemporalConsistency(K, flow, batch_pairs=batch_pairs)
        tc.begin_video(f"v{frames}")
        for t in range(frames):
            tc.update(images[t], preds[t])
            assert len(tc._frames) <= batch_pairs + 1
        tc.end_video()
        assert len(alive_at_each_pair) == frames - 1
        peaks[frames] = max(alive_at_each_pair)
    assert 1 <= peaks[3] == peaks[9] <= batch_pairs


def test_metrics_package_and_tc_state_never_import_torch():
    code = "import sys, ovbench.metrics, ovbench.metrics.tc; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_one_frame_video_has_no_pair_and_no_tc():
    metrics = TCMetrics(K)
    metrics.begin_video("single")
    metrics.end_video()
    assert metrics.compute() == {"metrics": {}, "per_video": {"single": {"pairs": 0}}}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_flow_and_warp_agree_with_cpu():
    torch.manual_seed(3)
    model = raft_small()
    images, preds = moving_video(3)
    frames = torch.from_numpy(images)
    on_cpu = RaftFlow(model, "cpu", WeightsInfo(source="none", random_init=True)).pair_flows(frames)
    on_gpu = RaftFlow(model, "cuda", WeightsInfo(source="none", random_init=True)).pair_flows(frames)
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-2)
    later = torch.from_numpy(preds[1:])
    differ = warp_nearest(later.cuda(), on_cpu.cuda()).cpu() != warp_nearest(later, on_cpu)
    assert differ.float().mean() < 1e-3  # a sample within an ulp of a rounding tie may go either way


def test_abort_leaves_no_trace_and_the_video_can_be_scored_again():
    metrics = TCMetrics(K)
    metrics.begin_video("v")
    metrics.add_pair(np.ones((3, 3), np.uint8), np.ones((3, 3), np.uint8))
    metrics.abort_video()
    assert not metrics.videos and not metrics.confusion.any()
    metrics.begin_video("v")
    metrics.add_pair(np.zeros((3, 3), np.uint8), np.ones((3, 3), np.uint8))
    metrics.end_video()
    assert metrics.compute() == {"metrics": {"TC": 0.0}, "per_video": {"v": {"pairs": 1, "TC": 0.0}}}
    with pytest.raises(Exception, match="TC already scored"):
        metrics.begin_video("v")
    images, preds = moving_video(2, shape=(8, 8))
    tc = TemporalConsistency(K, RaftFlow(raft_small(), "cpu", WeightsInfo(source="none", random_init=True)))
    tc.begin_video("w")
    tc.update(images[0], preds[0])  # held, no flow yet (batches of 2 pairs)
    tc.abort_video()
    assert tc._frames == [] and not tc.metrics.videos
