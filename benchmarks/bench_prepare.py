"""`data prepare` speed per image kind, on synthetic raw releases of realistic image sizes, with
the time each full release would take extrapolated from the per-image time.

    python benchmarks/bench_prepare.py [--images 40] [--repeats 2] [--workers 1 2] [--kinds ade150 ...]

Each kind is timed on releases of N and 2N images: the difference gives the time per image,
the rest the fixed cost (start-up, worker processes, the JSON parse).
The sizes are typical of each release (ADEChallenge ~512x683, full ADE20K taken as 768x1024
so that A-847's resize runs, VOC 375x500, Cityscapes 1024x2048, COCO 480x640). Full-release
counts are the val sets (and COCO-Stuff's 118287 train images). The per-image time includes
what a full run does besides converting: reading the raw files, encoding, fsync'd atomic
writes, checksums, the progress list. The synthetic labels carry 1 % scattered pixels, which
make their PNGs slower to encode than real label maps: the estimates err on the long side.
Not included: parsing the real 10k-image trainval_merged.json of PASCAL Context.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ovbench.data.images import IMAGE_KINDS  # noqa: E402
from ovbench.data.prepare import prepare  # noqa: E402
from ovbench.data.synthetic.images import WRITERS

SIZES = {"ade150": (512, 683), "ade847": (768, 1024), "pc59": (375, 500), "pc459": (375, 500),
         "voc20": (375, 500), "voc21": (375, 500), "voc20b": (375, 500), "cityscapes": (1024, 2048),
         "cocostuff171": (480, 640)}


def timed(kind: str, raw: Path, out: Path, workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one preparation; CPU includes the worker processes (joined)."""
    def cpu() -> float:
        return sum(sum(resource.getrusage(who)[:2]) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))

    shutil.rmtree(out, ignore_errors=True)
    start, start_cpu = time.perf_counter(), cpu()
    prepare(kind, raw, out, workers=workers, progress=False)
    return time.perf_counter() - start, cpu() - start_cpu


def cost(kind: str, base: Path, images: int, workers: int, repeats: int) -> tuple[float, float, float]:
    """(wall s/image, CPU s/image, fixed wall s): the slope between releases of `images` and
    2 x `images` images, each the fastest of `repeats` runs (the machine is shared)."""
    height, width = SIZES[kind]
    best = []
    for count in (images, 2 * images):
        raw = base / f"raw-{kind}-{count}"
        if not raw.exists():
            WRITERS[kind](raw, images=count, height=height, width=width)
        runs = [timed(kind, raw, base / f"{kind}-out", workers) for _ in range(repeats)]
        best.append((min(r[0] for r in runs), min(r[1] for r in runs)))
    wall = max(best[1][0] - best[0][0], 0.0) / images
    return wall, max(best[1][1] - best[0][1], 0.0) / images, max(best[0][0] - images * wall, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(IMAGE_KINDS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        base = Path(tmp)
        for kind in args.kinds:
            height, width = SIZES[kind]
            row = [f"{kind:13s} {height}x{width}"]
            for workers in args.workers:
                wall, cpu, fixed = cost(kind, base, args.images, workers, args.repeats)
                full = {s: (fixed + n * wall) / 60 for s, n in IMAGE_KINDS[kind].counts}
                estimate = ", ".join(f"{s} {minutes:.1f} min" for s, minutes in full.items())
                row.append(f"{workers} worker(s): {wall * 1e3:.1f} ms/image wall ({cpu * 1e3:.1f} CPU) "
                           f"+ {fixed:.1f} s -> {estimate}")
            print(" | ".join(row), flush=True)

if __name__ == "__main__":
    main()
