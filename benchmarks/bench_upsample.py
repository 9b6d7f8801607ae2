"""Benchmark: plain `F.interpolate(bilinear) + argmax` vs `ovbench.upsample.upsampled_argmax`.

    python benchmarks/bench_upsample.py [--repeats 15] [--threads N] [--markdown]

Per case: ms per frame for both (median and best of the repeats, the two measured
alternately in the same run), the speedup (ratio of medians), and whether the labels are
identical (they must be). Score maps:

* realistic: a low-resolution segmentation into ~12 regions (Voronoi cells) of 8 classes
  drawn from the vocabulary, class logits 5 * blurred one-hot + N(0, 0.5) noise;
* fragmented: every class present, square regions of 8 x 8 low-res pixels, logits 4 *
  blurred one-hot + N(0, 0.3) noise (many more boundary cells);
* noise: i.i.d. N(0, 1) scores (worst case: the exact path falls back to the plain one);
* realistic/channels-last: the realistic scores in channels-last memory (as the CLIP
  adapter returns them), for which PyTorch runs its other CPU kernel.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from ovbench.upsample import exact_path_available, plain_upsampled_argmax, upsampled_argmax

CASES = [  # (classes, low-res size, output size)
    (124, (120, 213), (480, 853)),
    (12, (120, 213), (480, 853)),
    (124, (30, 54), (120, 214)),
]
KINDS = ("realistic", "fragmented", "noise")
EXTRA = [(124, (120, 213), (480, 853), "realistic/channels-last")]


def blurred_logits(segmentation: torch.Tensor, classes: int, scale: float, noise: float, generator: torch.Generator) -> torch.Tensor:
    one_hot = F.one_hot(segmentation, classes).permute(2, 0, 1).float()[None]
    smooth = F.avg_pool2d(one_hot, 5, stride=1, padding=2, count_include_pad=False)
    return scale * smooth + noise * torch.randn(smooth.shape, generator=generator)


def make_scores(kind: str, classes: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if kind == "noise":
        return torch.randn(1, classes, height, width, generator=generator)
    if kind == "fragmented":
        blocks = torch.randint(0, classes, (1, 1, -(-height // 8), -(-width // 8)), generator=generator).float()
        segmentation = F.interpolate(blocks, scale_factor=8, mode="nearest")[0, 0, :height, :width].long()
        return blurred_logits(segmentation, classes, 4.0, 0.3, generator)
    present = torch.randperm(classes, generator=generator)[: min(8, classes)]
    seeds = torch.rand(12, 2, generator=generator) * torch.tensor([height, width])
    ys, xs = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    distance = (ys[None] - seeds[:, 0, None, None]) ** 2 + (xs[None] - seeds[:, 1, None, None]) ** 2
    region = distance.argmin(0)
    segmentation = present[torch.randint(0, len(present), (12,), generator=generator)][region]
    return blurred_logits(segmentation, classes, 5.0, 0.5, generator)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1e3


def run(repeats: int) -> list[dict]:
    rows = []
    cases = [(classes, low, size, kind) for classes, low, size in CASES for kind in KINDS] + EXTRA
    for classes, (h, w), size, kind in cases:
        scores = make_scores(kind.split("/")[0], classes, h, w)
        if kind.endswith("/channels-last"):
            scores = scores.contiguous(memory_format=torch.channels_last)
        plain = plain_upsampled_argmax(scores, size)
        fast = upsampled_argmax(scores, size)
        equal = torch.equal(plain, fast)
        t_plain, t_fast = [], []
        for _ in range(repeats):  # alternate, so that load changes hit both alike
            t_plain.append(timed(plain_upsampled_argmax, scores, size))
            t_fast.append(timed(upsampled_argmax, scores, size))
        rows.append(
            {
                "classes": classes,
                "input": f"{h}x{w}",
                "output": f"{size[0]}x{size[1]}",
                "scores": kind,
                "plain_ms": statistics.median(t_plain),
                "fast_ms": statistics.median(t_fast),
                "plain_best_ms": min(t_plain),
                "fast_best_ms": min(t_fast),
                "speedup": statistics.median(t_plain) / statistics.median(t_fast),
                "equal": equal,
            }
        )
        r = rows[-1]
        print(
            f"C={classes:4d} {r['input']:>8s} -> {r['output']:8s} {kind:23s} plain {r['plain_ms']:7.1f} ms"
            f" (best {r['plain_best_ms']:6.1f})  fast {r['fast_ms']:6.1f} ms (best {r['fast_best_ms']:6.1f})"
            f"  x{r['speedup']:5.2f}  equal={equal}",
            flush=True,
        )
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, Python {platform.python_version()}"
    )


def markdown(rows: list[dict]) -> str:
    lines = [
        "| C | input -> output | scores | plain ms/frame | upsampled_argmax ms/frame | speedup | identical |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['classes']} | {r['input']} -> {r['output']} | {r['scores']} | {r['plain_ms']:.1f} | "
            f"{r['fast_ms']:.1f} | {r['speedup']:.2f}x | {'yes' if r['equal'] else '**NO**'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine())
    print(f"exact path: generic kernel {exact_path_available(False)}, channels-last kernel {exact_path_available(True)}")
    with torch.no_grad():
        rows = run(args.repeats)
    if args.markdown:
        print()
        print(markdown(rows))
    if not all(r["equal"] for r in rows):
        raise SystemExit("MISMATCH: upsampled_argmax differs from the plain path")


if __name__ == "__main__":
    main()
