"""How fast is ovbench's metric hot path, against the official-style numpy script and bincount?

(a) per-frame numpy written the way the official VSPW scripts work: confusion matrix with a mask
    and np.bincount, then a VC8 and a VC16 pass where each window compares its n-1 later frames
    with its first one;
(b) ovbench.metrics.VideoSegMetrics (frame by frame, and in batches of 8 frames);
(c) one bare np.bincount per frame of the precomputed index K*gt+pred (the floor for any
    confusion matrix; (c') adds building that int64 index the obvious way).
Synthetic 480x853 videos with moving regions; (a) and (b) must agree (mIoU equal, VC to 1e-12).

Timings are the sum over steps (a frame's update, a VC window, ...) of each step's fastest of
--repeats runs, so that a shared, busy machine still gives stable ratios. The metrics run on the
host in every command (a GPU run hands its labels over), so there is no GPU variant.

    python benchmarks/bench_metrics.py [--frames 90] [--video-frames 30] [--results FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ovbench.metrics.accumulator import VideoSegMetrics

K, H, W = 124, 480, 853
WINDOWS = (8, 16)
Steps = Iterator[Callable[[], object]]


def synthetic_video(rng: np.random.Generator, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Background bands + moving boxes (+ a void strip); predictions shift the boxes, now and then
    mislabel one, and carry sparse per-pixel noise, so every VC window has something to count."""
    bands = rng.integers(0, K, 4)
    boxes = [(int(rng.integers(0, K)), *rng.integers(0, [H - 120, W - 160]), *rng.integers(40, [120, 160]),
              *rng.integers(-6, 7, 2)) for _ in range(6)]
    gts, preds = [], []
    for t in range(frames):
        gt = np.repeat(bands, H // 4)[:, None].repeat(W, 1).astype(np.uint8)
        pred = gt.copy()
        gt[:, :12] = 255
        for c, y, x, h, w, vy, vx in boxes:
            yy, xx = int(np.clip(y + vy * t, 0, H - h)), int(np.clip(x + vx * t, 0, W - w))
            gt[yy:yy + h, xx:xx + w] = c
            shift = int(rng.integers(-3, 4))
            label = int(rng.integers(0, K)) if rng.random() < 0.1 else c
            pred[max(yy + shift, 0):yy + h + shift, max(xx - shift, 0):xx + w - shift] = label
        noise = rng.random((H, W)) < 0.01
        pred[noise] = rng.integers(0, K, int(noise.sum()))
        gts.append(gt)
        preds.append(pred)
    return gts, preds


class OfficialStyle:
    """Per-frame numpy as in the official scripts (float confusion matrix, window-by-window VC)."""

    def __init__(self):
        self.hist = np.zeros((K, K))
        self.accs: dict[int, list[float]] = {n: [] for n in WINDOWS}

    def steps(self, videos) -> Steps:
        for gts, preds in videos:
            for gt, pred in zip(gts, preds):
                yield lambda gt=gt, pred=pred: self.add_frame(gt, pred)
            for n in WINDOWS:
                for i in range(len(gts) - n):
                    yield lambda gts=gts, preds=preds, n=n, i=i: self.add_window(gts, preds, n, i)

    def add_frame(self, gt: np.ndarray, pred: np.ndarray) -> None:
        mask = (gt >= 0) & (gt < K)
        self.hist += np.bincount(K * gt[mask].astype(int) + pred[mask], minlength=K * K).reshape(K, K)

    def add_window(self, gts, preds, n: int, i: int) -> None:
        gt_common = np.ones((H, W))
        pred_common = np.ones((H, W))
        for j in range(1, n):
            gt_common = np.logical_and(gt_common, gts[i] == gts[i + j])
            pred_common = np.logical_and(pred_common, preds[i] == preds[i + j])
        with np.errstate(invalid="ignore"):
            self.accs[n].append((pred_common * gt_common).sum() / gt_common.sum())

    def miou(self) -> float:
        h = self.hist
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.diag(h) / (h.sum(1) + h.sum(0) - np.diag(h))
        present = h.sum(1) > 0
        return float(np.nansum(iou * present) / present.sum())

    def vc(self) -> dict[int, float]:
        return {n: float(np.nanmean(a)) for n, a in self.accs.items()}


def ovbench_steps(metrics: VideoSegMetrics, videos, batch: int) -> Steps:
    """Frames as the runner gives them: host uint8 masks and labels."""
    for v, (gts, preds) in enumerate(videos):
        yield lambda v=v: metrics.begin_video(f"v{v}")
        for i in range(0, len(gts), batch):
            if batch == 1:
                g, p = gts[i], preds[i]
            else:
                g, p = np.stack(gts[i:i + batch]), np.stack(preds[i:i + batch])
            yield lambda g=g, p=p: metrics.update(g, p)
        yield metrics.end_video


def new_metrics() -> VideoSegMetrics:
    lut = np.full(256, 255, dtype=np.uint8)
    lut[:K] = np.arange(K)
    return VideoSegMetrics(K, lut, windows=WINDOWS)


def bincount_steps(videos, build_index: bool) -> Steps:
    for gts, preds in videos:
        for gt, pred in zip(gts, preds):
            if build_index:
                yield lambda g=gt, p=pred: np.bincount((K * g.astype(np.intp) + p).reshape(-1), minlength=K * K)
            else:
                index = (K * gt.astype(np.intp) + pred).reshape(-1)
                yield lambda index=index: np.bincount(index, minlength=K * K)


def stepwise_time(make_steps: Callable[[], Steps], repeats: int) -> float:
    """Sum over steps of each step's fastest run (steps are generated fresh for every repeat)."""
    best: list[float] | None = None
    for _ in range(repeats):
        times = []
        for step in make_steps():
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        best = times if best is None else [min(a, b) for a, b in zip(best, times)]
    return sum(best)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return (f"{model}, {len(os.sched_getaffinity(0))} usable cores of {os.cpu_count()}, "
            f"numpy {np.__version__}, Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=90, help="total frames (default 90)")
    parser.add_argument("--video-frames", type=int, default=30, help="frames per video (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per step; the fastest is kept (default 3)")
    parser.add_argument("--results", type=Path, help="also write the figures as markdown to this file")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sizes = [args.video_frames] * (args.frames // args.video_frames)
    if args.frames % args.video_frames:
        sizes.append(args.frames % args.video_frames)
    videos = [synthetic_video(rng, n) for n in sizes]
    n = sum(sizes)

    official: list[OfficialStyle] = []
    ours: dict[int, VideoSegMetrics] = {}

    def official_steps() -> Steps:
        official.append(OfficialStyle())
        return official[-1].steps(videos)

    def ovbench(batch: int) -> Callable[[], Steps]:
        def make() -> Steps:
            ours[batch] = new_metrics()
            return ovbench_steps(ours[batch], videos, batch)
        return make

    seconds = {
        "(a) official-style numpy": stepwise_time(official_steps, args.repeats),
        "(b) ovbench, frame by frame": stepwise_time(ovbench(1), args.repeats),
        "(b8) ovbench, batches of 8": stepwise_time(ovbench(8), args.repeats),
        "(c) bare np.bincount": stepwise_time(lambda: bincount_steps(videos, False), args.repeats),
        "(c') int64 index + np.bincount": stepwise_time(lambda: bincount_steps(videos, True), args.repeats),
    }
    result = ours[1].compute()["metrics"]
    miou_a, vc_a = official[-1].miou(), official[-1].vc()
    assert result["mIoU"] == miou_a, (result["mIoU"], miou_a)
    for w in WINDOWS:
        assert abs(result[f"VC{w}"] - vc_a[w]) <= 1e-12, (w, result[f"VC{w}"], vc_a[w])
    assert ours[8].compute() == ours[1].compute()

    t_a, t_b, t_b8, t_c, t_c2 = list(seconds.values())[:5]
    lines = [
        f"Machine: {machine()}",
        f"Data: {n} synthetic frames of {H}x{W} in {len(sizes)} videos, K={K}, windows {WINDOWS}; "
        f"CPU times: sum over steps of the fastest of {args.repeats} runs",
        f"Agreement: mIoU (a) = (b) = {miou_a!r} exactly; "
        + ", ".join(f"VC{w} (a) {vc_a[w]:.15f} (b) {result[f'VC{w}']:.15f}" for w in WINDOWS),
        "",
        "| implementation | frames/s | ms/frame |",
        "|---|---:|---:|",
        *[f"| {name} | {n / s:,.1f} | {1000 * s / n:.3f} |" for name, s in seconds.items()],
        "",
        f"Ratios: (b) is {t_a / t_b:.1f}x faster than (a) (b8: {t_a / t_b8:.1f}x); (b) takes {t_b / t_c:.2f}x "
        f"the time of (c) (b8: {t_b8 / t_c:.2f}x) and {t_b / t_c2:.2f}x that of (c'); (a) takes {t_a / t_c:.1f}x (c).",
    ]
    print("\n".join(lines))
    if args.results:
        args.results.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
