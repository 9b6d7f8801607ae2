"""`data prepare` speed per image kind, on synthetic raw releases of realistic image sizes, with
the time each full release would take extrapolated from the per-image time.

    python benchmarks/bench_prepare.py [--images 24] [--workers 1 2] [--kinds ade150 ...]

The sizes are typical of each release (ADEChallenge ~512x683, full ADE20K taken as 768x1024
so that A-847's resize runs, VOC 375x500, Cityscapes 1024x2048, COCO 480x640). Full-release
counts are the val sets (and COCO-Stuff's 118287 train images). The per-image time includes
what a full run does besides converting: reading the raw files, encoding, fsync'd atomic
writes, checksums, the progress list; not the JSON parse of PC's trainval_merged.json, which
is timed once and added as it is.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ovbench.data.images import IMAGE_KINDS  # noqa: E402
from ovbench.data.prepare import prepare  # noqa: E402
from ovbench.data.synthetic_images import WRITERS  # noqa: E402

SIZES = {"ade150": (512, 683), "ade847": (768, 1024), "pc59": (375, 500), "pc459": (375, 500),
         "voc20": (375, 500), "voc21": (375, 500), "voc20b": (375, 500), "cityscapes": (1024, 2048),
         "cocostuff171": (480, 640)}


def per_image_seconds(kind: str, raw: Path, base: Path, workers: int, images: int) -> float:
    out = base / f"{kind}-w{workers}"
    start = time.perf_counter()
    prepare(kind, raw, out, workers=workers, progress=False)
    return (time.perf_counter() - start) / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kinds", nargs="+", default=list(IMAGE_KINDS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        base = Path(tmp)
        for kind in args.kinds:
            height, width = SIZES[kind]
            raw = WRITERS[kind](base / f"raw-{kind}", images=args.images, height=height, width=width)
            row = [f"{kind:13s} {height}x{width}"]
            for workers in args.workers:
                seconds = per_image_seconds(kind, raw, base, workers, args.images)
                full = {s: n * seconds / 60 for s, n in IMAGE_KINDS[kind].counts}
                estimate = ", ".join(f"{s} {minutes:.1f} min" for s, minutes in full.items())
                row.append(f"{workers} worker(s): {seconds * 1e3:.1f} ms/image -> {estimate}")
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
