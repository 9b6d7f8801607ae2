"""CAT-Seg's size and cost: parameters of each variant, FLOPs per frame under the published
protocol, frames/s of the adapter's `predict` and the cost of embedding a VSPW vocabulary.

Weights are random (counts and timings do not depend on them). Parameters and FLOPs are
counted on the meta device, so the full-size variants need no memory. The protocol always
feeds CLIP 5 views of 384 (4 crops of the 640x640 resize plus the global view) whatever the
frame size, so FLOPs depend on the vocabulary size, not the frame; `--test-size 480` (the
frame's own short side on 480p video) still gives 4 crops (offsets 0 and 96) and the same
count. torch.utils.flop_counter counts 2 flops per multiply-add.

    python benchmarks/bench_cat_seg.py                       # CPU, one thread, one frame
    python benchmarks/bench_cat_seg.py --device cuda --frames 20
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download here

import argparse
import time

import torch
from ovbench.models.cat_seg.adapter import CATSeg, CATSegArgs
from ovbench.models.cat_seg.config import load_config
from ovbench.models.cat_seg.network import CATSegNetwork
from torch.utils.flop_counter import FlopCounterMode

from ovbench.modelargs import parse_model_args
from ovbench.split import load_split

VARIANTS = ("vit-b16", "vit-l14-336")
VIEWS = 5  # 2x2 crops and the global view


def parameters_and_flops(variant: str, classes: int) -> tuple[float, float]:
    """(parameters in M, GFLOPs per frame) of the network on the protocol's views."""
    config = load_config(variant)
    with torch.device("meta"):
        network = CATSegNetwork(config).eval().requires_grad_(False)
        pixels = torch.empty(VIEWS, 3, config.clip_resolution, config.clip_resolution)
        text = torch.empty(classes, config.clip["embed_dim"])
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            network(pixels, text)
    return sum(p.numel() for p in network.parameters()) / 1e6, counter.get_total_flops() / 1e9


def time_predict(model: CATSeg, names: list[str], frames: int, size: tuple[int, int], device: torch.device) -> tuple[float, float]:
    """(seconds to embed the vocabulary, frames/s of predict) on random uint8 frames."""
    start = time.perf_counter()
    text = model.encode_text(names)
    text_seconds = time.perf_counter() - start
    batch = torch.randint(0, 256, (frames, 3, *size), dtype=torch.uint8, device=device)
    model.predict(batch[:1], text)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for frame in batch:
        model.predict(frame[None], text)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return text_seconds, frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test-size", type=int, default=640)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = list(load_split("vspw_all").class_names)
    for variant in VARIANTS:
        for classes in (6, len(names)):
            params, gflops = parameters_and_flops(variant, classes)
            print(f"{variant}: {params:.2f} M parameters, {gflops:.0f} GFLOPs per frame with {classes} classes")
    device = torch.device(args.device)
    model = CATSeg(parse_model_args(CATSegArgs, f"config=vit-b16,checkpoint=none,test_size={args.test_size}"), device)
    text_seconds, fps = time_predict(model, names, args.frames, (480, 853), device)
    print(
        f"vit-b16 on {device} ({args.threads} thread(s)), 480x853, {len(names)} classes:"
        f" text {text_seconds:.2f} s, {fps:.3f} frames/s over {args.frames} frame(s)"
    )


if __name__ == "__main__":
    main()
