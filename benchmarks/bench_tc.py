"""What TC (VSPW's TC_cal.py protocol) costs per frame: RAFT flow, then the warp and the counts.

(a) flow: torchvision's raft_large (random weights: the cost does not depend on them), 20
    updates, 480x853 RGB frames padded to 480x856, `RaftFlow.pair_flows` on one pair at a time
    and on `--batch-pairs` pairs, at each `--threads` setting; the fastest of `--repeats` calls
    after one warm-up. `--forward` also times torchvision's own forward (which upsamples and
    keeps all 20 flows) on the same pair.
(b) warp + counts per pair, on the host: ovbench (`warp_nearest` + `TCMetrics.add_pair`)
    against a plain baseline written the way TC_cal.py works (a pixel grid built with repeat for
    every pair, normalised, grid_sample, .int(), then a masked bincount of K*t + warped), on
    synthetic 124-class label videos and a smooth random flow; both must give the same
    confusion matrix. Sum over pairs of each pair's fastest of `--repeats` runs.

    python benchmarks/bench_tc.py [--threads 1,2] [--batch-pairs 2] [--device cpu] [--forward]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from bench_metrics import H, K, W, machine, stepwise_time, synthetic_video
from torchvision.models.optical_flow import raft_large

from ovbench.metrics.tc import TCMetrics
from ovbench.metrics.temporal import FLOW_UPDATES, FlowWeights, RaftFlow, padded_images, warp_nearest


def fastest(call, repeats: int) -> float:
    """Fastest of `repeats` timed calls; on a GPU after one warm-up (a CPU call of RAFT at 480p
    takes seconds, so its start-up costs are noise)."""
    if torch.cuda.is_available():
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def flow_costs(args, frames: torch.Tensor) -> None:
    torch.manual_seed(0)
    flow = RaftFlow(raft_large(), args.device, FlowWeights(source="none", random_init=True))
    for threads in args.threads:
        torch.set_num_threads(threads)
        one = fastest(lambda: flow.pair_flows(frames[:2]), args.repeats)
        batch = fastest(lambda: flow.pair_flows(frames[:args.batch_pairs + 1]), args.repeats) / args.batch_pairs
        print(f"  {args.device}, {threads} thread(s): {one:.2f} s/pair one pair a call; "
              f"{batch:.2f} s/pair in batches of {args.batch_pairs}")
        if args.forward:
            images, _ = padded_images(frames[:2].to(flow.device))
            with torch.inference_mode():
                full = fastest(lambda pair=images: flow.model(pair[:1], pair[1:], num_flow_updates=FLOW_UPDATES)[-1],
                               args.repeats)
            print(f"  {args.device}, {threads} thread(s): torchvision forward {full:.2f} s/pair")


def plain_warp_counts(pred_t: np.ndarray, pred_next: np.ndarray, flow: torch.Tensor) -> np.ndarray:
    """TC_cal.py's steps for one pair: grid by repeat, +flow, scale, nearest grid_sample, masked bincount."""
    h, w = pred_t.shape
    xs = torch.arange(0, w).view(1, -1).repeat(h, 1)
    ys = torch.arange(0, h).view(-1, 1).repeat(1, w)
    grid = torch.cat((xs.view(1, 1, h, w), ys.view(1, 1, h, w)), 1).float() + flow
    grid[:, 0] = 2.0 * grid[:, 0].clone() / max(w - 1, 1) - 1.0
    grid[:, 1] = 2.0 * grid[:, 1].clone() / max(h - 1, 1) - 1.0
    source = torch.from_numpy(pred_next)[None, None].float()
    warped = F.grid_sample(source, grid.permute(0, 2, 3, 1), mode="nearest", align_corners=False).int()[0].numpy()
    ref = pred_t[None].astype(np.int64)
    kept = (ref >= 0) & (ref < K)
    return np.bincount(K * ref[kept] + warped[kept], minlength=K * K).reshape(K, K)


def warp_costs(args) -> None:
    rng = np.random.default_rng(0)
    _, preds = synthetic_video(rng, args.pairs + 1)
    coarse = torch.from_numpy(rng.normal(0, 3, (args.pairs, 2, H // 40, W // 40)).astype(np.float32))
    flows = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)  # smooth, a few px

    def plain_steps():
        plain = np.zeros((K, K), np.int64)
        for t in range(args.pairs):
            yield lambda t=t: np.add(plain, plain_warp_counts(preds[t], preds[t + 1], flows[t:t + 1]), out=plain)
        results["plain"] = plain

    def ovbench_steps():
        metrics = TCMetrics(K)
        metrics.begin_video("v")

        def pair(t):
            warped = warp_nearest(torch.from_numpy(preds[t + 1][None]), flows[t:t + 1])[0].numpy()
            metrics.add_pair(preds[t], warped)
        for t in range(args.pairs):
            yield lambda t=t: pair(t)
        metrics.end_video()
        results["ovbench"] = metrics.confusion

    results: dict[str, np.ndarray] = {}
    torch.set_num_threads(1)
    plain = stepwise_time(plain_steps, args.warp_repeats) / args.pairs
    ours = stepwise_time(ovbench_steps, args.warp_repeats) / args.pairs
    assert np.array_equal(results["plain"], results["ovbench"]), "the two warps disagree"
    print(f"  plain (TC_cal.py's steps): {1e3 * plain:.1f} ms/pair; ovbench: {1e3 * ours:.1f} ms/pair "
          f"({plain / ours:.2f}x); identical confusion matrices over {args.pairs} pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    parser.add_argument("--batch-pairs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each flow call, the fastest kept (default 1)")
    parser.add_argument("--warp-repeats", type=int, default=3, help="runs of each warp step, the fastest kept (default 3)")
    parser.add_argument("--pairs", type=int, default=20, help="frame pairs for the warp + counts part")
    parser.add_argument("--forward", action="store_true", help="also time torchvision's RAFT forward")
    args = parser.parse_args()
    print(f"TC cost, {H}x{W} frames, raft_large, {FLOW_UPDATES} updates; {machine()}, torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    print("(b) warp + counts per pair, host, 1 thread:")
    warp_costs(args)
    frames = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (args.batch_pairs + 1, H, W, 3), dtype=np.uint8))
    print("(a) flow per pair:")
    flow_costs(args, frames)


if __name__ == "__main__":
    main()
