"""The zoo side by side: frames/s of each zoo model's `predict` (models/zoo.py) on the same
random 480x853 frames and device, at the authors' test size and at the frame's own 480 short
side, next to gkc and the two-stage CLIP baseline (which have no test-size rule: they see the
frame as it is), with FLOPs per frame measured by torch.utils.flop_counter (2 per multiply-add;
resizes are not counted) on the first call, which is also the warm-up.

Weights are random: speed and FLOPs do not depend on them. `--size tiny` (the default, what this
CPU manages) runs the zoo's tiny variants, the shipped gkc-tiny sample checkpoint and a tiny
CLIP for the two-stage baseline; `--size full` runs the published ViT-B-class variants, a
random-init gkc-r50 checkpoint (benchmarks/gkc_weights.py) and the baseline's ViT-B-16.

    python benchmarks/bench_zoo.py [--size tiny|full] [--frames 3] [--classes 124] [--device cpu]
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download here

import argparse
import tempfile
import time
from pathlib import Path

import torch
from gkc_weights import random_gkc_checkpoint
from ovbench.models.zoo import ZOO
from torch.utils.flop_counter import FlopCounterMode

from ovbench.api import SegmentationModel
from ovbench.modelargs import parse_model_args
from ovbench.registry import get_model_class
from ovbench.split import load_split

FRAME = (480, 853)  # a VSPW 480p frame
FRAME_SIDE = FRAME[0]
TWOSTAGE_ARGS = {"tiny": "clip=ovbench-tiny-vit,pretrained=none", "full": "clip=ViT-B-16,pretrained=none"}
GKC_PUBLISHED = "GKC paper: 268 G multiply-adds (R50, 800x1216 input)"


def build(model_id: str, args: str, device: torch.device) -> SegmentationModel:
    cls = get_model_class(model_id)
    return cls(parse_model_args(cls.Args, args), device)


def measure(model: SegmentationModel, frames: torch.Tensor, names: list[str]) -> tuple[float, float]:
    """(GFLOPs per frame, frames/s of predict), one frame a call; the counted call is the warm-up.
    Parameters are frozen first: the counter's module hooks fail on a parameter that requires
    grad when it is a module's input under no_grad (CAT-Seg passes its position embedding on)."""
    for module in vars(model).values():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False)
    text = model.encode_text(names)
    counter = FlopCounterMode(display=False)
    with counter:
        model.predict(frames[:1], text)
    synchronize(frames.device)
    start = time.perf_counter()
    for frame in frames:
        model.predict(frame[None], text)
    synchronize(frames.device)
    return counter.get_total_flops() / 1e9, frames.shape[0] / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def runs(size: str, work: Path) -> list[tuple[str, str, str, str]]:
    """(model id, model-args, what the test size is, published FLOPs in words) of every row."""
    rows = []
    for entry in ZOO:
        variant = entry.tiny_args if size == "tiny" else entry.full_args
        for test_size, label in ((entry.authors_test_size, "authors'"), (FRAME_SIDE, "frame's own")):
            rows.append((entry.id, entry.args_at(variant, test_size), f"{test_size} ({label})", entry.published_gflops))
    gkc = "checkpoint=builtin:gkc-tiny-sample" if size == "tiny" else f"checkpoint={random_gkc_checkpoint('gkc-r50', work)}"
    rows.append(("gkc", gkc, "frame as is", GKC_PUBLISHED))
    rows.append(("clip-twostage", TWOSTAGE_ARGS[size], "frame as is", "-"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--frames", type=int, default=3, help="timed frames per row (after the counted warm-up)")
    parser.add_argument("--classes", type=int, default=124, help="the first N names of VSPW's vocabulary")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    device = torch.device(options.device)
    names = list(load_split("vspw_all").class_names)[: options.classes]
    frames = torch.randint(0, 256, (options.frames, 3, *FRAME), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).to(device)
    print(f"{options.size} variants, random weights, {device} ({options.threads} thread(s)), {FRAME[0]}x{FRAME[1]} frames,"
          f" {len(names)} classes, {options.frames} timed frame(s) a row")
    print("| model | model-args | test size (short side) | parameters | GFLOPs/frame | frames/s | published |")
    print("|---|---|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="ovbench-bench-zoo-") as work:
        for model_id, args, test_size, published in runs(options.size, Path(work)):
            model = build(model_id, args, device)
            gflops, fps = measure(model, frames, names)
            print(f"| {model_id} | {args.replace(work, '<tmp>')} | {test_size} | {model.parameters() / 1e6:.2f} M | {gflops:.1f}"
                  f" | {fps:.3f} | {published} |", flush=True)
            del model


if __name__ == "__main__":
    main()
